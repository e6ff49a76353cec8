"""Before/after table for two ``e5search eval --json`` results on the same dataset and split: per retriever, the
means with their bootstrap CIs and the paired tests of after − before over the same queries (eval.significance).

    python bench/nfcorpus_compare.py --before artifacts/train/nfcorpus/eval_base.json \
        --after artifacts/train/nfcorpus/eval_after.json --markdown artifacts/train/nfcorpus/compare.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.metrics import column
from eval.significance import paired_test

METRICS = ("ndcg@10", "recall@100")


def compare(before: dict, after: dict, seed: int = 0) -> dict:
    if (before["dataset"], before["split"]) != (after["dataset"], after["split"]):
        raise SystemExit(
            f"different evaluations: {before['dataset']}/{before['split']} vs "
            f"{after['dataset']}/{after['split']}"
        )
    out = {}
    for name in (r for r in before["results"] if r in after["results"]):
        qids = sorted(before["per_query"][name])
        if qids != sorted(after["per_query"][name]):
            raise SystemExit(f"{name}: the two runs scored different queries")
        row = {}
        for m in METRICS:
            a = column(after["per_query"][name], m, qids)
            b = column(before["per_query"][name], m, qids)
            row[m] = {
                "before": before["results"][name][m],
                "after": after["results"][name][m],
                "before_ci95": before["results"][name]["ci95"][m],
                "after_ci95": after["results"][name]["ci95"][m],
                **paired_test(a, b, seed=seed),
                "queries_better": int((a > b).sum()),
                "queries_worse": int((a < b).sum()),
            }
        out[name] = row
    return out


def markdown(table: dict, before: dict, after: dict) -> str:
    lines = [
        f"{before['dataset']} {before['split']} ({before['n_queries']} queries, {before['n_docs']} documents): "
        f"{before['config']['model']} → {after['config']['model']}",
        "",
        "| retriever | metric | before | after | Δ | p (randomisation) | p (t-test) | better / worse queries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        for m, r in row.items():
            ci = lambda v, c: f"{100 * v:.1f} [{100 * c[0]:.1f}, {100 * c[1]:.1f}]"  # noqa: E731
            lines.append(
                f"| {name} | {m} | {ci(r['before'], r['before_ci95'])} | {ci(r['after'], r['after_ci95'])} | "
                f"{100 * r['delta']:+.2f} | {r['p_randomization']:.3f} | {r['p_ttest']:.3f} | "
                f"{r['queries_better']} / {r['queries_worse']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    before, after = (json.loads(Path(p).read_text()) for p in (args.before, args.after))
    table = compare(before, after)
    text = markdown(table, before, after)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
