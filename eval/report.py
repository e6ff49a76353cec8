"""Human-readable results: a Markdown table with CIs and p-values, a bar chart, and a per-query drill-down.

The drill-down (:func:`drilldown`) is plain data, so the app's evaluation page and the Markdown report show the
same thing: the queries where one retriever beats another, worst first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import DEFAULT_METRICS
from indexer.errors import MissingExtra

logger = logging.getLogger(__name__)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def results_table(result: dict, metrics: Sequence[str] = DEFAULT_METRICS) -> str:
    """Markdown table: one row per retriever, metric ×100 with its 95% CI, and the p-value against the baseline."""
    sig = result.get("significance", {})
    baseline = sig.get("baseline")
    vs = sig.get("vs_baseline", {})
    head = ["retriever", *metrics, f"p vs {baseline} (nDCG@10, rand.)" if baseline else "p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["results"].items():
        cells = [name]
        for m in metrics:
            lo, hi = row.get("ci95", {}).get(m, (row[m], row[m]))
            cells.append(f"{_pct(row[m])} [{_pct(lo)}, {_pct(hi)}]")
        test = vs.get(name, {}).get(metrics[0])
        cells.append("baseline" if name == baseline else _p(test["p_randomization"]) if test else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart(
    results: dict[str, dict], path: Path, metrics: Sequence[str] = DEFAULT_METRICS, title: str = ""
) -> Path:
    """Grouped bars (one group per metric, one bar per retriever) with 95% CI whiskers, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtra("matplotlib", "eval") from exc
    names = list(results)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(metrics), 3.6))
    for i, name in enumerate(names):
        row = results[name]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(metrics))]
        ys = [100 * row[m] for m in metrics]
        ci = [row.get("ci95", {}).get(m, (row[m], row[m])) for m in metrics]
        err = [
            [y - 100 * lo for y, (lo, _) in zip(ys, ci, strict=True)],
            [100 * hi - y for y, (_, hi) in zip(ys, ci, strict=True)],
        ]
        ax.bar(xs, ys, width, label=name, yerr=err, capsize=2)
    ax.set_xticks(range(len(metrics)), list(metrics))
    ax.set_ylabel("score × 100")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=min(3, len(names)))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def drilldown(
    result: dict, a: str, b: str, metric: str = "ndcg@10", limit: int | None = 10
) -> dict[str, Any]:
    """Queries where retriever ``a`` beats ``b`` and where ``b`` beats ``a`` on ``metric``, largest gap first.

    Returns ``{"a", "b", "metric", "a_wins", "b_wins", "ties", "a_better": [...], "b_better": [...]}`` where each
    list item is ``{"qid", "query", a, b, "delta"}`` (``delta`` = a - b).
    """
    pq_a, pq_b = result["per_query"][a], result["per_query"][b]
    texts = result.get("queries", {})
    rows = [
        {
            "qid": q,
            "query": texts.get(q, ""),
            a: pq_a[q][metric],
            b: pq_b[q][metric],
            "delta": pq_a[q][metric] - pq_b[q][metric],
        }
        for q in sorted(pq_a)
    ]
    a_better = sorted((r for r in rows if r["delta"] > 0), key=lambda r: (-r["delta"], r["qid"]))
    b_better = sorted((r for r in rows if r["delta"] < 0), key=lambda r: (r["delta"], r["qid"]))
    return {
        "a": a,
        "b": b,
        "metric": metric,
        "a_wins": len(a_better),
        "b_wins": len(b_better),
        "ties": len(rows) - len(a_better) - len(b_better),
        "a_better": a_better[:limit],
        "b_better": b_better[:limit],
    }


def _drilldown_md(d: dict) -> list[str]:
    a, b, m = d["a"], d["b"], d["metric"]
    lines = [
        f"### {a} vs {b} ({m})",
        "",
        f"{a} better on {d['a_wins']} queries, {b} better on {d['b_wins']}, tied on {d['ties']}.",
        "",
    ]
    for who, rows in ((a, d["a_better"]), (b, d["b_better"])):
        if not rows:
            continue
        lines += [f"Where {who} wins most:", "", f"| qid | query | {a} | {b} |", "|---|---|---|---|"]
        for r in rows:
            query = r["query"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r['qid']} | {query[:100]} | {r[a]:.3f} | {r[b]:.3f} |")
        lines.append("")
    return lines


def markdown(result: dict, chart: str | None = None, drill: Sequence[tuple[str, str]] = ()) -> str:
    """The full report for one evaluation result."""
    cfg = result.get("config", {})
    enc = cfg.get("encoder", {})
    lines = [
        f"# {result['dataset']} ({result['split']}): {result['n_queries']} queries, {result.get('n_docs', '?')} documents",
        "",
        f"Model `{enc.get('model', cfg.get('model'))}` (fingerprint `{enc.get('fingerprint', '?')}`), reranker "
        f"`{cfg.get('reranker')}`, k={cfg.get('k')}, chunk size {cfg.get('chunk_size')}; {cfg.get('date', '')}, "
        f"{cfg.get('machine', '')}.",
        "",
        "Scores ×100 with 95% bootstrap confidence intervals; p is the paired randomisation test against "
        f"{result.get('significance', {}).get('baseline')} on nDCG@10.",
        "",
        results_table(result),
        "",
    ]
    if chart:
        lines += [f"![scores]({chart})", ""]
    for a, b in drill:
        lines += _drilldown_md(drilldown(result, a, b, limit=5))
    return "\n".join(lines)


def default_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Drill-down pairs: every retriever against BM25 (or against the first one)."""
    base = "bm25" if "bm25" in names else (names[0] if names else "")
    return [(n, base) for n in names if n != base]


def write_report(result: dict, path: str | Path) -> Path:
    """Write ``path`` (Markdown) and ``path`` with ``.png`` (the chart) next to it; returns the Markdown path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = bar_chart(
        result["results"],
        path.with_suffix(".png"),
        title=f"{result['dataset']} ({result['split']}, {result['n_queries']} queries)",
    )
    text = markdown(result, chart=png.name, drill=default_pairs(list(result["results"])))
    path.write_text(text + "\n", encoding="utf-8")
    logger.info("wrote %s and %s", path, png)
    return path


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
