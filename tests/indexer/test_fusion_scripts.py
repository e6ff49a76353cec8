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
    bm25_to_combine,
    bm25_weight,
    fitted_config,
    keeps_bm25_top,
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
    """Why the guarantee exists: dense crossed scripts, so the model gives BM25 little say (0.09) and the code would
    sit at rank 27: above only the four dense hits whose min-max share falls under BM25's 0.09."""
    config = dataclasses.replace(fitted_config(), keep_bm25_top=0)
    fused, weights = fuse(EM_DENSE, EM_BM25, "und", EM_LANGS, config)
    assert weights.bm25 == pytest.approx(0.0941, abs=1e-4)
    assert ids(fused).index(99) == 26


def test_shipped_config_records_the_rule_and_the_guarantee():
    config = fitted_config()
    assert config.mute_bm25_peak == 0.5 and config.keep_bm25_top == 1 and config.combine == "convex"
    assert (config.keep_bm25_peak, config.keep_bm25_peak_und, config.fill_cross_script) == (0.75, 0.5, True)
    shipped = ("mute_bm25_peak", "keep_bm25_peak", "keep_bm25_peak_und", "fill_cross_script")
    assert all(getattr(FusionConfig(), k) == getattr(config, k) for k in shipped)  # defaults = shipped choice
    with pytest.raises(ValueError, match="mute_bm25_peak"):
        FusionConfig(mute_bm25_peak=1.5)
    with pytest.raises(ValueError, match="keep_bm25_peak_und"):
        FusionConfig(keep_bm25_peak_und=-0.1)


# ---------------------------------------------------------------- a name whose BM25 list is only half peaked
def test_an_undetermined_query_keeps_a_half_peaked_bm25_hit_first():
    """A one-word name (language undetermined) whose BM25 list stands out less (peak 0.6, under 0.75) keeps its best
    hit first; an English sentence with the same lists does not. A query detected as a language that no candidate
    of either top list shares ("qu": a name misread as Quechua) counts as undetermined."""
    config = fitted_config()
    dense = [(30 + i, 0.85 - 0.001 * i) for i in range(30)]
    bm25 = [(99, 10.0), *((40 + i, 4.0 + 0.01 * (9 - i)) for i in range(10))]  # tenth: 4.01, peak 0.599
    langs = {
        **{30 + i: ("ja", "zh", "en")[i % 3] for i in range(30)},
        99: "ru",
        **dict.fromkeys(range(40, 50), "en"),
    }
    f = query_features(dense, bm25, "und", langs, config.depth)
    assert (
        f["bm25_peak"] == pytest.approx(0.599) and config.keep_bm25_peak_und < 0.599 < config.keep_bm25_peak
    )
    assert ids(fuse(dense, bm25, "und", langs, config)[0])[0] == 99
    assert keeps_bm25_top(
        query_features(dense, bm25, "qu", langs), "qu", config
    )  # "qu": no candidate's language
    assert not keeps_bm25_top(query_features(dense, bm25, "en", langs), "en", config)
    assert ids(fuse(dense, bm25, "en", langs, config)[0])[0] != 99


# ---------------------------------------------------------------- BM25's unknown score for a cross-script hit
# An English query whose Japanese answer (1) dense ranks second; BM25 cannot see it and ranks English texts that
# share a word, its best (20) also dense's first. Weight fixed at 0.5 (bias only, rule off) to show the combination.
FILL_DENSE = [(20, 0.90), (1, 0.89), (2, 0.80), (3, 0.70)]
FILL_BM25 = [(20, 10.0), (2, 9.5), *((21 + i, 9.0 - 0.1 * i) for i in range(8))]  # tenth score 8.3
FILL_LANGS = {1: "ja", **dict.fromkeys((2, 3, 20, *range(21, 30)), "en")}
HALF = FusionConfig(coef=(0.0,) * 13, mute_bm25_peak=0.0)


def test_a_cross_script_hit_bm25_lacks_gets_its_tenth_score():
    filled = bm25_to_combine(FILL_DENSE, FILL_BM25, "en", FILL_LANGS, HALF)
    assert filled == [*FILL_BM25, (1, FILL_BM25[9][1])]  # only the Japanese hit (3 lacks BM25 but is English)
    assert FILL_BM25[9][1] == pytest.approx(8.3) and len(FILL_BM25) == 10  # the input is not changed
    off = dataclasses.replace(HALF, fill_cross_script=False)
    assert bm25_to_combine(FILL_DENSE, FILL_BM25, "en", FILL_LANGS, off) == FILL_BM25
    short = FILL_BM25[:5]  # fewer than ``depth`` hits: BM25's tenth score is 0, nothing to fill
    assert bm25_to_combine(FILL_DENSE, short, "en", FILL_LANGS, HALF) == short
    assert (
        bm25_to_combine(FILL_DENSE, FILL_BM25, "ja", FILL_LANGS, HALF) != FILL_BM25
    )  # English hits for "ja"


def test_the_fill_lifts_the_cross_script_answer_above_bm25_noise():
    # dense min-max: 20 -> 1, 1 -> 0.95, 2 -> 0.5, 3 -> 0; BM25 / 10: 20 -> 1, 2 -> 0.95, 1 -> 0.83 (filled)
    fused, weights = fuse(FILL_DENSE, FILL_BM25, "en", FILL_LANGS, HALF)
    assert weights.bm25 == 0.5
    assert ids(fused)[:3] == [20, 1, 2]
    assert fused[1] == (1, pytest.approx(0.5 * 0.95 + 0.5 * 0.83)) and fused[2] == (2, pytest.approx(0.725))
    without, _ = fuse(
        FILL_DENSE, FILL_BM25, "en", FILL_LANGS, dataclasses.replace(HALF, fill_cross_script=False)
    )
    assert ids(without)[:3] == [20, 2, 1]  # 0 from BM25: the English text that shares a word goes first
