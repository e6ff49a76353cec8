"""Contrastive training (E5 pre-training recipe) and distillation fine-tuning, on sentence-transformers' trainer.

What the library gives: the training loop (accelerate: DDP under ``torchrun``, bf16/fp16 autocast), warm-up +
linear decay, checkpoints with optimizer/scheduler/RNG/sampler state (exact resume), the no-duplicates batch
sampler, per-column prompts applied by the data collator, and the information-retrieval evaluator.
What this module adds: pairs → columns, prompts read from the model (or the instruction format) and recorded in
the output model, refusal of data that already carries prompts, E5's defaults, metrics JSONL, and the run
record saved beside the model.

Prompts are applied exactly once: texts in the data are bare, the collator prepends each column's prompt, and
the model folder records the same prompts so :class:`indexer.encoding.encoder.Encoder` embeds queries the same way.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexer.cache import file_sha256
from indexer.config import ModelConfig
from indexer.encoding.encoder import resolve_prompts
from indexer.errors import ConfigError
from trainer import runs
from trainer.config import ContrastiveConfig, DistillConfig, to_dict
from trainer.data import Pair, check_no_prompts, columns, read_pairs

logger = logging.getLogger(__name__)

DEFAULT_TASK = "default"


def instruct_prompt(instruction: str) -> str:
    """mE5-instruct's query format (Wang et al. 2024): ``Instruct: {task}\\nQuery: {q}``."""
    return f"Instruct: {instruction.strip()}\nQuery: "


def model_prompts(model, config: ContrastiveConfig) -> tuple[str, str]:
    """(query prompt, passage prompt): config overrides, else the model's recorded prompts, else E5's."""
    query, passage = resolve_prompts(model.prompts, ModelConfig.query_prompt, ModelConfig.passage_prompt)
    query = config.query_prompt if config.query_prompt is not None else query
    passage = config.passage_prompt if config.passage_prompt is not None else passage
    if config.instruction is not None:
        query = instruct_prompt(config.instruction)
    return query, passage


def task_prompts(pairs: Sequence[Pair], config: ContrastiveConfig, query: str) -> dict[str, str]:
    """Query prompt per task name; one task (``default``) unless ``config.instructions`` names several."""
    if not config.instructions:
        return {DEFAULT_TASK: query}
    out = {}
    for task in sorted({p.task or DEFAULT_TASK for p in pairs}):
        if task in config.instructions:
            out[task] = instruct_prompt(config.instructions[task])
        elif config.instruction is not None:
            out[task] = query
        else:
            raise ConfigError(
                f"records have task {task!r} but instructions has no entry for it and no default "
                f"instruction is set; add instructions.{task} or instruction"
            )
    return out


def build_datasets(
    pairs: Sequence[Pair],
    num_negatives: int,
    prompts_by_task: dict[str, str],
    passage: str,
    with_labels: bool,
) -> tuple[Any, dict]:
    """(Dataset or DatasetDict per task, the trainer's ``prompts`` argument)."""
    from datasets import Dataset, DatasetDict

    def column_prompts(query_prompt: str) -> dict[str, str]:
        out = {"anchor": query_prompt, "positive": passage}
        out.update({f"negative_{j + 1}": passage for j in range(num_negatives)})
        return out

    if list(prompts_by_task) == [DEFAULT_TASK]:
        data = Dataset.from_dict(columns(pairs, num_negatives, with_labels))
        return data, column_prompts(prompts_by_task[DEFAULT_TASK])
    groups: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        groups[p.task or DEFAULT_TASK].append(p)
    data = DatasetDict(
        {t: Dataset.from_dict(columns(g, num_negatives, with_labels)) for t, g in groups.items()}
    )
    return data, {t: column_prompts(prompts_by_task[t]) for t in groups}


