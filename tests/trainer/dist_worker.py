"""One rank of the cross-device check in ``test_distributed.py``; also the single-process reference.

Under ``torchrun`` (gloo, CPU) each rank takes its half of a fixed batch, wraps the model in DDP as the
Trainer does, and runs every trainer loss with cross-device gathering; rank 0 writes the rank-averaged loss and
the DDP-averaged parameter gradients to a safetensors file. :func:`run_cases` called in one process on the
whole batch (no process group, so nothing is gathered) is the reference the test compares against.

Two controls show the comparison has teeth: ``control/no_gather`` (each rank sees only its own negatives:
the loss must differ) and ``control/plain_gather/*`` (other ranks' embeddings gathered without gradients,
the classic bug: the loss agrees but the gradients must not).

Usage: ``torchrun --nproc_per_node 2 ... tests/trainer/dist_worker.py MODEL_DIR OUT.safetensors``
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from trainer.config import ContrastiveConfig, DistillConfig
from trainer.data import Pair, read_pairs
from trainer.losses import DistillKLInfoNCELoss, contrastive_loss
from trainer.train import build_datasets

PAIRS_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "trainer" / "pairs.jsonl"
BATCH = 8  # the full batch; each of 2 ranks embeds 4 of it


def batch_pairs() -> list[Pair]:
    """8 multilingual pairs, each with one hard negative (another pair's passage) and teacher scores."""
    pairs = read_pairs(PAIRS_PATH)
    assert len(pairs) >= 2 * BATCH, "the fixture needs 16 pairs"
    return [
        Pair(p.query, p.passage, (pairs[BATCH + i].passage,), (4.0 - 0.5 * i, -1.0 + 0.25 * i))
        for i, p in enumerate(pairs[:BATCH])
    ]


def cases(model_dir: str) -> dict[str, ContrastiveConfig]:
    """Every loss the trainer builds: plain and cached InfoNCE (with and without hard negatives), distillation."""
    c: dict[str, Any] = dict(model=model_dir, temperature=0.02)
    return {
        "mnrl": ContrastiveConfig(**c, mini_batch_size=None),
        "mnrl_hard": ContrastiveConfig(**c, mini_batch_size=None, num_negatives=1),
        "cached": ContrastiveConfig(**c, mini_batch_size=2),
        "cached_hard": ContrastiveConfig(**c, mini_batch_size=2, num_negatives=1),
        "distill": DistillConfig(**c, mini_batch_size=None, num_negatives=1, alpha=0.5),
        "distill_cached": DistillConfig(**c, mini_batch_size=2, num_negatives=1, alpha=0.5),
    }


def make_loss(model, config: ContrastiveConfig) -> torch.nn.Module:
    if isinstance(config, DistillConfig):
        return DistillKLInfoNCELoss.from_config(model, config)
    return contrastive_loss(model, config)


def features(model, pairs: list[Pair], config: ContrastiveConfig) -> tuple[list[dict], Tensor | None]:
    """Tokenised columns (anchor, positive, negatives) through the trainer's own datasets and collator."""
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

    distill = isinstance(config, DistillConfig)
    data, prompts = build_datasets(pairs, config.num_negatives, {"default": "query: "}, "passage: ", distill)
    batch = SentenceTransformerDataCollator(preprocess_fn=model.preprocess, prompts=prompts)(list(data))
    cols = ["anchor", "positive"] + [f"negative_{j + 1}" for j in range(config.num_negatives)]
    feats = [{k[len(c) + 1 :]: v for k, v in batch.items() if k.startswith(c + "_")} for c in cols]
    return feats, batch.get("label")


def use_wrapped(loss: torch.nn.Module, wrapped: torch.nn.Module, model) -> None:
    """What SentenceTransformerTrainer.override_model_in_loss does: the loss calls the DDP wrapper."""
    for name, child in list(loss.named_children()):
        if child is model:
            setattr(loss, name, wrapped)
        else:
            use_wrapped(child, wrapped, model)
    if not hasattr(wrapped, "preprocess"):
        wrapped.preprocess = model.preprocess


def loss_and_grads(model, wrapped, config: ContrastiveConfig, pairs: list[Pair]) -> dict[str, Tensor]:
    """{"loss": mean over ranks, "grad/<param>": gradient after DDP's average} for one loss on ``pairs``."""
    import torch.distributed as dist

    loss_fn = make_loss(model, config)
    if wrapped is not model:
        use_wrapped(loss_fn, wrapped, model)
    feats, labels = features(model, pairs, config)
    model.zero_grad(set_to_none=True)
    loss = loss_fn(feats, labels)
    loss.backward()
    value = loss.detach().clone()
    if dist.is_initialized():
        dist.all_reduce(value)
        value /= dist.get_world_size()
    grads = {f"grad/{n}": p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return {"loss": value.reshape(()), **grads}


@contextmanager
def plain_all_gather() -> Iterator[None]:
    """Gather other ranks' embeddings *without* gradients (``dist.all_gather``), in every loss module."""
    import sentence_transformers.sentence_transformer.losses.cached_multiple_negatives_ranking as cached
    import sentence_transformers.sentence_transformer.losses.multiple_negatives_ranking as plain
    from sentence_transformers.util import all_gather

    import trainer.losses as ours

    modules = (cached, plain, ours)
    saved = [m.all_gather_with_grad for m in modules]
    for m in modules:
        m.all_gather_with_grad = lambda t: all_gather(t, with_grad=False)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m, f in zip(modules, saved):
            m.all_gather_with_grad = f  # type: ignore[attr-defined]


def run_cases(model, wrapped, pairs: list[Pair], model_dir: str) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for name, config in cases(model_dir).items():
        out.update({f"{name}/{k}": v for k, v in loss_and_grads(model, wrapped, config, pairs).items()})
    return out


def run_controls(model, wrapped, pairs: list[Pair], model_dir: str) -> dict[str, Tensor]:
    no_gather = dataclasses.replace(cases(model_dir)["mnrl"], gather_across_devices=False)
    out = {f"control/no_gather/{k}": v for k, v in loss_and_grads(model, wrapped, no_gather, pairs).items()}
    with plain_all_gather():
        for name in ("mnrl", "cached_hard", "distill"):
            config = cases(model_dir)[name]
            res = loss_and_grads(model, wrapped, config, pairs)
            out.update({f"control/plain_gather/{name}/{k}": v for k, v in res.items()})
    return out


def load(model_dir: str):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.eval()  # no dropout: both sides must see the same network
    return model


def main(model_dir: str, out_path: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = load(model_dir)
    # find_unused_parameters: as the Trainer sets it for a SentenceTransformer (BERT's pooler gets no gradient)
    wrapped = DistributedDataParallel(model, find_unused_parameters=True)
    pairs = batch_pairs()
    share = len(pairs) // world
    mine = pairs[rank * share : (rank + 1) * share]
    out = {**run_cases(model, wrapped, mine, model_dir), **run_controls(model, wrapped, mine, model_dir)}
    if rank == 0:
        save_file({k: v.contiguous() for k, v in out.items()}, out_path)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
