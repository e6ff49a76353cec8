"""Hybrid fusion: exact fused orders on hand-made lists, plain RRF reproduced exactly, and the weights a real search
records (a small multilingual folder indexed with the fake encoder).

Most hand-list tests use a hand-set coefficient vector (``HAND``), so they pin the algorithm rather than a fit;
``test_fitted_weights_*`` run the same scenarios with the shipped ``fusion_weights.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from e5search.cli import main
from indexer.build.job import build_index
from indexer.config import SearchConfig
from indexer.ingest.langdetect import detect_language
from indexer.retrieval.fusion import fuse, keep_at, rrf, weighted_convex, weighted_rrf
from indexer.retrieval.fusion_model import (
    FEATURES,
    WEIGHTS_FILE,
    FusionConfig,
    bm25_to_combine,
    bm25_weight,
    fitted_config,
    keeps_bm25_top,
    load_config,
    query_features,
)
from indexer.search.index import Index
from indexer.storage import catalog
from indexer.types import FusionWeights
from tests.fakes import FakeEncoder

# bias, bm25_peak, overlap, dense_same_lang, bm25_same_lang, bm25_top_cross, dense_top_cross, bm25_top_in_dense,
# dense_top_in_bm25: a peaked BM25 list and a BM25 top hit in another language raise BM25's weight; a BM25 list
# in the query's language and a dense top hit in another language lower it.
HAND = FusionConfig(depth=4, coef=(0.0, 3.0, 0.0, 0.0, -2.0, 2.0, -3.0, 0.0, 0.0) + (0.0,) * 4)


def ids(fused: list[tuple[int, float]]) -> list[int]:
    return [cid for cid, _ in fused]


# ---------------------------------------------------------------- a cross-script query: BM25's list is noise
# A Japanese query whose answer (10) is English. BM25 can only match Japanese chunks on shared bigrams: a flat
# list of noise, two of which (11, 12) dense also half-likes.
XS_DENSE = [(10, 0.90), (11, 0.86), (12, 0.85), (13, 0.84), (14, 0.80)]
XS_BM25 = [(11, 3.1), (15, 3.0), (12, 3.0), (16, 2.9), (17, 2.9)]
XS_LANGS = {10: "en", 11: "ja", 12: "ja", 13: "en", 14: "ja", 15: "ja", 16: "ja", 17: "ja"}


def test_cross_script_noise_features():
    f = query_features(XS_DENSE, XS_BM25, "ja", XS_LANGS, depth=4)
    assert f["bm25_peak"] == pytest.approx((3.1 - 2.9) / 3.1)
    assert f["overlap"] == 0.5 and f["bm25_same_lang"] == 1.0 and f["dense_top_cross"] == 1.0
    assert f["dense_same_lang"] == 0.5 and f["bm25_top_cross"] == 0.0
    assert f["bm25_top_in_dense"] == 1.0 and f["dense_top_in_bm25"] == 0.0


def test_cross_script_noise_dense_answer_stays_first():
    fused, weights = fuse(XS_DENSE, XS_BM25, "ja", XS_LANGS, HAND)
    assert weights.method == "weighted" and weights.bm25 < 0.05
    assert weights.bm25 + weights.dense == pytest.approx(1.0)
    # dense's order, except that its last candidate (min-max normalised to 0) falls below the BM25-only noise
    assert ids(fused) == [10, 11, 12, 13, 15, 16, 17, 14]


def test_cross_script_noise_plain_rrf_buries_the_answer():
    """The failure of issue 14: RRF ranks the noise that both lists share above dense's answer."""
    fused, weights = fuse(XS_DENSE, XS_BM25, "ja", XS_LANGS, FusionConfig(mode="rrf"))
    assert ids(fused) == [11, 12, 10, 15, 13, 16, 14, 17]
    assert weights == FusionWeights("rrf", bm25=0.5, dense=0.5)


