"""What the pages call: cached loaders for the model, reranker and index, and thin calls into indexer and eval.

Models and indexes load once per process (``st.cache_resource``); an index is cached per *generation*, so a
re-index (from the page or from the CLI) is picked up on the next rerun and the stale one is never searched.
Search results with their highlighted snippets are cached per query and settings (``st.cache_data``), so
opening a hit does not search again.

``use_encoder`` lets a program that embeds the app (or a test) supply its own embedding model; by default each
index is searched with the model recorded in its manifest.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import streamlit as st

from app.embedding import QueryMemo, best_sentences
from app.highlight import Span, lexical_spans, make_snippet, to_html
from indexer.config import ModelConfig
from indexer.encoding.encoder import TextEncoder, model_for_index
from indexer.errors import E5SearchError
from indexer.retrieval.rerank import NO_RERANKER, Reranker, default_reranker
from indexer.search.columns import search_columns as search_modes
from indexer.search.index import Filters, Index
from indexer.storage.store import read_index_manifest
from indexer.types import FusionWeights, Hit, SearchMode, SearchResult

logger = logging.getLogger(__name__)

MODES: tuple[SearchMode, ...] = ("bm25", "dense", "hybrid")
_encoder_override: TextEncoder | None = None


def use_encoder(encoder: TextEncoder | None) -> None:
    """Search and index with ``encoder`` in this process instead of each index's own model (None: undo)."""
    global _encoder_override
    _encoder_override = encoder
    st.cache_resource.clear()
    st.cache_data.clear()


# ------------------------------------------------------------------------------------------ cached loaders
@st.cache_resource(show_spinner="Loading the embedding model ...")
def load_encoder(model: ModelConfig) -> TextEncoder:
    if _encoder_override is not None:
        return QueryMemo(_encoder_override)
    from indexer.encoding.encoder import Encoder

    return QueryMemo(Encoder(model))


@st.cache_resource(show_spinner="Loading the reranker ...")
def load_reranker(name: str) -> Reranker:
    return Reranker(name)


def reranker() -> tuple[Reranker | None, str | None]:
    """The configured cross-encoder, or None and why reranking is unavailable."""
    name = default_reranker()
    if name is None:
        return None, NO_RERANKER
    try:
        return load_reranker(name), None
    except E5SearchError as exc:
        return None, str(exc)


@st.cache_resource(show_spinner="Opening the index ...", max_entries=4)
def _load_index(
    index_dir: str, generation: int, model: ModelConfig, encoder_id: int, reranker_name: str | None
) -> Index:
    encoder = load_encoder(model)
    reranker_obj = load_reranker(reranker_name) if reranker_name else None
    idx = Index.open(index_dir, encoder=encoder, reranker=reranker_obj)
    # Warm up now, under the spinner, rather than in the first query: BM25 files, the language identifier
    # (about a second), and the model's first forward pass.
    idx.bm25.query_terms("warm up")
    idx.encoder.encode_queries(["warm up"])
    return idx


def open_index(index_dir: Path) -> Index:
    """The index at ``index_dir``, with its model and the reranker, loaded once per generation."""
    manifest = read_index_manifest(index_dir)
    model = model_for_index(manifest)  # the backend follows the index, as in the CLI
    rer, _ = reranker()
    return _load_index(
        str(index_dir),
        manifest["generation"],
        model,
        id(_encoder_override),
        default_reranker() if rer is not None else None,
    )


def forget_indexes() -> None:
    """Drop every cached index and result (before an index's files are removed)."""
    _load_index.clear()
    index_stats.clear()
    search_columns.clear()
    sentence_snippets.clear()


def index_key(idx: Index) -> tuple[str, int]:
    """What identifies an index's contents: its folder and generation (the cache key for results)."""
    return str(idx.dir), int(idx.manifest["generation"])


@st.cache_data(show_spinner=False, max_entries=32)
def index_stats(_idx: Index, key: tuple[str, int]) -> dict:
    return _idx.stats()


# ------------------------------------------------------------------------------------------ search
MAX_SENTENCE_HITS = 10  # the dense column's best sentence is found for its first hits only


@dataclass(frozen=True)
class Request:
    """One search as the page asks for it (hashable: the cache key of its results)."""

    query: str
    k: int = 10
    rerank: bool = False
    lang: str | None = None
    file_type: str | None = None
    path_prefix: str | None = None

    @property
    def filters(self) -> Filters:
        return Filters(lang=self.lang, file_type=self.file_type, path_prefix=self.path_prefix)


@dataclass
class Column:
    """One retriever's results as the page shows them."""

    mode: SearchMode
    hits: list[Hit] = field(default_factory=list)
    snippets: list[str] = field(default_factory=list)  # escaped HTML, one per hit
    lexical: list[list[Span]] = field(default_factory=list)  # query-term spans in each hit's text
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    fusion: FusionWeights | None = None  # hybrid: each list's share for this query
    rerank: RerankPass | None = None  # the one rerank pass all columns share


