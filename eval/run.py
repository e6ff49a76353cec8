"""Evaluate retrievers on a BEIR dataset through the product's own indexer and search code.

Flow: load (and optionally subset) the dataset → write the corpus into a cache folder keyed by its content hash,
the model fingerprint and the chunking → ``build_index`` (incremental and embedding-cached, so a second run does
not re-encode, and an interrupted one resumes) → for each retriever ``Index.retriever(mode, rerank).search`` →
trec_eval metrics per query → means, bootstrap CIs and paired tests against the baseline (BM25). When no
retriever needs embeddings (``bm25``, ``bm25+rerank``), the corpus is chunked with the model's tokenizer but not
encoded (:class:`LexicalOnly`), so a BM25 evaluation takes seconds instead of a CPU-hour.

The returned dict is what ``--json`` writes and what the report and the app read::

    {"dataset", "split", "n_queries",
     "results": {name: {"ndcg@10", "recall@100", "mrr@10", "map@100", "ci95": {metric: [lo, hi]},
                        "seconds", "queries_per_second"}},
     "significance": {"baseline", "method", "vs_baseline": {name: {metric: {"delta", "t", "p_ttest",
                                                                             "p_randomization"}}},
                      "vs_input": {name+rerank: {metric: {...}}}},
     "config": {...}, "per_query": {name: {qid: {metric: value}}}, "queries": {qid: text}}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from eval.datasets import OnUnknown, corpus_hash, load_beir, subset, write_corpus
from eval.metrics import DEFAULT_METRICS, PerQuery, by_rank, column, evaluate_run, mean
from eval.significance import N_RESAMPLES, bootstrap_ci, paired_test
from indexer.cache import cache_home
from indexer.config import (
    DEFAULT_MODEL,
    ChunkConfig,
    EncoderBackend,
    FusionMode,
    IndexConfig,
    ModelConfig,
    SearchConfig,
)
from indexer.encoding.encoder import TextEncoder
from indexer.errors import ConfigError, DatasetError
from indexer.retrieval.rerank import RERANK_K
from indexer.types import Corpus, Qrels, Queries, Run, SearchMode

logger = logging.getLogger(__name__)

RETRIEVERS: tuple[str, ...] = ("bm25", "dense", "hybrid", "bm25+rerank", "dense+rerank", "hybrid+rerank")
BASELINE = "bm25"
# E5 evaluates BEIR with passages truncated at 512 tokens; asking for 512 makes the chunker use the model's whole
# window (it caps chunks at the model's max length), so most BEIR documents stay one chunk.
EVAL_CHUNK_SIZE = 512
# A dataset's corpus is one trusted file that takes minutes to read and chunk on a small CPU (SciFact's on 2 shared
# cores: over 60 s); the per-file time budget that guards folder indexing against pathological files would skip it.
EVAL_FILE_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class EvalConfig:
    """How one evaluation is run; saved in the result's ``config``."""

    split: str = "test"
    retrievers: tuple[str, ...] = ("bm25", "dense", "hybrid")
    model: str = DEFAULT_MODEL
    reranker: str | None = None
    k: int = 100  # documents retrieved per query; Recall@100 and MAP@100 need 100
    rerank_top: int = RERANK_K  # candidates the cross-encoder rescores in the +rerank retrievers (as the app)
    chunk_size: int = EVAL_CHUNK_SIZE
    chunk_overlap: int = ChunkConfig.chunk_overlap  # tokens of trailing sentences repeated in the next chunk
    max_title_tokens: int = ChunkConfig.max_title_tokens  # title + heading path budget in every chunk
    max_queries: int | None = None
    max_docs: int | None = None
    seed: int = 0  # for subsets, bootstrap and randomisation tests
    on_unknown: OnUnknown = "error"
    n_resamples: int = N_RESAMPLES
    batch_size: int = 32
    backend: EncoderBackend = "auto"  # how the encoder runs the model: see indexer.encoding.backends
    fusion: FusionMode = "weighted"  # how hybrid fuses dense and BM25: see indexer.retrieval.fusion

    def __post_init__(self) -> None:
        ModelConfig(model=self.model, batch_size=self.batch_size, backend=self.backend)
        SearchConfig(fusion=self.fusion)  # validates the choice
        unknown = [r for r in self.retrievers if r not in RETRIEVERS]
        if unknown or not self.retrievers:
            raise ConfigError(f"retrievers={list(self.retrievers)}: choose from {', '.join(RETRIEVERS)}")
        if len(set(self.retrievers)) != len(self.retrievers):
            raise ConfigError(f"retrievers={list(self.retrievers)}: each retriever once")
        if self.k < 1:
            raise ConfigError(f"k={self.k}: must be >= 1 (100 for Recall@100 and MAP@100)")
        if self.rerank_top < 1:
            raise ConfigError(f"rerank_top={self.rerank_top}: must be >= 1")
        for name in ("max_queries", "max_docs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value}: must be >= 1, or None for all")
        if self.on_unknown not in ("error", "warn"):
            raise ConfigError(f"on_unknown={self.on_unknown!r}: must be 'error' or 'warn'")
        _ = self.chunking  # validates the ranges

    @property
    def chunking(self) -> ChunkConfig:
        return ChunkConfig(
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            max_title_tokens=self.max_title_tokens,
        )

    @property
    def needs_reranker(self) -> bool:
        return any(r.endswith("+rerank") for r in self.retrievers)

    @property
    def needs_dense(self) -> bool:
        return any(split_name(r)[0] in ("dense", "hybrid") for r in self.retrievers)


