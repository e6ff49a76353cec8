"""Cross-encoder rerankers trained on positives and mined hard negatives: pointwise binary cross-entropy, or
listwise softmax cross-entropy over each query's group (``loss="lce"``), optionally on the bottom layers only.

Starts from any model folder or hub id; from a bi-encoder folder (the default model) it takes the BERT backbone
and adds a fresh one-logit classification head. The output is a standard CrossEncoder folder that
``e5search search --reranker`` and :class:`indexer.retrieval.rerank.Reranker` load directly. With ``lora_r > 0`` only a
LoRA adapter (attention query/value) and the head are trained; they are merged into the saved model and also
written on their own under ``adapter/`` (a few MB: what could ship in a repository and be re-applied to the
default backbone at setup).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

from indexer.cache import file_sha256
from trainer import runs
from trainer.config import RerankerConfig, to_dict
from trainer.data import Pair, TrainingDataError, read_pairs

logger = logging.getLogger(__name__)


def labelled_pairs(pairs: Sequence[Pair], num_negatives: int) -> dict[str, list]:
    """(query, passage, 1) for each pair and (query, negative, 0) for its first ``num_negatives`` negatives."""
    if num_negatives and any(len(p.negatives) < num_negatives for p in pairs):
        raise TrainingDataError(
            f"num_negatives={num_negatives} but some records have fewer negatives; "
            "mine them with `e5search train mine` or lower --num-negatives"
        )
    cols: dict[str, list] = {"query": [], "passage": [], "label": []}
    for p in pairs:
        for text, label in [(p.passage, 1.0)] + [(n, 0.0) for n in p.negatives[:num_negatives]]:
            cols["query"].append(p.query)
            cols["passage"].append(text)
            cols["label"].append(label)
    return cols


def _hf_model(model):
    """The transformers model inside a CrossEncoder (its first module)."""
    return model[0].auto_model if hasattr(model[0], "auto_model") else model[0].model


def _fresh_pooler(model) -> None:
    """The default model's rebuilt folder carries a zero pooler (mean pooling never used it); BERT's
    classification head reads the pooler, so give it the usual N(0, 0.02) start instead of a dead one."""
    import torch

    bert = _hf_model(model)
    pooler = getattr(getattr(bert, "bert", None), "pooler", None)
    if pooler is not None and torch.count_nonzero(pooler.dense.weight) == 0:
        torch.nn.init.normal_(pooler.dense.weight, std=bert.config.initializer_range)
        logger.info("re-initialised the all-zero BERT pooler for the classification head")


def _scores_itself(folder: str) -> bool:
    """A sentence-transformers folder whose last module writes the cross-encoder's ``scores``."""
    modules = json.loads((Path(folder) / "modules.json").read_text(encoding="utf-8"))
    last = Path(folder) / modules[-1]["path"] / "config.json"
    return (
        last.is_file() and json.loads(last.read_text(encoding="utf-8")).get("module_output_name") == "scores"
    )


def truncate_layers(model, num_layers: int) -> None:
    """Keep the bottom ``num_layers`` transformer layers (the saved config says so: the folder loads as is)."""
    bert = _hf_model(model)
    encoder = bert.base_model.encoder
    if not 0 < num_layers <= len(encoder.layer):
        raise TrainingDataError(f"num_layers={num_layers}: the backbone has {len(encoder.layer)} layers")
    encoder.layer = encoder.layer[:num_layers]
    bert.config.num_hidden_layers = num_layers


def _freeze_embeddings(model) -> None:
    _hf_model(model).base_model.embeddings.requires_grad_(False)


def group_columns(pairs: Sequence[Pair], num_negatives: int) -> dict[str, list]:
    """One row per pair: query, positive, then its first ``num_negatives`` negatives (for ``loss="lce"``)."""
    if any(len(p.negatives) < num_negatives for p in pairs):
        raise TrainingDataError(
            f"loss='lce' with num_negatives={num_negatives} but some records have fewer negatives; "
            "mine them with `e5search train mine` or lower --num-negatives"
        )
    cols: dict[str, list] = {"query": [p.query for p in pairs], "positive": [p.passage for p in pairs]}
    for i in range(num_negatives):
        cols[f"negative_{i + 1}"] = [p.negatives[i] for p in pairs]
    return cols


