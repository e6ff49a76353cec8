"""Language detection on short samples, script shortcuts, and the set of codes it can return."""

from __future__ import annotations

import pytest

from indexer.ingest.langdetect import KNOWN_LANGUAGES, detect_language, detect_languages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The quick brown fox jumps over the lazy dog near the river bank.", "en"),
        ("Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.", "de"),
        ("Le renard brun rapide saute par-dessus le chien paresseux près de la rivière.", "fr"),
        ("El rápido zorro marrón salta sobre el perro perezoso junto al río.", "es"),
        ("La volpe marrone veloce salta sopra il cane pigro vicino al fiume.", "it"),
        ("De snelle bruine vos springt over de luie hond bij de rivier.", "nl"),
        ("A rápida raposa marrom pula sobre o cão preguiçoso perto do rio.", "pt"),
        ("Быстрая коричневая лиса прыгает через ленивую собаку у реки.", "ru"),
        ("Szybki brązowy lis przeskakuje nad leniwym psem przy rzece.", "pl"),
        ("Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.", "el"),
        ("الثعلب البني السريع يقفز فوق الكلب الكسول بجانب النهر.", "ar"),
        ("敏捷的棕色狐狸跳过了河边那只懒惰的狗。", "zh"),
        ("素早い茶色の狐が川のそばの怠け者の犬を飛び越える。", "ja"),
        ("빠른 갈색 여우가 강가의 게으른 개를 뛰어넘는다.", "ko"),
    ],
)
def test_detects_short_sentences(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "東京都",
            "zh",
        ),  # Han only: the script cannot tell Japanese from Chinese, the documented answer is zh
        ("カタカナ", "ja"),
        ("한국어", "ko"),
        ("漢字と かな", "ja"),
        ("Python 是一种编程语言", "zh"),  # CJK dominates the letters
    ],
)
def test_script_shortcuts(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "1234 !!", "ab", "—", "12.5 %"])
def test_undetermined_without_enough_letters(text: str) -> None:
    assert detect_language(text) == "und"


def test_batch_matches_single_and_codes_are_known() -> None:
    texts = ["Das ist ein kleiner Test", "これはテストです", "", "Ceci est un petit test de détection"]
    codes = detect_languages(texts)
    assert codes == [detect_language(t) for t in texts] == ["de", "ja", "und", "fr"]
    assert set(codes) <= KNOWN_LANGUAGES
    assert all(len(code) == 2 for code in KNOWN_LANGUAGES - {"und"})
    assert {"en", "de", "zh", "ja", "ko", "ar", "ru", "und"} <= KNOWN_LANGUAGES


def test_long_text_uses_its_beginning() -> None:
    text = "Dies ist ein deutscher Satz über Hunde und Katzen. " * 100
    assert detect_language(text) == "de"
