"""Language identification for chunks and queries: ISO 639-1 codes, ``"und"`` when it cannot tell.

Scripts settle the question where they are certain: Hangul → ``ko``, Kana → ``ja``, Han without Kana or Hangul →
``zh`` (a statistical model confuses these three on short Kanji-heavy strings). Everything else goes to py3langid,
whose model ships inside the package (offline), restricted to its two-letter labels so every answer is ISO 639-1.

Non-goals: dialects and scripts as separate labels (``sr`` covers Cyrillic and Latin Serbian), language mixtures
(a chunk gets one label), and reliable answers on one- or two-word strings: short queries are often mislabelled,
which is why :mod:`indexer.retrieval.bm25` also analyses a query under the corpus's main languages.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import regex

UNDETERMINED = "und"


MIN_LETTERS = 3  # fewer letters than this (outside CJK) is too short to tell


# py3langid's normalised probability; below it the guess is noise ("hello world" → Sesotho, 0.18).
MIN_CONFIDENCE = 0.2


# The model walks byte n-grams in Python: the first 512 characters decide, which keeps a corpus fast.
MAX_CHARS = 512


_LETTER = regex.compile(r"\p{L}")


_HANGUL = regex.compile(r"\p{Hangul}")


_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")


_HAN = regex.compile(r"\p{Han}")


# py3langid's two-letter labels: "zxx" ("no linguistic content") and three-letter labels such as yue or arz are
# left out, so every answer is ISO 639-1.
_LANGID_CODES = (
    "af am an ar as az ba be bg bn br bs ca cs cy da de dz el en eo es et eu fa fi fo fr fy ga gd gl gu "
    "ha he hi hr ht hu hy id ig is it ja jv ka kk km kn ko ku ky la lb lg ln lo lt lv mg mk ml mn mr ms "
    "mt my ne nl nn no oc om or pa pl ps pt qu ro ru rw sa se si sk sl sn so sq sr st sv sw ta te tg th "
    "tk tl tr tt ug uk ur uz vi vo wa xh yo zh zu"
)


KNOWN_LANGUAGES: frozenset[str] = frozenset([*_LANGID_CODES.split(), "und"])


@functools.cache
def _identifier():  # loads the model once (about 1 s); returns py3langid's LanguageIdentifier
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(sorted(KNOWN_LANGUAGES - {UNDETERMINED}))
    return identifier


def _cjk_language(sample: str, n_letters: int) -> str | None:
    """``ko`` / ``ja`` / ``zh`` when CJK characters make up most letters of ``sample``; else None."""
    n_hangul = len(_HANGUL.findall(sample))
    n_kana = len(_KANA.findall(sample))
    n_han = len(_HAN.findall(sample))
    if 2 * (n_hangul + n_kana + n_han) < n_letters:
        return None
    if n_kana and n_kana >= n_hangul:
        return "ja"
    if n_hangul:
        return "ko"
    return "zh"


def detect_language(text: str) -> str:
    """Guess the language of ``text``.

    Example:
        >>> detect_language("Das ist ein kleiner Test")
        'de'
        >>> detect_language("東京都に住んでいます"), detect_language("1234 !!")
        ('ja', 'und')
    """
    sample = text[:MAX_CHARS]
    n_letters = len(_LETTER.findall(sample))
    if n_letters == 0:
        return UNDETERMINED
    if not sample.isascii():
        cjk = _cjk_language(sample, n_letters)
        if cjk is not None:
            return cjk
    if n_letters < MIN_LETTERS:
        return UNDETERMINED
    code, confidence = _identifier().classify(sample)
    return code if confidence >= MIN_CONFIDENCE else UNDETERMINED


def detect_languages(texts: Iterable[str]) -> list[str]:
    """:func:`detect_language` over many texts; a SciFact-sized corpus (5k abstracts) takes 2–3 s on one core."""
    return [detect_language(text) for text in texts]
