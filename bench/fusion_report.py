"""Score BM25, dense, plain RRF and the shipped weighted fusion on cached candidate lists; check issue 14's gate.

``--split dev`` also scores the alternatives ``bench/fit_fusion.py`` fitted (one global weight, both
combinations, the fusion without its lexical guarantee), for choosing; ``--split test`` scores only the shipped
fusion against the references, once. Per language pair (cross-lingual folder set) and per dataset: nDCG@10; a
paired t-test and randomisation test (``eval.significance``) of the fusion vs plain RRF; the gate (``>= max(BM25,
dense) - 0.5`` on every pair, ``>= dense`` on the mean; and how often it would pass if each pair's queries were
resampled, with each pair's standard error, which says how much one pair's miss means); the exact-match check
(``exact`` split: of the one-word name queries whose answer BM25 ranks first, the share the fusion keeps in its
top 10).

Usage::

    python bench/fusion_report.py --cands /tmp/fusion-cands --split test [--weights FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import fusion_lab as lab
from bench.fit_fusion import DEV, GATE_MARGIN, fitted, fixed_weight
from eval.significance import paired_test
from indexer.retrieval.fusion_model import WEIGHTS_FILE, FusionConfig, load_config

TEST = {"xling": "test", "scifact-beir": "test", "nfcorpus-beir": "test"}


def methods(weights: dict, chosen: FusionConfig, split: str) -> dict[str, lab.FuseFn]:
    out: dict[str, lab.FuseFn] = {
        "bm25": lab.bm25_only,
        "dense": lab.dense_only,
        "rrf": fitted(FusionConfig(mode="rrf")),
    }
    if split != "test":
        for combine, f in weights.get("fits", {}).items():
            glob = f["dev_objective"]["global_weight"]
            best = max(glob, key=glob.get)
            out[f"{combine}-global-w{best}"] = fixed_weight(float(best), combine, chosen)
            out[f"weighted-{combine}"] = fitted(
                dataclasses.replace(chosen, combine=combine, coef=tuple(f["coef"]))
            )
        out["new-no-guard"] = fitted(dataclasses.replace(chosen, keep_bm25_top=0))
    out["new"] = fitted(chosen)
    return out


def gate_failures(c: lab.Cands, per_query: dict, groups: dict) -> dict:
    """Pairs where the new fusion is below max(BM25, dense) - 0.5, with a paired test against that retriever."""
    index = {q: i for i, q in enumerate(c.qids)}
    out = {}
    for g, value in groups["new"].items():
        best = max(("bm25", "dense"), key=lambda m: groups[m][g])
        if value >= groups[best][g] - GATE_MARGIN:
            continue
        qids = sorted(q for q in per_query["new"] if c.group(index[q]) == g)
        test = paired_test(
            np.array([per_query["new"][q] for q in qids]), np.array([per_query[best][q] for q in qids])
        )
        out[g] = {
            "new": value,
            "best": best,
            best: groups[best][g],
            "p_randomization": test["p_randomization"],
        }
    return out


def gate_bootstrap(c: lab.Cands, per_query: dict, resamples: int = 2000, seed: int = 0) -> dict:
    """How noisy the per-pair gate is at this many queries a pair: each pair's queries resampled with replacement
    (seeded), the share of resamples in which every pair passes and in which each pair fails; and each pair's
    standard error of (new - the better single retriever), in nDCG@10 points."""
    index = {q: i for i, q in enumerate(c.qids)}
    pairs: dict[str, list[str]] = {}
    for q in sorted(per_query["new"]):
        pairs.setdefault(c.group(index[q]), []).append(q)
    scores = {
        g: np.array([[per_query[m][q] for m in ("new", "dense", "bm25")] for q in qs])
        for g, qs in pairs.items()
    }
    rng = np.random.default_rng(seed)
    fails = {g: 0 for g in scores}
    passes = 0
    for _ in range(resamples):
        failed = False
        for g, a in scores.items():
            m = a[rng.integers(0, len(a), len(a))].mean(0)  # (3,) new, dense, bm25
            if m[0] < max(m[1], m[2]) - GATE_MARGIN:
                fails[g] += 1
                failed = True
        passes += not failed
    se = {
        g: float(np.std(a[:, 0] - a[:, 1 + a[:, 1:].mean(0).argmax()], ddof=1) / np.sqrt(len(a)))
        for g, a in scores.items()
    }
    return {
        "resamples": resamples,
        "all_pairs_pass": passes / resamples,
        "pair_fails": {g: n / resamples for g, n in sorted(fails.items(), key=lambda kv: -kv[1]) if n},
        "se_points": {
            "median": 100 * float(np.median(list(se.values()))),
            "min": 100 * min(se.values()),
            "max": 100 * max(se.values()),
        },
    }


def exact_check(c: lab.Cands, fns: dict[str, lab.FuseFn], k: int = 10) -> dict:
    """Of the ``exact`` queries BM25 answers first, the share each method keeps in its top ``k`` (and first)."""
    rows = c.rows("exact")
    won = [i for i in rows if c.bm25[i] and c.chunk_doc[c.bm25[i][0][0]] in c.qrels["exact"][c.qids[i]]]
    out: dict = {"queries": len(rows), "bm25_rank1": len(won)}
    for name, fn in fns.items():
        ranks = []
        for i in won:
            docs = lab.doc_run(fn(c.dense[i], c.bm25[i], c.query_lang[i], c.chunk_lang)[0], c.chunk_doc, k)
            ranks.append(next((r for r, d in enumerate(docs, 1) if d in c.qrels["exact"][c.qids[i]]), k + 1))
        out[name] = sum(r <= k for r in ranks) / len(won) if won else None
        out[f"{name}@1"] = sum(r == 1 for r in ranks) / len(won) if won else None
    return out


def report_dataset(c: lab.Cands, split: str, fns: dict[str, lab.FuseFn]) -> dict:
    per_query = {m: lab.evaluate(c, split, fn) for m, fn in fns.items()}
    qids = sorted(per_query["rrf"])
    groups = {m: lab.by_group(c, pq) for m, pq in per_query.items()}
    means = {m: float(np.mean(list(g.values()))) for m, g in groups.items()}
    col = {m: np.array([per_query[m][q] for q in qids]) for m in ("new", "rrf")}
    entry = {"groups": groups, "mean_over_groups": means, "new_vs_rrf": paired_test(col["new"], col["rrf"])}
    entry["n_queries"] = len(qids)
    if len(groups["rrf"]) > 1:
        entry["gate_pairs_failed"] = gate_failures(c, per_query, groups)
        entry["gate_mean_ge_dense"] = means["new"] >= means["dense"]
        entry["gate_bootstrap"] = gate_bootstrap(c, per_query)
    return entry


def print_dataset(name: str, entry: dict) -> None:
    groups, means, test = entry["groups"], entry["mean_over_groups"], entry["new_vs_rrf"]
    names = list(groups)
    print(f"\n## {name} ({entry['n_queries']} queries)\n")
    print("| group | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for g in groups["rrf"]:
        print(f"| {g} | " + " | ".join(f"{100 * groups[m][g]:.1f}" for m in names) + " |")
    if len(groups["rrf"]) > 1:
        print("| **mean over pairs** | " + " | ".join(f"**{100 * means[m]:.1f}**" for m in names) + " |")
    print(
        f"\nnew vs rrf: delta {100 * test['delta']:+.2f}, p_ttest {test['p_ttest']:.3g}, "
        f"p_randomization {test['p_randomization']:.3g}"
    )
    if "gate_pairs_failed" in entry:
        failed = entry["gate_pairs_failed"]
        print(
            f"gate: {len(failed)} pair(s) below max(bm25, dense) - 0.5; mean >= dense: {entry['gate_mean_ge_dense']}"
        )
        for g, f in failed.items():
            print(
                f"  {g}: new {100 * f['new']:.1f} vs {f['best']} {100 * f[f['best']]:.1f} (p {f['p_randomization']:.3g})"
            )
        boot = entry["gate_bootstrap"]
        se = boot["se_points"]
        print(
            f"gate under resampling ({boot['resamples']} bootstrap resamples of each pair's queries): every pair "
            f"passes in {100 * boot['all_pairs_pass']:.1f}%; SE of new - best single per pair {se['median']:.2f} "
            f"points (median; {se['min']:.2f}-{se['max']:.2f}); pairs failing in > 10%: "
            + ", ".join(f"{g} {100 * v:.0f}%" for g, v in boot["pair_fails"].items() if v > 0.1)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cands", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_FILE, help="default: the shipped weights")
    parser.add_argument("--split", choices=["dev", "test"], required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    weights = json.loads(args.weights.read_text(encoding="utf-8"))
    splits = DEV if args.split == "dev" else TEST
    sets = {n: lab.load(args.cands, n) for n in splits if (args.cands / f"{n}.npz").exists()}
    fns = methods(weights, load_config(args.weights), args.split)
    report: dict = {"split": args.split, "config": weights["config"], "datasets": {}}
    for name, c in sets.items():
        report["datasets"][name] = report_dataset(c, splits[name], fns)
        print_dataset(name, report["datasets"][name])
    if "xling" in sets and "exact" in sets["xling"].qrels:
        report["exact"] = exact_check(sets["xling"], fns)
        print("exact-match check:", json.dumps(report["exact"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
