"""The rules of ``indexer.encoding.ray_encode`` that need no cluster, and ``--ray auto`` starting a local one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from indexer.config import ModelConfig
from indexer.encoding.ray_encode import RayEncoder, _host_port, connect, cpus_per_worker, worker_model
from indexer.errors import ConfigError


@pytest.mark.parametrize(
    "requested, resolved, gpus, backend, device, per_worker",
    [
        ("auto", "torch", 8, "torch-bf16", "cuda", 1.0),  # fp32 class on GPUs: the GPU path
        ("torch-bf16", "torch-bf16", 2, "torch-bf16", "cuda", 1.0),
        ("torch", "torch", 2, "torch", "cuda", 1.0),  # fp32 asked for: fp32 on the GPU
        ("auto", "onnx-int8", 8, "onnx-int8", "cpu", 0.0),  # int8 runs on CPU only, GPUs or not
        ("ct2-int8", "ct2-int8", 0, "ct2-int8", "cpu", 0.0),
        ("auto", "torch-bf16", 0, "torch-bf16", "cpu", 0.0),  # the backend this machine resolved
    ],
)
def test_workers_keep_the_numerics_and_take_gpus_only_for_fp32(
    requested, resolved, gpus, backend, device, per_worker
):
    config, gpu_share = worker_model(ModelConfig(backend=requested, batch_size=16), resolved, gpus)
    assert (config.backend, config.device, gpu_share) == (backend, device, per_worker)
    assert config.batch_size == 16 and config.model == ModelConfig().model


def test_cpus_are_shared_out_at_least_one_each():
    assert [cpus_per_worker(16, n) for n in (1, 2, 3, 32)] == [16.0, 8.0, 5.0, 1.0]


@pytest.mark.parametrize("address", ["10.0.0.5:6379", "ray://10.0.0.5:6379", "[::1]:6379"])
def test_addresses_are_host_and_port(address):
    assert _host_port(address)[1] == 6379


@pytest.mark.parametrize("address", ["10.0.0.5", "10.0.0.5:port", ":6379"])
def test_a_malformed_address_names_the_fix(address):
    with pytest.raises(ConfigError, match="give HOST:PORT of a Ray head"):
        _host_port(address)


def test_parts_cover_every_text_once_and_mix_lengths():
    encoder = RayEncoder.__new__(RayEncoder)  # only the splitting rule: no actors
    encoder.actors, encoder.part_size = [object(), object()], 4
    for n in (1, 3, 8, 9, 37):
        parts = encoder._parts(n)
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))
        assert len(parts) == min(n, max(2, -(-n // 4)))  # at least one per worker, at most part_size each
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.ray
def test_auto_without_a_cluster_starts_a_local_one_on_loopback(ray_head, monkeypatch):
    """No $RAY_ADDRESS and no cluster recorded (an empty Ray temp folder): a local cluster, on 127.0.0.1."""
    import ray

    temp = Path(tempfile.mkdtemp(prefix="e5rayl", dir="/tmp"))  # short: Ray's socket paths live under it
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(temp))
    try:
        assert connect("auto") is True
        nodes = [n for n in ray.nodes() if n["Alive"]]
        assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
