"""How much the columns agree, and how far reranking moved each hit.

For two ranked lists (best first) of the same length k: ``overlap`` counts the items both hold, and Kendall's tau
on those shared items says whether the two retrievers order them alike (+1 same order, -1 reversed). Lists hold
no duplicates, so there are no ties and tau-a equals the tau-b of ``scipy.stats.kendalltau`` (checked in tests);
computing it here keeps scipy out of the app's dependencies.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Agreement:
    """Two columns' agreement on their top k."""

    left: str
    right: str
    shared: int
    k: int
    tau: float | None  # None when fewer than two items are shared


def overlap(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    return len(set(a) & set(b))


def kendall_tau(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Kendall's tau between the orders of the items ``a`` and ``b`` share; None below two shared items.

    >>> kendall_tau(["x", "y", "z"], ["z", "y", "x", "w"])
    -1.0
    """
    shared = set(a) & set(b)
    rank_b = {item: i for i, item in enumerate(b) if item in shared}
    order = [rank_b[item] for item in a if item in shared]  # b's ranks, in a's order
    n = len(order)
    if n < 2:
        return None
    concordant = sum(1 for i, j in combinations(range(n), 2) if order[i] < order[j])
    pairs = n * (n - 1) // 2
    return (2 * concordant - pairs) / pairs


def agreements(columns: Mapping[str, Sequence[Hashable]]) -> list[Agreement]:
    """Overlap and tau for every pair of columns, in the columns' order."""
    out = []
    for (left, a), (right, b) in combinations(columns.items(), 2):
        out.append(Agreement(left, right, overlap(a, b), max(len(a), len(b)), kendall_tau(a, b)))
    return out


def movement(rank: int, prev_rank: int | None, k: int) -> str:
    """How far reranking moved a hit: ``▲3``, ``▼2``, ``=``, or ``new`` if it was below the top k before.

    >>> [movement(1, 4, 10), movement(5, 3, 10), movement(2, 2, 10), movement(3, 40, 10), movement(1, None, 10)]
    ['▲3', '▼2', '=', 'new', '']
    """
    if prev_rank is None:
        return ""
    if prev_rank > k:
        return "new"
    if prev_rank > rank:
        return f"▲{prev_rank - rank}"
    if prev_rank < rank:
        return f"▼{rank - prev_rank}"
    return "="