class LexicalOnly:
    """An encoder's tokenizer and limits without its network, for evaluations of BM25 alone.

    Chunks come out exactly as in the full index (same tokenizer, same budget), so BM25 scores agree with it, but
    nothing is encoded: vectors are a constant of dimension 1. The fingerprint differs, so such an index never
    stands in for a real one.
    """

    dim = 1

    def __init__(self, encoder: TextEncoder):
        self.name = f"{encoder.name} (lexical only)"
        self.fingerprint = f"{encoder.fingerprint}-lexical"
        self.model_fingerprint = self.cache_key = self.fingerprint
        self.on_gpu = False
        self.max_length = encoder.max_length
        self.query_prompt = encoder.query_prompt
        self.passage_prompt = encoder.passage_prompt
        self._tokenizer = encoder.tokenizer

    @property
    def tokenizer(self):
        return self._tokenizer

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 1), dtype=np.float32)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return np.ones((len(texts), 1), dtype=np.float32)

    def describe(self) -> dict:
        return {"model": self.name, "fingerprint": self.fingerprint, "dim": self.dim}


def parse_retrievers(text: str) -> tuple[str, ...]:
    """``"bm25, dense+rerank"`` → ``("bm25", "dense+rerank")``."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def split_name(name: str) -> tuple[SearchMode, bool]:
    """``"hybrid+rerank"`` → ``("hybrid", True)``; ``name`` is one of :data:`RETRIEVERS`."""
    mode, _, suffix = name.partition("+")
    return cast(SearchMode, mode), suffix == "rerank"


def input_of(name: str) -> str | None:
    """The retriever a ``+rerank`` row reranks (``"hybrid+rerank"`` → ``"hybrid"``); None for the others."""
    mode, rerank = split_name(name)
    return mode if rerank else None


def with_inputs(retrievers: Sequence[str]) -> tuple[str, ...]:
    """``retrievers`` with each ``+rerank`` row's input row added before it where missing, so every reranked row
    is tested against what it reranked."""
    out: list[str] = []
    for name in retrievers:
        base = input_of(name)
        if base is not None and base not in retrievers and base not in out:
            out.append(base)
        out.append(name)
    return tuple(out)


def vs_inputs(per_query: dict[str, PerQuery], qids: list[str], config: EvalConfig) -> dict[str, dict]:
    """For each ``+rerank`` row whose input row ran: the paired tests of reranked vs input, per metric."""
    return {
        name: {
            m: paired_test(
                column(pq, m, qids),
                column(per_query[base], m, qids),
                n_resamples=config.n_resamples,
                seed=config.seed,
            )
            for m in DEFAULT_METRICS
        }
        for name, pq in per_query.items()
        if (base := input_of(name)) is not None and base in per_query
    }


def rerank_table(result: dict, metric: str = "ndcg@10") -> str:
    """Markdown: each reranked row against its input row on ``metric`` (×100), with the paired p-values."""
    tests = result.get("significance", {}).get("vs_input", {})
    if not tests:
        return ""
    lines = [
        f"| reranked | input | input {metric} | reranked {metric} | delta | p (randomisation) | p (t-test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, by_metric in tests.items():
        base, t = input_of(name), by_metric[metric]
        res = result["results"]
        lines.append(
            f"| {name} | {base} | {100 * res[base][metric]:.1f} | {100 * res[name][metric]:.1f} | "
            f"{100 * t['delta']:+.1f} | {t['p_randomization']:.3g} | {t['p_ttest']:.3g} |"
        )
    return "\n".join(lines)


def prepare_index(
    corpus: Corpus,
    dataset_name: str,
    encoder: TextEncoder,
    config: EvalConfig,
    cache_dir: Path | None = None,
    show_progress: bool = False,
) -> Path:
    """Index ``corpus`` with ``encoder`` into a cache folder keyed by content, model and chunking; returns it."""
    from indexer.build.job import build_index

    key = f"{dataset_name}-{corpus_hash(corpus)}-{encoder.fingerprint}-{_chunking_key(config.chunking)}"
    folder = (cache_dir or cache_home() / "eval") / key
    source = folder / "corpus" / "corpus.jsonl"
    if not source.exists():  # content-addressed: an existing file is this corpus, left untouched
        write_corpus(corpus, source)
    index_config = IndexConfig(
        model=ModelConfig(model=encoder.name, batch_size=config.batch_size, backend=config.backend),
        chunking=config.chunking,
        file_timeout_s=EVAL_FILE_TIMEOUT_S,
    )
    summary = build_index(
        source, folder / "index", index_config, encoder=encoder, show_progress=show_progress
    )
    skipped = _skipped_files(folder / "index")
    if (
        skipped and not summary.skipped
    ):  # an earlier run skipped the corpus (an older time budget): rebuild once
        from indexer.storage.layout import remove_index

        logger.warning("eval index %s had skipped %s; rebuilding it", folder / "index", skipped)
        remove_index(folder / "index")
        summary = build_index(
            source, folder / "index", index_config, encoder=encoder, show_progress=show_progress
        )
        skipped = _skipped_files(folder / "index")
    if skipped:  # an index without its corpus would score every retriever 0 without a word
        why = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped)
        raise DatasetError(f"the eval index of {dataset_name} skipped its corpus ({why}); fix it and rerun")
    logger.info(
        "index %s: %d chunks, %d encoded in %.1fs",
        folder,
        summary.chunks,
        summary.chunks_encoded,
        summary.seconds,
    )
    return folder / "index"


def _chunking_key(chunking: ChunkConfig) -> str:
    """``c512``, plus ``-o0`` / ``-t16`` where overlap or title budget differ from the defaults (so the indexes
    cached before those were options keep their keys)."""
    default = ChunkConfig()
    key = f"c{chunking.chunk_size}"
    if chunking.chunk_overlap != default.chunk_overlap:
        key += f"-o{chunking.chunk_overlap}"
    if chunking.max_title_tokens != default.max_title_tokens:
        key += f"-t{chunking.max_title_tokens}"
    return key


def _skipped_files(index_dir: Path) -> list[dict]:
    """The files an index holds as skipped, with their reasons (a dataset's corpus must never be one)."""
    from sqlalchemy.orm import Session

    from indexer.storage import catalog
    from indexer.storage.store import open_engine

    engine = open_engine(index_dir)
    try:
        with Session(engine) as session:
            return catalog.counts(session)["skipped"]
    finally:
        engine.dispose()


def run_retrievers(
    index_dir: Path, queries: Queries, config: EvalConfig, encoder: TextEncoder, reranker: Any = None
) -> tuple[dict[str, Run], dict[str, float]]:
    """Each retriever's run over ``queries`` and its wall time in seconds."""
    from indexer.search.index import Index

    if config.needs_reranker and reranker is None and config.reranker is None:
        from indexer.retrieval.rerank import NO_RERANKER

        raise ConfigError(NO_RERANKER)
    idx = Index.open(
        index_dir,
        encoder=encoder,
        reranker=reranker if reranker is not None else config.reranker,
        config=SearchConfig(rerank_top=config.rerank_top, fusion=config.fusion),
    )
    runs: dict[str, Run] = {}
    seconds: dict[str, float] = {}
    try:
        for name in config.retrievers:
            mode, rerank = split_name(name)
            t0 = time.perf_counter()
            # best first with the retriever's own scores (score_runs scores the order; --run-dir writes them)
            runs[name] = idx.retriever(mode, rerank=rerank).search(queries, config.k)
            seconds[name] = time.perf_counter() - t0
            logger.info("%s: %d queries in %.1fs", name, len(queries), seconds[name])
    finally:
        idx.close()
    return runs, seconds


def score_runs(
    runs: dict[str, Run],
    qrels: Qrels,
    seconds: dict[str, float],
    config: EvalConfig,
) -> tuple[dict[str, dict], dict[str, Any], dict[str, PerQuery]]:
    """Means with CIs per retriever, paired tests against the baseline, and the per-query values."""
    qids = sorted(qrels)
    per_query = {name: evaluate_run(qrels, by_rank(run)) for name, run in runs.items()}
    results: dict[str, dict] = {}
    for name, pq in per_query.items():
        row: dict[str, Any] = mean(pq)
        row["ci95"] = {
            m: list(bootstrap_ci(column(pq, m, qids), n_resamples=config.n_resamples, seed=config.seed))
            for m in DEFAULT_METRICS
        }
        row["seconds"] = round(seconds.get(name, 0.0), 3)
        row["queries_per_second"] = round(len(qids) / seconds[name], 2) if seconds.get(name) else None
        results[name] = row
    baseline = BASELINE if BASELINE in runs else next(iter(runs))
    vs = {
        name: {
            m: paired_test(
                column(pq, m, qids),
                column(per_query[baseline], m, qids),
                n_resamples=config.n_resamples,
                seed=config.seed,
            )
            for m in DEFAULT_METRICS
        }
        for name, pq in per_query.items()
        if name != baseline
    }
    significance = {
        "baseline": baseline,
        "method": "two-sided paired t-test and paired randomisation test "
        f"({config.n_resamples} resamples, seed {config.seed})",
        "vs_baseline": vs,
        "vs_input": vs_inputs(per_query, qids, config),  # each +rerank row against the row it reranked
    }
    return results, significance, per_query


def evaluate_config(
    dataset_dir: str | Path,
    config: EvalConfig = EvalConfig(),
    *,
    index_cache_dir: str | Path | None = None,
    encoder: TextEncoder | None = None,
    reranker: Any = None,
    show_progress: bool = False,
    run_dir: str | Path | None = None,
) -> dict:
    """Run the evaluation ``config`` describes on the BEIR folder ``dataset_dir``; see the module docstring.

    With ``run_dir``, each retriever's run is also written there as ``<retriever>.trec`` (:mod:`eval.trec`).
    """
    dataset_dir = Path(dataset_dir)
    corpus, queries, qrels = load_beir(dataset_dir, config.split, config.on_unknown)
    corpus, queries, qrels = subset(corpus, queries, qrels, config.max_queries, config.max_docs, config.seed)
    encoder = encoder if encoder is not None else _load_encoder(config)
    if not config.needs_dense:  # BM25 alone: chunk like the full index, encode nothing
        encoder = LexicalOnly(encoder)
    index_dir = prepare_index(
        corpus,
        dataset_dir.name,
        encoder,
        config,
        Path(index_cache_dir) if index_cache_dir else None,
        show_progress,
    )
    runs, seconds = run_retrievers(index_dir, queries, config, encoder, reranker)
    if run_dir is not None:
        write_runs(run_dir, runs)
    results, significance, per_query = score_runs(runs, qrels, seconds, config)
    return {
        "dataset": dataset_dir.name,
        "split": config.split,
        "n_queries": len(qrels),
        "n_docs": len(corpus),
        "results": results,
        "significance": significance,
        "config": _describe(config, encoder, reranker, dataset_dir, corpus, index_dir),
        "per_query": per_query,
        "queries": {q: queries[q] for q in sorted(qrels)},
    }


def write_runs(run_dir: str | Path, runs: dict[str, Run]) -> list[Path]:
    """``<run_dir>/<retriever>.trec`` per retriever (tag ``e5search-<retriever>``), as ``search --run`` writes."""
    from eval.trec import write_run

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, run in runs.items():
        paths.append(folder / f"{name}.trec")
        write_run(paths[-1], run, f"e5search-{name}")
    return paths


def evaluate(
    dataset_dir: str | Path,
    split: str = "test",
    retrievers: tuple[str, ...] | list[str] = ("bm25", "dense", "hybrid"),
    model: str = DEFAULT_MODEL,
    reranker: Any = None,
    index_cache_dir: str | Path | None = None,
    k: int = 100,
    *,
    encoder: TextEncoder | None = None,
    show_progress: bool = False,
    **options: Any,
) -> dict:
    """Keyword front end of :func:`evaluate_config`; ``options`` are further :class:`EvalConfig` fields.

    ``reranker`` is a CrossEncoder folder / hub id, or an object with ``name`` and ``score(query, passages)``.

    >>> result = evaluate("../shared/data/scifact-beir", retrievers=["bm25"], max_queries=50)  # doctest: +SKIP
    >>> result["results"]["bm25"]["ndcg@10"]                                                  # doctest: +SKIP
    """
    config = EvalConfig(
        split=split,
        retrievers=tuple(retrievers),
        model=model,
        reranker=reranker
        if isinstance(reranker, str) or reranker is None
        else getattr(reranker, "name", type(reranker).__name__),
        k=k,
        **options,
    )
    return evaluate_config(
        dataset_dir,
        config,
        index_cache_dir=index_cache_dir,
        encoder=encoder,
        reranker=None if isinstance(reranker, str) else reranker,
        show_progress=show_progress,
    )


def _load_encoder(config: EvalConfig) -> TextEncoder:
    from indexer.encoding.encoder import Encoder

    model = ModelConfig(model=config.model, batch_size=config.batch_size, backend=config.backend)
    return cast(TextEncoder, Encoder(model))


def _describe(
    config: EvalConfig,
    encoder: TextEncoder,
    reranker: Any,
    dataset_dir: Path,
    corpus: Corpus,
    index_dir: Path,
) -> dict:
    return {
        **dataclasses.asdict(config),
        "reranker": config.reranker if reranker is None else getattr(reranker, "name", config.reranker),
        "encoder": encoder.describe(),
        "dataset_dir": str(dataset_dir),
        "corpus_hash": corpus_hash(corpus),
        "index_dir": str(index_dir),
        "metrics": list(DEFAULT_METRICS),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
    }
