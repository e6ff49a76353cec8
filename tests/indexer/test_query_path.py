"""The CPU lone-text path of the fp32-class backends (issue 15): a single text (a query) runs on a fused fp32 ONNX
model instead of PyTorch, built once per model, in the fp32 numerics class (same fingerprint, same cache key);
without onnxruntime, or when the build fails, torch serves it as before.

Tests use ``backend="torch"``: the test CPU profile has no bf16 instructions (tests/conftest.py). The lone text's
vector must match torch's within 1e-4 cosine distance (measured on the default model: cosine 1.000000).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.config import ModelConfig
from tests.indexer.test_encoder_backends import MULTILINGUAL, _block_onnxruntime


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.trainer.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny_query_path") / "model", MULTILINGUAL, dropout=0.0)


@pytest.fixture(scope="module")
def fp32_home(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache home holding the tiny model's fp32 ONNX artefact, built once for the module."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    home = tmp_path_factory.mktemp("fp32_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(home))
        from indexer.encoding.encoder import Encoder

        assert Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))._runner.solo is not None
    return home


def _torch_only(enc, texts: list[str]) -> np.ndarray:
    """The torch runner's own vectors for ``texts``, each encoded alone, the solo path switched off."""
    solo, enc._runner.solo = enc._runner.solo, None
    try:
        return np.concatenate([enc.encode_passages([t]) for t in texts])  # (n, dim)
    finally:
        enc._runner.solo = solo


def test_fp32_artefact_is_built_once_and_reused(tiny, fp32_home, monkeypatch):
    import indexer.encoding.onnx_build as onnx_build
    from indexer.encoding.artefacts import RECORD, artefact_folder
    from indexer.encoding.encoder import Encoder
    from indexer.encoding.runners import OnnxRunner

    monkeypatch.setenv("E5SEARCH_HOME", str(fp32_home))

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached fp32 model was rebuilt")

    monkeypatch.setattr(onnx_build, "export_fp32", no_rebuild)
    enc = Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))
    assert isinstance(enc._runner.solo, OnnxRunner) and enc._runner.solo.session is None  # lone texts only
    assert (
        enc.fingerprint == enc.model_fingerprint and enc.cache_key == enc.fingerprint
    )  # fp32 class, unchanged
    folder = artefact_folder(onnx_build.onnx_home(), enc.model_fingerprint, "fp32")
    assert folder.parent.parent == fp32_home and Path(enc._runner.solo.path) == folder / "model.onnx"
    record = (folder / RECORD).read_text()
    assert f'"format": {onnx_build.FP32_FORMAT}' in record and '"Attention"' in record  # fused, not quantised
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    assert sorted(p.name for p in folder.iterdir()) == [RECORD, "model.onnx"]  # the plain export is not kept


def test_a_lone_text_runs_on_onnx_and_matches_torch(tiny, fp32_home, monkeypatch):
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(fp32_home))
    enc = Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))
    calls: list[int] = []
    solo_embed = enc._runner.solo.embed
    monkeypatch.setattr(
        enc._runner.solo, "embed", lambda seqs, *a: calls.append(len(seqs)) or solo_embed(seqs)
    )
    alone = np.concatenate([enc.encode_passages([t]) for t in MULTILINGUAL])  # (n, dim)
    assert calls == [1] * len(MULTILINGUAL)  # every lone text went to ONNX Runtime
    batched = enc.encode_passages(MULTILINGUAL)
    assert len(calls) == len(MULTILINGUAL)  # a batch stays on torch
    for ref in (batched, _torch_only(enc, MULTILINGUAL)):
        assert np.max(1.0 - np.sum(alone * ref, axis=1)) <= 1e-4
    query = enc.encode_queries(MULTILINGUAL[:1])
    assert 1.0 - float(query[0] @ enc.encode_queries(MULTILINGUAL[:2])[0]) <= 1e-4


def test_without_onnxruntime_torch_serves_lone_texts(tiny, tmp_path, monkeypatch):
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path))
    _block_onnxruntime(monkeypatch)
    enc = Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))
    assert enc._runner.solo is None and not (tmp_path / "onnx").exists()  # nothing built
    alone = enc.encode_passages(MULTILINGUAL[:1])
    np.testing.assert_allclose(alone[0], enc.encode_passages(MULTILINGUAL)[0], atol=1e-5)


def test_a_failed_build_leaves_lone_texts_on_torch(tiny, tmp_path, monkeypatch, caplog):
    import indexer.encoding.onnx_build as onnx_build
    from indexer.encoding.encoder import Encoder

    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_build, "export_fp32", broken)
    enc = Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))
    assert enc.backend == "torch" and enc._runner.solo is None and "exporter exploded" in caplog.text
    assert not list((tmp_path / "onnx").iterdir())  # the staging folder was removed
    assert enc.encode_queries(MULTILINGUAL[:1]).shape == (1, enc.dim)


def test_the_lone_text_model_is_built_at_the_first_lone_text_not_when_the_encoder_opens(
    tiny, tmp_path, monkeypatch
):
    """An index run encodes batches only: opening the encoder and encoding a batch builds no fp32 ONNX model."""
    from indexer.encoding.encoder import Encoder
    from indexer.encoding.runners import OnnxRunner

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path))
    enc = Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))
    enc.encode_passages(MULTILINGUAL)
    assert not (tmp_path / "onnx").exists()
    enc.encode_queries(MULTILINGUAL[:1])
    assert isinstance(enc._runner.solo, OnnxRunner) and (tmp_path / "onnx").is_dir()
