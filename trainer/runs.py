"""A training run's folder: checkpoints, per-step metrics, resume, and the record saved beside the model.

Layout of ``OUTPUT/`` (a standard sentence-transformers or CrossEncoder folder once finished)::

    .checkpoints/checkpoint-N/   Trainer checkpoints (model, optimizer, scheduler, RNG, sampler position)
    train_metrics.jsonl          one JSON object per logged step (loss, learning rate, grad norm, evals)
    README.md                    the model card (trainer/modelcard.py): base model, data, loss, prompts, evals
    e5search_train.json          the stage, its config, the data's sha256, prompts, versions; written last

A run whose record says ``finished`` with the same config and data is not run again; one with checkpoints and
no record resumes from the last checkpoint, so a killed job continues the same run (same loss trajectory). The
hidden ``.checkpoints`` folder is skipped by :func:`indexer.encoding.encoder.folder_fingerprint` and removed at the end
unless ``keep_checkpoints``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from indexer.errors import ConfigError

logger = logging.getLogger(__name__)

RECORD = "e5search_train.json"
CHECKPOINTS = ".checkpoints"
METRICS = "train_metrics.jsonl"


class MetricsJsonl(TrainerCallback):
    """Appends every ``Trainer.log`` call (training loss, learning rate, grad norm, eval scores) as a JSON line."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "time": round(time.time(), 3),
        }
        record.update({k: (round(v, 8) if isinstance(v, float) else v) for k, v in logs.items()})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        logger.info(
            "step %d: %s", state.global_step, {k: v for k, v in record.items() if k not in ("step", "time")}
        )


def quiet_stdout(trainer) -> None:
    """transformers prints log dicts to stdout when its progress bar is off; they go to the log and JSONL instead."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def rank_zero_saves(trainer) -> None:
    """Only global rank 0 writes the model into a checkpoint.

    sentence-transformers' ``Trainer._save`` assumes it runs on process zero alone, but transformers 5 calls it
    on every rank and checks ``should_save`` inside its own ``_save`` (which the override replaces); under
    ``torchrun`` every rank then wrote the same checkpoint files at the same time (the test's write audit saw
    rank 1 write ``config.json``, ``modules.json``, the tokenizer, ... of ``checkpoint-N``).
    """
    save = trainer._save

    def _save(output_dir: str | None = None, state_dict: Any = None) -> None:
        if trainer.args.should_save:
            save(output_dir, state_dict=state_dict)

    trainer._save = _save


@contextmanager
def main_process_first(args) -> Iterator[None]:
    """Global rank 0 runs the block, then the other ranks do (they read what it wrote); one process: no-op."""
    with args.main_process_first(local=False, desc="preparing the run folder"):
        yield


def read_metrics(output: str | Path) -> list[dict[str, Any]]:
    path = Path(output) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after ``step``: a resumed run logs those steps again."""
    if path.is_file():
        keep = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step
        ]
        path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def last_checkpoint(output: Path) -> Path | None:
    folder = output / CHECKPOINTS
    if not folder.is_dir():
        return None
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def prepare(output: Path, identity: dict[str, Any], overwrite: bool = False) -> tuple[bool, Path | None]:
    """Decide what to do with ``output``: returns (already finished, checkpoint to resume from).

    ``identity`` (stage, config, data hash) must match a finished or interrupted run to reuse it.
    """
    identity = json.loads(json.dumps(identity, default=str))  # compare as it reads back from JSON
    record_path = output / RECORD
    if overwrite and output.exists() and is_main_process():
        shutil.rmtree(output)
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if {k: record.get(k) for k in identity} == identity:
            logger.info("%s is already trained with this config and data; nothing to do", output)
            return True, None
        raise ConfigError(
            f"{output} holds a model trained with another config or data; give another --output, "
            "or pass --overwrite to replace it"
        )
    started = output / ".identity.json"
    if output.exists() and any(output.iterdir()) and not started.is_file():
        raise ConfigError(f"{output} exists and is not a training run; give an empty or new --output folder")
    if started.is_file() and json.loads(started.read_text(encoding="utf-8")) != identity:
        raise ConfigError(
            f"{output} holds an interrupted run with another config or data; resume it with the "
            "same settings, or pass --overwrite to start again"
        )
    checkpoint = last_checkpoint(output)
    if is_main_process():
        output.mkdir(parents=True, exist_ok=True)
        started.write_text(json.dumps(identity, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if checkpoint is not None:
            logger.info("resuming %s from %s", output, checkpoint.name)
            _truncate_metrics(output / METRICS, int(checkpoint.name.split("-")[-1]))
        else:
            (output / METRICS).unlink(missing_ok=True)
    return False, checkpoint


def is_main_process() -> bool:
    """Rank 0 under torchrun (or the only process): the one that writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def precision_args(precision: str) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    if precision == "fp16" and not cuda:
        raise ConfigError("precision='fp16' needs a CUDA GPU; use 'bf16' or 'fp32' on CPU")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16", "use_cpu": not cuda}


def common_args(config: Any, output: Path, show_progress: bool) -> dict[str, Any]:
    """TrainingArguments shared by every stage: schedule, checkpoints, logging, seeds, precision."""
    return dict(
        output_dir=str(output / CHECKPOINTS),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",  # warm-up then linear decay to 0, as in E5
        warmup_steps=config.warmup_ratio,  # transformers 5: a float < 1 is a ratio of max_steps
        weight_decay=config.weight_decay,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=not show_progress,
        dataloader_drop_last=True,  # equal batches on every device, so gathered negatives line up
        **precision_args(config.precision),
    )


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "e5search",
        "sentence-transformers",
        "transformers",
        "torch",
        "accelerate",
        "peft",
        "datasets",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def finish(
    output: Path, identity: dict[str, Any], extra: dict[str, Any], keep_checkpoints: bool, started: float
) -> dict[str, Any]:
    """Write the model card (README.md), then the record (last: it marks the run as finished); drop checkpoints."""
    import torch

    from trainer.modelcard import write_card

    metrics = read_metrics(output)
    losses = [m["loss"] for m in metrics if "loss" in m]
    record = {
        **identity,
        **extra,
        "finished": True,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "versions": versions(),
    }
    write_card(output, record, metrics)
    (output / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output / ".identity.json").unlink(missing_ok=True)
    if not keep_checkpoints:
        shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
    return record
