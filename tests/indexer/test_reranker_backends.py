"""How the reranker runs: the int8 ONNX model agrees with torch fp32 on a multilingual sample and is cached by the
reranker's fingerprint; ``auto`` follows the CPU; ``E5SEARCH_RERANKER=none`` turns reranking off in the CLI; any
CrossEncoder folder still works with ``--reranker``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from e5search.cli import main
from indexer.build.job import build_index
from indexer.encoding import machine
from indexer.encoding import rerank_onnx as ro
from indexer.encoding.encoder import folder_fingerprint
from indexer.errors import ConfigError
from indexer.retrieval.rerank import Reranker, auto_order
from tests.fakes import FakeEncoder

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "app" / "corpus"

SAMPLE = [  # not the probe pairs the build checks itself on
    ("how is coffee roasted", "Green coffee beans are roasted at about 200 °C until they crack."),
    ("how is coffee roasted", "The museum opens at nine on weekdays."),
    ("how is coffee roasted", "Kaffeebohnen werden geröstet, bis sie braun sind."),
    ("Wie backt man Brot?", "Den Teig kneten, gehen lassen und bei 220 Grad backen."),
    ("Wie backt man Brot?", "Der Zug fährt um zwölf Uhr ab."),
    ("Wie backt man Brot?", "Bake the dough in a hot oven until the crust is brown."),
    ("什么是光合作用", "光合作用是植物利用光能合成有机物的过程。"),
    ("什么是光合作用", "今天的股票市场下跌了。"),
    ("что такое вакцина", "Вакцина — препарат, который учит иммунную систему."),
    ("что такое вакцина", "Поезд прибыл на станцию вовремя."),
    ("ما هي القهوة", "القهوة مشروب يحضر من حبوب البن المحمصة."),
    ("ما هي القهوة", "كرة القدم رياضة شعبية."),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory, default_model_path: Path):
    """A fresh e5search home for this module's tests (the ONNX reranker is built there once)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("rerank_home")
        mp.setenv("E5SEARCH_HOME", str(path))
        yield path


@pytest.mark.model
def test_int8_reranker_agrees_with_fp32_and_is_cached(home: Path, small_cross_encoder: Path):
    int8 = Reranker(str(small_cross_encoder), backend="onnx-int8")
    fp32 = Reranker(str(small_cross_encoder), backend="torch")
    assert int8.backend == "onnx-int8" and fp32.backend == "torch"
    fingerprint = folder_fingerprint(small_cross_encoder)
    path = ro.find_int8_reranker(fingerprint)
    assert path is not None and path.is_relative_to(home)
    record = json.loads((path.parent / "build.json").read_text())
    assert record["probe_max_scaled_diff"] <= ro.MAX_PROBE_DIFF
    assert record["probe_order_agreement"] >= ro.MIN_PROBE_AGREEMENT

    got, want = [], []
    for query in dict.fromkeys(q for q, _ in SAMPLE):  # the product's call: one query, its passages
        passages = [p for q, p in SAMPLE if q == query]
        got.extend(int8.score(query, passages))
        want.extend(fp32.score(query, passages))
    got_a, want_a = np.array(got), np.array(want)
    assert np.max(np.abs(got_a - want_a)) <= ro.MAX_PROBE_DIFF * max(1.0, np.ptp(want_a))
    assert np.ptp(want_a) > 5 * np.max(np.abs(got_a - want_a))  # the scores spread more than int8 moves them
    assert spearmanr(got_a, want_a).statistic >= 0.9  # and int8 keeps their order (measured: 0.97)
    assert int8.pairs_scored == len(SAMPLE)
    # a lone pair (split over the cores) scores as in a batch: activations are quantised per pair
    assert int8.score(SAMPLE[0][0], [SAMPLE[0][1]])[0] == pytest.approx(got_a[0], abs=1e-6)

    built_at = record["built_at"]
    Reranker(str(small_cross_encoder), backend="onnx-int8")  # the cached artefact, not a rebuild
    assert json.loads((path.parent / "build.json").read_text())["built_at"] == built_at


