"""The six stages as resumable functions over files, and the staged run of a TOML recipe.

Each stage reads a pairs JSONL (except ``pairs``) and writes a JSONL or a model folder, plus a report
(``OUTPUT.report.json`` for files, ``e5search_train.json`` inside model folders) that records its inputs and
config. A stage whose report matches its inputs and config is skipped, so re-running a recipe after a crash
continues where it stopped; training stages resume from their last checkpoint.

Recipe (``e5search train --config recipe.toml``): sections ``[pairs]``, ``[filter]``, ``[contrastive]``,
``[mine]``, ``[reranker]``, ``[distill]``, run in that order when present. A section's ``pairs`` input
defaults to the previous file-producing stage's ``output``; ``[distill]`` may name ``teacher = "CE folder"``
(e.g. the ``[reranker]`` output) to score its pairs first. Example: ``trainer/recipes/e5_recipe.toml``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexer.cache import file_sha256
from indexer.errors import ConfigError
from trainer.config import (
    CleanConfig,
    ContrastiveConfig,
    DistillConfig,
    FilterConfig,
    MineConfig,
    RerankerConfig,
    from_dict,
    read_toml,
    to_dict,
)
from trainer.data import read_pairs, write_jsonl, write_pairs

logger = logging.getLogger(__name__)

ORDER = ("pairs", "filter", "contrastive", "mine", "reranker", "distill")
SOURCE_KEYS = ("index", "jsonl", "beir", "beir_corpus", "ddtp", "ntrex")


def _report_path(output: Path) -> Path:
    return output.with_name(output.name + ".report.json")


def _identity(stage: str, inputs: dict[str, Any], config: Any) -> dict[str, Any]:
    hashed = {
        k: (file_sha256(v) if isinstance(v, (str, Path)) and Path(v).is_file() else v)
        for k, v in inputs.items()
    }
    identity = {
        "stage": stage,
        "inputs": {k: str(v) for k, v in inputs.items()},
        "hashes": hashed,
        "config": to_dict(config) if config is not None else None,
    }
    return json.loads(json.dumps(identity, default=str))  # as it reads back from the report (tuples -> lists)


def _done(output: Path, identity: dict[str, Any], overwrite: bool) -> bool:
    report = _report_path(output)
    if overwrite or not output.exists() or not report.is_file():
        return False
    if json.loads(report.read_text(encoding="utf-8")).get("identity") == identity:
        logger.info("%s is up to date; skipping stage %s", output, identity["stage"])
        return True
    return False


def _write_report(output: Path, identity: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    full = {"identity": identity, **report}
    _report_path(output).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return full


def torch_model_config(model: str, batch_size: int = 64):
    """A ModelConfig that runs the model in torch fp32 (where the encoder offers other backends): the filter and
    the miner see the model exactly as it was trained, and a training-time ``max_seq_length`` applies."""
    import dataclasses

    from indexer.config import ModelConfig

    extra: dict[str, Any] = (
        {"backend": "torch"} if "backend" in {f.name for f in dataclasses.fields(ModelConfig)} else {}
    )
    return ModelConfig(model=model, batch_size=batch_size, **extra)


def _encoder(model: str, max_seq_length: int | None, batch_size: int = 64):
    from indexer.encoding.encoder import Encoder

    enc = Encoder(torch_model_config(model, batch_size))
    if max_seq_length:
        enc.model.max_seq_length = max_seq_length
    return enc


def run_pairs(
    sources: dict[str, Any], output: str | Path, clean: CleanConfig = CleanConfig(), overwrite: bool = False
) -> dict[str, Any]:
    """Build pairs from every source given, clean them, write JSONL and a report with counts per source."""
    from trainer import pairs as P

    output = Path(output)
    unknown = sorted(
        set(sources)
        - set(SOURCE_KEYS)
        - {"beir_split", "ddtp_languages", "ntrex_languages", "query_field", "passage_field"}
    )
    if unknown:
        raise ConfigError(f"pairs: unknown source keys {unknown}; known: {list(SOURCE_KEYS)}")
    identity = _identity("pairs", {k: v for k, v in sources.items() if v}, clean)
    if _done(output, identity, overwrite):
        return json.loads(_report_path(output).read_text(encoding="utf-8"))
    as_list = lambda v: [v] if isinstance(v, str) else list(v or [])  # noqa: E731
    gens = []
    gens += [P.from_index(d) for d in as_list(sources.get("index"))]
    gens += [
        P.from_jsonl(f, sources.get("query_field", "query"), sources.get("passage_field", "passage"))
        for f in as_list(sources.get("jsonl"))
    ]
    gens += [P.from_beir_qrels(d, sources.get("beir_split", "train")) for d in as_list(sources.get("beir"))]
    gens += [P.from_beir_corpus(d) for d in as_list(sources.get("beir_corpus"))]
    gens += [P.from_ddtp(d, as_list(sources.get("ddtp_languages"))) for d in as_list(sources.get("ddtp"))]
    gens += [
        P.from_ntrex(d, "eng", as_list(sources.get("ntrex_languages")) or ["deu"])
        for d in as_list(sources.get("ntrex"))
    ]
    if not gens:
        raise ConfigError(f"pairs: no source given; use one or more of {list(SOURCE_KEYS)}")
    raw = [p for g in gens for p in g]
    kept, counts = P.clean_pairs(raw, clean)
    if not kept:
        raise ConfigError(f"pairs: nothing left after cleaning ({counts}); loosen the cleaning bounds")
    write_pairs(output, kept)
    by_source: dict[str, int] = {}
    for p in kept:
        key = (p.source or "?").split(":")[0]
        by_source[key] = by_source.get(key, 0) + 1
    return _write_report(output, identity, {"counts": counts, "kept_by_source": by_source})


def run_filter(
    pairs_path: str | Path,
    output: str | Path,
    config: FilterConfig = FilterConfig(),
    max_seq_length: int | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    from trainer.filtering import consistency_filter

    output = Path(output)
    identity = _identity("filter", {"pairs": pairs_path, "max_seq_length": max_seq_length}, config)
    if _done(output, identity, overwrite):
        return json.loads(_report_path(output).read_text(encoding="utf-8"))
    pairs = read_pairs(pairs_path)
    kept, dropped, report = consistency_filter(
        pairs, _encoder(config.model, max_seq_length, config.batch_size), config, show_progress
    )
    write_jsonl(
        output.with_name(output.stem + ".dropped.jsonl"), ({**p.to_json(), "rank": r} for p, r in dropped)
    )
    write_pairs(output, kept)
    return _write_report(output, identity, report.to_json())


def run_mine(
    pairs_path: str | Path,
    output: str | Path,
    config: MineConfig = MineConfig(),
    corpus_beir: str | None = None,
    max_seq_length: int | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    from trainer.mining import add_teacher_scores, mine_hard_negatives
    from trainer.pairs import doc_text, read_beir

    output = Path(output)
    identity = _identity(
        "mine", {"pairs": pairs_path, "corpus_beir": corpus_beir, "max_seq_length": max_seq_length}, config
    )
    if _done(output, identity, overwrite):
        return json.loads(_report_path(output).read_text(encoding="utf-8"))
    pairs = read_pairs(pairs_path)
    extra = [doc_text(d) for d in read_beir(corpus_beir, None)[0].values()] if corpus_beir else []
    encoder = _encoder(config.model, max_seq_length, config.batch_size) if config.method == "dense" else None
    mined, counts = mine_hard_negatives(pairs, config, encoder, extra, show_progress)
    if config.teacher:
        mined = add_teacher_scores(mined, config.teacher, config.batch_size, show_progress)
    if not mined:
        raise ConfigError(
            f"mine: no pair got {config.num_negatives} negatives ({counts}); lower range_min or "
            "num_negatives, or add a corpus"
        )
    write_pairs(output, mined)
    return _write_report(output, identity, {"counts": counts})


def run_score(
    pairs_path: str | Path,
    output: str | Path,
    teacher: str,
    batch_size: int = 32,
    overwrite: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Add cross-encoder ``teacher_scores`` to pairs that already have negatives (for ``distill``)."""
    from trainer.mining import add_teacher_scores

    output = Path(output)
    identity = _identity("score", {"pairs": pairs_path, "teacher": teacher, "batch_size": batch_size}, None)
    if _done(output, identity, overwrite):
        return json.loads(_report_path(output).read_text(encoding="utf-8"))
    pairs = read_pairs(pairs_path)
    if not all(p.negatives for p in pairs):
        raise ConfigError(
            f"{pairs_path}: records without negatives; mine them first with `e5search train mine`"
        )
    n = write_pairs(output, add_teacher_scores(pairs, teacher, batch_size, show_progress))
    return _write_report(output, identity, {"scored": n})


