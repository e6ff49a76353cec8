"""E5's consistency filter on a constructed case, with the deterministic bag-of-words fake encoder."""

from __future__ import annotations

import numpy as np

from tests.fakes import FakeEncoder
from trainer.config import FilterConfig
from trainer.data import Pair
from trainer.filtering import consistency_filter, ranks_among_pool

PAIRS = [
    Pair("red apple", "a red apple grows on trees"),
    Pair("green apple", "green apple pie recipe"),
    Pair("apple juice", "how to press apple juice at home"),
    Pair("apple varieties", "the cat sat on the mat"),  # wrong passage: three apple passages outrank it
    Pair("ocean tides", "the moon pulls the ocean tides"),
    Pair("東京 天気", "東京 の 天気 は 晴れ"),
    Pair("погода в москве", "в москве сегодня идёт снег, погода зимняя"),
]


def test_keeps_consistent_pairs_and_drops_the_wrong_one():
    kept, dropped, report = consistency_filter(
        PAIRS, FakeEncoder(dim=4096), FilterConfig(top_k=2, pool_size=100)
    )
    assert [p.query for p, _ in dropped] == ["apple varieties"]
    assert dropped[0][1] == 4  # three apple passages score above its own
    assert kept == [p for p in PAIRS if p.query != "apple varieties"]
    assert (report.read, report.kept, report.dropped, report.pool_size) == (7, 6, 1, 7)
    assert report.rank_histogram["1"] == 6 and report.rank_histogram["4"] == 1
    assert report.samples_dropped == [
        {"rank": 4, "query": "apple varieties", "passage": "the cat sat on the mat"}
    ]


def test_top_k_is_inclusive():
    kept, dropped, _ = consistency_filter(PAIRS, FakeEncoder(dim=4096), FilterConfig(top_k=4, pool_size=100))
    assert len(kept) == 7 and not dropped


def test_other_positives_of_the_same_query_do_not_count_against_it():
    pairs = [Pair("apple", "apple apple apple"), Pair("apple", "an apple a day"), Pair("pear", "a pear tree")]
    kept, dropped, _ = consistency_filter(pairs, FakeEncoder(dim=4096), FilterConfig(top_k=1, pool_size=10))
    assert len(kept) == 3, dropped


def test_both_directions_also_ranks_the_query():
    # "apple pie" ranks first for its query, but the passage prefers the query "apple pie recipe" of another pair
    pairs = [
        Pair("apple", "apple pie recipe"),
        Pair("apple pie recipe", "bake an apple pie with this recipe"),
        Pair("apple pie", "apple pie recipe"),
        Pair("moon", "the moon and the sea"),
    ]
    one, _, _ = consistency_filter(pairs, FakeEncoder(dim=4096), FilterConfig(top_k=1, pool_size=10))
    both, dropped, _ = consistency_filter(
        pairs, FakeEncoder(dim=4096), FilterConfig(top_k=1, pool_size=10, both_directions=True)
    )
    assert len(both) < len(one)
    assert all(p.query != "moon" for p, _ in dropped)


def test_ranks_among_pool_by_hand():
    targets = np.eye(4, dtype=np.float32)  # (4, 4)
    anchors = np.array([[1, 0.5, 0, 0], [0.2, 0.9, 0, 0.5]], dtype=np.float32)
    ranks = ranks_among_pool(
        anchors, targets, own=np.array([0, 3]), pool=np.array([0, 1, 2, 3]), same_group=[{0}, {3}]
    )
    assert ranks.tolist() == [1, 2]  # pair 2: target 1 (0.9) beats its own (0.5)
