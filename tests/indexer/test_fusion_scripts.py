"""Hybrid fusion's script signals and its mute rule (issue 14's per-pair gate): exact fused orders on hand-made
lists with the shipped ``fusion_weights.json``.

The failing case it answers: an English query whose answer is a Japanese or Russian text. BM25 can only match
Latin words (package names, technical terms) and so returns a flat list of English texts that share a word or two
with the query, while dense's best hit crosses scripts. BM25 must then have no say at all.
"""

from __future__ import annotations

import dataclasses

import pytest

from indexer.retrieval.fusion import fuse, rrf
from indexer.retrieval.fusion_model import (
    FusionConfig,
    bm25_weight,
    fitted_config,
    muted,
    query_features,
    script_of,
)


def ids(fused: list[tuple[int, float]]) -> list[int]:
    return [cid for cid, _ in fused]


# ---------------------------------------------------------------- an English query, a Japanese answer (1)
# Dense: the Japanese answer first, then English texts. BM25: ten English texts, flat (4.0 down to 3.1: peak
# 0.225), its best (20) nowhere in dense's list; one of them (2) dense also half-likes.
XS_DENSE = [(1, 0.88), (2, 0.86), (3, 0.85), (4, 0.84), (5, 0.80)]
XS_BM25 = [(20, 4.0), (2, 3.9), *((21 + i, 3.8 - 0.1 * i) for i in range(8))]
XS_LANGS = {1: "ja", **dict.fromkeys((2, 3, 4, 5, 20, *range(21, 29)), "en")}


def test_script_of_reads_the_detected_language():
    assert [script_of(lang) for lang in ("en", "de", "und", "ru", "uk", "ja", "zh", "ko", "ar")] == [
        "Latn",
        "Latn",
        "Latn",
        "Cyrl",
        "Cyrl",
        "Jpan",
        "Hani",
        "Hang",
        "Arab",
    ]


def test_cross_script_noise_features():
    f = query_features(XS_DENSE, XS_BM25, "en", XS_LANGS)
    assert f["bm25_peak"] == pytest.approx((4.0 - 3.1) / 4.0)
    assert f["dense_top_cross_script"] == 1.0 and f["dense_cross_alone"] == 1.0  # rank 1, not in BM25's list
    assert f["bm25_cross_script"] == 0.0 and f["bm25_top_cross_script"] == 0.0
    assert f["bm25_top_in_dense"] == 0.0
    # the same lists under a query of unknown language: counted as Latin script, same signals
    assert query_features(XS_DENSE, XS_BM25, "und", XS_LANGS) == {**f, "dense_same_lang": 1.0,
                                                                  "bm25_same_lang": 1.0, "bm25_top_cross": 0.0,
                                                                  "dense_top_cross": 0.0}  # fmt: skip


def test_cross_script_noise_gets_bm25_weight_zero():
    config = fitted_config()
    f = query_features(XS_DENSE, XS_BM25, "en", XS_LANGS, config.depth)
    assert muted(f, config) and bm25_weight(f, config) == 0.0
    fused, weights = fuse(XS_DENSE, XS_BM25, "en", XS_LANGS, config)
    assert (weights.bm25, weights.dense) == (0.0, 1.0)
    # dense's order (min-max: 1, 0.75, 0.625, 0.5, 0), then BM25's noise at 0, ties by id
    assert ids(fused) == [1, 2, 3, 4, 5, 20, *range(21, 29)]
    assert fused[:5] == [(1, 1.0), (2, pytest.approx(0.75)), (3, pytest.approx(0.625)), (4, pytest.approx(0.5)),
                         (5, 0.0)]  # fmt: skip
    # plain RRF puts the text both lists share above the answer
    assert ids(rrf([ids(XS_DENSE), ids(XS_BM25)]))[:2] == [2, 1]


def test_the_rule_needs_all_three_conditions():
    config = fitted_config()
    f = query_features(XS_DENSE, XS_BM25, "en", XS_LANGS, config.depth)
    assert not muted({**f, "dense_top_cross_script": 0.0}, config)  # dense stayed in the query's script
    assert not muted({**f, "bm25_top_in_dense": 1.0}, config)  # the lists agree on BM25's best
    assert not muted({**f, "bm25_peak": config.mute_bm25_peak}, config)  # BM25 has a real match
    assert not muted(f, dataclasses.replace(config, mute_bm25_peak=0.0))  # 0 turns it off
    assert bm25_weight(f, dataclasses.replace(config, mute_bm25_peak=0.0)) > 0.0


# ---------------------------------------------------------------- a German query, German texts, lists agree
SL_DENSE = [(1, 0.90), (2, 0.86), (3, 0.85), (4, 0.70)]
SL_BM25 = [(1, 12.0), (3, 9.0), (5, 4.0), (2, 3.0)]
SL_LANGS = dict.fromkeys((1, 2, 3, 4, 5), "de")


def test_same_language_agreement_keeps_both_lists():
    config = fitted_config()
    f = query_features(SL_DENSE, SL_BM25, "de", SL_LANGS, config.depth)
    assert not muted(f, config)
    assert f["bm25_cross_script"] == f["dense_top_cross_script"] == f["dense_cross_alone"] == 0.0
    fused, weights = fuse(SL_DENSE, SL_BM25, "de", SL_LANGS, config)
    assert 0.2 < weights.bm25 < 0.8
    assert ids(fused) == [1, 3, 2, 5, 4]
    assert fused[0] == (1, pytest.approx(1.0))  # first in both lists: full marks from each


# ---------------------------------------------------------------- a BM25-only exact match among CJK neighbours
# "QZ7781" (undetermined language, so Latin script): dense cannot place it and returns Japanese and Chinese texts
# first; BM25 has one hit (peak 1). The rule must not mute it and the guarantee keeps it first.
EM_DENSE = [(30 + i, 0.85 - 0.001 * i) for i in range(30)]
EM_BM25 = [(99, 7.5)]
EM_LANGS = {**{30 + i: ("ja", "zh", "en")[i % 3] for i in range(30)}, 99: "en"}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_bm25_only_exact_match_stays_first(k):
    config = fitted_config()
    f = query_features(EM_DENSE, EM_BM25, "und", EM_LANGS, config.depth)
    assert f["dense_top_cross_script"] == 1.0 and f["bm25_peak"] == 1.0 and not muted(f, config)
    fused, _ = fuse(EM_DENSE, EM_BM25, "und", EM_LANGS, config)
    assert ids(fused)[:k] == [99, *ids(EM_DENSE)[: k - 1]]


def test_without_the_guarantee_the_weights_alone_would_bury_it():
    """Why the guarantee exists: dense crossed scripts, so the model gives BM25 little say (0.19) and the code would
    sit at rank 24: above only the seven dense hits whose min-max share falls under BM25's 0.19."""
    config = dataclasses.replace(fitted_config(), keep_bm25_top=0)
    fused, weights = fuse(EM_DENSE, EM_BM25, "und", EM_LANGS, config)
    assert weights.bm25 == pytest.approx(0.1926, abs=1e-4)
    assert ids(fused).index(99) == 23


def test_shipped_config_records_the_rule_and_the_guarantee():
    config = fitted_config()
    assert config.mute_bm25_peak == 0.5 and config.keep_bm25_top == 1 and config.combine == "convex"
    assert FusionConfig().mute_bm25_peak == config.mute_bm25_peak  # the default is the shipped choice
    with pytest.raises(ValueError, match="mute_bm25_peak"):
        FusionConfig(mute_bm25_peak=1.5)