# ---------------------------------------------------------------- a same-language query: both lists agree
SL_DENSE = [(1, 0.90), (2, 0.86), (3, 0.85), (4, 0.70)]
SL_BM25 = [(1, 12.0), (3, 9.0), (5, 4.0), (2, 3.0)]
SL_LANGS = {1: "de", 2: "de", 3: "de", 4: "de", 5: "de"}


def test_same_language_agreement():
    fused, weights = fuse(SL_DENSE, SL_BM25, "de", SL_LANGS, HAND)
    assert 0.3 < weights.bm25 < 0.7  # both lists have a say
    assert ids(fused) == [1, 3, 2, 5, 4]
    assert fused[0] == (1, pytest.approx(1.0))  # first in both lists: full marks from each
    assert ids(fuse(SL_DENSE, SL_BM25, "de", SL_LANGS, FusionConfig(mode="rrf"))[0]) == [1, 3, 2, 5, 4]


# ---------------------------------------------------------------- a BM25-only exact match (a product code)
# "QZ7781": one chunk (99) has it; dense does not place it at all. BM25 has one hit: peak 1.
EM_DENSE = [(20 + i, 0.85 - 0.001 * i) for i in range(30)]
EM_BM25 = [(99, 7.5)]
EM_LANGS = {**{20 + i: "en" for i in range(30)}, 99: "en"}


@pytest.mark.parametrize("k", [1, 5, 10])
def test_bm25_only_exact_match_reaches_top_k(k):
    fused, weights = fuse(EM_DENSE, EM_BM25, "und", EM_LANGS, HAND)
    assert weights.bm25 > 0.5
    assert 99 in ids(fused)[:k]


def test_guarantee_lifts_the_bm25_hit_when_the_weight_alone_would_not():
    low = FusionConfig(depth=4, coef=(-5.0,) + (0.0,) * len(FEATURES))  # weight ~0.007
    fused, _ = fuse(EM_DENSE, EM_BM25, "en", EM_LANGS, low)
    assert ids(fused).index(99) == low.keep_bm25_top - 1
    off = FusionConfig(depth=4, coef=low.coef, keep_bm25_top=0)
    assert ids(fuse(EM_DENSE, EM_BM25, "en", EM_LANGS, off)[0]).index(99) == 29  # above dense's last only


def test_keep_at_only_moves_up_and_copies():
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7)]
    assert keep_at(ranked, 1, 2) == ranked and keep_at(ranked, 42, 1) == ranked
    assert keep_at(ranked, 3, 1) == [(3, 0.9), (1, 0.9), (2, 0.8)]
    assert ranked == [(1, 0.9), (2, 0.8), (3, 0.7)]


# ---------------------------------------------------------------- plain RRF, exactly
def _random_lists(rng: random.Random) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    dense = [(c, 1.0 - i / 100) for i, c in enumerate(rng.sample(range(300), rng.randint(0, 100)))]
    bm25 = [(c, 20.0 - i / 10) for i, c in enumerate(rng.sample(range(300), rng.randint(0, 100)))]
    return dense, bm25


def test_rrf_mode_is_rrf_exactly():
    rng = random.Random(0)
    for _ in range(200):
        dense, bm25 = _random_lists(rng)
        fused, _ = fuse(dense, bm25, "en", {}, FusionConfig(mode="rrf", rrf_k=60))
        assert fused == rrf([ids(dense), ids(bm25)], k=60)  # ids and float scores


def test_equal_weights_order_as_plain_rrf():
    rng = random.Random(1)
    for _ in range(50):
        dense, bm25 = _random_lists(rng)
        assert ids(weighted_rrf(dense, bm25, 0.5, 0.5)) == ids(rrf([ids(dense), ids(bm25)]))
    assert weighted_convex([(1, 0.9), (2, 0.8)], [(2, 3.0), (3, 1.5)], 0.5, 0.5) == [
        (1, 0.5),
        (2, 0.5),
        (3, 0.25),
    ]


