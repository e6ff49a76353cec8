"""Cross-device negatives, proven with two processes: ``torchrun --nproc_per_node 2`` on CPU (gloo, loopback).

1. Every trainer loss (InfoNCE plain and gradient-cached, with and without hard negatives; distillation plain
   and cached) run by 2 ranks on the two halves of a fixed batch, through DDP, gives the loss and the parameter
   gradients of 1 process on the whole batch (``dist_worker.py``). Controls: without gathering the loss
   differs; gathering without gradients (plain ``all_gather``) keeps the loss but breaks the gradients.
2. ``e5search train contrastive`` under torchrun writes one model folder, from rank 0 only (the other rank's
   writes are audited), over a stale run with ``--overwrite``; the indexer's Encoder loads and encodes with it.

Not covered here: NCCL and GPUs (same code path, other backend), several nodes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainer import dist_worker as W
from tests.trainer.torchrun import tail, torchrun
from trainer import runs

HERE = Path(__file__).resolve().parent
PAIRS = HERE.parents[0] / "fixtures" / "trainer" / "pairs.jsonl"
LAUNCH_SECONDS = 120  # each launch takes ~15 s on 2 busy cores; the timeout only stops a hung rank

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch built without torch.distributed / gloo",
)


def _close(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
    """Equal up to float32 summation-order noise, relative to the gradient's own scale (as test_losses)."""
    scale = max(1.0, float(want.abs().max()))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-5 * scale, msg=name)


@pytest.fixture(scope="module")
def two_ranks(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("two-ranks")
    out, log = folder / "ranks.safetensors", folder / "torchrun.log"
    _, result = torchrun(
        [str(HERE / "dist_worker.py"), str(tiny_model), str(out)], log, timeout=LAUNCH_SECONDS
    )
    assert result.returncode == 0, tail(log)
    return load_file(out)


@pytest.fixture(scope="module")
def one_process(tiny_model: Path) -> dict[str, torch.Tensor]:
    model = W.load(str(tiny_model))
    return W.run_cases(model, model, W.batch_pairs(), str(tiny_model))


def _grads(results: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in results.items() if k.startswith(prefix)}


@pytest.mark.parametrize("case", list(W.cases("model")))
def test_two_processes_equal_the_full_batch(two_ranks, one_process, case):
    assert float(two_ranks[f"{case}/loss"]) == pytest.approx(float(one_process[f"{case}/loss"]), rel=1e-5)
    got, want = _grads(two_ranks, f"{case}/grad/"), _grads(one_process, f"{case}/grad/")
    assert got.keys() == want.keys() and len(want) > 10
    for name in want:
        _close(got[name], want[name], f"{case}: {name}")


def test_the_comparison_catches_missing_negatives_and_lost_gradients(two_ranks, one_process):
    full = float(one_process["mnrl/loss"])
    assert abs(float(two_ranks["control/no_gather/loss"]) - full) > 0.1  # 4 candidates per query, not 8
    for case in ("mnrl", "cached_hard", "distill"):
        prefix = f"control/plain_gather/{case}/"
        assert float(two_ranks[prefix + "loss"]) == pytest.approx(
            float(one_process[f"{case}/loss"]), rel=1e-5
        )
        got, want = _grads(two_ranks, prefix + "grad/"), _grads(one_process, f"{case}/grad/")
        worst = max(
            float((got[n] - want[n]).abs().max() / want[n].abs().max().clamp(min=1e-12)) for n in want
        )
        assert worst > 0.1, f"{case}: gathering without gradients went unnoticed"


# A rank other than 0 may only create the checkpoint folder and write its own RNG state there (needed to resume).
OTHER_RANK_MAY = re.compile(r"^os\.mkdir .*/\.checkpoints/checkpoint-\d+/?$|/rng_state_\d+\.pth$")


def test_torchrun_contrastive_writes_one_model_from_rank_zero(tiny_model, tmp_path):
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    out, audit = tmp_path / "model", tmp_path / "audit"
    audit.mkdir()
    out.mkdir()  # a finished run with another config: --overwrite replaces it (rank 0 first, the others wait)
    (out / runs.RECORD).write_text(json.dumps({"stage": "contrastive", "config": {}, "finished": True}))
    args = ["contrastive", "--pairs", str(PAIRS), "--output", str(out), "--model", str(tiny_model)]
    args += ["--max-steps", "2", "--batch-size", "4", "--mini-batch-size", "2", "--lr", "1e-3"]
    args += ["--save-steps", "50", "--max-seq-length", "32", "--overwrite"]
    log = tmp_path / "torchrun.log"
    _, result = torchrun(
        [str(HERE / "rank_audit.py"), str(out), str(audit), "train", *args], log, timeout=LAUNCH_SECONDS
    )
    assert result.returncode == 0, tail(log)

    record = json.loads((out / runs.RECORD).read_text())
    assert record["finished"] and record["world_size"] == 2 and record["global_batch_size"] == 8
    assert [m["step"] for m in runs.read_metrics(out) if "loss" in m] == [1, 2]  # logged once, by rank 0
    assert not (out / runs.CHECKPOINTS).exists() and not (out / ".identity.json").exists()
    assert (audit / "writes-rank0.txt").is_file()
    other = (
        (audit / "writes-rank1.txt").read_text().splitlines() if (audit / "writes-rank1.txt").exists() else []
    )
    assert [w for w in other if not OTHER_RANK_MAY.search(w)] == [], "rank 1 wrote into the model folder"

    encoder = Encoder(ModelConfig(model=str(out), backend="torch", device="cpu"))
    vectors = encoder.encode_queries(["Wie entsteht Honig?", "蜜蜂怎样酿蜜？"])
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
