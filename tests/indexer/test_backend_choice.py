"""Which backend ``auto`` takes on this machine: by CPU features without a calibration, by the calibration with
one; the calibration itself on faked timings; and the CPU bf16 path's vectors against fp32 where the CPU has it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer.config import ModelConfig
from indexer.encoding import backends, calibrate, machine
from indexer.encoding.backends import auto_candidates, choose_backend

AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"})
AVX2 = frozenset({"avx2", "fma"})


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """Pretend to be a CPU with the given flags (and no calibration, in a fresh cache home)."""
    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(backends, "read_calibration", machine.read_calibration)

    def use(flags: frozenset[str], name: str = "Test CPU") -> None:
        monkeypatch.setattr(machine, "cpu_identity", lambda: (name, flags))
        monkeypatch.setattr(backends, "fast_bf16", lambda f=None: machine.fast_bf16(flags))

    return use


def test_cpu_features_order_auto_without_a_calibration(cpu):
    pytest.importorskip("onnxruntime")
    cpu(AMX)
    assert auto_candidates("cpu") == ["torch-bf16", "onnx-int8", "torch"]
    assert choose_backend("torch-bf16", "cpu") == "torch-bf16"
    cpu(AVX2)
    assert auto_candidates("cpu") == ["onnx-int8", "torch"]


def test_auto_follows_this_machines_calibration_and_ignores_another_cpus(cpu, tmp_path):
    pytest.importorskip("onnxruntime")
    cpu(AMX, name="Xeon A")
    machine.write_calibration({"order": ["onnx-int8", "torch-bf16", "torch"]})
    assert auto_candidates("cpu") == ["onnx-int8", "torch-bf16", "torch"]
    cpu(AMX, name="Xeon B")  # the same cache home on another CPU: the record is not this machine's
    assert machine.read_calibration() is None
    assert auto_candidates("cpu") == ["torch-bf16", "onnx-int8", "torch"]


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_calibration_orders_by_measured_time_and_drops_what_misses_the_bar(cpu, monkeypatch):
    """Faked timings: int8 is fastest but misses its cosine bar, bf16 beats fp32; the record says so."""
    cpu(AMX)
    clock = _FakeClock()
    cost = {"torch": 2.0, "torch-bf16": 0.8, "onnx-int8": 0.5}
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(48, 8)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)

    class FakeEncoder:
        def __init__(self, config: ModelConfig):
            self.backend = config.backend

        def encode_passages(self, texts):
            clock.now += cost[self.backend] * len(texts) / 48
            vectors = reference[: len(texts)].copy()
            if self.backend == "onnx-int8":  # far from fp32: cosine well under 0.995
                vectors[0] = -vectors[0]
            return vectors

    monkeypatch.setattr(calibrate, "Encoder", FakeEncoder)
    monkeypatch.setattr(calibrate.time, "perf_counter", clock)
    monkeypatch.setattr(calibrate, "runnable_here", lambda: ["torch-bf16", "onnx-int8", "torch"])
    record = calibrate.calibrate(rounds=2)
    assert record["order"] == ["torch-bf16", "torch"]  # int8 dropped: min cosine -1
    assert record["seconds"] == {"torch-bf16": 0.8, "onnx-int8": 0.5, "torch": 2.0}
    assert record["min_cosine"]["onnx-int8"] < 0 and record["min_cosine"]["torch-bf16"] == pytest.approx(1.0)
    saved = json.loads((Path(machine.cache_home()) / machine.CALIBRATION_FILE).read_text())
    assert saved["machine"] == machine.machine_key() and saved["order"] == record["order"]
    assert auto_candidates("cpu") == ["torch-bf16", "torch"]


def test_calibration_probe_is_multilingual_and_of_several_lengths():
    texts = calibrate.probe_passages()
    assert len(texts) == 48 and len({len(t) for t in texts}) > 10
    assert any("光合" in t for t in texts) and any("Фотосинтез" in t for t in texts)


@pytest.mark.model
def test_cpu_bf16_vectors_match_fp32(default_model_path):
    """The CPU bf16 path shares fp32's fingerprint, so it must stay within fp32's tolerance (cosine >= 0.999 per
    text; measured 0.99999) on a multilingual sample. Runs only where the CPU has bf16 instructions."""
    if not machine.fast_bf16():
        pytest.skip(
            "this CPU has no bf16 instructions (AMX / AVX512-BF16): the CPU bf16 path cannot run here"
        )
    from indexer.encoding.encoder import Encoder

    texts = calibrate.probe_passages()
    fp32 = Encoder(ModelConfig(model=str(default_model_path), backend="torch", device="cpu"))
    monkey = pytest.MonkeyPatch()
    monkey.setattr(backends, "fast_bf16", machine.fast_bf16)  # the real CPU, not the tests' AVX2 profile
    try:
        bf16 = Encoder(ModelConfig(model=str(default_model_path), backend="torch-bf16", device="cpu"))
    finally:
        monkey.undo()
    assert bf16.fingerprint == fp32.fingerprint
    cos = np.sum(bf16.encode_passages(texts) * fp32.encode_passages(texts), axis=1)
    assert cos.min() >= 0.999, cos.min()
