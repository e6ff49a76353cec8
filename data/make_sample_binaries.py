"""Regenerate the PDF and DOCX files of the demo corpus in data/sample/ (the text formats are written by hand).

Run from the repository root: ``python data/make_sample_binaries.py``. PDFs use the small writer in
tests/fixtures/make_fixtures.py (Helvetica, WinAnsi: Western European languages only); DOCX files use
python-docx, so any script works there. All text is original, written for this project.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from make_fixtures import pdf_bytes  # noqa: E402 - a script beside the fixtures, not a package

# title, then paragraphs; "\f" starts a new page
PDFS = {
    "en_honeybees.pdf": (
        "Honeybees and pollination",
        [
            "A honeybee colony is a family of up to fifty thousand bees: one queen, thousands of female workers and a "
            "few hundred male drones. The queen lays up to two thousand eggs a day during the summer.",
            "Workers share the labour by age. Young bees clean cells and feed larvae; older bees build wax comb and "
            "guard the entrance; the oldest fly out as foragers, visiting up to a hundred flowers on a single trip.",
            "While collecting nectar and pollen, bees carry pollen grains from flower to flower. This pollination lets "
            "plants set fruit and seed. Apples, almonds, cherries, blueberries and oilseed rape all depend on it, and "
            "about a third of the food we eat comes from crops that animals pollinate.",
            "\f",
            "A forager that finds a rich patch of flowers returns to the hive and performs the waggle dance. The angle "
            "of the dance tells her sisters the direction of the food relative to the sun, and its length tells the "
            "distance.",
            "Colonies are threatened by the varroa mite, by pesticides such as neonicotinoids and by the loss of "
            "flowering meadows. Planting wildflowers and leaving some corners of a garden untidy helps wild bees and "
            "honeybees alike.",
        ],
    ),
    "es_volcanes.pdf": (
        "Los volcanes de Canarias",
        [
            "Las islas Canarias nacieron del fondo del océano Atlántico por la acción de volcanes. El Teide, en "
            "Tenerife, mide 3.715 metros y es el pico más alto de España.",
            "En septiembre de 2021 comenzó la erupción del volcán de Cumbre Vieja, en la isla de La Palma. Durante "
            "ochenta y cinco días, las coladas de lava destruyeron casas, carreteras y plantaciones de plátanos, y "
            "llegaron hasta el mar, donde formaron nuevas tierras.",
            "La lava es roca fundida que sale a más de mil grados. Los volcanes también expulsan gases, cenizas y "
            "piroclastos. Los científicos vigilan los terremotos pequeños y la deformación del suelo para avisar a la "
            "población antes de una erupción.",
            "Con el tiempo, la ceniza volcánica forma suelos muy fértiles, donde se cultivan viñas y papas.",
        ],
    ),
    "fr_energie_maremotrice.pdf": (
        "L'énergie des marées",
        [
            "Deux fois par jour, la mer monte et descend sous l'effet de l'attraction de la Lune et du Soleil. "
            "L'énergie marémotrice utilise ce mouvement pour produire de l'électricité.",
            "L'usine marémotrice de la Rance, en Bretagne, a été inaugurée en 1966. Un barrage ferme l'estuaire ; "
            "quand la marée monte ou descend, l'eau traverse vingt-quatre turbines. Pendant plus de quarante ans, ce "
            "fut la plus grande centrale de ce type au monde.",
            "Contrairement au vent et au soleil, les marées sont parfaitement prévisibles des années à l'avance. "
            "Mais les sites favorables sont rares, les travaux coûtent cher et un barrage modifie la vie des poissons "
            "et des oiseaux de l'estuaire. On teste aujourd'hui des hydroliennes posées au fond de la mer, comme des "
            "éoliennes sous-marines.",
        ],
    ),
    "pt_vinho_do_porto.pdf": (
        "O vinho do Porto",
        [
            "O vinho do Porto é um vinho fortificado produzido no vale do Douro, no norte de Portugal. As vinhas "
            "crescem em socalcos de xisto nas encostas íngremes do rio.",
            "Durante a fermentação junta-se aguardente vínica ao mosto. O álcool interrompe a fermentação e o vinho "
            "conserva parte do açúcar natural das uvas, por isso é doce e forte.",
            "Antigamente, os barcos rabelos desciam o rio com as pipas até Vila Nova de Gaia, em frente à cidade do "
            "Porto, onde o vinho envelhece nas caves. Há vinhos do Porto tawny, envelhecidos em madeira, e ruby, de "
            "cor vermelha intensa.",
        ],
    ),
}

# title, then (style, text) pairs; style "h1"/"h2" for headings, "p" for paragraphs, "table" for rows
DOCXS = {
    "fr_vaccins.docx": (
        "Les vaccins et le système immunitaire",
        [
            (
                "p",
                "Un vaccin apprend au système immunitaire à reconnaître un microbe sans que l'on tombe malade.",
            ),
            ("h1", "Comment ça marche"),
            (
                "p",
                "Le vaccin contient un virus affaibli ou inactivé, un morceau de sa protéine, ou un ARN messager "
                "qui fait fabriquer cette protéine par nos cellules. Les globules blancs produisent alors des "
                "anticorps et gardent une mémoire de l'intrus.",
            ),
            ("h2", "La mémoire immunitaire"),
            (
                "p",
                "Si le vrai microbe arrive plus tard, les lymphocytes mémoire le reconnaissent et la réponse est "
                "rapide et forte. Certains vaccins demandent des rappels pour entretenir cette mémoire.",
            ),
            ("h1", "Un peu d'histoire"),
            (
                "p",
                "En 1796, Edward Jenner protégea un enfant de la variole avec la vaccine des vaches. En 1885, Louis "
                "Pasteur sauva le jeune Joseph Meister de la rage. Grâce à la vaccination, la variole a disparu de "
                "la planète en 1980.",
            ),
            (
                "table",
                [["Maladie", "Vaccin depuis"], ["Variole", "1796"], ["Rage", "1885"], ["Rougeole", "1963"]],
            ),
        ],
    ),
    "en_sleep_memory.docx": (
        "Sleep and memory",
        [
            (
                "p",
                "We spend about a third of our lives asleep. Far from being wasted time, sleep is when the brain "
                "sorts and stores what we learned during the day.",
            ),
            ("h1", "Stages of sleep"),
            (
                "p",
                "A night consists of four or five cycles of about ninety minutes. Each cycle moves from light sleep "
                "into deep slow-wave sleep and then into REM sleep, when the eyes move quickly and most vivid "
                "dreams happen.",
            ),
            ("h1", "How sleep helps memory"),
            (
                "p",
                "During deep sleep the hippocampus replays the day's experiences and transfers them to the cortex "
                "for long-term storage. Students who sleep after studying remember more than those who stay awake, "
                "and a short nap can improve learning of new skills.",
            ),
            ("h2", "Too little sleep"),
            (
                "p",
                "After a sleepless night, attention, mood and the ability to form new memories all suffer. Adults "
                "need seven to nine hours; teenagers need more.",
            ),
        ],
    ),
    "ko_semiconductors.docx": (
        "반도체",
        [
            (
                "p",
                "반도체는 전기가 잘 통하는 도체와 통하지 않는 부도체의 중간 성질을 가진 물질이다. 대표적인 반도체 재료는 "
                "실리콘이다.",
            ),
            ("h1", "메모리 반도체"),
            (
                "p",
                "디램(DRAM)과 낸드 플래시는 데이터를 저장하는 메모리 반도체이다. 한국 기업들은 메모리 반도체 시장에서 "
                "세계 1위와 2위를 차지하고 있다.",
            ),
            ("h1", "만드는 과정"),
            (
                "p",
                "둥근 실리콘 웨이퍼 위에 빛으로 회로를 새기는 노광 공정, 필요 없는 부분을 깎아내는 식각 공정 등 수백 "
                "단계를 거친다. 먼지 하나도 불량을 만들기 때문에 공장 안은 병원 수술실보다 깨끗한 클린룸으로 유지된다.",
            ),
            (
                "p",
                "반도체는 스마트폰, 컴퓨터, 자동차, 인공지능 서버에 모두 들어가기 때문에 '산업의 쌀'이라고 불린다.",
            ),
        ],
    ),
    "hi_taj_mahal.docx": (
        "ताजमहल",
        [
            (
                "p",
                "ताजमहल आगरा में यमुना नदी के किनारे स्थित सफ़ेद संगमरमर का एक मक़बरा है। मुग़ल बादशाह शाहजहाँ ने "
                "इसे अपनी प्रिय पत्नी मुमताज़ महल की याद में बनवाया था।",
            ),
            ("h1", "निर्माण"),
            (
                "p",
                "इसका निर्माण लगभग 1632 में शुरू हुआ और क़रीब बीस हज़ार कारीगरों ने इस पर काम किया। संगमरमर राजस्थान "
                "के मकराना से लाया गया था और उसमें कीमती पत्थर जड़े गए।",
            ),
            ("h1", "आज का ताजमहल"),
            (
                "p",
                "1983 में ताजमहल को यूनेस्को विश्व धरोहर घोषित किया गया। हर साल लाखों पर्यटक इसे देखने आते हैं। "
                "सूर्योदय और चाँदनी रात में इसका रंग बदलता हुआ दिखाई देता है।",
            ),
        ],
    ),
    "zh_great_wall.docx": (
        "长城",
        [
            ("p", "长城是中国古代修建的军事防御工程，东起河北的山海关，西到甘肃的嘉峪关，绵延两万多公里。"),
            ("h1", "历史"),
            (
                "p",
                "早在春秋战国时期，各国就开始修筑城墙。秦始皇统一中国后，把各段城墙连接起来。今天我们看到的砖石长城大多是明朝修建的。",
            ),
            ("h1", "游览"),
            ("p", "北京附近的八达岭和慕田峪是最受欢迎的长城景点。秋天满山红叶，冬天白雪覆盖，景色非常壮观。"),
            ("p", "1987年，长城被列入联合国教科文组织世界遗产名录。"),
        ],
    ),
}


def pdf_pages(paragraphs: list[str], title: str) -> list[list[str]]:
    pages: list[list[str]] = [[title, ""]]
    for para in paragraphs:
        if para == "\f":
            pages.append([])
            continue
        pages[-1].extend(textwrap.wrap(para, 88) + [""])
    return pages


def make_docx(path: Path, title: str, blocks: list) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = title
    d.add_heading(title, level=0)
    for style, content in blocks:
        if style == "table":
            table = d.add_table(rows=len(content), cols=len(content[0]))
            for r, row in enumerate(content):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
        elif style.startswith("h"):
            d.add_heading(content, level=int(style[1]))
        else:
            d.add_paragraph(content)
    d.save(path)


if __name__ == "__main__":
    for name, (title, paragraphs) in PDFS.items():
        (SAMPLE / name).write_bytes(pdf_bytes(pdf_pages(paragraphs, title), title=title))
    for name, (title, blocks) in DOCXS.items():
        make_docx(SAMPLE / name, title, blocks)
