"""BM25 over chunks: :mod:`.analysis` turns text into terms, bm25s holds the index.

Flow (as in bm25s): analyse → index → retrieve → save/load, with a sidecar JSON that records the analyser
version and the chunk languages, so a query is analysed under the corpus's main languages too.

Non-goal: incremental updates (the index is rebuilt per generation; bm25s has none either).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import bm25s
import numpy as np
from tqdm.auto import tqdm

from indexer.errors import ConfigError, IndexStateError, QueryError
from indexer.ingest.langdetect import UNDETERMINED, detect_language
from indexer.retrieval.analysis import ANALYZER_VERSION, Analyzer, AnalyzerConfig
from indexer.storage.layout import Layout

logger = logging.getLogger(__name__)


Method = Literal["lucene", "robertson", "atire"]  # the bm25s variants without a non-occurrence term


SIDECAR = "e5search_bm25.json"


SIDECAR_FORMAT = 1


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
        try:
            return cls._load(folder, path, mmap)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:  # truncated or foreign files
            raise Layout(folder.parent).damaged(folder, f"unreadable ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def _load(cls, folder: Path, path: Path, mmap: bool) -> BM25Index:
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
