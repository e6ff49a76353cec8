"""Hard-negative mining never returns a positive; range_min and margins behave as documented."""

from __future__ import annotations

import pytest

from tests.fakes import FakeEncoder
from trainer.config import MineConfig
from trainer.data import Pair
from trainer.mining import mine_hard_negatives

TOPICS = ["apple", "pear", "ocean", "moon", "honey", "bread", "東京", "москва"]
PAIRS = [Pair(f"{t} facts", f"{t} facts and {t} history number {i}") for i, t in enumerate(TOPICS)]
PAIRS += [
    Pair("apple facts", "apple facts: a second relevant passage"),  # a query with two positives
    Pair("pear facts", PAIRS[0].passage),
]  # a passage that is positive for two queries
EXTRA = [f"{t} trivia {j} facts" for t in TOPICS for j in range(3)]


@pytest.mark.parametrize("method", ["bm25", "dense"])
def test_never_returns_a_positive(method):
    config = MineConfig(method=method, num_negatives=3, range_min=0, range_max=30, relative_margin=None)
    mined, counts = mine_hard_negatives(PAIRS, config, FakeEncoder(dim=1024), extra_corpus=EXTRA)
    positives: dict[str, set[str]] = {}
    for p in PAIRS:
        positives.setdefault(p.query, set()).add(p.passage)
    assert mined and counts["mined"] == len(mined)
    for p in mined:
        assert len(p.negatives) == 3 and len(set(p.negatives)) == 3
        assert not set(p.negatives) & positives[p.query], p
        assert p.query not in p.negatives
    assert counts["skipped_positive"] > 0  # the positives were ranked high, and skipped


def test_range_min_skips_the_top_ranks():
    top = mine_hard_negatives(
        PAIRS[:8],
        MineConfig(method="dense", num_negatives=2, range_min=0, range_max=20, relative_margin=None),
        FakeEncoder(dim=1024),
        EXTRA,
    )[0]
    skipped = mine_hard_negatives(
        PAIRS[:8],
        MineConfig(method="dense", num_negatives=2, range_min=1, range_max=20, relative_margin=None),
        FakeEncoder(dim=1024),
        EXTRA,
    )[0]
    for a, b in zip(top, skipped, strict=True):
        assert a.negatives[1] == b.negatives[0]  # everything moves up by one rank


def test_relative_margin_drops_near_duplicates_of_the_positive():
    pairs = [Pair("red apple", "red apple"), Pair("green pear", "green pear")]
    extra = ["red apple red apple", "red apple pie", "blue sky"]  # the first scores like the positive itself
    config = MineConfig(method="dense", num_negatives=1, range_min=0, range_max=5, relative_margin=0.05)
    mined, counts = mine_hard_negatives(pairs, config, FakeEncoder(dim=1024), extra)
    assert mined[0].negatives == ("red apple pie",)
    assert counts["skipped_margin"] >= 1


def test_pairs_without_enough_negatives_are_dropped_and_counted():
    mined, counts = mine_hard_negatives(
        PAIRS[:2], MineConfig(method="bm25", num_negatives=5, range_min=0, range_max=10), None, []
    )
    assert mined == [] and counts["dropped_not_enough_negatives"] == 2


def test_dense_needs_an_encoder():
    with pytest.raises(ValueError, match="needs an encoder"):
        mine_hard_negatives(PAIRS, MineConfig(method="dense"), None)
