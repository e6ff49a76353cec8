"""Language-aware BM25 over chunks: an :class:`Analyzer` turns text into terms, bm25s holds the index.

Flow (as in bm25s): analyse → index → retrieve → save/load. The analyser follows Lucene so that BM25 scores can be
compared with Anserini / Pyserini: for English it is ``EnglishAnalyzer`` (UAX#29-like word split, possessive
``'s`` removal, Lucene's 33 stopwords, Porter stemmer); other languages get their Snowball stemmer and stopword list
where one exists. Scripts written without spaces (Han, Kana, Hangul, Thai, Lao, Khmer, Myanmar) become character
bigrams, whatever the language label says, as in Lucene's ``CJKAnalyzer``.

Non-goals: dictionary word segmentation (Japanese morphology, Thai dictionaries), phrase and proximity queries,
incremental updates (rebuild the index; bm25s has none either).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import bm25s
import numpy as np
import regex
import Stemmer
from bm25s import stopwords as bm25s_stopwords
from tqdm.auto import tqdm

from indexer.errors import ConfigError, IndexStateError, QueryError
from indexer.langdetect import UNDETERMINED, detect_language

logger = logging.getLogger(__name__)

Method = Literal["lucene", "robertson", "atire"]  # the bm25s variants without a non-occurrence term
ANALYZER_VERSION = 1  # bump when analysis changes: an index built by another version is refused
SIDECAR = "e5search_bm25.json"
SIDECAR_FORMAT = 1

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


@dataclass(frozen=True)
class _Sidecar:
    """What bm25s does not save: our chunk ids, the language distribution, the analyser and query settings."""

    ids: list[int]
    lang_counts: dict[str, int]
    analyzer: dict
    query_lang_share: float
    format: int = SIDECAR_FORMAT


class BM25Index:
    """BM25 over chunks keyed by chunk id (the same id as the chunk's FAISS row).

    A query is analysed under its own language (given, or detected) and under every language holding at least
    ``query_lang_share`` of the chunks; the terms are unioned and each counts once. Short queries are often
    mislabelled, and this keeps an English corpus searched with English stems.

    Example:
        >>> index = BM25Index.build([10, 11], ["cats purr", "dogs bark"], ["en", "en"])
        >>> [chunk_id for chunk_id, _ in index.search("a purring cat", k=5)]
        [10]
    """

    def __init__(self, retriever: bm25s.BM25, sidecar: _Sidecar, analyzer: Analyzer):
        self._retriever = retriever
        self._sidecar = sidecar
        self._analyzer = analyzer
        self._ids = np.asarray(sidecar.ids, dtype=np.int64)  # (n_chunks,) row → chunk id
        scores = retriever.scores
        self._data, self._indices, self._indptr = scores["data"], scores["indices"], scores["indptr"]
        self._vocab: dict[str, int] = retriever.vocab_dict
        total = max(1, len(self._ids))
        counts = sorted(sidecar.lang_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self._query_langs = [lang for lang, n in counts if n / total >= sidecar.query_lang_share]
        self._minor_langs = set(sidecar.lang_counts) - set(self._query_langs) - {UNDETERMINED}

    # -- build ---------------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: Sequence[int],
        texts: Sequence[str],
        langs: Sequence[str],
        k1: float = 1.2,
        b: float = 0.75,
        method: Method = "lucene",
        show_progress: bool = False,
        analyzer: Analyzer | None = None,
        query_lang_share: float = 0.05,
    ) -> BM25Index:
        """Analyse ``texts`` (``langs[i]`` is the language of ``texts[i]``) and index them under ``ids``."""
        _check_build_args(ids, texts, langs, k1, b, method, query_lang_share)
        analyzer = analyzer or Analyzer()
        vocab: dict[str, int] = {}
        corpus_ids = [
            [vocab.setdefault(term, len(vocab)) for term in analyzer.analyze(text, lang)]
            for text, lang in tqdm(
                zip(texts, langs, strict=True),
                total=len(texts),
                desc="BM25 analyse",
                disable=not show_progress,
            )
        ]
        retriever = bm25s.BM25(k1=k1, b=b, method=method)
        if corpus_ids:
            with np.errstate(invalid="ignore", divide="ignore"):  # avgdl = 0 when no chunk has a term
                retriever.index((corpus_ids, vocab), create_empty_token=False, show_progress=show_progress)
        else:  # bm25s cannot index nothing; an empty folder still gets a (searchable, empty) index
            no_postings = np.zeros(0, dtype=np.int32)
            retriever.scores = {"data": no_postings.astype(np.float32), "indices": no_postings}
            retriever.scores.update(indptr=np.zeros(1, dtype=np.int64), num_docs=0)
            retriever.vocab_dict, retriever.nonoccurrence_array = {}, None
        sidecar = _Sidecar(
            ids=[int(i) for i in ids],
            lang_counts=dict(Counter(langs)),
            analyzer=asdict(analyzer.config),
            query_lang_share=query_lang_share,
        )
        logger.info(
            "BM25 index: %d chunks, %d terms, languages %s", len(ids), len(vocab), sidecar.lang_counts
        )
        return cls(retriever, sidecar, analyzer)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def lang_counts(self) -> dict[str, int]:
        return dict(self._sidecar.lang_counts)

    @property
    def query_languages(self) -> list[str]:
        """Languages every query is also analysed in (those holding ≥ ``query_lang_share`` of the chunks)."""
        return list(self._query_langs)

    # -- search --------------------------------------------------------------------------------------------------
    def query_languages_for(self, query: str, lang: str | None = None) -> list[str]:
        """Languages ``query`` is analysed in: ``lang`` or the detected one, then the index's main languages.

        A detected language counts only if some chunk has it and it is not a main language already: analysing
        under a language no chunk was analysed in can only add noise. So a monolingual index never runs detection.
        """
        if lang is None and self._minor_langs:
            detected = detect_language(query)
            lang = detected if detected in self._minor_langs else None
        return list(dict.fromkeys([*([lang] if lang else []), *self._query_langs])) or [UNDETERMINED]

    def query_terms(self, query: str, lang: str | None = None) -> list[str]:
        """The distinct terms ``query`` is searched with (those absent from the index included)."""
        return self._analyzer.analyze_query(query, self.query_languages_for(query, lang))

    def _scores(self, term_ids: list[int]) -> np.ndarray:
        """BM25 score of every chunk: the sum of the precomputed per-term columns of the CSC matrix."""
        scores = np.zeros(len(self._ids), dtype=self._data.dtype)  # (n_chunks,) float32, as bm25s
        columns = np.asarray(term_ids, dtype=np.int64)
        for start, end in zip(
            self._indptr[columns].tolist(), self._indptr[columns + 1].tolist(), strict=True
        ):
            # np.add.at has a fast path when dtypes match: twice as fast as one bincount over all postings
            np.add.at(scores, self._indices[start:end], self._data[start:end])
        return scores

    def _top_k(self, scores: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """The ``k`` best rows with a positive score, as ``(chunk_id, score)``; ``allowed``: chunk ids to keep."""
        if allowed is None:
            rows = _top_positions(scores, k)
        else:
            rows = np.flatnonzero(scores > 0)
            rows = rows[np.isin(self._ids[rows], allowed)]
            rows = rows[_top_of_positive(scores[rows], k)]
        return list(zip(self._ids[rows].tolist(), scores[rows].tolist(), strict=True))

    def search_terms(
        self, terms: Sequence[str], k: int, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """:meth:`search` for already analysed terms; each distinct term counts once, unknown terms are ignored."""
        if k < 1:
            raise QueryError(f"k={k}: must be at least 1")
        vocab = self._vocab
        term_ids = [vocab[t] for t in dict.fromkeys(terms) if t in vocab]
        allowed = None if allowed_ids is None else np.fromiter(allowed_ids, dtype=np.int64)
        return self._top_k(self._scores(term_ids), k, allowed)

    def search(
        self, query: str, k: int, lang: str | None = None, allowed_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk_id, score)`` pairs with a positive score, best first.

        ``lang`` is the query's language (None: detect it). ``allowed_ids`` restricts hits to those chunks; every
        chunk is scored first, so ``k`` hits come back whenever ``k`` allowed chunks match.
        """
        return self.search_terms(self.query_terms(query, lang), k, allowed_ids)

    def search_many(
        self, queries: Sequence[str], k: int, langs: Sequence[str | None] | None = None
    ) -> list[list[tuple[int, float]]]:
        """:meth:`search` for a batch; ``langs[i]`` is the language of ``queries[i]`` (None: detect it)."""
        if langs is not None and len(langs) != len(queries):
            raise QueryError(
                f"{len(langs)} languages for {len(queries)} queries: give one per query, or none"
            )
        query_langs = langs if langs is not None else [None] * len(queries)
        return [self.search(q, k, lang) for q, lang in zip(queries, query_langs, strict=True)]

    # -- persistence ---------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """bm25s's own files (NumPy arrays, JSON vocab and parameters) plus our JSON sidecar; no pickles."""
        folder = Path(folder)
        self._retriever.save(folder, show_progress=False)
        (folder / SIDECAR).write_text(json.dumps(asdict(self._sidecar), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> BM25Index:
        """Load an index saved by :meth:`save`; ``mmap`` maps the score arrays instead of reading them."""
        folder = Path(folder)
        path = folder / SIDECAR
        if not path.is_file():
            raise IndexStateError(f"{folder}: no BM25 index here ({SIDECAR} missing); build the index first")
        sidecar = _Sidecar(**json.loads(path.read_text(encoding="utf-8")))
        config = AnalyzerConfig(**sidecar.analyzer)
        if sidecar.format != SIDECAR_FORMAT or config.version != ANALYZER_VERSION:
            raise IndexStateError(
                f"{folder}: BM25 index format {sidecar.format} / analyser version {config.version}, this code "
                f"reads format {SIDECAR_FORMAT} / version {ANALYZER_VERSION}; rebuild the index"
            )
        retriever = bm25s.BM25.load(folder, mmap=mmap, show_progress=False)
        if retriever.scores["num_docs"] != len(sidecar.ids):
            raise IndexStateError(f"{folder}: bm25s files and {SIDECAR} disagree on the chunk count; rebuild")
        return cls(retriever, sidecar, Analyzer(config))


def _top_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest positive ``scores``, best first; ties in position order (Lucene's doc order)."""
    rows = np.flatnonzero(scores > 0)
    return rows[_top_of_positive(scores[rows], k)]


def _top_of_positive(values: np.ndarray, k: int, max_iter: int = 32) -> np.ndarray:
    """Indices of the ``k`` largest of ``values`` (all positive), best first, ties by index.

    ``np.argpartition`` slows down a hundredfold on arrays with many equal values, and BM25 scores tie a lot:
    so bisect for a threshold that keeps between k and 4k values (one counting pass per step, a handful of
    steps), then sort just those.
    """
    if len(values) <= k:
        kept = np.arange(len(values))
    else:
        low, high = 0.0, float(values.max())  # more than 4k values are >= low (all of them while low is 0)
        threshold = high / 2
        for _ in range(max_iter):
            n_kept = np.count_nonzero(values >= threshold)
            if n_kept < k:
                high, threshold = threshold, (low + threshold) / 2
            elif n_kept > 4 * k:
                low, threshold = threshold, (threshold + high) / 2
            else:
                break
        else:  # ties too massive to bracket: keep all at or above the last threshold known to keep enough
            threshold = low
        kept = np.flatnonzero(values >= threshold)
    return kept[np.argsort(-values[kept], kind="stable")[:k]]  # kept is ascending: stable keeps ties in order


def _check_build_args(ids, texts, langs, k1, b, method, query_lang_share) -> None:
    if not len(ids) == len(texts) == len(langs):
        raise ConfigError(
            f"{len(ids)} ids, {len(texts)} texts, {len(langs)} langs: give one of each per chunk"
        )
    if len(set(ids)) != len(ids):
        raise ConfigError("ids: chunk ids must be unique")
    if method not in ("lucene", "robertson", "atire"):
        raise ConfigError(f"method={method!r}: must be 'lucene', 'robertson' or 'atire'")
    if k1 < 0 or not 0 <= b <= 1:
        raise ConfigError(f"k1={k1}, b={b}: need k1 >= 0 and 0 <= b <= 1")
    if not 0 < query_lang_share <= 1:
        raise ConfigError(f"query_lang_share={query_lang_share}: must be in (0, 1]")
