"""``e5search train``: the training stages as subcommands, or a staged run from a TOML recipe.

Wiring (in ``e5search/cli.py``)::

    from trainer import cli as train_cli
    p = sub.add_parser("train", help="train embedding models and rerankers (E5 recipe)")
    train_cli.add_arguments(p)
    p.set_defaults(func=train_cli.run)

Flags left out keep the config defaults (:mod:`trainer.config`). Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

STAGES = ("pairs", "filter", "contrastive", "mine", "distill", "reranker")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _add_pairs(sub) -> None:
    p = sub.add_parser("pairs", help="build (query, passage) pairs JSONL from indexes, files and datasets")
    p.add_argument("--output", required=True, help="pairs JSONL to write")
    p.add_argument("--index", action="append", help="e5search index folder: title/heading path -> chunk")
    p.add_argument("--jsonl", action="append", help="JSONL file with a query and a passage field")
    p.add_argument("--query-field", default="query")
    p.add_argument("--passage-field", default="passage")
    p.add_argument("--beir", action="append", help="BEIR folder: query -> relevant docs of --beir-split")
    p.add_argument("--beir-split", default="train")
    p.add_argument("--beir-corpus", action="append", help="BEIR folder: document title -> text (no labels)")
    p.add_argument("--ddtp", action="append", help="debian-ddtp folder: package short -> long description")
    p.add_argument("--ddtp-languages", type=_csv, help="e.g. de,fr,ja (default: all files)")
    p.add_argument("--ntrex", action="append", help="NTREX-128 folder: English sentence -> translation")
    p.add_argument("--ntrex-languages", type=_csv, help="NTREX codes, e.g. deu,rus,zho-CN (default: deu)")
    for name, kind in (
        ("min-query-chars", int),
        ("max-query-chars", int),
        ("min-passage-chars", int),
        ("max-passage-chars", int),
    ):
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--languages", type=_csv, help="keep passages in these languages (ISO 639-1)")
    p.add_argument("--no-dedup", dest="dedup", action="store_false", default=None)
    p.add_argument("--max-pairs", type=int, help="keep a seeded random sample of this many pairs")


def _add_model_io(p, model_help: str) -> None:
    p.add_argument("--pairs", required=True, help="pairs JSONL (query, passage[, negatives, teacher_scores])")
    p.add_argument("--output", required=True)
    p.add_argument("--model", help=model_help)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output instead of resuming")


def _add_training(p) -> None:
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int, help="contrastive batch per device")
    p.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate")
    p.add_argument("--warmup-ratio", type=float)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--save-steps", type=int)
    p.add_argument("--keep-checkpoints", action="store_true", default=None)
    p.add_argument("--seed", type=int)


def _add_bi_encoder(p) -> None:
    _add_training(p)
    p.add_argument("--mini-batch-size", type=int, help="gradient-cache chunk (memory bound); 0 = no caching")
    p.add_argument("--temperature", type=float, help="InfoNCE temperature tau (E5: 0.01)")
    p.add_argument("--num-negatives", type=int, help="hard negatives per pair from the data")
    p.add_argument("--max-seq-length", type=int)
    p.add_argument("--instruction", help="train queries as 'Instruct: {instruction}\\nQuery: {q}'")
    p.add_argument("--query-prompt")
    p.add_argument("--passage-prompt")
    p.add_argument("--eval-beir", help="BEIR folder evaluated every --eval-steps (nDCG@10)")
    p.add_argument("--eval-split")
    p.add_argument("--eval-steps", type=int)
    p.add_argument(
        "--no-gather",
        dest="gather_across_devices",
        action="store_false",
        default=None,
        help="under torchrun, use only this device's negatives",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML recipe: run its stages in order (see trainer.stages)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE")
    _add_stages(sub)
    for stage_parser in sub.choices.values():  # also accepted after the stage name
        stage_parser.add_argument("--progress", action="store_true", default=argparse.SUPPRESS)
        stage_parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)


def _add_stages(sub) -> None:
    _add_pairs(sub)
    p = sub.add_parser("filter", help="E5 consistency filter: keep pairs whose passage ranks top-k")
    _add_model_io(p, "model that ranks (default: the default model)")
    p.add_argument("--top-k", type=int)
    p.add_argument("--pool-size", type=int)
    p.add_argument("--both-directions", action="store_true", default=None)
    p.add_argument("--max-seq-length", type=int, help="truncate texts while encoding (faster on CPU)")
    p.add_argument("--batch-size", type=int)
    p = sub.add_parser("contrastive", help="contrastive training (InfoNCE, gradient cache)")
    _add_model_io(p, "model to start from")
    _add_bi_encoder(p)
    p = sub.add_parser("mine", help="mine hard negatives (BM25 or dense), optionally score with a teacher")
    _add_model_io(p, "dense model for --method dense")
    p.add_argument("--method", choices=("bm25", "dense"))
    p.add_argument("--num-negatives", type=int)
    p.add_argument("--range-min", type=int)
    p.add_argument("--range-max", type=int)
    p.add_argument("--relative-margin", type=float)
    p.add_argument("--sampling", choices=("top", "random"))
    p.add_argument("--teacher", help="CrossEncoder folder: add teacher_scores for `distill`")
    p.add_argument("--corpus-beir", help="BEIR folder whose documents are extra candidates")
    p.add_argument("--max-seq-length", type=int)
    p = sub.add_parser("distill", help="fine-tune with KL(teacher || student) + alpha * InfoNCE")
    _add_model_io(p, "model to start from")
    _add_bi_encoder(p)
    p.add_argument("--alpha", type=float)
    p.add_argument(
        "--teacher", help="CrossEncoder folder: score --pairs first (else they need teacher_scores)"
    )
    p.add_argument("--teacher-temperature", type=float)
    p = sub.add_parser("reranker", help="train a cross-encoder reranker on pairs with hard negatives")
    _add_model_io(p, "backbone (default: the default model's BERT)")
    _add_training(p)
    p.add_argument("--num-negatives", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--lora-r", type=int, help="> 0: train a LoRA adapter + head only")
    p.add_argument("--loss", choices=["bce", "lce"], help="pointwise BCE or listwise softmax over each group")
    p.add_argument("--num-layers", type=int, help="> 0: keep only the bottom N transformer layers")
    p.add_argument(
        "--head", choices=["cls", "mean"], help="score from the first token (cls) or the mean token"
    )
    p.add_argument(
        "--freeze-embeddings", action="store_true", default=None, help="train the transformer layers only"
    )


def _given(args: argparse.Namespace, cls) -> dict[str, Any]:
    """Config fields the user set on the command line."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    out = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if out.get("mini_batch_size") == 0:
        out["mini_batch_size"] = None
    return out


