"""Language-aware analysis for BM25: the :class:`Analyzer` that turns text into terms.

The analyser follows Lucene so that BM25 scores can be compared with Anserini / Pyserini: for English it is
``EnglishAnalyzer`` (UAX#29-like word split, possessive ``'s`` removal, Lucene's 33 stopwords, Porter stemmer);
other languages get their Snowball stemmer and stopword list where one exists. Scripts written without spaces
(Han, Kana, Hangul, Thai, Lao, Khmer, Myanmar) become character bigrams, whatever the language label says, as in
Lucene's ``CJKAnalyzer``.

Non-goals: dictionary word segmentation (Japanese morphology, Thai dictionaries), phrase and proximity queries.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import regex
import Stemmer
from bm25s import stopwords as bm25s_stopwords

from indexer.errors import ConfigError

ANALYZER_VERSION = 1  # bump when analysis changes: an index built by another version is refused


# ISO 639-1 → Snowball algorithm in PyStemmer. English uses the original Porter stemmer, as Lucene does.
STEMMERS: dict[str, str] = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german", "el": "greek",
    "en": "porter", "eo": "esperanto", "es": "spanish", "et": "estonian", "eu": "basque", "fa": "persian",
    "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian",
    "id": "indonesian", "it": "italian", "lt": "lithuanian", "ne": "nepali", "nl": "dutch", "nn": "norwegian",
    "no": "norwegian", "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "st": "sesotho", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip


# bm25s ships NLTK's Snowball lists; its English list is exactly Lucene's ENGLISH_STOP_WORDS_SET.
STOPWORDS: dict[str, tuple[str, ...]] = {
    "da": bm25s_stopwords.STOPWORDS_DANISH, "de": bm25s_stopwords.STOPWORDS_GERMAN,
    "en": bm25s_stopwords.STOPWORDS_EN, "es": bm25s_stopwords.STOPWORDS_SPANISH,
    "fr": bm25s_stopwords.STOPWORDS_FRENCH, "it": bm25s_stopwords.STOPWORDS_ITALIAN,
    "nl": bm25s_stopwords.STOPWORDS_DUTCH, "nn": bm25s_stopwords.STOPWORDS_NORWEGIAN,
    "no": bm25s_stopwords.STOPWORDS_NORWEGIAN, "pt": bm25s_stopwords.STOPWORDS_PORTUGUESE,
    "ru": bm25s_stopwords.STOPWORDS_RUSSIAN, "sv": bm25s_stopwords.STOPWORDS_SWEDISH,
    "tr": bm25s_stopwords.STOPWORDS_TURKISH,
}  # fmt: skip


# Articles elided before a vowel ("l'homme" → "homme"), as Lucene's ElisionFilter does for these languages.
ELISIONS: dict[str, frozenset[str]] = {
    "fr": frozenset({"l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"}),
    "it": frozenset(
        {
            "c",
            "l",
            "all",
            "dall",
            "dell",
            "nell",
            "sull",
            "coll",
            "pell",
            "gl",
            "agl",
            "dagl",
            "degl",
            "negl",
            "sugl",
            "un",
            "m",
            "t",
            "s",
            "v",
            "d",
        }
    ),  # fmt: skip
    "ca": frozenset({"d", "l", "m", "n", "s", "t"}),
}


CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})  # their Latin-script words are analysed as English


# Scripts written without spaces between words; their runs become bigrams. Explicit ranges (not \p{Han}...) so
# that stdlib ``re`` can test for them: it is ten times faster than ``regex`` on that test.
_NGRAM = (
    "\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"  # Han
    "\u3041-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"  # Hiragana, Katakana
    "\u1100-\u11ff\u3131-\u318e\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uffa0-\uffdc"  # Hangul
    "\u0e01-\u0e5b\u0e81-\u0edf\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\ua9e0-\ua9ff\uaa60-\uaa7f"  # Thai ... Myanmar
)


_WORD = f"[^\\W{_NGRAM}]+"  # \w (letters, marks, digits, _) outside the bigram scripts


# Like UAX#29: "don't", "e.g", "3.14" and "1,000" stay one token; hyphens and other punctuation split.
_JOIN = r"(?:(?<=[\p{L}\p{M}])['.](?=\p{L})|(?<=\d)[.,'](?=\d))"


_TOKEN = regex.compile(f"[{_NGRAM}]+|{_WORD}(?:{_JOIN}{_WORD})*")  # the exact tokeniser


_HAS_NGRAM = re.compile(f"[{_NGRAM}]")


# The same word pattern for stdlib re (no \p{..}; letters are [^\W\d_]): 1.5 times faster where it agrees.
_TOKEN_RE = re.compile(r"\w+(?:(?:(?<=[^\W\d_])['.](?=[^\W\d_])|(?<=\d)[.,'](?=\d))\w+)*")


# Code points (after NFKC) where stdlib re's \w differs from regex's, combining marks mostly: text without them
# and without bigram scripts is split by _TOKEN_RE. A test checks this list against both modules.
_RE_W_DIFFERS_CHARS = (
    "\u0300-\u036f\u0483-\u0489\u0558-\u109d\u135d-\u137c\u1712-\u193b\u19da\u1a17-\u1cf9\u1dc0-\u1dff"
    "\u200c\u200d\u203f\u2040\u2054\u208f-\u209f\u20d0-\u20f0\u24b6-\u24ff\u2776-\u2793\u2cef-\u2cf1"
    "\u2cfd\u2d7f-\u2dff\u302a-\u309a\u3248-\u324f\ua66f-\ua6f1\ua7cb-\uabed\ufb1e\ufe00-\ufe4f\uff3f"
    "\U00010000-\U0010ffff"
)


_RE_W_DIFFERS = re.compile(f"[{_RE_W_DIFFERS_CHARS}]")


_NEEDS_SLOW_PATH = re.compile(f"[{_NGRAM}{_RE_W_DIFFERS_CHARS}]")  # one scan decides for most texts


_APOSTROPHES = ("\u2019", "\u2018", "\u02bc", "\uff07")  # → "'"; str.replace is 100x faster than translate


@dataclass(frozen=True)
class AnalyzerConfig:
    """What the analyser does; saved with every index so a loaded index analyses queries the same way."""

    stem: bool = True
    stopwords: bool = True
    english_stemmer: Literal["porter", "english"] = "porter"  # "porter" matches Lucene's EnglishAnalyzer
    version: int = ANALYZER_VERSION

    def __post_init__(self) -> None:
        if self.english_stemmer not in ("porter", "english"):
            raise ConfigError(f"english_stemmer={self.english_stemmer!r}: must be 'porter' or 'english'")


def _bigrams(run: str) -> list[str]:
    """Character bigrams of a run of CJK / Thai text; a lone character stays a unigram."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _strip_possessive(word: str) -> str:
    return word[:-2] if word.endswith("'s") else word


