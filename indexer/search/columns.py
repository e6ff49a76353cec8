"""Several rankings of one query reranked in ONE cross-encoder pass, and the app's columns searched together.

The app shows BM25, dense and hybrid side by side. Their top candidates overlap (hybrid fuses the other two), so
reranking each column on its own scores a shared candidate up to three times. :func:`rerank_rankings` scores the
union of the rankings' heads once and reorders every head by those scores; :func:`search_columns` is the app's
whole search: each mode ranked in one read snapshot, one rerank pass, hits hydrated per column with their
movement. ``Index.rerank`` (one ranking) is the same function, so a column reranked here equals ``Index.search``
with ``rerank=True``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from indexer.errors import E5SearchError, QueryError
from indexer.ingest.chunking import passage_text
from indexer.retrieval.rerank import NO_RERANKER, interpolate
from indexer.storage import catalog
from indexer.types import Ranked, SearchMode, SearchResult

if TYPE_CHECKING:  # the Index calls in here; nothing here makes one
    from indexer.search.index import Filters, Index
    from indexer.search.reading import Reading


def rerank_rankings(index: Index, query: str, rankings: Sequence[Ranked], reading: Reading) -> list[Ranked]:
    """Each ranking's first ``index.config.rerank_top`` reordered by the cross-encoder, the rest as they were;
    the union of those heads is scored in one call (a candidate in several heads is scored once)."""
    reranker = index.reranker
    if reranker is None:
        raise QueryError(NO_RERANKER)
    top = index.config.rerank_top
    union = list(dict.fromkeys(cid for ranked in rankings for cid, _ in ranked[:top]))  # first-seen order
    parts = catalog.passage_parts(reading.session, union)
    scored = reranker.score(query, [passage_text(*parts[cid]) for cid in union])
    score = dict(zip(union, scored.tolist()))
    out = []
    for ranked in rankings:
        head = ranked[:top]
        mixed = interpolate([s for _, s in head], [score[cid] for cid, _ in head], reranker.interpolation)
        order = np.argsort(-mixed, kind="stable")  # ties keep their order
        out.append([(head[i][0], float(mixed[i])) for i in order] + ranked[top:])
    return out


@dataclass
class Columns:
    """One query in several modes: a result or an error per mode, and what the shared rerank pass did."""

    results: dict[str, SearchResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rerank_ms: float | None = None  # the one pass, shared by every column
    reranked: int = 0  # distinct candidates it scored (the union of the columns' heads)
    candidates: int = 0  # the sum over columns: what reranking each column separately would score


def _rank_modes(index: Index, query: str, modes, k: int, filters, reading, out: Columns):
    """Each mode's ranking and its stage timings; a mode that cannot run (e.g. a query too long for the model
    but fine for BM25) gets its error and the others go on."""
    allowed = index._allowed(filters, reading.session)
    lang = filters.lang if filters else None
    ranked: dict[str, tuple[str, Ranked, dict[str, float], list]] = {}
    for mode in modes:
        timings: dict[str, float] = {}
        weights: list = []
        try:
            checked = index._check_query(query, needs_model=mode != "bm25")
            one = index.rank(reading, [checked], mode, k, lang, allowed, timings, weights)[0]
        except E5SearchError as exc:
            out.errors[mode] = str(exc)
            continue
        ranked[mode] = (checked, one, timings, weights)
    return ranked


def search_columns(
    index: Index,
    query: str,
    modes: Sequence[SearchMode] = ("bm25", "dense", "hybrid"),
    k: int = 10,
    rerank: bool = False,
    filters: Filters | None = None,
) -> Columns:
    """``Index.search`` for several modes at once, with one rerank pass over the union of their candidates."""
    out = Columns()
    if k < 1 or (rerank and not index.has_reranker):
        message = f"k={k}: must be at least 1" if k < 1 else NO_RERANKER
        return Columns(errors=dict.fromkeys(modes, message))
    try:
        with index.reading() as reading:
            ranked = _rank_modes(index, query, modes, k, filters, reading, out)
            before = {
                m: {cid: r for r, (cid, _) in enumerate(one, start=1)} for m, (_, one, _, _) in ranked.items()
            }
            if rerank and ranked:
                t0 = time.perf_counter()
                lists = rerank_rankings(
                    index, next(iter(ranked.values()))[0], [r[1] for r in ranked.values()], reading
                )
                out.rerank_ms = (time.perf_counter() - t0) * 1e3
                top = index.config.rerank_top
                out.reranked = len({cid for one in lists for cid, _ in one[:top]})
                out.candidates = sum(min(top, len(one)) for one in lists)
                ranked = {m: (q, one, t, w) for (m, (q, _, t, w)), one in zip(ranked.items(), lists)}
            for mode, (checked, one, timings, weights) in ranked.items():
                t0 = time.perf_counter()
                hits = catalog.hits(reading.session, one[:k], before[mode] if rerank else None)
                timings["hydrate"] = (time.perf_counter() - t0) * 1e3
                if out.rerank_ms is not None:
                    timings["rerank"] = out.rerank_ms
                timings["total"] = sum(timings.values())
                fusion = weights[0] if weights else None
                out.results[mode] = SearchResult(checked, mode, rerank, hits, timings, fusion)
    except E5SearchError as exc:  # the filters, the snapshot or the rerank pass: every column says so
        return Columns(errors=dict.fromkeys(modes, str(exc)))
    return out
