"""Encoder backends (issue 6): each agrees with the fp32 reference within its measured tolerance, ``auto`` falls
back cleanly, the int8 ONNX model is built offline once and reused, and the fingerprint keeps int8 and fp32
vectors out of one index.

Tolerances are measured (bench/results/encode.md): the torch backend reproduces ``SentenceTransformer.encode``
(cosine > 0.99999); int8 on 320 NTREX sentences in 16 languages gives cosine min ~0.998, median ~0.999.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.config import ModelConfig
from indexer.encoding.backends import backend_for_index, choose_backend, fingerprint_for
from indexer.errors import ConfigError

MULTILINGUAL = [
    "How do bees make honey?",
    "Bienen sammeln Nektar und verwandeln ihn im Stock in Honig.",
    "Les abeilles transforment le nectar en miel dans la ruche.",
    "Пчёлы собирают нектар и превращают его в мёд.",
    "蜜蜂采集花蜜并在蜂巢中将其酿成蜂蜜。",
    "ミツバチは花の蜜を集めて巣の中で蜂蜜に変える。",
    "يجمع النحل الرحيق ويحوله إلى عسل داخل الخلية.",
    "꿀벌은 꽃꿀을 모아 벌집에서 꿀로 만든다.",
    "Las abejas recogen néctar y lo convierten en miel. " * 12,  # a longer text
]


def _block_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import onnxruntime`` fail as if it were not installed."""
    for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)  # both unit vectors: (n,)


# ------------------------------------------------------------------------------------- choice, no model
def test_auto_is_onnx_int8_on_cpu_with_onnxruntime_and_torch_without(monkeypatch):
    pytest.importorskip("onnxruntime")
    assert choose_backend("auto", "cpu") == "onnx-int8"
    _block_onnxruntime(monkeypatch)
    assert choose_backend("auto", "cpu") == "torch"
    with pytest.raises(ConfigError, match=r"pip install 'e5search\[onnx\]'"):
        choose_backend("onnx-int8", "cpu")


def test_explicit_backends_that_cannot_run_here_are_refused():
    with pytest.raises(ConfigError, match="needs bf16 instructions"):
        choose_backend("torch-bf16", "cpu")  # this test's CPU profile has none (tests/conftest.py)
    with pytest.raises(ConfigError, match="CPU only"):
        choose_backend("onnx-int8", "cuda")
    with pytest.raises(ConfigError, match="backend='fast'"):
        ModelConfig(backend="fast")  # type: ignore[arg-type]


def test_fingerprint_separates_int8_from_fp32_class_backends():
    assert fingerprint_for("abc", "torch") == fingerprint_for("abc", "torch-bf16") == "abc"
    assert fingerprint_for("abc", "onnx-int8") == "abc+onnx-int8"


def test_auto_follows_the_backend_an_index_was_built_with():
    auto = ModelConfig(device="cpu")
    assert backend_for_index(auto, None) == auto  # a new index: auto stays auto
    assert backend_for_index(auto, {"model": "m"}).backend == "torch"  # built before backends existed
    assert backend_for_index(auto, {"backend": "torch"}).backend == "torch"
    assert backend_for_index(auto, {"backend": "torch-bf16"}).backend == "torch"  # GPU-built, searched on CPU
    assert backend_for_index(auto, {"backend": "onnx-int8"}).backend == "onnx-int8"
    assert (
        backend_for_index(auto, {"backend": "some-future-backend"}).backend == "torch"
    )  # unknown: fp32 class
    explicit = ModelConfig(device="cpu", backend="torch")
    assert backend_for_index(explicit, {"backend": "onnx-int8"}) == explicit  # refused later by fingerprint


