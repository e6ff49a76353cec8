"""The reranker's gate: does ``MODE+rerank`` beat ``MODE`` (dense, hybrid) by >= 1.0 nDCG@10, p < 0.05?

For every dataset it builds (or reuses) the cached eval index, takes each query's first-stage top ``--top`` chunks for
dense and hybrid, scores the union of their (query, passage) pairs with the cross-encoder ONCE (cached on disk per
reranker), then compares offline, per query: the first stage alone, the cross-encoder order, and the interpolation
``alpha * z(cross-encoder) + (1 - alpha) * z(first stage)`` over the reranked head (``indexer.retrieval.rerank.
interpolate``, the product's own rerank stage), for an
``alpha`` grid. ``alpha`` is chosen on the datasets marked ``dev`` only (mean nDCG@10 gain over both modes) and then
applied unchanged to the others; significance is eval's paired randomisation test.

    python bench/rerank_gate.py --reranker artifacts/rerank2/model --out bench/results/rerank_gate \
        --dev nfcorpus=../shared/data/nfcorpus-beir:dev --dev-glob 'artifacts/rerank2/dev/*' \
        --report ddtp=SUITE --report-queries 100
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from eval import ddtp
from eval.datasets import load_beir, subset
from eval.metrics import by_rank, column, evaluate_run, mean
from eval.run import EvalConfig, prepare_index
from eval.significance import paired_test
from indexer.retrieval.rerank import interpolate

MODES = ("dense", "hybrid")
ALPHAS = tuple(round(a, 2) for a in np.arange(0.0, 1.01, 0.1))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
logger = logging.getLogger(__name__)


def first_stage(folder: Path, split: str, encoder, top: int, max_queries: int | None, max_docs: int | None):
    """Per query: qrels, and for each mode the head (chunk ids, first-stage scores, doc keys, passage texts)."""
    from indexer.config import SearchConfig
    from indexer.ingest.chunking import passage_text
    from indexer.search.index import Index
    from indexer.storage import catalog

    corpus, queries, qrels = load_beir(folder, split)
    corpus, queries, qrels = subset(corpus, queries, qrels, max_queries, max_docs, 0)
    config = EvalConfig(split=split, backend="torch")
    index_dir = prepare_index(corpus, folder.name, encoder, config)
    idx = Index.open(index_dir, encoder=encoder, config=SearchConfig())
    qids = sorted(qrels)
    heads: dict[str, dict[str, dict]] = {q: {} for q in qids}
    try:
        with idx.reading() as reading:
            keys = idx.doc_keys(reading)
            for mode in MODES:
                ranked = idx.rank(reading, [queries[q] for q in qids], mode, max(2 * top, 100))
                for q, r in zip(qids, ranked, strict=True):
                    parts = catalog.passage_parts(reading.session, [c for c, _ in r[:top]])
                    heads[q][mode] = {
                        "ids": [c for c, _ in r],
                        "scores": [s for _, s in r],
                        "keys": [keys.get(c) for c, _ in r],
                        "texts": {c: passage_text(*parts[c]) for c, _ in r[:top]},
                    }
    finally:
        idx.close()
    return qrels, {q: queries[q] for q in qids}, heads


def combine(head: dict, ce: dict[int, float], top: int, alpha: float | None) -> dict[str, float]:
    """A document run: the head reordered (alpha None: first stage as is), the tail below it."""
    ids, scores = head["ids"], np.asarray(head["scores"], dtype=np.float64)
    n = min(top, len(ids))
    if alpha is None:
        order = list(range(len(ids)))
    else:
        mixed = interpolate(scores[:n], [ce[c] for c in ids[:n]], alpha)  # the product's rerank stage
        order = [int(i) for i in np.argsort(-mixed, kind="stable")] + list(range(n, len(ids)))
    run: dict[str, float] = {}
    for rank, i in enumerate(order):
        key = head["keys"][i]
        if key is not None and key not in run:
            run[key] = float(len(ids) - rank)
    return run


def score_pairs(reranker, queries: dict, heads: dict, cache_file: Path) -> dict[str, dict[int, float]]:
    cache: dict[str, dict[str, float]] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    t0, n = time.perf_counter(), 0
    for q in sorted(heads):
        texts = {c: t for mode in MODES for c, t in heads[q][mode]["texts"].items()}
        todo = [c for c in sorted(texts) if str(c) not in cache.get(q, {})]
        if todo:
            scores = reranker.score(queries[q], [texts[c] for c in todo])
            cache.setdefault(q, {}).update({str(c): float(s) for c, s in zip(todo, scores, strict=True)})
            n += len(todo)
    cache_file.write_text(json.dumps(cache))
    logger.info("%s: scored %d pairs in %.1fs", cache_file.name, n, time.perf_counter() - t0)
    return {q: {int(c): s for c, s in v.items()} for q, v in cache.items()}


def evaluate(qrels, heads, ce, top: int, alpha: float | None) -> dict[str, dict]:
    return {
        mode: evaluate_run(
            qrels, by_rank({q: combine(heads[q][mode], ce.get(q, {}), top, alpha) for q in heads})
        )
        for mode in MODES
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reranker", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dev", action="append", default=[], help="NAME=FOLDER:SPLIT, used to choose alpha")
    ap.add_argument("--dev-glob", help="BEIR folders (split dev) used to choose alpha too")
    ap.add_argument("--dev-queries", type=int, help="seeded sample per --dev set (default: all)")
    ap.add_argument("--report", action="append", default=[], help="NAME=FOLDER:SPLIT or ddtp=SUITE")
    ap.add_argument("--report-queries", type=int, default=100, help="per DDTP direction (seeded)")
    ap.add_argument("--report-docs", type=int, default=500, help="per DDTP direction (seeded, answers kept)")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--alpha", type=float, help="fix alpha instead of choosing it on the dev sets")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder
    from indexer.retrieval.rerank import Reranker

    encoder = Encoder(ModelConfig(backend="torch"))  # fp32: the cached eval indexes
    reranker = Reranker(args.reranker)
    args.out.mkdir(parents=True, exist_ok=True)
    sets: list[tuple[str, Path, str, bool, int | None, int | None]] = []
    for spec in args.dev:
        name, _, rest = spec.partition("=")
        folder, _, split = rest.rpartition(":")
        sets.append((name, Path(folder), split, True, args.dev_queries, None))
    if args.dev_glob:
        for folder in sorted(Path().glob(args.dev_glob)):
            sets.append((f"ddtp-dev-{folder.name}", folder, "dev", True, args.dev_queries, None))
    for spec in args.report:
        name, _, rest = spec.partition("=")
        if rest == "SUITE":
            suite = args.out / "ddtp-suite"
            for key, folder in sorted(ddtp.build_all(DATA / "debian-ddtp", suite).items()):
                sets.append((f"ddtp-{key}", folder, "test", False, args.report_queries, args.report_docs))
        else:
            folder, _, split = rest.rpartition(":")
            sets.append((name, Path(folder), split, False, None, None))
    data = {}
    for name, folder, split, is_dev, mq, md in sets:
        qrels, queries, heads = first_stage(folder, split, encoder, args.top, mq, md)
        ce = score_pairs(reranker, queries, heads, args.out / f"ce-{name}.json")
        data[name] = (qrels, heads, ce, is_dev)
    table = {}
    for name, (qrels, heads, ce, _) in data.items():
        table[name] = {
            str(a): evaluate(qrels, heads, ce, args.top, a) for a in (None, *ALPHAS)
        }  # "None": the first stage
    dev_names = [n for n, d in data.items() if d[3]]
    gains = {
        a: float(
            np.mean(
                [
                    mean(table[n][str(a)][m])["ndcg@10"] - mean(table[n]["None"][m])["ndcg@10"]
                    for n in dev_names
                    for m in MODES
                ]
            )
        )
        for a in ALPHAS
    }
    alpha = args.alpha if args.alpha is not None else max(ALPHAS, key=lambda a: (gains[a], a))
    report: dict = {"alpha": alpha, "dev_mean_gain_by_alpha": gains, "top": args.top, "sets": {}}
    for name, (qrels, _heads, _, is_dev) in data.items():
        qids = sorted(qrels)
        row: dict = {"dev": is_dev, "queries": len(qids)}
        for mode in MODES:
            base = column(table[name]["None"][mode], "ndcg@10", qids)
            for label, a in ((f"{mode}+rerank", alpha), (f"{mode}+rerank(ce-only)", 1.0)):
                got = column(table[name][str(a)][mode], "ndcg@10", qids)
                row[label] = {"ndcg@10": float(got.mean()), **paired_test(got, base)}
            row[mode] = {"ndcg@10": float(base.mean())}
        report["sets"][name] = row
    suite = [n for n in data if n.startswith("ddtp-") and not data[n][3]]
    if suite:  # the DDTP suite as one set: every direction's queries pooled
        row = {"dev": False, "queries": sum(len(data[n][0]) for n in suite)}
        for mode in MODES:

            def pooled(a, mode=mode):
                return np.concatenate(
                    [column(table[n][str(a)][mode], "ndcg@10", sorted(data[n][0])) for n in suite]
                )

            base = pooled(None)
            for label, a in ((f"{mode}+rerank", alpha), (f"{mode}+rerank(ce-only)", 1.0)):
                got = pooled(a)
                row[label] = {"ndcg@10": float(got.mean()), **paired_test(got, base)}
            row[mode] = {"ndcg@10": float(base.mean())}
        report["sets"]["ddtp-suite-pooled"] = row
    (args.out / "gate.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"alpha": alpha, "gains": gains}))
    for name, row in report["sets"].items():
        cells = [
            f"{k} {v['ndcg@10'] * 100:.1f}"
            + (f" (Δ{v['delta'] * 100:+.1f}, p={v['p_randomization']:.3f})" if "delta" in v else "")
            for k, v in row.items()
            if isinstance(v, dict)
        ]
        print(name, "dev" if row["dev"] else "report", row["queries"], "|", "; ".join(cells))


if __name__ == "__main__":
    main()