def test_empty_lists():
    assert fuse([], [], "en", {}, HAND)[0] == []
    assert ids(fuse(SL_DENSE, [], "de", SL_LANGS, HAND)[0]) == [1, 2, 3, 4]
    assert ids(fuse([], SL_BM25, "de", SL_LANGS, HAND)[0]) == [1, 3, 5, 2]


def test_weight_is_a_clamped_sigmoid():
    f = dict.fromkeys(FEATURES, 0.0)
    assert bm25_weight(f, FusionConfig()) == 0.5
    assert bm25_weight(f, FusionConfig(min_weight=0.6)) == 0.6
    assert bm25_weight(f, FusionConfig(coef=(-100.0,) + (0.0,) * len(FEATURES))) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "x"},
        {"combine": "x"},
        {"rrf_k": 0},
        {"depth": 0},
        {"coef": (1.0,)},
        {"min_weight": 0.8, "max_weight": 0.2},
        {"keep_bm25_top": -1},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        FusionConfig(**bad)
    with pytest.raises(ValueError, match="fusion='x'"):
        SearchConfig(fusion="x")  # type: ignore[arg-type]


def test_weights_file_round_trip_and_refusals(tmp_path: Path):
    config = load_config(WEIGHTS_FILE)
    assert config == fitted_config() and config.mode == "weighted"
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"config": config.to_dict()}), encoding="utf-8")
    assert load_config(path) == config
    path.write_text(json.dumps({"config": {**config.to_dict(), "features": ["x"]}}), encoding="utf-8")
    with pytest.raises(ValueError, match="refit"):
        load_config(path)


# ---------------------------------------------------------------- the shipped fit, same scenarios
def test_fitted_weights_keep_the_three_behaviours():
    config = load_config(WEIGHTS_FILE, depth=4)  # the hand lists are 4-5 long; the fit reads depth 10
    xs, w_xs = fuse(XS_DENSE, XS_BM25, "ja", XS_LANGS, config)
    assert ids(xs)[0] == 10 and w_xs.bm25 < 0.5
    sl, w_sl = fuse(SL_DENSE, SL_BM25, "de", SL_LANGS, config)
    assert ids(sl)[0] == 1 and w_sl.bm25 > w_xs.bm25
    em, _ = fuse(EM_DENSE, EM_BM25, "und", EM_LANGS, fitted_config())
    assert 99 in ids(em)[:5]


# ---------------------------------------------------------------- a real index: the fake encoder, 8 files
DOCS = {
    "en_coffee.txt": "Coffee beans are roasted before brewing. Roasting turns green coffee beans brown and sweet.",
    "en_tea.txt": "Tea leaves are withered, rolled and dried, then steeped in hot water for a few minutes.",
    "en_bread.txt": "Bread is baked in a hot oven from flour, water, salt and yeast after the dough has risen.",
    "de_brot.txt": "Brot wird im heißen Ofen aus Mehl, Wasser, Salz und Hefe gebacken, wenn der Teig gegangen ist.",
    "de_kaffee.txt": "Kaffeebohnen werden vor dem Aufbrühen geröstet. Beim Rösten werden grüne Bohnen braun.",
    "ja_fuji.txt": "富士山は日本で一番高い山です。夏には多くの人が頂上まで登ります。",
    "ru_volga.txt": "Волга — самая длинная река Европы. Она впадает в Каспийское море.",
    "zz_pump.txt": "Replacement guide for the QZ7781 pump used in garden fountains and small ponds.",
}


class CodeBlindEncoder(FakeEncoder):
    """The fake encoder, blind to words with digits: a model that cannot place a product code."""

    def _words(self, text: str) -> list[str]:
        return [w for w in super()._words(text) if not any(ch.isdigit() for ch in w)]


@pytest.fixture(scope="module")
def folder_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fusion")
    (root / "docs").mkdir()
    for name, text in DOCS.items():
        (root / "docs" / name).write_text(text, encoding="utf-8")
    build_index(root / "docs", root / "index", encoder=CodeBlindEncoder())
    return root / "index"