def _run_stage(args: argparse.Namespace) -> Any:
    from trainer import config as C
    from trainer import stages as S

    show = args.progress
    if args.stage == "pairs":
        sources = {
            k: getattr(args, k)
            for k in (
                *S.SOURCE_KEYS,
                "beir_split",
                "ddtp_languages",
                "ntrex_languages",
                "query_field",
                "passage_field",
            )
        }
        return S.run_pairs(
            {k: v for k, v in sources.items() if v}, args.output, C.CleanConfig(**_given(args, C.CleanConfig))
        )
    if args.stage == "filter":
        return S.run_filter(
            args.pairs,
            args.output,
            C.FilterConfig(**_given(args, C.FilterConfig)),
            args.max_seq_length,
            args.overwrite,
            show,
        )
    if args.stage == "mine":
        return S.run_mine(
            args.pairs,
            args.output,
            C.MineConfig(**_given(args, C.MineConfig)),
            args.corpus_beir,
            args.max_seq_length,
            args.overwrite,
            show,
        )
    pairs = args.pairs
    if args.stage == "distill" and args.teacher:
        pairs = f"{args.output.rstrip('/')}.scored.jsonl"
        S.run_score(args.pairs, pairs, args.teacher, overwrite=args.overwrite, show_progress=show)
    cls = {"contrastive": C.ContrastiveConfig, "distill": C.DistillConfig, "reranker": C.RerankerConfig}[
        args.stage
    ]
    runners: dict[str, Callable[..., Any]] = {
        "contrastive": S.run_contrastive,
        "distill": S.run_distill,
        "reranker": S.run_reranker,
    }
    fn = runners[args.stage]
    return str(fn(pairs, args.output, cls(**_given(args, cls)), args.overwrite, show))


def run(args: argparse.Namespace) -> int:
    """Run one stage, or the recipe given with --config. Errors a user can fix exit with status 2."""
    from indexer.errors import E5SearchError

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    if not args.config and not args.stage:
        print(f"e5search train: give a stage ({', '.join(STAGES)}) or --config FILE.toml", file=sys.stderr)
        return 2
    try:
        if args.config:
            from trainer.stages import run_recipe

            result = run_recipe(args.config, show_progress=args.progress)
        else:
            result = _run_stage(args)
    except E5SearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e5search train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
