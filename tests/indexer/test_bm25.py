"""Analyzer token lists, BM25 scores against the Lucene formula by hand, filters, persistence, query languages."""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections import Counter

import numpy as np
import pytest
import regex

import indexer.retrieval.analysis as analysis
import indexer.retrieval.bm25 as bm25
from indexer.errors import ConfigError, IndexStateError, QueryError
from indexer.retrieval.analysis import Analyzer, AnalyzerConfig
from indexer.retrieval.bm25 import BM25Index

# -- analyser ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        # English as Lucene's EnglishAnalyzer: possessive 's dropped, Lucene stopwords, Porter stems.
        (
            "The runners' shoes aren't running; John's cats",
            "en",
            ["runner", "shoe", "aren't", "run", "john", "cat"],
        ),
        ("Die Häuser sind größer als gedacht", "de", ["haus", "gross", "gedacht"]),
        ("Straße STRASSE", "de", ["strass", "strass"]),  # casefold: ß → ss
        ("L'homme qu'il aime, c'est l'amour", "fr", ["homm", "aim", "amour"]),  # elision, stopwords
        ("Los niños corren rápidamente", "es", ["niñ", "corr", "rapid"]),
        ("Бегущие собаки и кошки", "ru", ["бегущ", "собак", "кошк"]),
        ("مرحبا بالعالم", "ar", ["مرحب", "عالم"]),  # Snowball Arabic strips the prefix بال
        ("我爱北京天安门", "zh", ["我爱", "爱北", "北京", "京天", "天安", "安门"]),
        ("我 爱", "zh", ["我", "爱"]),  # a lone CJK character stays a unigram
        ("東京タワー", "ja", ["東京", "京タ", "タワ", "ワー"]),
        ("한국어 형태소 분석", "ko", ["한국", "국어", "형태", "태소", "분석"]),
        ("北京 Python programs", "zh", ["北京", "python", "program"]),  # Latin words in CJK text: as English
        ("Running dogs in 東京", "en", ["run", "dog", "東京"]),  # CJK runs are bigrams whatever the label
        ("ภาษาไทย", "th", ["ภา", "าษ", "ษา", "าไ", "ไท", "ทย"]),
        ("Running Dogs", "und", ["running", "dogs"]),  # unknown language: lowercase and split only
        ("Running Dogs", "xx", ["running", "dogs"]),
        ("ﬁnance ＡＢＣ１２３", "und", ["finance", "abc123"]),  # NFKC
        (
            "e.g. 3.14 1,000 IL-6 don’t foo_bar",
            "und",
            ["e.g", "3.14", "1,000", "il", "6", "don't", "foo_bar"],
        ),
        ("हिन्दी भाषा", "und", ["हिन्दी", "भाषा"]),  # combining marks stay inside the word
    ],
)
def test_analyze_exact_tokens(text: str, lang: str, expected: list[str]) -> None:
    assert Analyzer().analyze(text, lang) == expected


def test_analyze_empty_and_punctuation_only() -> None:
    analyzer = Analyzer()
    assert analyzer.analyze("", "en") == []
    assert analyzer.analyze(" -- !! ", "de") == []
    assert analyzer.analyze("the of and", "en") == []


def test_analyzer_config_switches_off_stemming_and_stopwords() -> None:
    plain = Analyzer(AnalyzerConfig(stem=False, stopwords=False))
    assert plain.analyze("The running dogs", "en") == ["the", "running", "dogs"]
    snowball = Analyzer(AnalyzerConfig(english_stemmer="english"))
    assert snowball.analyze("generously", "en") == ["generous"]  # Porter says "gener"
    with pytest.raises(ConfigError, match="english_stemmer"):
        AnalyzerConfig(english_stemmer="lancaster")  # type: ignore[arg-type]


def test_analyze_gives_the_same_terms_with_a_warm_cache() -> None:
    analyzer = Analyzer()
    text = "Cats chase mice; mice chase cheese. Cats sleep."
    assert analyzer.analyze(text, "en") == analyzer.analyze(text, "en") == Analyzer().analyze(text, "en")


def test_fast_split_agrees_with_exact_split() -> None:
    # Outside _RE_W_DIFFERS, stdlib re's \w and regex's \w must agree (after NFKC, which analyze applies first).
    re_w, regex_w = re.compile(r"\w"), regex.compile(r"\w")
    for code_point in range(0x10000):
        char = chr(code_point)
        if 0xD800 <= code_point < 0xE000 or unicodedata.normalize("NFKC", char) != char:
            continue
        if not analysis._RE_W_DIFFERS.match(char):
            assert bool(re_w.match(char)) == bool(regex_w.match(char)), hex(code_point)
    assert analysis._RE_W_DIFFERS.match(chr(0x10000)) and analysis._RE_W_DIFFERS.match(chr(sys.maxunicode))
    text = "a.1 1.a x'y 1'000 'quoted' e.g. ..a..b.. ,1,2, foo_bar_ __x__ naïve ΑΒΓ.δ – “ok”"
    assert not analysis._NEEDS_SLOW_PATH.search(text)
    assert analysis._TOKEN_RE.findall(text) == analysis._TOKEN.findall(text)