def test_feed_forward_down_projections_are_found_fused_or_not(tiny, tmp_path):
    """The MatMuls kept fp32 are those reading GELU's output: one per layer, in the plain and the fused graph."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from sentence_transformers import SentenceTransformer

    from indexer.encoding.onnx_build import export_fp32, fuse, gelu_fed_matmuls

    st = SentenceTransformer(str(tiny), device="cpu")
    export_fp32(st, tmp_path / "plain.onnx")
    fuse(tmp_path / "plain.onnx", tmp_path / "fused.onnx", st[0].auto_model.config)
    for name in ("plain.onnx", "fused.onnx"):
        found = gelu_fed_matmuls(onnx.load(str(tmp_path / name)))
        assert len(found) == 2 and all("output/dense" in n for n in found), (name, found)


def test_down_projections_go_4bit_only_where_that_is_lossless(tiny, tmp_path):
    """Layer 0's down-projection rounded to Q4_0 (blocks of 32 along the input) is found exact and rewritten as
    MatMulNBits without changing the vectors; layer 1's random weights are not touched."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnx_ir")
    import torch
    from sentence_transformers import SentenceTransformer

    from indexer.encoding.onnx_build import exact_q4_weights, export_fp32, fuse, quantize_int8, store_q4
    from indexer.encoding.runners import OnnxRunner
    from indexer.tokens import token_ids

    st = SentenceTransformer(str(tiny), device="cpu")
    dense = st[0].auto_model.encoder.layer[0].output.dense  # weight (out, in): Q4_0 blocks run along "in"
    with torch.no_grad():
        blocks = dense.weight.view(dense.weight.shape[0], -1, 32)  # (out, in / 32, 32)
        d = blocks.gather(2, blocks.abs().argmax(2, keepdim=True)) / -8.0  # (out, in / 32, 1)
        dense.weight.copy_(((blocks / d).round().clamp(-8, 7) * d).view_as(dense.weight))
    export_fp32(st, tmp_path / "plain.onnx")
    fuse(tmp_path / "plain.onnx", tmp_path / "fused.onnx", st[0].auto_model.config)
    kept = quantize_int8(tmp_path / "fused.onnx", tmp_path / "int8.onnx")
    exact = exact_q4_weights(onnx.load(str(tmp_path / "fused.onnx")), kept)
    assert len(kept) == 2 and exact == [n for n in kept if "layer.0/" in n], (kept, exact)

    (tmp_path / "q4.onnx").write_bytes((tmp_path / "int8.onnx").read_bytes())
    assert store_q4(tmp_path / "q4.onnx", exact) == 1
    ops = [n.op_type for n in onnx.load(str(tmp_path / "q4.onnx")).graph.node]
    assert ops.count("MatMulNBits") == 1 and ops.count("MatMul") == 1  # layer 1's stays a plain fp32 MatMul
    ids = token_ids(st, MULTILINGUAL)
    before = OnnxRunner(tmp_path / "int8.onnx", "mean", workers=1).embed(ids)
    after = OnnxRunner(tmp_path / "q4.onnx", "mean", workers=1).embed(ids)
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_a_lone_text_split_over_cores_gets_the_same_vector(tiny, tiny_home, monkeypatch):
    """A single text (a query) runs on a multi-threaded session; its vector equals the one from a batch."""
    from indexer.encoding.encoder import Encoder
    from indexer.encoding.runners import OnnxRunner
    from indexer.tokens import token_ids

    monkeypatch.setenv("E5SEARCH_HOME", str(tiny_home))
    enc = Encoder(ModelConfig(model=str(tiny), backend="onnx-int8", device="cpu"))
    runner = OnnxRunner(Path(enc._runner.path), "mean", workers=2)
    ids = token_ids(enc.model, MULTILINGUAL)
    together = runner.embed(ids)
    for i in (0, len(ids) - 1):  # a short text and the long one
        np.testing.assert_array_equal(runner.embed([ids[i]])[0], together[i])


# ------------------------------------------------------------------------------------- a tiny random BERT
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.trainer.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny_backends") / "model", MULTILINGUAL, dropout=0.0)


@pytest.fixture(scope="module")
def tiny_home(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache home holding the tiny model's int8 ONNX artefact, built once for the module."""
    pytest.importorskip("onnxruntime")
    home = tmp_path_factory.mktemp("tiny_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(home))
        from indexer.encoding.encoder import Encoder

        assert Encoder(ModelConfig(model=str(tiny), backend="onnx-int8", device="cpu")).backend == "onnx-int8"
    return home


def assert_int8_tolerance(enc, model: Path) -> None:
    """The measured int8 tolerance on the real model: passages min > 0.997, median > 0.998; queries min > 0.997."""
    cos = _cosines(enc.encode_passages(MULTILINGUAL), _reference(model, MULTILINGUAL))
    assert cos.min() > 0.997 and np.median(cos) > 0.998, cos
    q_cos = _cosines(
        enc.encode_queries(MULTILINGUAL[:3]), _reference(model, MULTILINGUAL[:3], prompt="query: ")
    )
    assert q_cos.min() > 0.997, q_cos


def _reference(model: Path, texts: list[str], prompt: str = "passage: ") -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model), device="cpu")
    return st.encode(texts, prompt=prompt, normalize_embeddings=True, convert_to_numpy=True)