def _elider(articles: frozenset[str]) -> Callable[[str], str]:
    def strip(word: str) -> str:
        head, sep, tail = word.partition("'")
        return tail if sep and tail and head in articles else word

    return strip


class _Pipeline:
    """Word → term for one language (elision / possessive, stopwords, stemming), memoised per word.

    Safe to share between threads: PyStemmer's stemmers are not, so stemming runs under a lock (only for words not
    seen before), and a full cache is replaced rather than cleared under a reader.
    """

    max_cache = 1_000_000  # distinct words; a fresh cache after that keeps a long-lived app's memory bounded

    def __init__(
        self, stopwords: frozenset[str], stemmer: Stemmer.Stemmer | None, strip: Callable[[str], str] | None
    ):
        self.stopwords = stopwords
        self._stemmer = stemmer
        self._strip = strip
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}  # word → term, "" for a dropped word

    def _compute(self, words: list[str]) -> list[str]:
        if self._strip is not None:
            words = [self._strip(w) for w in words]
        words = ["" if w in self.stopwords else w for w in words]
        if self._stemmer is None:
            return words
        with self._lock:
            return self._stemmer.stemWords(words)

    def terms(self, words: list[str]) -> list[str]:
        cache = self._cache
        terms = list(map(cache.get, words))  # C-speed loops: this is the indexing hot path
        if None in terms:
            missing = list(dict.fromkeys(w for w, t in zip(words, terms, strict=True) if t is None))
            if len(cache) + len(missing) > self.max_cache:
                self._cache = cache = {}
            cache.update(zip(missing, self._compute(missing), strict=True))
            terms = list(map(cache.__getitem__, words))
        return list(filter(None, terms))