def run_contrastive(
    pairs_path: str | Path,
    output: str | Path,
    config: ContrastiveConfig = ContrastiveConfig(),
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    from trainer.train import train_contrastive

    return train_contrastive(pairs_path, output, config, overwrite, show_progress)


def run_distill(
    pairs_path: str | Path,
    output: str | Path,
    config: DistillConfig = DistillConfig(),
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    from trainer.train import train_distill

    return train_distill(pairs_path, output, config, overwrite, show_progress)


def run_reranker(
    pairs_path: str | Path,
    output: str | Path,
    config: RerankerConfig = RerankerConfig(),
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    from trainer.reranker import train_reranker

    return train_reranker(pairs_path, output, config, overwrite, show_progress)


def run_recipe(path: str | Path, show_progress: bool = False) -> dict[str, Any]:
    """Run the stages a TOML recipe names, in :data:`ORDER`; returns each stage's report or output."""
    recipe = read_toml(path)
    unknown = sorted(set(recipe) - set(ORDER))
    if unknown:
        raise ConfigError(f"{path}: unknown sections {unknown}; stages are {list(ORDER)}")
    base = Path(path).resolve().parent
    resolve = lambda v: (  # noqa: E731
        str((base / v).resolve()) if isinstance(v, str) and v and not Path(v).is_absolute() else v
    )
    results: dict[str, Any] = {}
    last_file: str | None = None
    for stage in (s for s in ORDER if s in recipe):
        section = dict(recipe[stage])
        where = f"{path} [{stage}]"
        output = resolve(section.pop("output", None))
        if not output:
            raise ConfigError(f"{where}: needs output = ...")
        overwrite = bool(section.pop("overwrite", False))
        if str(section.get("model", "")).startswith(("./", "../")):  # a folder next to the recipe
            section["model"] = resolve(section["model"])
        if stage == "pairs":
            clean = from_dict(CleanConfig, section.pop("clean", {}), f"{where}.clean")
            sources = {
                k: (
                    [resolve(x) for x in v]
                    if isinstance(v, list) and k in SOURCE_KEYS
                    else resolve(v)
                    if k in SOURCE_KEYS
                    else v
                )
                for k, v in section.items()
            }
            results[stage] = run_pairs(sources, output, clean, overwrite)
            last_file = output
            continue
        pairs_path = resolve(section.pop("pairs", None)) or last_file
        if not pairs_path:
            raise ConfigError(f"{where}: needs pairs = FILE.jsonl (no earlier stage wrote one)")
        if stage in ("filter", "mine"):
            extra = {k: section.pop(k) for k in ("max_seq_length", "corpus_beir") if k in section}
            if "corpus_beir" in extra:
                extra["corpus_beir"] = resolve(extra["corpus_beir"])
            if stage == "filter":
                extra.pop("corpus_beir", None)
                results[stage] = run_filter(
                    pairs_path,
                    output,
                    from_dict(FilterConfig, section, where),
                    overwrite=overwrite,
                    show_progress=show_progress,
                    **extra,
                )
            else:
                results[stage] = run_mine(
                    pairs_path,
                    output,
                    from_dict(MineConfig, section, where),
                    overwrite=overwrite,
                    show_progress=show_progress,
                    **extra,
                )
            last_file = output
        else:
            teacher = section.pop("teacher", None)
            if stage == "distill" and teacher:  # score the mined pairs with a reranker trained earlier
                scored = str(Path(output).with_name(Path(output).name + ".scored.jsonl"))
                run_score(pairs_path, scored, resolve(teacher), show_progress=show_progress)
                pairs_path = scored
            cls = {"contrastive": ContrastiveConfig, "distill": DistillConfig, "reranker": RerankerConfig}[
                stage
            ]
            runners: dict[str, Callable[..., Any]] = {
                "contrastive": run_contrastive,
                "distill": run_distill,
                "reranker": run_reranker,
            }
            fn = runners[stage]
            results[stage] = str(
                fn(pairs_path, output, from_dict(cls, section, where), overwrite, show_progress)
            )
    return results