def test_torch_backend_reproduces_sentence_transformers(tiny, tmp_path, monkeypatch):
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path / "home"))  # the lone-text fp32 artefact goes here

    enc = Encoder(ModelConfig(model=str(tiny), backend="torch", device="cpu"))
    got = enc.encode_passages(MULTILINGUAL)
    assert got.shape == (len(MULTILINGUAL), enc.dim) and got.dtype == np.float32
    assert _cosines(got, _reference(tiny, MULTILINGUAL)).min() > 0.99999
    assert enc.fingerprint == enc.model_fingerprint and enc.describe()["backend"] == "torch"


def test_int8_artefact_is_built_once_and_reused(tiny, tiny_home, monkeypatch):
    import indexer.encoding.artefacts as artefacts
    import indexer.encoding.onnx_build as onnx_build
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tiny_home))

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached int8 model was rebuilt")

    monkeypatch.setattr(onnx_build, "export_fp32", no_rebuild)
    enc = Encoder(ModelConfig(model=str(tiny), device="cpu"))  # auto
    assert enc.backend == "onnx-int8" and enc.fingerprint == f"{enc.model_fingerprint}+onnx-int8"
    assert (
        enc.cache_key == f"{enc.fingerprint}@onnx-format{onnx_build.FORMAT}"
    )  # embeddings cached per artefact format
    folder = onnx_build.artefact_dir(enc.model_fingerprint)
    assert folder.parent.parent == tiny_home and (folder / "model.onnx").is_file()
    record = (folder / artefacts.RECORD).read_text()
    assert '"probe_cosine_min"' in record and '"format": 3' in record
    assert '"matmuls_kept_fp32": 2' in record  # the tiny model's two feed-forward down-projections (random
    assert '"matmuls_exact_4bit": 0' in record  # weights: not 4-bit, so they stay fp32)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    got = enc.encode_passages(MULTILINGUAL)
    assert _cosines(got, _reference(tiny, MULTILINGUAL)).min() > 0.98


def test_int8_vector_does_not_depend_on_the_batch(tiny, tiny_home, monkeypatch):
    """Activations are quantised per text, so the embedding cache may mix vectors from different batches."""
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tiny_home))
    enc = Encoder(ModelConfig(model=str(tiny), backend="onnx-int8", device="cpu"))
    alone = enc.encode_passages(MULTILINGUAL[:1])
    together = enc.encode_passages(MULTILINGUAL)
    np.testing.assert_array_equal(alone[0], together[0])


def test_auto_falls_back_to_torch_without_onnxruntime(tiny, tiny_home, monkeypatch):
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tiny_home))
    _block_onnxruntime(monkeypatch)
    enc = Encoder(ModelConfig(model=str(tiny), device="cpu"))
    assert enc.backend == "torch" and enc.fingerprint == enc.model_fingerprint
    assert enc.describe()["numerics"] == "fp32"
    with pytest.raises(ConfigError, match=r"needs onnxruntime.*--backend torch"):
        Encoder(ModelConfig(model=str(tiny), backend="onnx-int8", device="cpu"))


def test_auto_falls_back_to_torch_when_the_build_fails(tiny, tmp_path, monkeypatch, caplog):
    import indexer.encoding.onnx_build as onnx_build
    from indexer.encoding.encoder import Encoder

    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path))  # nothing built here

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_build, "export_fp32", broken)
    enc = Encoder(ModelConfig(model=str(tiny), device="cpu"))
    assert enc.backend == "torch"
    assert "exporter exploded" in caplog.text
    assert not list((tmp_path / "onnx").iterdir())  # the staging folder was removed
    with pytest.raises(RuntimeError, match="exploded"):  # an explicit choice does not fall back
        Encoder(ModelConfig(model=str(tiny), backend="onnx-int8", device="cpu"))


