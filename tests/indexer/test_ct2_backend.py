"""The CTranslate2 int8 backend (``ct2-int8``, opt-in: the fastest CPU path, ~1.5 nDCG@10 points below fp32 on
SciFact): within the measured tolerance of fp32 on a multilingual sample, built offline once and reused, a text's
vector independent of its batch and of the thread count.

Tolerance measured on the default model (bench/results/encode.md): cosine vs fp32 on 320 NTREX sentences in 16
languages min ~0.998; the tiny random BERT below is looser (no training to make its activations tame).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.config import ModelConfig
from indexer.encoding.backends import auto_candidates, choose_backend, fingerprint_for
from indexer.errors import ConfigError
from tests.indexer.test_encoder_backends import MULTILINGUAL, _cosines, _reference, assert_int8_tolerance

pytest.importorskip("ctranslate2")


def _block(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``import package`` fail as if it were not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


def test_ct2_is_opt_in_and_refused_without_its_package(monkeypatch):
    """auto keeps onnx-int8 (ct2-int8 costs ~1.5 nDCG@10 points on SciFact); an explicit choice gets ct2."""
    pytest.importorskip("onnxruntime")
    assert choose_backend("auto", "cpu") == "onnx-int8" and "ct2-int8" not in auto_candidates("cpu")
    assert choose_backend("ct2-int8", "cpu") == "ct2-int8"
    with pytest.raises(ConfigError, match="CPU only"):
        choose_backend("ct2-int8", "cuda")
    _block(monkeypatch, "ctranslate2")
    with pytest.raises(ConfigError, match=r"pip install 'e5search\[ct2\]'"):
        choose_backend("ct2-int8", "cpu")


def test_fingerprint_keeps_ct2_vectors_apart():
    assert fingerprint_for("abc", "ct2-int8") == "abc+ct2-int8" != fingerprint_for("abc", "onnx-int8")


# ------------------------------------------------------------------------------------- a tiny random BERT
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.trainer.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny_ct2") / "model", MULTILINGUAL, dropout=0.0)


@pytest.fixture(scope="module")
def ct2_home(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache home holding the tiny model's converted artefact, built once for the module."""
    home = tmp_path_factory.mktemp("ct2_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(home))
        from indexer.encoding.encoder import Encoder

        assert Encoder(ModelConfig(model=str(tiny), backend="ct2-int8", device="cpu")).backend == "ct2-int8"
    return home


def test_ct2_artefact_is_built_once_and_reused(tiny, ct2_home, monkeypatch):
    import ctranslate2.converters

    import indexer.encoding.ct2_build as ct2_build
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(ct2_home))

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached CTranslate2 model was rebuilt")

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", no_rebuild)
    enc = Encoder(ModelConfig(model=str(tiny), backend="ct2-int8", device="cpu"))
    assert enc.backend == "ct2-int8" and enc.fingerprint == f"{enc.model_fingerprint}+ct2-int8"
    assert enc.cache_key == f"{enc.fingerprint}@ct2-format{ct2_build.FORMAT}"
    assert enc.describe()["numerics"] == "int8"
    folder = ct2_build.artefact_dir(enc.model_fingerprint)
    assert folder.parent.parent == ct2_home and (folder / ct2_build.MODEL_DIR / "model.bin").is_file()
    record = (folder / ct2_build.RECORD).read_text()
    assert '"probe_cosine_min"' in record and '"format": 1' in record
    assert not (folder / "transformers").exists()  # the fp32 copy made for the converter is gone
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    got = enc.encode_passages(MULTILINGUAL)
    assert got.shape == (len(MULTILINGUAL), enc.dim) and got.dtype == np.float32
    assert _cosines(got, _reference(tiny, MULTILINGUAL)).min() > 0.98


def test_ct2_vector_does_not_depend_on_batch_or_threads(tiny, ct2_home, monkeypatch):
    """Activations are quantised per token and run: a text alone (a query, on a multi-threaded replica), in a
    batch spread over two single-threaded replicas, or on one replica gets the same vector."""
    from indexer.encoding.ct2_build import find_ct2_model
    from indexer.encoding.encoder import Encoder
    from indexer.encoding.runners import Ct2Runner
    from indexer.tokens import token_ids

    monkeypatch.setenv("E5SEARCH_HOME", str(ct2_home))
    enc = Encoder(ModelConfig(model=str(tiny), backend="ct2-int8", device="cpu"))
    path = find_ct2_model(enc.model_fingerprint)
    assert path is not None
    ids = token_ids(enc.model, MULTILINGUAL)
    two = Ct2Runner(path, "mean", workers=2)
    together = two.embed(ids)
    np.testing.assert_array_equal(Ct2Runner(path, "mean", workers=1).embed(ids), together)
    for i in (0, len(ids) - 1):  # a short text and the long one
        np.testing.assert_array_equal(two.embed([ids[i]])[0], together[i])


def test_a_failed_conversion_names_the_fix_and_leaves_nothing(tiny, tmp_path, monkeypatch):
    import ctranslate2.converters

    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path))  # nothing built here

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("converter exploded")

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", Broken)
    with pytest.raises(ConfigError, match="exploded.*backend='onnx-int8'"):
        Encoder(ModelConfig(model=str(tiny), backend="ct2-int8", device="cpu"))
    assert not list((tmp_path / "ct2").iterdir())  # the staging folder was removed


# ------------------------------------------------------------------------------------- the real model
@pytest.mark.model
def test_real_model_ct2_within_measured_tolerance(default_model_path, tmp_path_factory, monkeypatch):
    from indexer.encoding.ct2_build import find_ct2_model
    from indexer.encoding.encoder import Encoder, folder_fingerprint

    if find_ct2_model(folder_fingerprint(default_model_path)) is None:  # not built by setup: build it here
        monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path_factory.mktemp("ct2_real")))
    enc = Encoder(ModelConfig(model=str(default_model_path), backend="ct2-int8", device="cpu"))
    assert_int8_tolerance(enc, default_model_path)
