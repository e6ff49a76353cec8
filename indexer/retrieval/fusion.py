"""Fusing hybrid search's dense and BM25 lists into one: plain reciprocal-rank fusion, and the default, a convex
combination of normalised scores whose BM25 weight is predicted for each query (:mod:`.fusion_model`).

Plain RRF (Cormack, Clarke & Büttcher, 2009), ``score(d) = Σ_r 1 / (k + rank_r(d))``, gives both lists the same
say. On a monolingual folder that is about right; across languages it halves what dense finds, because BM25's list
is then noise, and RRF rewards the noise that dense also half-likes for being in both lists (issue 14).

:func:`fuse` with ``mode="weighted"`` (the default) combines ``(1 - w) · dense' + w · bm25'``: dense cosines
min-max normalised over the list, BM25 scores divided by the list's best (Bruch et al. 2023, "An analysis of
fusion functions for hybrid retrieval"), with ``w`` from the query's signals; a dense hit in another script than
the query that BM25's list lacks counts at BM25's tenth score, not 0 (``fusion_model.bm25_to_combine``).
Normalised scores won over weighted reciprocal ranks on dev: they carry how far apart candidates are, which ranks
throw away. A **lexical guarantee** keeps BM25's best hit in the top ``keep_bm25_top`` when its list is peaked
(``fusion_model.keeps_bm25_top``), so an exact name or product code that dense cannot place still shows.
``mode="rrf"`` is :func:`rrf` itself, exactly.

Example (a Japanese query; BM25's list is flat Japanese noise, dense's top answer is English):

>>> from indexer.retrieval.fusion_model import FusionConfig
>>> cfg = FusionConfig(coef=(0.0, 3.0, 0.0, 0.0, -2.0, 2.0, -3.0, 0.0, 0.0) + (0.0,) * 4, depth=3)
>>> dense = [(7, 0.91), (3, 0.85), (5, 0.84), (8, 0.80)]
>>> bm25 = [(3, 2.1), (4, 2.0), (5, 2.0), (9, 1.9)]
>>> fused, weights = fuse(dense, bm25, "ja", {7: "en", 3: "ja", 4: "ja", 5: "ja", 8: "en", 9: "ja"}, cfg)
>>> [cid for cid, _ in fused], round(weights.bm25, 3)
([7, 3, 5, 4, 9, 8], 0.008)
>>> [cid for cid, _ in fuse(dense, bm25, "ja", {}, FusionConfig(mode="rrf"))[0]]  # plain RRF: noise first
[3, 5, 7, 4, 8, 9]

Non-goals: more than two lists; anything that needs the query text or the model here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from indexer.retrieval.fusion_model import (
    FusionConfig,
    Scored,
    bm25_to_combine,
    bm25_weight,
    keeps_bm25_top,
    query_features,
)
from indexer.types import FusionWeights, Ranked


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked id lists (best first) into one list of (id, fused score), best first.

    >>> rrf([[1, 2, 3], [3, 1]], k=60)[0][0]
    1
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    # ties broken by id so the order is deterministic
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def weighted_rrf(dense: Scored, bm25: Scored, w_dense: float, w_bm25: float, k: int = 60) -> Ranked:
    """``Σ_list w_list / (k + rank_list(d))`` over the two lists, best first; ties broken by id (as :func:`rrf`).

    >>> weighted_rrf([(1, 0.9), (2, 0.8)], [(2, 3.0)], 0.5, 0.5, k=60)[0][0]
    2
    """
    scores: dict[int, float] = {}
    for weight, ranked in ((w_dense, dense), (w_bm25, bm25)):
        for rank, (cid, _) in enumerate(ranked, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def weighted_convex(dense: Scored, bm25: Scored, w_dense: float, w_bm25: float) -> Ranked:
    """``w_dense · dense' + w_bm25 · bm25'`` with each list's scores normalised to [0, 1], best first.

    Dense cosines are min-max normalised over the list; BM25 scores are divided by the list's best, since BM25's
    own minimum is 0 (Bruch et al. 2023, TM2C2). A chunk missing from a list gets 0 from it. Ties broken by id.

    >>> weighted_convex([(1, 0.9), (2, 0.8)], [(2, 3.0), (3, 1.5)], 0.5, 0.5)
    [(1, 0.5), (2, 0.5), (3, 0.25)]
    """
    scores: dict[int, float] = {}
    if dense:
        hi, lo = dense[0][1], dense[-1][1]
        span = (hi - lo) or 1.0
        for cid, s in dense:
            scores[cid] = w_dense * (s - lo) / span
    if bm25 and bm25[0][1] > 0:
        top = bm25[0][1]
        for cid, s in bm25:
            scores[cid] = scores.get(cid, 0.0) + w_bm25 * s / top
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def keep_at(ranked: Ranked, cid: int, rank: int) -> Ranked:
    """``ranked`` with ``cid`` moved up to ``rank`` (1-based) if it sits lower; its score becomes that of the hit
    it displaces, so scores stay non-increasing. A new list; ``ranked`` is not changed.

    >>> keep_at([(1, 0.9), (2, 0.8), (3, 0.1)], 3, 2)
    [(1, 0.9), (3, 0.8), (2, 0.8)]
    """
    pos = next((i for i, (c, _) in enumerate(ranked) if c == cid), None)
    if pos is None or pos < rank:
        return list(ranked)
    return [*ranked[: rank - 1], (cid, ranked[rank - 1][1]), *ranked[rank - 1 : pos], *ranked[pos + 1 :]]


def combine(dense: Scored, bm25: Scored, w_bm25: float, config: FusionConfig) -> Ranked:
    """The two lists added at BM25 weight ``w_bm25`` by ``config.combine`` (:func:`weighted_convex` or
    :func:`weighted_rrf`); the lists as :func:`fuse` hands them over."""
    if config.combine == "convex":
        return weighted_convex(dense, bm25, 1.0 - w_bm25, w_bm25)
    return weighted_rrf(dense, bm25, 1.0 - w_bm25, w_bm25, config.rrf_k)


def fuse(
    dense: Scored,
    bm25: Scored,
    query_lang: str,
    cand_langs: Mapping[int, str],
    config: FusionConfig = FusionConfig(),
) -> tuple[Ranked, FusionWeights]:
    """Fuse one query's lists (best first); returns the fused ``(chunk id, score)`` list and the weights used.

    ``cand_langs`` maps chunk id → ``ChunkRow.lang`` for (at least) the top ``config.depth`` of each list;
    ``query_lang`` is :func:`indexer.ingest.langdetect.detect_language` of the query. In ``"rrf"`` mode both are
    ignored and the result is :func:`rrf`'s, scores included.
    """
    if config.mode == "rrf":
        fused = rrf([[c for c, _ in dense], [c for c, _ in bm25]], k=config.rrf_k)
        return fused, FusionWeights("rrf", bm25=0.5, dense=0.5)
    features = query_features(dense, bm25, query_lang, cand_langs, config.depth)
    w = bm25_weight(features, config)
    fused = combine(dense, bm25_to_combine(dense, bm25, query_lang, cand_langs, config), w, config)
    if bm25 and keeps_bm25_top(features, query_lang, config):
        fused = keep_at(fused, bm25[0][0], config.keep_bm25_top)
    return fused, FusionWeights("weighted", bm25=w, dense=1.0 - w)