def beir_evaluator(config: ContrastiveConfig, query: str, passage: str):
    """nDCG@10 (and MRR, recall) on a BEIR split, run every ``eval_steps``."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from trainer.pairs import doc_text, read_beir

    assert config.eval_beir is not None
    corpus, queries, qrels = read_beir(config.eval_beir, config.eval_split)
    qids = sorted(q for q in qrels if q in queries and any(s > 0 for s in qrels[q].values()))
    qids = qids[: config.eval_max_queries]
    return InformationRetrievalEvaluator(
        {q: queries[q] for q in qids},
        {d: doc_text(doc) for d, doc in corpus.items()},
        {q: {d for d, s in qrels[q].items() if s > 0} for q in qids},
        name=f"{Path(config.eval_beir).name}-{config.eval_split}",
        query_prompt=query,
        corpus_prompt=passage,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[10, 100],
        map_at_k=[100],
        batch_size=64,
    )


def recorded_prompts(query: str, passage: str, prompts_by_task: dict[str, str]) -> dict[str, str]:
    """The prompts saved in the output model: ``query``/``passage``/``document``, plus ``query:{task}``."""
    out = {"query": prompts_by_task.get(DEFAULT_TASK, query), "passage": passage, "document": passage}
    if len(prompts_by_task) > 1 or DEFAULT_TASK not in prompts_by_task:
        out.update({f"query:{t}": p for t, p in prompts_by_task.items()})
    return out


def training_args(config: ContrastiveConfig, output: Path, show_progress: bool):
    """The Trainer's arguments; ``prompts`` are filled in once the model is read.

    They come first: their first use (``main_process_first``) joins the ``torchrun`` process group and picks
    this rank's GPU, before the model is loaded onto it.
    """
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    return SentenceTransformerTrainingArguments(
        **runs.common_args(config, output, show_progress),
        max_grad_norm=config.max_grad_norm,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate text in a batch would be a false negative
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
        eval_strategy="steps" if config.eval_beir and config.eval_steps else "no",
        eval_steps=config.eval_steps or None,
    )


def _train(
    pairs_path: str | Path,
    output: str | Path,
    config: ContrastiveConfig,
    stage: str,
    overwrite: bool,
    show_progress: bool,
) -> Path:
    from sentence_transformers import SentenceTransformerTrainer

    from indexer.models.resolve import load_model, resolve_model
    from trainer.losses import DistillKLInfoNCELoss, contrastive_loss

    t0 = time.time()
    output = Path(output).expanduser()
    pairs = read_pairs(pairs_path)
    identity = {
        "stage": stage,
        "config": to_dict(config),
        "data_sha256": file_sha256(pairs_path),
    }  # the content, not the path: a moved file still matches
    args = training_args(config, output, show_progress)
    with runs.main_process_first(args):  # rank 0 prepares the folder; under torchrun the others then read it
        done, checkpoint = runs.prepare(output, identity, overwrite)
    if done:
        return output
    model = load_model(config.model)
    inference_length = model.max_seq_length
    if config.max_seq_length:  # truncation for training only; the saved model keeps its own length
        model.max_seq_length = config.max_seq_length
    query, passage = model_prompts(model, config)
    check_no_prompts(pairs, [query, passage, *(model.prompts or {}).values()], pairs_path)
    by_task = task_prompts(pairs, config, query)
    distill = isinstance(config, DistillConfig)
    data, prompts = build_datasets(pairs, config.num_negatives, by_task, passage, with_labels=distill)
    model.prompts = recorded_prompts(query, passage, by_task)  # checkpoints carry them too
    loss = (
        DistillKLInfoNCELoss.from_config(model, config)
        if isinstance(config, DistillConfig)
        else contrastive_loss(model, config)
    )
    evaluator = (
        beir_evaluator(config, by_task.get(DEFAULT_TASK, query), passage) if config.eval_beir else None
    )
    args.prompts = prompts  # the collator prepends each column's prompt
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=loss,
        evaluator=evaluator,
        callbacks=[runs.MetricsJsonl(output / runs.METRICS)],
    )
    runs.quiet_stdout(trainer)
    runs.rank_zero_saves(trainer)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.accelerator.wait_for_everyone()  # every rank's checkpoint files are written before rank 0 drops them
    if trainer.is_world_process_zero():
        model.max_seq_length = inference_length
        model.save(str(output), create_model_card=False)
        extra = {
            "data": str(pairs_path),
            "base_model": config.model,
            "base_model_path": resolve_model(config.model),
            "pairs": len(pairs),
            "prompts": model.prompts,
            "loss": type(loss).__name__,
            "scale": config.scale,
            "world_size": args.world_size,
            "global_batch_size": config.batch_size * args.world_size,
        }
        runs.finish(output, identity, extra, config.keep_checkpoints, t0)
    trainer.accelerator.wait_for_everyone()  # no rank returns (to a next stage) before the model is complete
    logger.info("trained %s in %.0f s", output, time.time() - t0)
    return output


def train_contrastive(
    pairs_path: str | Path,
    output: str | Path,
    config: ContrastiveConfig = ContrastiveConfig(),
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    """InfoNCE over cosine similarity at temperature τ with in-batch (+ hard) negatives; writes a model folder.

    >>> train_contrastive("pairs.jsonl", "models/adapted", ContrastiveConfig(max_steps=300))  # doctest: +SKIP
    """
    if isinstance(config, DistillConfig):
        raise ConfigError("train_contrastive got a DistillConfig; call train_distill")
    return _train(pairs_path, output, config, "contrastive", overwrite, show_progress)


def train_distill(
    pairs_path: str | Path,
    output: str | Path,
    config: DistillConfig = DistillConfig(),
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    """KL(cross-encoder ‖ bi-encoder) + α · InfoNCE on pairs with mined negatives and teacher scores."""
    return _train(pairs_path, output, config, "distill", overwrite, show_progress)