class Analyzer:
    """Text → list of index terms, per language (ISO 639-1; anything unknown is analysed like ``"und"``).

    Example:
        >>> Analyzer().analyze("The cat's running-shoes", "en")
        ['cat', 'run', 'shoe']
        >>> Analyzer().analyze("東京タワー", "ja")
        ['東京', '京タ', 'タワ', 'ワー']
    """

    def __init__(self, config: AnalyzerConfig | None = None):
        self.config = config or AnalyzerConfig()
        self._pipelines: dict[str, _Pipeline] = {}

    def _pipeline(self, lang: str) -> _Pipeline:
        if lang in CJK_LANGUAGES:
            lang = "en"
        pipeline = self._pipelines.get(lang)
        if pipeline is None:
            pipeline = self._pipelines[lang] = self._make_pipeline(lang)
        return pipeline

    def _make_pipeline(self, lang: str) -> _Pipeline:
        cfg = self.config
        algorithm = STEMMERS.get(lang)
        if lang == "en":
            algorithm = cfg.english_stemmer
        stemmer = Stemmer.Stemmer(algorithm) if cfg.stem and algorithm else None
        stop = STOPWORDS.get(lang, ()) if cfg.stopwords else ()
        stopwords = frozenset(unicodedata.normalize("NFKC", w).casefold() for w in stop)
        strip = _strip_possessive if lang == "en" else _elider(ELISIONS[lang]) if lang in ELISIONS else None
        return _Pipeline(stopwords, stemmer, strip)

    def analyze(self, text: str, lang: str) -> list[str]:
        """Terms of ``text`` in order: NFKC + casefold, split, per-language normalisation; CJK runs as bigrams."""
        tokens, has_ngrams = _split(text)
        return self._terms(tokens, has_ngrams, lang)

    def analyze_query(self, text: str, langs: Sequence[str]) -> list[str]:
        """Distinct terms of ``text`` analysed under each of ``langs``, first-seen order.

        A word that is a stopword in any of the languages is dropped from all: German analysis of an English
        query would otherwise keep "the" and "of", and match them in every German chunk that quotes English.
        """
        tokens, has_ngrams = _split(text)
        if len(langs) > 1:
            drop = frozenset().union(*(self._pipeline(lang).stopwords for lang in langs))
            tokens = [t for t in tokens if t not in drop]
        return list(dict.fromkeys(t for lang in langs for t in self._terms(tokens, has_ngrams, lang)))

    def _terms(self, tokens: list[str], has_ngrams: bool, lang: str) -> list[str]:
        pipeline = self._pipeline(lang)
        if not has_ngrams:
            return pipeline.terms(tokens)
        terms: list[str] = []
        for token in tokens:
            terms.extend(_bigrams(token) if _HAS_NGRAM.match(token) else pipeline.terms([token]))
        return terms


def _split(text: str) -> tuple[list[str], bool]:
    """Normalised tokens of ``text`` (words, and runs of bigram scripts), and whether there are such runs."""
    text = unicodedata.normalize("NFKC", text).casefold()
    for apostrophe in _APOSTROPHES:
        text = text.replace(apostrophe, "'")
    if not _NEEDS_SLOW_PATH.search(text):  # most text: stdlib re splits it exactly as _TOKEN would
        return _TOKEN_RE.findall(text), False
    return _TOKEN.findall(text), bool(_HAS_NGRAM.search(text))