def _lists(idx: Index, query: str) -> tuple[list, list, dict[int, str]]:
    with idx.reading() as reading:
        n = idx.config.candidates
        dense, bm25 = (idx.rank(reading, [query], mode, n)[0] for mode in ("dense", "bm25"))
        langs = catalog.chunk_langs(reading.session, [c for c, _ in dense + bm25])
    return dense, bm25, langs


def _cli_search(monkeypatch, capsys, index_dir: Path, query: str, *flags: str) -> dict:
    monkeypatch.setenv("E5SEARCH_RERANKER", "none")
    monkeypatch.setattr("indexer.search.index.encoder_for_index", lambda *a, **k: CodeBlindEncoder())
    assert main(["search", query, "--index", str(index_dir), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("query", ["Wie wird Brot im Ofen gebacken?", "roasted coffee beans", "富士山に登る"])
def test_search_json_records_the_weights_it_used(monkeypatch, capsys, folder_index: Path, query: str):
    out = _cli_search(monkeypatch, capsys, folder_index, query)
    idx = Index.open(folder_index, encoder=CodeBlindEncoder())
    dense, bm25, langs = _lists(idx, query)
    config = fitted_config()
    w = bm25_weight(query_features(dense, bm25, detect_language(query), langs, config.depth), config)
    assert out["fusion"] == {"method": "weighted", "bm25": round(w, 4), "dense": round(1 - w, 4)}
    assert 0.0 < w < 1.0 and "fuse" in out["timings_ms"]
    lang = detect_language(query)  # the hits: the convex combination with that weight, then the guarantee
    fused = weighted_convex(dense, bm25_to_combine(dense, bm25, lang, langs, config), 1 - w, w)
    if keeps_bm25_top(query_features(dense, bm25, lang, langs, config.depth), lang, config):
        fused = keep_at(fused, bm25[0][0], config.keep_bm25_top)
    assert [(h["chunk_id"], h["score"]) for h in out["hits"]] == fused[:10]


def test_fusion_rrf_reproduces_rrf_exactly(monkeypatch, capsys, folder_index: Path):
    idx = Index.open(folder_index, encoder=CodeBlindEncoder(), config=SearchConfig(fusion="rrf"))
    for query in ("Wie wird Brot im Ofen gebacken?", "roasted coffee beans", "富士山", "QZ7781 pump"):
        dense, bm25, _ = _lists(idx, query)
        want = rrf([ids(dense), ids(bm25)], k=60)[:5]
        got = idx.search(query, mode="hybrid", k=5)
        assert [(h.chunk_id, h.score) for h in got.hits] == want
        assert got.fusion == FusionWeights("rrf", bm25=0.5, dense=0.5)
        out = _cli_search(monkeypatch, capsys, folder_index, query, "--fusion", "rrf", "-k", "5")
        assert [(h["chunk_id"], h["score"]) for h in out["hits"]] == want
        assert out["fusion"] == {"method": "rrf", "bm25": 0.5, "dense": 0.5}


def test_bm25_only_product_code_reaches_the_hybrid_top_k(folder_index: Path):
    idx = Index.open(folder_index, encoder=CodeBlindEncoder())
    dense, bm25, _ = _lists(idx, "QZ7781")
    pump = bm25[0][0]
    assert len(bm25) == 1 and dense[0][0] != pump  # only BM25 can find it
    hits = idx.search("QZ7781", mode="hybrid", k=3).hits
    assert hits[0].doc_path == "zz_pump.txt" and hits[0].chunk_id == pump


def test_other_modes_record_no_fusion(folder_index: Path):
    idx = Index.open(folder_index, encoder=CodeBlindEncoder())
    for mode in ("dense", "bm25"):
        result = idx.search("coffee", mode=mode, k=3)
        assert result.fusion is None and result.to_json()["fusion"] is None
