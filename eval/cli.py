"""``e5search eval``: score retrievers on a BEIR folder, or run the multilingual suite.

    e5search eval --dataset ../shared/data/scifact-beir --retrievers bm25,dense,hybrid --json out.json --report out.md
    e5search eval --suite multilingual --out reports/multilingual [--xling-queries 300 --bitext-sentences 500]

``add_arguments`` fills an argparse (sub)parser; ``run`` executes it and returns the exit status.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from indexer.config import BACKEND_CHOICES, FUSION_CHOICES, ChunkConfig

logger = logging.getLogger(__name__)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from eval.run import EVAL_CHUNK_SIZE, RETRIEVERS, parse_retrievers
    from indexer.retrieval.rerank import RERANK_K

    g = parser.add_argument_group("BEIR evaluation")
    g.add_argument(
        "--dataset", type=Path, help="BEIR folder: corpus.jsonl[.gz], queries.jsonl, qrels/SPLIT.tsv"
    )
    g.add_argument("--split", default="test", help="qrels split (default: %(default)s)")
    g.add_argument(
        "--retrievers",
        type=parse_retrievers,
        default=("bm25", "dense", "hybrid"),
        help=f"comma-separated, from {','.join(RETRIEVERS)} (default: bm25,dense,hybrid)",
    )
    g.add_argument("--model", help="embedding model: folder, hub id, or the default")
    g.add_argument(
        "--reranker",
        help="CrossEncoder folder or hub id for the +rerank retrievers (default: $E5SEARCH_RERANKER)",
    )
    g.add_argument("--k", type=int, default=100, help="documents retrieved per query (default: %(default)s)")
    g.add_argument(
        "--fusion",
        choices=FUSION_CHOICES,
        default="weighted",
        help="how hybrid fuses dense and BM25 (default: weighted; rrf = plain reciprocal-rank fusion)",
    )
    g.add_argument(
        "--rerank-k",
        "--rerank-top",
        dest="rerank_top",
        type=int,
        default=RERANK_K,
        help="candidates the cross-encoder rescores in the +rerank rows (default: %(default)s, as the app); "
        "each +rerank row is tested against its input row, which is added if not asked for",
    )
    g.add_argument(
        "--chunk-size",
        type=int,
        default=EVAL_CHUNK_SIZE,
        help="chunk size in model tokens (default: %(default)s, capped at the model's window); part of the "
        "index cache key, as are the next two",
    )
    g.add_argument(
        "--chunk-overlap",
        type=int,
        default=ChunkConfig.chunk_overlap,
        help="tokens of trailing sentences repeated in the next chunk (default: %(default)s)",
    )
    g.add_argument(
        "--max-title-tokens",
        type=int,
        default=ChunkConfig.max_title_tokens,
        help="title + heading path budget in every chunk (default: %(default)s)",
    )
    g.add_argument("--max-queries", type=int, help="evaluate a seeded sample of N queries")
    g.add_argument("--max-docs", type=int, help="corpus subset: judged docs of the kept queries + a sample")
    g.add_argument("--seed", type=int, default=0, help="for subsets, bootstrap and randomisation tests")
    g.add_argument(
        "--allow-unknown-ids",
        action="store_true",
        help="warn instead of failing when qrels name ids the dataset lacks",
    )
    g.add_argument(
        "--json",
        dest="json_out",
        type=Path,
        metavar="OUT.json",
        help="write the full result (with per-query values) as JSON here",
    )
    g.add_argument(
        "--report",
        type=Path,
        metavar="OUT.md",
        help="write a Markdown report here (and OUT.png, the chart, beside it)",
    )
    g.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="also write each retriever's run here as DIR/<retriever>.trec (qid Q0 docid rank score tag, "
        "as search --run writes it), for trec_eval, ranx or pyserini",
    )
    g.add_argument("--cache-dir", type=Path, help="where eval indexes live (default: the e5search cache)")
    g.add_argument("--batch-size", type=int, default=32, help="encoder batch size (default: %(default)s)")
    g.add_argument("--device", help="torch device for the encoder (default: automatic)")
    g.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_CHOICES,
        help="how the encoder runs the model (default: auto, see `e5search index --help`); part of "
        "the index cache key",
    )
    s = parser.add_argument_group("multilingual suite")
    s.add_argument("--suite", choices=["multilingual"], help="run a suite instead of one dataset")
    s.add_argument("--out", type=Path, help="suite output folder (multilingual.md / .json)")
    s.add_argument(
        "--parts",
        type=_csv,
        default=("xling", "folder", "bitext", "sts"),
        help="subset of xling,folder,bitext,sts (folder: the cross-lingual folder test, BM25/dense/hybrid per "
        "language pair)",
    )
    s.add_argument("--data-root", type=Path, help="folder holding debian-ddtp/, ntrex-128/, stsb-multi-mt/")
    s.add_argument("--xling-languages", type=_csv, default=(), help="DDTP languages (default: all >= 1k)")
    s.add_argument("--xling-queries", type=int, default=1000)
    s.add_argument("--xling-docs", type=int, default=2000)
    s.add_argument("--bitext-languages", type=_csv, help="NTREX codes (default: 26 languages, 14 scripts)")
    s.add_argument("--folder-queries", type=int, default=40, help="folder test queries per language pair")
    s.add_argument(
        "--bitext-sentences",
        type=int,
        help="a seeded random sample of N NTREX sentences (default: all 1,997)",
    )
    s.add_argument("--sts-languages", type=_csv, default=(), help="STSb languages (default: all 11)")
    s.add_argument(
        "--sts-pairs", type=int, help="a seeded random sample of N pairs per language (default: all 1,379)"
    )


def _encoder(args: argparse.Namespace):
    from indexer.config import DEFAULT_MODEL, ModelConfig
    from indexer.encoding.encoder import Encoder

    return Encoder(
        ModelConfig(
            model=args.model or DEFAULT_MODEL,
            batch_size=args.batch_size,
            device=args.device,
            backend=args.backend,
        )
    )


def run_dataset(args: argparse.Namespace) -> int:
    from eval.report import results_table, write_json, write_report
    from eval.run import EvalConfig, evaluate_config, rerank_table, with_inputs
    from indexer.config import DEFAULT_MODEL
    from indexer.errors import ConfigError
    from indexer.retrieval.rerank import default_reranker

    if args.dataset is None:
        raise ConfigError("give --dataset DIR (a BEIR folder) or --suite multilingual --out DIR")
    config = EvalConfig(
        split=args.split,
        retrievers=with_inputs(args.retrievers),
        model=args.model or DEFAULT_MODEL,
        reranker=args.reranker or default_reranker(),
        k=args.k,
        rerank_top=args.rerank_top,
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
        max_title_tokens=args.max_title_tokens,
        max_queries=args.max_queries,
        max_docs=args.max_docs,
        seed=args.seed,
        on_unknown="warn" if args.allow_unknown_ids else "error",
        batch_size=args.batch_size,
        backend=args.backend,
        fusion=args.fusion,
    )
    result = evaluate_config(
        args.dataset,
        config,
        index_cache_dir=args.cache_dir,
        encoder=_encoder(args),
        show_progress=True,
        run_dir=args.run_dir,
    )
    print(
        f"{result['dataset']} ({result['split']}): {result['n_queries']} queries, {result['n_docs']} documents"
    )
    print(results_table(result))
    if gains := rerank_table(result):
        print("\nreranked vs input (paired tests)\n" + gains)
    if args.run_dir:
        print(f"wrote {len(config.retrievers)} TREC runs to {args.run_dir}/ (<retriever>.trec)")
    if args.json_out:
        print(f"wrote {write_json(result, args.json_out)}")
    if args.report:
        path = write_report(result, args.report)
        if gains:
            with path.open("a", encoding="utf-8") as f:
                f.write("\n## Reranked vs input (paired tests)\n\n" + gains + "\n")
        print(f"wrote {path}")
    return 0


def run_suite(args: argparse.Namespace) -> int:
    from eval.suite import SuiteConfig
    from eval.suite import run_suite as run
    from indexer.config import DEFAULT_MODEL
    from indexer.errors import ConfigError

    if args.out is None:
        raise ConfigError("--suite multilingual needs --out DIR for its report")
    extra = {"bitext_languages": args.bitext_languages} if args.bitext_languages else {}
    config = SuiteConfig(
        parts=args.parts,
        model=args.model or DEFAULT_MODEL,
        xling_languages=args.xling_languages,
        xling_queries=args.xling_queries,
        xling_docs=args.xling_docs,
        folder_queries=args.folder_queries,
        fusion=args.fusion,
        bitext_sentences=args.bitext_sentences,
        sts_languages=args.sts_languages,
        sts_pairs=args.sts_pairs,
        seed=args.seed,
        batch_size=args.batch_size,
        backend=args.backend,
        **extra,
    )
    run(
        args.out,
        config,
        data_root=args.data_root,
        work_dir=args.cache_dir,
        encoder=_encoder(args),
        show_progress=True,
    )
    print(f"wrote {args.out / 'multilingual.md'} and {args.out / 'multilingual.json'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point for ``e5search eval``."""
    return run_suite(args) if args.suite else run_dataset(args)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m eval.cli``), with the same flags and error handling as ``e5search eval``."""
    import sys

    from indexer.errors import E5SearchError

    parser = argparse.ArgumentParser(prog="e5search eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return run(args)
    except E5SearchError as exc:
        print(f"e5search eval: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
