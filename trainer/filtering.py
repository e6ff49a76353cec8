"""E5's consistency-based filter (Wang et al. 2022, §4): keep a pair only if a model ranks its passage in the
top-k among a pool of random passages (k = 2 by default), optionally in both directions.

The pool is drawn (seeded) from the pairs' own distinct passages and is shared by all pairs, as E5 shared its 1M
random passages. A pair's own passage and the other passages paired with the same query are never counted
against it. Ranks start at 1; a pair is kept when ``rank <= top_k``.

Non-goal: training the filtering model. E5 first trains on all pairs, then filters with that model: run
``train contrastive`` on the noisy pairs and give its output as ``model`` here.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from indexer.encoding.encoder import TextEncoder
from trainer.config import FilterConfig
from trainer.data import Pair

logger = logging.getLogger(__name__)


@dataclass
class FilterReport:
    read: int = 0
    kept: int = 0
    dropped: int = 0
    pool_size: int = 0
    top_k: int = 2
    both_directions: bool = False
    rank_histogram: dict[str, int] = field(default_factory=dict)  # "1", "2", ..., "11-100", ">100"
    samples_kept: list[dict] = field(default_factory=list)
    samples_dropped: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _unique(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    index: dict[str, int] = {}
    ids = np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64)
    return list(index), ids


def ranks_among_pool(
    anchors: np.ndarray,
    targets: np.ndarray,
    own: np.ndarray,
    pool: np.ndarray,
    same_group: Sequence[set[int]],
    chunk: int = 1024,
) -> np.ndarray:
    """1-based rank of each anchor's own target among the pooled targets.

    Args:
        anchors: (n_pairs, dim) embeddings, one per pair.
        targets: (n_targets, dim) embeddings of the distinct texts ranked against.
        own: (n_pairs,) index into ``targets`` of each pair's own target.
        pool: (pool_size,) indices into ``targets`` of the random pool.
        same_group: per pair, target indices never counted against it (its own and its other positives).
    """
    pooled = targets[pool]  # (pool_size, dim)
    ranks = np.empty(len(anchors), dtype=np.int64)
    pool_pos = {int(t): j for j, t in enumerate(pool)}
    for start in range(0, len(anchors), chunk):
        a = anchors[start : start + chunk]  # (c, dim)
        pos = np.einsum("cd,cd->c", a, targets[own[start : start + chunk]])  # (c,)
        scores = a @ pooled.T  # (c, pool_size)
        above = scores > pos[:, None]  # (c, pool_size)
        for i in range(len(a)):
            for t in same_group[start + i]:
                j = pool_pos.get(t)
                if j is not None:
                    above[i, j] = False
        ranks[start : start + chunk] = above.sum(axis=1) + 1
    return ranks


def _histogram(ranks: np.ndarray) -> dict[str, int]:
    out = {str(r): int((ranks == r).sum()) for r in range(1, 11)}
    out["11-100"] = int(((ranks > 10) & (ranks <= 100)).sum())
    out[">100"] = int((ranks > 100).sum())
    return out


def consistency_filter(
    pairs: Sequence[Pair],
    encoder: TextEncoder,
    config: FilterConfig = FilterConfig(),
    show_progress: bool = False,
) -> tuple[list[Pair], list[tuple[Pair, int]], FilterReport]:
    """Returns (kept pairs, dropped pairs with their rank, report). The encoder applies the prompts.

    >>> kept, dropped, report = consistency_filter(pairs, Encoder(ModelConfig()))  # doctest: +SKIP
    """
    passages, p_ids = _unique([p.passage for p in pairs])
    queries, q_ids = _unique([p.query for p in pairs])
    rng = random.Random(config.seed)
    p_pool = np.array(sorted(rng.sample(range(len(passages)), min(config.pool_size, len(passages)))))
    q_vecs = encoder.encode_queries(queries)  # (n_queries, dim)
    p_vecs = encoder.encode_passages(passages, show_progress=show_progress)  # (n_passages, dim)
    by_query: dict[int, set[int]] = defaultdict(set)
    by_passage: dict[int, set[int]] = defaultdict(set)
    for q, p in zip(q_ids.tolist(), p_ids.tolist(), strict=True):
        by_query[q].add(p)
        by_passage[p].add(q)
    ranks = ranks_among_pool(q_vecs[q_ids], p_vecs, p_ids, p_pool, [by_query[q] for q in q_ids.tolist()])
    if config.both_directions:
        q_pool = np.array(sorted(rng.sample(range(len(queries)), min(config.pool_size, len(queries)))))
        back = ranks_among_pool(p_vecs[p_ids], q_vecs, q_ids, q_pool, [by_passage[p] for p in p_ids.tolist()])
        ranks = np.maximum(ranks, back)  # kept only if both directions rank in the top-k
    keep = ranks <= config.top_k
    kept = [p for p, k in zip(pairs, keep, strict=True) if k]
    dropped = [(p, int(r)) for p, r, k in zip(pairs, ranks, keep, strict=True) if not k]
    report = FilterReport(
        read=len(pairs),
        kept=len(kept),
        dropped=len(dropped),
        pool_size=len(p_pool),
        top_k=config.top_k,
        both_directions=config.both_directions,
        rank_histogram=_histogram(ranks),
    )
    sample = random.Random(config.seed + 1)
    kept_idx = [i for i in range(len(pairs)) if keep[i]]
    drop_idx = [i for i in range(len(pairs)) if not keep[i]]
    for idx, out in ((kept_idx, report.samples_kept), (drop_idx, report.samples_dropped)):
        for i in sorted(sample.sample(idx, min(config.n_samples, len(idx)))):
            out.append({"rank": int(ranks[i]), "query": pairs[i].query, "passage": pairs[i].passage[:300]})
    logger.info(
        "consistency filter: kept %d of %d (top-%d among %d)",
        len(kept),
        len(pairs),
        config.top_k,
        len(p_pool),
    )
    return kept, dropped, report