@dataclass(frozen=True)
class RerankPass:
    """What the shared rerank pass did: distinct candidates scored once, of how many the columns hold together."""

    scored: int
    candidates: int
    ms: float


@cache
def _analyzer():
    from indexer.retrieval.analysis import Analyzer

    return Analyzer()


def _lexical(idx: Index, query: str, lang: str | None, hits: list[Hit]) -> list[list[Span]]:
    terms = idx.bm25.query_terms(query, lang)
    analyzer = _analyzer()
    return [lexical_spans(h.text, terms, partial(analyzer.analyze, lang=h.lang)) for h in hits]


def _column(idx: Index, result: SearchResult, request: Request, rerank: RerankPass | None) -> Column:
    mode = result.mode
    t0 = time.perf_counter()
    try:
        lexical = (
            [[] for _ in result.hits]
            if mode == "dense"
            else _lexical(idx, result.query, request.lang, result.hits)
        )
    except E5SearchError as exc:
        return Column(mode, error=str(exc))
    snippets = [to_html(make_snippet(h.text, lex)) for h, lex in zip(result.hits, lexical, strict=True)]
    timings = dict(result.timings_ms, highlight=(time.perf_counter() - t0) * 1e3)
    return Column(mode, result.hits, snippets, lexical, timings, fusion=result.fusion, rerank=rerank)


@st.cache_data(show_spinner="Searching ...", max_entries=256)
def search_columns(_idx: Index, key: tuple[str, int], request: Request) -> dict[str, Column]:
    """BM25, dense and hybrid results, with lexical highlights; errors are returned, not raised. With rerank on,
    the three columns' candidates are reranked in ONE pass over their union (:func:`indexer.search.columns`).

    ``key`` is :func:`index_key` (the cache key standing for ``_idx``).
    """
    found = search_modes(_idx, request.query, MODES, request.k, request.rerank, request.filters)
    rerank = (
        RerankPass(found.reranked, found.candidates, found.rerank_ms) if found.rerank_ms is not None else None
    )
    return {
        mode: Column(mode, error=found.errors[mode])
        if mode in found.errors
        else _column(_idx, found.results[mode], request, rerank)
        for mode in MODES
    }


@st.cache_data(show_spinner=False, max_entries=256)
def sentence_snippets(
    _idx: Index, key: tuple[str, int], request: Request
) -> dict[str, tuple[list[str], float]]:
    """Snippets that also mark each hit's best-matching sentence, per column, with the milliseconds it took.

    Separate from :func:`search_columns` because it runs the model over the hits' sentences: the page shows
    the results first and then redraws the dense (and hybrid) cards with these. The hybrid column reuses
    sentences the dense column encoded and encodes none of its own.
    """
    columns = search_columns(_idx, key, request)
    out: dict[str, tuple[list[str], float]] = {}
    for mode in ("dense", "hybrid"):
        column = columns[mode]
        if column.error or not column.hits:
            continue
        t0 = time.perf_counter()
        texts = [h.text for h in column.hits[:MAX_SENTENCE_HITS]]
        best = best_sentences(_idx.encoder, request.query, texts, only_cached=mode == "hybrid")
        snippets = list(column.snippets)
        for i, sentence in enumerate(best):
            if sentence is not None:
                snippets[i] = to_html(make_snippet(texts[i], column.lexical[i], sentence))
        out[mode] = (snippets, (time.perf_counter() - t0) * 1e3)
    return out


def chunk_details(idx: Index, chunk_id: int) -> dict:
    """The chunk, one neighbour each side, and its document's metadata (IndexStateError if not in the index)."""
    return idx.chunk(chunk_id, neighbours=1)


@dataclass(frozen=True)
class Example:
    text: str
    lang: str | None = None
    note: str | None = None
    expected: tuple[str, ...] = ()  # documents that answer it


def example_queries(source_root: str | None) -> list[Example]:
    """Example queries for an indexed folder ``X``, read from ``X_queries.jsonl`` beside it, if there is one.

    Each line is a JSON object with ``text`` (or ``query``) and optionally ``lang``, ``note`` and ``expected``
    (the documents that answer it).
    """
    if not source_root:
        return []
    path = Path(source_root).with_name(Path(source_root).name + "_queries.jsonl")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
            text = obj.get("text") or obj.get("query")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(text, str) and text.strip():
            note = obj.get("note") or obj.get("description")
            expected = obj.get("expected") or ()
            out.append(
                Example(
                    text,
                    obj.get("lang"),
                    note if isinstance(note, str) else None,
                    tuple(str(e) for e in expected) if isinstance(expected, list) else (),
                )
            )
    return out