# -- BM25 scores ---------------------------------------------------------------------------------------------------

DOCS = ["apple banana apple", "banana cherry", "cherry cherry cherry date", "egg", "apple egg egg fig"]
IDS = [100, 101, 102, 103, 104]


def lucene_bm25(docs: list[str], query: str, k1: float, b: float) -> dict[int, float]:
    """Lucene's BM25 (Kamphuis et al. 2020): idf = ln(1 + (N - df + .5) / (df + .5)), tf / (tf + k1 (1 - b + b dl/avgdl))."""
    tokenized = [d.split() for d in docs]
    n_docs, avgdl = len(docs), sum(map(len, tokenized)) / len(docs)
    scores = {}
    for i, tokens in enumerate(tokenized):
        tf = Counter(tokens)
        score = 0.0
        for term in set(query.split()):
            df = sum(term in t for t in tokenized)
            if tf[term]:
                idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
                score += idf * tf[term] / (tf[term] + k1 * (1 - b + b * len(tokens) / avgdl))
        if score > 0:
            scores[i] = score
    return scores


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (0.9, 0.4)])
@pytest.mark.parametrize("query", ["apple cherry", "egg", "banana fig date", "cherry cherry apple"])
def test_scores_match_lucene_formula(k1: float, b: float, query: str) -> None:
    index = BM25Index.build(IDS, DOCS, ["und"] * len(DOCS), k1=k1, b=b)
    reference = lucene_bm25(DOCS, query, k1, b)
    expected_ids = [IDS[i] for i in sorted(reference, key=lambda i: (-reference[i], i))]
    hits = index.search(query, k=10, lang="und")
    assert [chunk_id for chunk_id, _ in hits] == expected_ids
    for chunk_id, score in hits:
        assert score == pytest.approx(reference[IDS.index(chunk_id)], abs=1e-5)


def test_ranked_ids_and_k() -> None:
    index = BM25Index.build(IDS, DOCS, ["und"] * len(DOCS))
    assert [i for i, _ in index.search("apple egg", k=10, lang="und")] == [104, 103, 100]
    assert [i for i, _ in index.search("apple egg", k=2, lang="und")] == [104, 103]
    assert len(index) == 5


def test_allowed_ids_filter_still_returns_k_hits() -> None:
    docs = [f"common word{i} " + "rare " * (i % 3) for i in range(50)]
    ids = list(range(1000, 1050))
    index = BM25Index.build(ids, docs, ["und"] * 50)
    allowed = {i for i in ids if i % 7 == 0}
    hits = index.search("common rare", k=5, lang="und", allowed_ids=allowed)
    assert len(hits) == 5 and {i for i, _ in hits} <= allowed
    unfiltered = [h for h in index.search("common rare", k=50, lang="und") if h[0] in allowed]
    assert hits == unfiltered[:5]
    assert index.search("common", k=5, lang="und", allowed_ids=[]) == []
    assert index.search("common", k=5, lang="und", allowed_ids=[999_999]) == []


def test_empty_and_stopword_queries_return_nothing() -> None:
    index = BM25Index.build([1, 2], ["The cat sat on the mat", "A dog barked"], ["en", "en"])
    assert index.search("", k=5) == []
    assert index.search("the of and", k=5, lang="en") == []
    assert index.search("zebra", k=5) == []
    assert index.search("!!!", k=5) == []


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="give one of each"):
        BM25Index.build([1, 2], ["a"], ["en"])
    with pytest.raises(ConfigError, match="unique"):
        BM25Index.build([1, 1], ["a", "b"], ["en", "en"])
    with pytest.raises(ConfigError, match="method"):
        BM25Index.build([1], ["a"], ["en"], method="bm25+")  # type: ignore[arg-type]
    index = BM25Index.build([1], ["cat"], ["en"])
    with pytest.raises(QueryError, match="k=0"):
        index.search("cat", k=0)
    with pytest.raises(QueryError, match="one per query"):
        index.search_many(["cat", "dog"], k=1, langs=["en"])


def test_empty_index_searches_and_round_trips(tmp_path) -> None:
    index = BM25Index.build([], [], [])
    assert len(index) == 0 and index.search("anything", k=3) == []
    index.save(tmp_path)
    assert BM25Index.load(tmp_path).search("anything", k=3) == []