def _add_lora(model, config: RerankerConfig) -> None:
    """Wrap the transformers model in a PEFT LoRA model: only the adapter, pooler and head train."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        target_modules=["query", "value"],
        modules_to_save=["classifier", "pooler"],
        task_type="SEQ_CLS",
    )
    model[0].model = get_peft_model(model[0].model, lora)


def _merge_lora(model, output: Path) -> None:
    """Save the adapter (+ head) alone under ``adapter/``, then fold it into the weights for a plain folder."""
    peft_model = model[0].model
    peft_model.save_pretrained(str(output / "adapter"))
    model[0].model = peft_model.merge_and_unload()


def train_reranker(
    pairs_path: str | Path,
    output: str | Path,
    config: RerankerConfig = RerankerConfig(),
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    """Train a CrossEncoder on pairs (with ``negatives``) and write it to ``output``.

    >>> train_reranker("mined.jsonl", "models/reranker", RerankerConfig(max_steps=500))  # doctest: +SKIP
    """
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from sentence_transformers.cross_encoder.training_args import CrossEncoderTrainingArguments

    from indexer.models.reranker_delta import mean_pooling_cross_encoder
    from indexer.models.resolve import resolve_model
    from trainer.losses import GroupSoftmaxLoss

    t0 = time.time()
    output = Path(output).expanduser()
    pairs = read_pairs(pairs_path)
    identity = {
        "stage": "reranker",
        "config": to_dict(config),
        "data_sha256": file_sha256(pairs_path),
    }  # the content, not the path: a moved file still matches
    args = CrossEncoderTrainingArguments(**runs.common_args(config, output, show_progress))
    with runs.main_process_first(args):  # rank 0 prepares the folder; under torchrun the others then read it
        done, checkpoint = runs.prepare(output, identity, overwrite)
    if done:
        return output
    if (
        config.head == "mean"
        and (Path(config.model) / "modules.json").is_file()
        and _scores_itself(config.model)
    ):
        model = CrossEncoder(config.model, max_length=config.max_length)  # a mean-head reranker: train it on
    elif config.head == "mean":
        model = mean_pooling_cross_encoder(resolve_model(config.model), config.max_length)
    else:
        model = CrossEncoder(resolve_model(config.model), num_labels=1, max_length=config.max_length)
        _fresh_pooler(model)
    if config.num_layers:
        truncate_layers(model, config.num_layers)
    if config.freeze_embeddings:
        _freeze_embeddings(model)
    if config.lora_r:
        _add_lora(model, config)
    loss: torch.nn.Module
    if config.loss == "lce":
        data = Dataset.from_dict(group_columns(pairs, config.num_negatives))
        loss = GroupSoftmaxLoss(model)
    else:
        data = Dataset.from_dict(labelled_pairs(pairs, config.num_negatives))
        loss = BinaryCrossEntropyLoss(model)
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=loss,
        callbacks=[runs.MetricsJsonl(output / runs.METRICS)],
    )
    runs.quiet_stdout(trainer)
    runs.rank_zero_saves(trainer)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.accelerator.wait_for_everyone()  # every rank's checkpoint files are written before rank 0 drops them
    if trainer.is_world_process_zero():
        if config.lora_r:
            _merge_lora(model, output)
        model.save(str(output), create_model_card=False)
        extra = {
            "data": str(pairs_path),
            "base_model": config.model,
            "examples": len(data),
            "pairs": len(pairs),
            "loss": type(loss).__name__,
        }
        runs.finish(output, identity, extra, config.keep_checkpoints, t0)
    trainer.accelerator.wait_for_everyone()  # no rank returns (to a next stage) before the model is complete
    return output


# ------------------------------------------------------------------------------ the shippable delta
REFERENCE_PAIRS = (  # a few languages and scripts; a rebuilt model must reproduce the exported scores
    (
        "Vitamin D deficiency is associated with multiple sclerosis.",
        "Low serum 25-hydroxyvitamin D levels were found in patients with multiple sclerosis.",
    ),
    (
        "Vitamin D deficiency is associated with multiple sclerosis.",
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    ),
    ("Wie wirkt Koffein auf den Schlaf?", "Koffein verzögert das Einschlafen und verkürzt den Tiefschlaf."),
    ("光合作用是如何进行的？", "植物利用光能把二氧化碳和水转化为葡萄糖和氧气。"),
    ("Как работает вакцина?", "Вакцина обучает иммунную систему распознавать возбудителя."),
)


def peft_name(key: str) -> tuple[str, str]:
    """A peft adapter key -> (the plain model's weight name, "A", "B" or "full").

    >>> peft_name("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight")
    ('bert.encoder.layer.0.attention.self.query.weight', 'A')
    """
    key = re.sub(r"^base_model\.model\.", "", key)
    key = key.replace("modules_to_save.default.", "").replace("modules_to_save.", "")
    m = re.match(r"(.*)\.lora_([AB])(?:\.default)?\.weight$", key)
    return (m.group(1) + ".weight", m.group(2)) if m else (key, "full")


def export_delta(model_dir: str | Path, asset_dir: str | Path, extra: dict | None = None) -> dict:
    """Write a LoRA run's adapter as ``indexer.models.default_reranker``'s delta (+ metadata with reference scores).

    Checks that folding the delta into the backbone reproduces the trainer's merged weights (peft's
    ``merge_and_unload``: the reference) before writing anything. Returns the metadata.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from sentence_transformers.cross_encoder import CrossEncoder

    from indexer.models.default_reranker import DELTA_FILE, META_FILE, apply_delta
    from indexer.models.resolve import resolve_model

    model_dir, asset_dir = Path(model_dir), Path(asset_dir)
    adapter = json.loads((model_dir / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    record = json.loads((model_dir / runs.RECORD).read_text(encoding="utf-8"))
    scale = adapter["lora_alpha"] / adapter["r"]
    delta = {}
    for key, value in load_file(str(model_dir / "adapter" / "adapter_model.safetensors")).items():
        name, kind = peft_name(key)
        delta[name if kind == "full" else f"{name}.lora_{kind}"] = value.float().contiguous()
    trained = CrossEncoder(str(model_dir), device="cpu")
    base_name = record["config"]["model"]
    base = CrossEncoder(
        resolve_model(base_name), num_labels=1, max_length=trained.max_seq_length, device="cpu"
    )
    with torch.no_grad():
        merged = apply_delta(base[0].model.state_dict(), delta, scale)
    want = trained[0].model.state_dict()
    worst = max(float((merged[k] - want[k]).abs().max()) for k in want)
    if set(merged) != set(want) or worst > 1e-5:
        raise TrainingDataError(
            f"{model_dir}: the adapter does not reproduce the merged weights "
            f"(max |diff| {worst:.2e}); was it trained with --lora-r?"
        )
    scores = [float(s) for s in trained.predict(list(REFERENCE_PAIRS), show_progress_bar=False)]
    meta = {
        "base_model": base_name,
        "lora_r": adapter["r"],
        "lora_alpha": adapter["lora_alpha"],
        "lora_scale": scale,
        "lora_targets": sorted(adapter["target_modules"]),
        "max_length": trained.max_seq_length,
        "merge_max_abs_diff": worst,
        "training": {
            k: record.get(k)
            for k in ("config", "examples", "pairs", "loss", "first_loss", "last_loss", "seconds")
        },
        **(extra or {}),
        "reference": {"pairs": [list(p) for p in REFERENCE_PAIRS], "scores": scores},
    }
    asset_dir.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(delta.items())), str(asset_dir / DELTA_FILE), metadata={"format": "pt"})
    (asset_dir / META_FILE).write_text(
        json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return meta