@pytest.mark.model
def test_auto_follows_the_cpu(home: Path, small_cross_encoder: Path, monkeypatch):
    monkeypatch.setattr(machine, "fast_bf16", lambda flags=None: False)
    assert auto_order() == ("onnx-int8", "torch")
    assert Reranker(str(small_cross_encoder)).backend == "onnx-int8"
    with pytest.raises(ConfigError, match="torch-bf16 needs a CPU with bf16"):
        Reranker(str(small_cross_encoder), backend="torch-bf16")
    monkeypatch.setattr(machine, "fast_bf16", lambda flags=None: True)
    assert auto_order() == ("onnx-int8", "torch-bf16", "torch")
    with pytest.raises(ConfigError, match="reranker backend='int4'"):
        Reranker(str(small_cross_encoder), backend="int4")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    index_dir = tmp_path_factory.mktemp("rerank_cli") / "index"
    build_index(CORPUS, index_dir, encoder=FakeEncoder())
    return index_dir


def test_reranker_none_turns_reranking_off_in_the_cli(small_index: Path, monkeypatch, capsys):
    monkeypatch.setenv("E5SEARCH_RERANKER", "none")
    code = main(["search", "coffee", "--index", str(small_index), "--mode", "bm25", "--rerank"])
    err = capsys.readouterr().err
    assert code == 2 and "no reranker configured" in err and "Traceback" not in err
    assert main(["search", "coffee", "--index", str(small_index), "--mode", "bm25"]) == 0  # search goes on


@pytest.mark.model
def test_any_cross_encoder_folder_works_with_reranker(
    small_index: Path, small_cross_encoder: Path, home: Path, monkeypatch, capsys
):
    monkeypatch.setenv("E5SEARCH_RERANKER", "none")
    args = ["search", "coffee beans", "--index", str(small_index), "--mode", "bm25", "--json"]
    assert main([*args, "--rerank", "--reranker", str(small_cross_encoder), "--rerank-k", "3"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["reranked"] and out["hits"] and "rerank" in out["timings_ms"]
    reranked = [h for h in out["hits"] if h["rank"] <= 3]
    assert all(h["prev_rank"] is not None and h["prev_rank"] <= 3 for h in reranked)  # only the top 3 moved


def test_signed_int8_weights_only_where_the_cpu_has_vnni():
    assert ro.signed_weights(frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert ro.signed_weights(frozenset({"avx2", "amx_int8"}))
    assert not ro.signed_weights(
        frozenset({"avx2", "fma"})
    )  # vpmaddubsw would saturate: u8 x u8 as the encoder


@pytest.mark.model
def test_interpolation_refines_the_first_stage_order_and_never_collapses_it(
    small_index: Path, small_cross_encoder: Path, home: Path
):
    """interpolation 0 keeps the first stage's order, 1 is the cross-encoder's, in between mixes the two."""
    from indexer.config import SearchConfig
    from indexer.retrieval.rerank import interpolate
    from indexer.search.index import Index

    def ranked(weight: float) -> list[int]:
        reranker = Reranker(str(small_cross_encoder), backend="torch", interpolation=weight)
        idx = Index.open(
            small_index, encoder=FakeEncoder(), reranker=reranker, config=SearchConfig(rerank_top=5)
        )
        try:
            return [
                h.chunk_id for h in idx.search("coffee beans roasting", k=5, mode="bm25", rerank=True).hits
            ]
        finally:
            idx.close()

    idx = Index.open(small_index, encoder=FakeEncoder(), config=SearchConfig(rerank_top=5))
    try:
        first = [h.chunk_id for h in idx.search("coffee beans roasting", k=5, mode="bm25").hits]
    finally:
        idx.close()
    assert ranked(0.0) == first
    assert sorted(ranked(1.0)) == sorted(first) and ranked(1.0) != first  # the cross-encoder reorders them
    assert list(np.argsort(-interpolate([3, 2, 1], [0.0, 0.0, 1.0], 0.5), kind="stable")) == [0, 2, 1]
    assert interpolate([3, 2, 1], [0.1, 0.2, 0.3], 1.0).tolist() == pytest.approx([0.1, 0.2, 0.3])
