"""Fit hybrid search's BM25-weight model on dev splits and write ``fusion_weights.json`` (issue 14).

Inputs are cached candidate lists (``bench/fusion_lab.py``), dev splits only: the cross-lingual folder set's
``dev`` (``eval.crosslingual``), a seeded 300-query sample of SciFact ``train``, NFCorpus ``dev``. Steps:

1. **Weight table**: for every dev query, nDCG@10 of the weighted combination at each BM25 weight of a grid
   (0, 0.05, ..., 1).
2. **Soft labels**: a query's target weight is the middle of its best grid weights; its sample weight is how much
   the weight matters to it (best minus worst nDCG), times its group's share, so that the cross-lingual set (mean
   over pairs), SciFact and NFCorpus count equally. Queries the weight cannot change are left out.
3. **Logistic regression** (scikit-learn, soft labels as two weighted rows) of the target on
   ``indexer.retrieval.fusion_model.FEATURES``.
4. **Refinement**: Nelder-Mead on the balanced dev objective (the table, interpolated between grid weights),
   started from the logistic fit; kept only if it raises the dev objective.

Both combinations (normalised scores, ``convex``; reciprocal ranks, ``rrf``) are fitted and the better on dev is
written. Test splits are not read here (``bench/fusion_report.py --split test`` scores them, once).

Usage (needs scikit-learn and scipy; ~15 s)::

    python bench/fit_fusion.py --cands /tmp/fusion-cands --out indexer/retrieval/fusion_weights.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import fusion_lab as lab
from indexer.retrieval.fusion import fuse, weighted_convex, weighted_rrf
from indexer.retrieval.fusion_model import FEATURES, Combine, FusionConfig, query_features
from indexer.types import FusionWeights

GRID = np.round(np.linspace(0.0, 1.0, 21), 4)
DEV = {"xling": "dev", "scifact-beir": "train", "nfcorpus-beir": "dev"}  # the split each dataset is fitted on


def fixed_weight(w: float, combine: Combine = "convex") -> lab.FuseFn:
    """One BM25 weight for every query."""

    def fn(dense, bm25, ql, langs):
        fused = (
            weighted_convex(dense, bm25, 1 - w, w)
            if combine == "convex"
            else weighted_rrf(dense, bm25, 1 - w, w)
        )
        return fused, FusionWeights(f"fixed-{combine}", bm25=w, dense=1 - w)

    return fn


def fitted(config: FusionConfig) -> lab.FuseFn:
    return lambda dense, bm25, ql, langs: fuse(dense, bm25, ql, langs, config)


def table(c: lab.Cands, split: str, combine: Combine) -> tuple[list[str], np.ndarray]:
    """qids and their nDCG@10 at every grid weight: ``(n_queries, len(GRID))``."""
    cols = [lab.evaluate(c, split, fixed_weight(float(w), combine)) for w in GRID]
    qids = sorted(cols[0])
    return qids, np.array([[col[q] for col in cols] for q in qids])


def features(c: lab.Cands, qids: list[str]) -> np.ndarray:
    index = {q: i for i, q in enumerate(c.qids)}
    rows = [
        query_features(c.dense[index[q]], c.bm25[index[q]], c.query_lang[index[q]], c.chunk_lang)
        for q in qids
    ]
    return np.array([[f[name] for name in FEATURES] for f in rows])  # (n_queries, n_features)


def group_weights(groups: list[str], datasets: list[str]) -> np.ndarray:
    """Each dataset counts 1/3, and within the cross-lingual set each pair equally."""
    per_group: dict[str, int] = {}
    for g in groups:
        per_group[g] = per_group.get(g, 0) + 1
    groups_per_set: dict[str, set[str]] = {}
    for g, d in zip(groups, datasets):
        groups_per_set.setdefault(d, set()).add(g)
    n_sets = len(groups_per_set)
    return np.array(
        [1.0 / (n_sets * len(groups_per_set[d]) * per_group[g]) for g, d in zip(groups, datasets)]
    )


def interp_objective(tab: np.ndarray, gw: np.ndarray, x: np.ndarray, coef: np.ndarray) -> float:
    w = 1.0 / (1.0 + np.exp(-(coef[0] + x @ coef[1:])))  # (n_queries,)
    pos = w * (len(GRID) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(GRID) - 2)
    frac = pos - lo
    rows = np.arange(len(tab))
    return float(gw @ ((1 - frac) * tab[rows, lo] + frac * tab[rows, lo + 1]))


def fit_logistic(tab: np.ndarray, gw: np.ndarray, x: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    stakes = tab.max(axis=1) - tab.min(axis=1)
    keep = stakes > 1e-9
    y = np.array([GRID[np.isclose(row, row.max())].mean() for row in tab[keep]])
    sw = (stakes * gw)[keep]
    xx = np.vstack([x[keep], x[keep]])
    yy = np.concatenate([np.ones(keep.sum()), np.zeros(keep.sum())])
    ww = np.concatenate([sw * y, sw * (1 - y)])
    model = LogisticRegression(C=1.0).fit(xx, yy, sample_weight=ww / ww.mean())
    return np.concatenate([model.intercept_, model.coef_[0]])


def fit(sets: dict[str, lab.Cands], combine: Combine) -> dict:
    """Fit one combination; returns its coefficients and dev objectives (see the module docstring)."""
    tabs, xs, groups, datasets = [], [], [], []
    for name, c in sets.items():
        qids, tab = table(c, DEV[name], combine)
        index = {q: i for i, q in enumerate(c.qids)}
        tabs.append(tab)
        xs.append(features(c, qids))
        groups += [c.group(index[q]) for q in qids]
        datasets += [name] * len(qids)
    tab, x = np.vstack(tabs), np.vstack(xs)
    gw = group_weights(groups, datasets)
    coef_lr = fit_logistic(tab, gw, x)
    res = minimize(
        lambda th: -interp_objective(tab, gw, x, th),
        coef_lr,
        method="Nelder-Mead",
        options={"maxiter": 6000, "xatol": 1e-3, "fatol": 1e-6},
    )
    obj_lr, obj_nm = interp_objective(tab, gw, x, coef_lr), float(-res.fun)
    refined = obj_nm > obj_lr
    return {
        "combine": combine,
        "coef": (res.x if refined else coef_lr).tolist(),
        "method": "logistic regression on soft best-weight labels"
        + (", then Nelder-Mead on the dev objective" if refined else ""),
        "coef_logistic": coef_lr.tolist(),
        "coef_refined": res.x.tolist(),
        "dev_objective": {
            "adaptive_logistic": obj_lr,
            "adaptive_refined": obj_nm,
            "global_weight": {f"{w:g}": float(v) for w, v in zip(GRID, (gw[:, None] * tab).sum(0))},
            "oracle_per_query": float(gw @ tab.max(1)),
        },
        "n_queries": len(tab),
    }


def _backend(cands: Path, name: str) -> str:
    """The encoder backend that made a dump's dense lists (the weights fit that encoder's score shapes)."""
    return json.loads((cands / f"{name}.json").read_text(encoding="utf-8")).get("backend", "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cands", type=Path, required=True, help="folder of bench/fusion_lab.py dumps")
    parser.add_argument("--out", type=Path, required=True, help="e.g. indexer/retrieval/fusion_weights.json")
    parser.add_argument("--keep-bm25-top", type=int, default=FusionConfig.keep_bm25_top, help="0 = off")
    parser.add_argument("--keep-bm25-peak", type=float, default=FusionConfig.keep_bm25_peak)
    args = parser.parse_args()
    sets = {name: lab.load(args.cands, name) for name in DEV if (args.cands / f"{name}.npz").exists()}
    if not sets:
        parser.error(
            f"no candidate dumps ({', '.join(DEV)}) under {args.cands}; run bench/fusion_lab.py first"
        )
    fits = {combine: fit(sets, combine) for combine in ("rrf", "convex")}
    for combine, f in fits.items():
        obj = f["dev_objective"]
        best_w = max(obj["global_weight"], key=obj["global_weight"].get)
        print(
            f"{combine}: adaptive logistic {obj['adaptive_logistic']:.4f}, refined {obj['adaptive_refined']:.4f}, "
            f"global best w={best_w} {obj['global_weight'][best_w]:.4f}, w=0.5 {obj['global_weight']['0.5']:.4f}, "
            f"oracle {obj['oracle_per_query']:.4f}"
        )
    chosen = max(
        fits.values(),
        key=lambda f: max(f["dev_objective"]["adaptive_logistic"], f["dev_objective"]["adaptive_refined"]),
    )
    config = FusionConfig(
        combine=chosen["combine"],
        coef=tuple(round(float(v), 4) for v in chosen["coef"]),
        keep_bm25_top=args.keep_bm25_top,
        keep_bm25_peak=args.keep_bm25_peak,
    )
    out = {
        "config": config.to_dict(),
        "fits": fits,
        "splits": {name: DEV[name] for name in sets},
        "backends": {name: _backend(args.cands, name) for name in sets},
        "grid": GRID.tolist(),
        "objective": "mean of (cross-lingual mean over language pairs, SciFact, NFCorpus) nDCG@10 on dev splits",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["config"]))


if __name__ == "__main__":
    main()
