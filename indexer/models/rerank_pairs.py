"""The fixed multilingual (query, passage) probe pairs every reranker artefact is checked on: the reference
scores a shipped delta records (:mod:`.default_reranker`) and the int8-vs-fp32 check of the ONNX reranker
(:mod:`indexer.encoding.rerank_onnx`). Each query has a relevant passage, an unrelated one and, for some, one
in another language; scripts: Latin, Cyrillic, CJK, Arabic.
"""

from __future__ import annotations

PROBE_PAIRS = (  # multilingual (query, passage): the reference scores here, the int8 check in rerank_onnx
    ("Vitamin D deficiency and multiple sclerosis", "Low serum vitamin D levels were found in MS patients."),
    ("Vitamin D deficiency and multiple sclerosis", "The Eiffel Tower was completed in 1889 in Paris."),
    ("Vitamin D deficiency and multiple sclerosis", "Vitamin D wird in der Haut durch Sonnenlicht gebildet."),
    ("Wie wirkt Koffein auf den Schlaf?", "Koffein verzögert das Einschlafen und verkürzt den Tiefschlaf."),
    (
        "Wie wirkt Koffein auf den Schlaf?",
        "Der Rhein fließt durch die Schweiz, Deutschland und die Niederlande.",
    ),
    ("Wie wirkt Koffein auf den Schlaf?", "Caffeine blocks adenosine receptors and delays sleep onset."),
    ("光合作用是如何进行的？", "植物利用光能把二氧化碳和水转化为葡萄糖和氧气。"),
    ("光合作用是如何进行的？", "长城是中国古代的军事防御工程。"),
    ("光合作用是如何进行的？", "Photosynthesis converts light energy into chemical energy."),
    ("Как работает вакцина?", "Вакцина обучает иммунную систему распознавать возбудителя."),
    ("Как работает вакцина?", "Москва — столица России и крупнейший город страны."),
    ("ما هي فوائد النوم؟", "النوم الجيد يقوي الذاكرة ويحسن المزاج."),
    ("ما هي فوائد النوم؟", "القاهرة هي عاصمة مصر."),
    ("コーヒーの焙煎とは", "焙煎は生豆を加熱して香りと色を引き出す工程です。"),
    ("コーヒーの焙煎とは", "富士山は日本で最も高い山です。"),
    ("Comment fonctionne un vaccin ?", "Un vaccin entraîne le système immunitaire à reconnaître un agent."),
)