def test_index_of_stopword_only_chunks() -> None:
    index = BM25Index.build([1, 2], ["the", "of a"], ["en", "en"])
    assert index.search("the", k=3, lang="en") == []


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, mmap: bool) -> None:
    texts = [
        "Die Katzen schlafen",
        "Cats are sleeping",
        "東京タワーに行きました",
        "Собаки лают громко",
        "cats and dogs",
    ]
    langs = ["de", "en", "ja", "ru", "en"]
    index = BM25Index.build([5, 6, 7, 8, 9], texts, langs, k1=0.9, b=0.4)
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path, mmap=mmap)
    assert len(loaded) == len(index) and loaded.lang_counts == index.lang_counts
    queries = ["sleeping cats", "Katze", "東京", "собака", "dog"]
    assert loaded.search_many(queries, k=5) == index.search_many(queries, k=5)
    assert loaded.search("cats", k=5, allowed_ids={6, 7}) == index.search("cats", k=5, allowed_ids={6, 7})


def test_load_refuses_missing_or_foreign_index(tmp_path) -> None:
    with pytest.raises(IndexStateError, match="build the index"):
        BM25Index.load(tmp_path)
    BM25Index.build([1], ["cat"], ["en"]).save(tmp_path)
    sidecar = tmp_path / bm25.SIDECAR
    sidecar.write_text(sidecar.read_text().replace('"version": 1', '"version": 99'))
    with pytest.raises(IndexStateError, match="rebuild"):
        BM25Index.load(tmp_path)


def test_search_many_equals_search() -> None:
    index = BM25Index.build(IDS, DOCS, ["und"] * len(DOCS))
    queries = ["apple", "cherry date", "nothing here"]
    assert index.search_many(queries, k=3, langs=["und"] * 3) == [index.search(q, 3, "und") for q in queries]


# -- query languages -----------------------------------------------------------------------------------------------


def test_misdetected_query_still_gets_the_corpus_language(monkeypatch) -> None:
    index = BM25Index.build([1, 2], ["The runners were running", "Dogs bark"], ["en", "en"])
    # Analysed as German only, "running" would stay "running" and miss; the corpus language adds "run".
    assert index.query_terms("running", lang="de") == ["running", "run"]
    assert [i for i, _ in index.search("running", k=5, lang="de")] == [1]

    def no_detection(text: str) -> str:
        raise AssertionError("a monolingual index needs no query language detection")

    monkeypatch.setattr(bm25, "detect_language", no_detection)
    assert index.query_languages_for("running") == ["en"]


def test_query_languages_follow_the_index_distribution(monkeypatch) -> None:
    langs = ["en"] * 30 + ["de"] * 3 + ["fr"]  # de holds 8.8 % (a main language), fr 2.9 % (a minor one)
    index = BM25Index.build(list(range(34)), ["text"] * 34, langs)
    assert index.query_languages == ["en", "de"]
    monkeypatch.setattr(bm25, "detect_language", lambda text: "fr")
    assert index.query_languages_for("quelque chose") == ["fr", "en", "de"]
    monkeypatch.setattr(bm25, "detect_language", lambda text: "es")  # no chunk is Spanish: ignored
    assert index.query_languages_for("algo") == ["en", "de"]
    monkeypatch.setattr(bm25, "detect_language", lambda text: "und")
    assert index.query_languages_for("xyz") == ["en", "de"]
    assert index.query_languages_for("algo", lang="es") == ["es", "en", "de"]  # a given language is honoured


def test_query_analysis_drops_a_stopword_of_any_language() -> None:
    analyzer = Analyzer()
    # Under German rules alone, "the" and "of" would stay; English says they are stopwords.
    assert analyzer.analyze_query("The running of the dogs", ["de", "en"]) == ["running", "dog", "run"]
    assert analyzer.analyze_query("The running of the dogs", ["en"]) == ["run", "dog"]
    assert analyzer.analyze_query("Die Hunde und der Mann", ["en", "de"]) == ["hund", "mann"]


def test_query_terms_are_deduplicated_across_languages() -> None:
    index = BM25Index.build(list(range(4)), ["cat"] * 4, ["en", "en", "de", "de"])
    terms = index.query_terms("cats cats", lang="en")
    assert len(terms) == len(set(terms)) and "cat" in terms


def test_analyzer_shared_between_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"running{i} dogs{i % 97} houses{i % 13} the quick studies" for i in range(400)]
    expected = [Analyzer().analyze(t, "en") for t in texts]
    shared = Analyzer()
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda t: shared.analyze(t, "en"), texts)) == expected


@pytest.mark.parametrize("seed", range(6))
def test_top_positions_matches_a_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    scores = np.round(rng.random(n) * rng.integers(1, 20), 1)  # few distinct values: many ties
    scores[rng.random(n) < rng.random()] = 0.0
    for k in (1, 10, 100, n + 5):
        expected = [i for i in np.lexsort((np.arange(n), -scores)) if scores[i] > 0][:k]
        assert bm25._top_positions(scores, k).tolist() == expected
    same = np.ones(1000)
    assert bm25._top_positions(same, 10).tolist() == list(range(10))
    assert bm25._top_positions(np.zeros(10), 3).tolist() == []
