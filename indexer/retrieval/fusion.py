"""Reciprocal-rank fusion (Cormack, Clarke & Büttcher, 2009): score(d) = Σ_r 1 / (k + rank_r(d))."""

from __future__ import annotations

from collections.abc import Sequence


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