# ------------------------------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def real_int8_home(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache home with the default model's int8 artefact: the user's, if `e5search setup` built it there,
    else one built once into a temporary home (about a minute)."""
    pytest.importorskip("onnxruntime")
    from indexer.encoding.encoder import folder_fingerprint
    from indexer.encoding.onnx_build import find_int8_model

    if find_int8_model(folder_fingerprint(default_model_path)) is not None:
        return default_model_path.parents[1]
    home = tmp_path_factory.mktemp("int8_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(home))
        from indexer.encoding.encoder import Encoder

        Encoder(ModelConfig(model=str(default_model_path), backend="onnx-int8", device="cpu"))
    return home


@pytest.mark.model
def test_real_model_torch_backend_matches_sentence_transformers(default_model_path):
    from indexer.encoding.encoder import Encoder

    enc = Encoder(ModelConfig(model=str(default_model_path), backend="torch", device="cpu"))
    ref = _reference(default_model_path, MULTILINGUAL)
    assert _cosines(enc.encode_passages(MULTILINGUAL), ref).min() > 0.99999
    q_ref = _reference(default_model_path, MULTILINGUAL[:3], prompt="query: ")
    assert _cosines(enc.encode_queries(MULTILINGUAL[:3]), q_ref).min() > 0.99999


@pytest.mark.model
def test_real_model_int8_within_measured_tolerance(default_model_path, real_int8_home, monkeypatch):
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(real_int8_home))
    enc = Encoder(ModelConfig(model=str(default_model_path), backend="onnx-int8", device="cpu"))
    assert_int8_tolerance(enc, default_model_path)
    assert enc.describe()["backend"] == "onnx-int8" and enc.describe()["numerics"] == "int8"


@pytest.mark.model
def test_an_index_keeps_its_backend(default_model_path, real_int8_home, tmp_path, monkeypatch):
    """An index built with torch: auto follows it (search and incremental indexing), an explicit int8 encoder
    is refused with the fix named, and the index's own backend searches it."""
    from indexer.build.job import build_index
    from indexer.config import IndexConfig
    from indexer.encoding.encoder import Encoder
    from indexer.errors import IndexStateError
    from indexer.search.index import Index

    monkeypatch.setenv("E5SEARCH_HOME", str(real_int8_home))
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(MULTILINGUAL[:4]):
        (docs / f"d{i}.txt").write_text(text, encoding="utf-8")
    torch_enc = Encoder(ModelConfig(model=str(default_model_path), backend="torch", device="cpu"))
    build_index(docs, tmp_path / "idx", encoder=torch_enc)
    int8_enc = Encoder(ModelConfig(model=str(default_model_path), backend="onnx-int8", device="cpu"))
    with pytest.raises(IndexStateError, match=r"\+onnx-int8.*pass --backend torch"):
        Index.open(tmp_path / "idx", encoder=int8_enc)
    (docs / "d4.txt").write_text(MULTILINGUAL[4], encoding="utf-8")
    with pytest.raises(IndexStateError, match=r"encoded with backend 'torch'.*pass --backend torch"):
        build_index(docs, tmp_path / "idx", encoder=int8_enc)
    auto = IndexConfig(model=ModelConfig(model=str(default_model_path), device="cpu"))  # backend="auto"
    assert build_index(docs, tmp_path / "idx", auto).added == 1  # follows the index: torch, not int8
    index = Index.open(tmp_path / "idx")
    assert index.manifest["model"]["backend"] == "torch"
    assert index.encoder.fingerprint == torch_enc.fingerprint  # auto searches with the index's backend
    assert index.search(MULTILINGUAL[0], mode="dense", k=1).hits[0].doc_path == "d0.txt"
    index.close()


@pytest.mark.model
def test_gpu_bf16_path_matches_fp32(default_model_path):
    """The issue's GPU tolerance: cosine >= 0.999 per text. Runs only where CUDA is available."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the torch-bf16 path is unmeasured here")
    from indexer.encoding.encoder import Encoder

    enc = Encoder(ModelConfig(model=str(default_model_path), backend="torch-bf16", device="cuda"))
    assert (
        _cosines(enc.encode_passages(MULTILINGUAL), _reference(default_model_path, MULTILINGUAL)).min()
        >= 0.999
    )
