"""The model card (``README.md``) written into every trained model folder, from the run's own record.

In the style of sentence-transformers' cards (YAML front matter that the Hugging Face Hub reads, then prose and
tables), but built only from what the run recorded (``e5search_train.json``, ``train_metrics.jsonl``) and the
training file itself: base model, data (file, sha256, counts, sources), loss, prompts, steps / batch / learning
rate / precision, the evaluation numbers logged during training (if any) and a note on the data's licence.
Nothing is claimed that the run did not measure. Non-goals: the Hub's widget examples, carbon estimates.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

CARD = "README.md"
STAGES = {
    "contrastive": ("sentence-transformers", "sentence-similarity", "contrastive fine-tuning (InfoNCE)"),
    "distill": ("sentence-transformers", "sentence-similarity", "distillation from a cross-encoder teacher"),
    "reranker": ("sentence-transformers", "text-ranking", "a cross-encoder reranker"),
}


def write_card(output: Path, record: dict[str, Any], metrics: list[dict[str, Any]]) -> Path:
    """Write ``output/README.md`` for the finished run ``record`` (its ``e5search_train.json``); returns the path."""
    library, pipeline, what = STAGES.get(record.get("stage", ""), STAGES["contrastive"])
    base = record.get("base_model") or record.get("config", {}).get("model", "?")
    front = {
        "library_name": library,
        "pipeline_tag": pipeline,
        "base_model": base,
        "tags": [
            "e5search",
            record.get("stage", "?"),
            *(["cross-encoder"] if pipeline == "text-ranking" else []),
        ],
    }
    parts = [
        "---\n" + "".join(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in front.items()) + "---\n",
        f"# {output.name}\n\n{what[0].upper() + what[1:]} of `{base}`, trained with `e5search train {record.get('stage')}` "
        f"(finished {record.get('finished_at')}, {record.get('seconds')} s on {record.get('device')}).\n",
        _data_section(record),
        _training_section(record),
        _prompts_section(record.get("prompts")),
        _eval_section(metrics),
        _usage_section(output, pipeline),
        "## Versions\n\n" + _table({k: f"`{v}`" for k, v in (record.get("versions") or {}).items()}),
    ]
    path = output / CARD
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _table(rows: dict[str, Any]) -> str:
    return "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows.items() if v is not None)


def _data_section(record: dict[str, Any]) -> str:
    data = Path(str(record.get("data", "")))
    sources = _source_counts(data)
    rows = {
        "file": f"`{data.name}`",
        "sha256": f"`{record.get('data_sha256')}`",
        "pairs": record.get("pairs"),
        "training examples": record.get("examples"),
        "sources (records)": ", ".join(f"{s}: {n}" for s, n in sources.most_common()) or None,
    }
    inputs = _pairs_inputs(data)
    built = f"\nThe pairs were built by `e5search train pairs` from: {inputs}.\n" if inputs else ""
    licence = (
        "\n### Licence of the data\n\nThe weights are derived from the training data above and carry its terms. "
        "The pairs file records no licence of its own: check the licence of each source listed "
        f"({', '.join(s for s in sources if s != 'unnamed') or 'none is named in the records'}) before publishing "
        "or using these weights commercially.\n"
    )
    return "## Training data\n\n" + _table(rows) + built + licence


def _source_counts(data: Path) -> Counter:
    """Records per ``source`` field of the pairs file (``unnamed`` where a record has none)."""
    from trainer.data import read_pairs

    try:
        return Counter(p.source or "unnamed" for p in read_pairs(data))
    except (OSError, ValueError):  # the file moved since training: the card keeps what the record knows
        return Counter()


def _pairs_inputs(data: Path) -> str:
    """The sources ``e5search train pairs`` recorded in its report beside the file, if there is one."""
    report = data.with_name(data.name + ".report.json")
    try:
        inputs = json.loads(report.read_text(encoding="utf-8"))["identity"]["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return ", ".join(f"{k} `{v}`" for k, v in inputs.items())


def _training_section(record: dict[str, Any]) -> str:
    config = record.get("config") or {}
    world = record.get("world_size") or 1
    rows = {
        "loss": f"`{record.get('loss')}`" + (f" (scale {record['scale']})" if record.get("scale") else ""),
        "steps": config.get("max_steps"),
        "batch": f"{config.get('batch_size')} per device x {world} device(s) = "
        f"{record.get('global_batch_size') or config.get('batch_size')}",
        "hard negatives per query": config.get("num_negatives"),
        "learning rate": f"{config.get('learning_rate')} (linear, warm-up ratio {config.get('warmup_ratio')})",
        "weight decay": config.get("weight_decay"),
        "precision": config.get("precision"),
        "max sequence length": config.get("max_seq_length") or config.get("max_length"),
        "seed": config.get("seed"),
        "loss first / last step": f"{record.get('first_loss')} / {record.get('last_loss')}",
    }
    return "## Training\n\n" + _table(rows) + "\nThe full configuration is in `e5search_train.json`.\n"


def _prompts_section(prompts: dict[str, str] | None) -> str:
    if not prompts:
        return "## Prompts\n\nNone: a cross-encoder reads (query, passage) pairs as they are.\n"
    rows = {f"`{k}`": f"`{json.dumps(v, ensure_ascii=False)}`" for k, v in prompts.items()}
    return (
        "## Prompts\n\nRecorded in the model folder, so `e5search` and sentence-transformers apply them:\n\n"
        + _table(rows)
    )


def _usage_section(output: Path, pipeline: str) -> str:
    if pipeline == "text-ranking":
        code = f'from sentence_transformers import CrossEncoder\n\nmodel = CrossEncoder("{output}")\n'
        code += 'scores = model.predict([("query text", "a passage"), ("query text", "another passage")])\n'
        cli = f"e5search search 'query text' --index DIR --rerank --reranker {output}"
    else:
        code = f'from sentence_transformers import SentenceTransformer\n\nmodel = SentenceTransformer("{output}")\n'
        code += 'queries = model.encode_query(["query text"])  # the recorded prompts are applied\n'
        cli = f"e5search index FOLDER --index DIR --model {output}"
    return f"## Usage\n\n```python\n{code}```\n\n```bash\n{cli}\n```\n"


def _eval_section(metrics: list[dict[str, Any]]) -> str:
    """The evaluations logged during training (``eval_*`` values), last one first; or that none ran."""
    evals = [m for m in metrics if any(k.startswith("eval_") for k in m)]
    if not evals:
        return "## Evaluation\n\nNone recorded during training (`eval_beir` was not set).\n"
    last = evals[-1]
    rows = {
        f"`{k.removeprefix('eval_')}`": round(v, 4) if isinstance(v, float) else v
        for k, v in last.items()
        if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second"))
    }
    return (
        f"## Evaluation\n\nMeasured during training at step {last.get('step')} "
        f"({len(evals)} evaluation(s) in `train_metrics.jsonl`):\n\n" + _table(rows)
    )
