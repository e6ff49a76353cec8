"""Fit hybrid search's BM25-weight model on dev splits and write ``fusion_weights.json`` (issue 14).

Inputs are cached candidate lists (``bench/fusion_lab.py``), dev splits only: the cross-lingual folder set's
``dev`` (``eval.crosslingual``), a seeded 300-query sample of SciFact ``train``, NFCorpus ``dev``. Steps:

1. **Weight table**: for every dev query, nDCG@10 of the weighted combination at each BM25 weight of a grid
   (0, 0.05, ..., 1), combined as the product combines (``fusion.combine`` over
   ``fusion_model.bm25_to_combine``: a cross-script dense hit BM25 lacks at BM25's tenth score; ``--no-fill``
   gives it 0).
2. **Soft labels**: a query's target weight is the middle of its best grid weights; its sample weight is how much
   the weight matters to it (best minus worst nDCG), times its group's share, so that the cross-lingual set (mean
   over pairs), SciFact and NFCorpus count equally. Queries the weight cannot change are left out.
3. **Logistic regression** (scikit-learn, soft labels as two weighted rows) of the target on
   ``indexer.retrieval.fusion_model.FEATURES``; queries whose BM25 weight the rule mutes
   (``fusion_model.muted``: dense crossed scripts, BM25 is flat and elsewhere) are left out, their weight is 0.
4. **Refinement**: Nelder-Mead on the dev objective (the table, interpolated between grid weights), started from
   the logistic fit; kept only if it raises the dev objective. The objective is the balanced dev mean minus
   ``--penalty`` × the mean over language pairs of the gate shortfall (``max(BM25, dense) - 0.5 - fused`` when
   positive; issue 14's gate asks every pair to pass, not only the mean).

Both combinations (normalised scores, ``convex``; reciprocal ranks, ``rrf``) are fitted and the better on dev is
written. Test splits are not read here (``bench/fusion_report.py --split test`` scores them, once). ``--cv``
prints what chose the penalty and the rule: 5-fold out-of-fold dev scores (stratified by pair and dataset, four
fold seeds) with the rule off and on and penalties 0, 1, 3 (``--no-fill`` for the same without the fill). The
lexical guarantee (``--keep-bm25-*``) is not in the fit; it is recorded in the weights file.

Usage (needs scikit-learn and scipy; ~40 s, ``--cv`` ~4 min); the shipped weights come from the seed-1 folder set
(``bench/results/fusion_quality.md``, round 2)::

    python bench/fit_fusion.py --cands /tmp/fusion-cands-s1 --out indexer/retrieval/fusion_weights.json
    python bench/fit_fusion.py --cands /tmp/fusion-cands-s1 --cv [--no-fill]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import fusion_lab as lab
from indexer.retrieval.fusion import combine as combine_lists
from indexer.retrieval.fusion import fuse
from indexer.retrieval.fusion_model import (
    FEATURES,
    Combine,
    FusionConfig,
    bm25_to_combine,
    muted,
    query_features,
)
from indexer.types import FusionWeights

GRID = np.round(np.linspace(0.0, 1.0, 21), 4)
DEV = {"xling": "dev", "scifact-beir": "train", "nfcorpus-beir": "dev"}  # the split each dataset is fitted on
GATE_MARGIN = 0.005  # issue 14's gate: hybrid >= max(BM25, dense) - 0.5 nDCG@10 points on every language pair
GATE_PENALTY = 3.0  # chosen on dev by 5-fold cross-validation (--cv; bench/results/fusion_quality.md)


def fixed_weight(w: float, combine: Combine = "convex", config: FusionConfig = FusionConfig()) -> lab.FuseFn:
    """One BM25 weight for every query, combined as ``fuse`` combines (with ``config``'s fill; no guarantee)."""
    config = dataclasses.replace(config, combine=combine)

    def fn(dense, bm25, ql, langs):
        fused = combine_lists(dense, bm25_to_combine(dense, bm25, ql, langs, config), w, config)
        return fused, FusionWeights(f"fixed-{combine}", bm25=w, dense=1 - w)

    return fn


def fitted(config: FusionConfig) -> lab.FuseFn:
    return lambda dense, bm25, ql, langs: fuse(dense, bm25, ql, langs, config)


def table(c: lab.Cands, split: str, combine: Combine, config: FusionConfig) -> tuple[list[str], np.ndarray]:
    """qids and their nDCG@10 at every grid weight: ``(n_queries, len(GRID))``."""
    cols = [lab.evaluate(c, split, fixed_weight(float(w), combine, config)) for w in GRID]
    qids = sorted(cols[0])
    return qids, np.array([[col[q] for col in cols] for q in qids])


def features(c: lab.Cands, qids: list[str], config: FusionConfig) -> tuple[np.ndarray, np.ndarray]:
    """The signals of each query, ``(n_queries, n_features)``, and whether the rule mutes BM25 for it."""
    index = {q: i for i, q in enumerate(c.qids)}
    rows = [
        query_features(c.dense[index[q]], c.bm25[index[q]], c.query_lang[index[q]], c.chunk_lang)
        for q in qids
    ]
    x = np.array([[f[name] for name in FEATURES] for f in rows])
    return x, np.array([muted(f, config) for f in rows])


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


@dataclass
class Dev:
    """The dev queries of all sets, row-aligned: the weight table, signals, rule, and what the gate compares to."""

    tab: np.ndarray  # (n_queries, len(GRID)) nDCG@10 at each BM25 weight
    x: np.ndarray  # (n_queries, n_features)
    mute: np.ndarray  # (n_queries,) the rule sets BM25's weight to 0
    gw: (
        np.ndarray
    )  # (n_queries,) objective weights: each set 1/3, each pair equal within the cross-lingual set
    groups: np.ndarray  # language pair or dataset name
    datasets: np.ndarray
    dense: np.ndarray  # (n_queries,) nDCG@10 of dense alone
    bm25: np.ndarray  # (n_queries,) nDCG@10 of BM25 alone

    def subset(self, rows: np.ndarray) -> Dev:
        gw = group_weights(list(self.groups[rows]), list(self.datasets[rows]))
        return Dev(self.tab[rows], self.x[rows], self.mute[rows], gw, self.groups[rows], self.datasets[rows],
                   self.dense[rows], self.bm25[rows])  # fmt: skip


def weights_of(dev: Dev, coef: np.ndarray) -> np.ndarray:
    w = 1.0 / (1.0 + np.exp(-(coef[0] + dev.x @ coef[1:])))  # (n_queries,)
    return np.where(dev.mute, 0.0, w)


def at_weights(tab: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each query's nDCG@10 at its weight, interpolated between grid weights: ``(n_queries,)``."""
    pos = w * (len(GRID) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(GRID) - 2)
    frac = pos - lo
    rows = np.arange(len(tab))
    return (1 - frac) * tab[rows, lo] + frac * tab[rows, lo + 1]


def gate_shortfall(dev: Dev, values: np.ndarray) -> dict[str, float]:
    """Per cross-lingual pair: how far the fused mean is below max(BM25, dense) - 0.5 (0 when it passes)."""
    out = {}
    for g in sorted(set(dev.groups[dev.datasets == "xling"])):
        m = dev.groups == g
        best = max(dev.dense[m].mean(), dev.bm25[m].mean())
        out[g] = max(0.0, float(best - GATE_MARGIN - values[m].mean()))
    return out


def interp_objective(dev: Dev, coef: np.ndarray, penalty: float = 0.0) -> float:
    """The balanced dev mean minus ``penalty`` × the mean gate shortfall over the cross-lingual pairs."""
    values = at_weights(dev.tab, weights_of(dev, coef))
    obj = float(dev.gw @ values)
    if penalty:
        obj -= penalty * float(np.mean(list(gate_shortfall(dev, values).values()) or [0.0]))
    return obj


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


def dev_rows(sets: dict[str, lab.Cands], combine: Combine, config: FusionConfig) -> Dev:
    """Every dev query of ``sets``: its weight table, signals, rule and single-retriever scores."""
    tabs, xs, mutes, dense, bm25, groups, datasets = [], [], [], [], [], [], []
    for name, c in sets.items():
        qids, tab = table(c, DEV[name], combine, config)
        index = {q: i for i, q in enumerate(c.qids)}
        x, mute = features(c, qids, config)
        tabs.append(tab), xs.append(x), mutes.append(mute)
        d, b = lab.evaluate(c, DEV[name], lab.dense_only), lab.evaluate(c, DEV[name], lab.bm25_only)
        dense += [d[q] for q in qids]
        bm25 += [b[q] for q in qids]
        groups += [c.group(index[q]) for q in qids]
        datasets += [name] * len(qids)
    gw = group_weights(groups, datasets)
    return Dev(np.vstack(tabs), np.vstack(xs), np.concatenate(mutes), gw, np.array(groups), np.array(datasets),
               np.array(dense), np.array(bm25))  # fmt: skip


def fit_coef(dev: Dev, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Logistic fit (rows the rule mutes left out), then Nelder-Mead on the penalised dev objective from it."""
    coef_lr = fit_logistic(dev.tab[~dev.mute], dev.gw[~dev.mute], dev.x[~dev.mute])
    res = minimize(
        lambda th: -interp_objective(dev, th, penalty),
        coef_lr,
        method="Nelder-Mead",
        options={"maxiter": 8000, "xatol": 1e-3, "fatol": 1e-7},
    )
    return coef_lr, res.x


def cross_validate(dev: Dev, penalty: float, folds: int = 5, seed: int = 0) -> dict:
    """Out-of-fold dev scores: each query weighted by a fit on the other folds (stratified by pair/dataset)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(dev.tab), dtype=int)
    for g in sorted(set(dev.groups)):
        rows = np.flatnonzero(dev.groups == g)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % folds
    w = np.zeros(len(dev.tab))
    for k in range(folds):
        held = fold == k
        w[held] = weights_of(dev.subset(held), fit_coef(dev.subset(~held), penalty)[1])
    values = at_weights(dev.tab, w)
    short = gate_shortfall(dev, values)
    return {
        "objective": float(dev.gw @ values),
        "pairs_failed": sorted(g for g, v in short.items() if v > 0),
        "shortfall": float(sum(short.values())),
    }


def fit(sets: dict[str, lab.Cands], combine: Combine, config: FusionConfig, penalty: float) -> dict:
    """Fit one combination; returns its coefficients and dev objectives (see the module docstring)."""
    dev = dev_rows(sets, combine, config)
    coef_lr, coef_nm = fit_coef(dev, penalty)
    obj_lr, obj_nm = interp_objective(dev, coef_lr, penalty), interp_objective(dev, coef_nm, penalty)
    refined = obj_nm > obj_lr
    return {
        "combine": combine,
        "coef": (coef_nm if refined else coef_lr).tolist(),
        "method": "logistic regression on soft best-weight labels"
        + (", then Nelder-Mead on the penalised dev objective" if refined else ""),
        "coef_logistic": coef_lr.tolist(),
        "coef_refined": coef_nm.tolist(),
        "dev_objective": {
            "adaptive_logistic": obj_lr,
            "adaptive_refined": obj_nm,
            "global_weight": {f"{w:g}": float(v) for w, v in zip(GRID, dev.gw @ dev.tab)},
            "oracle_per_query": float(dev.gw @ dev.tab.max(1)),
        },
        "n_queries": len(dev.tab),
        "n_muted": int(dev.mute.sum()),
    }


def _backend(cands: Path, name: str) -> str:
    """The encoder backend that made a dump's dense lists (the weights fit that encoder's score shapes)."""
    return json.loads((cands / f"{name}.json").read_text(encoding="utf-8")).get("backend", "?")


def choose(sets: dict[str, lab.Cands], config: FusionConfig, seeds: int = 4) -> None:
    """Print the 5-fold out-of-fold dev scores that chose the penalty and the rule (mean over fold seeds)."""
    for mute in (0.0, config.mute_bm25_peak):
        dev = dev_rows(sets, config.combine, dataclasses.replace(config, mute_bm25_peak=mute))
        for penalty in (0.0, 1.0, 3.0):
            runs = [cross_validate(dev, penalty, seed=seed) for seed in range(seeds)]
            failed: dict[str, int] = {}
            for r in runs:
                for g in r["pairs_failed"]:
                    failed[g] = failed.get(g, 0) + 1
            print(
                f"mute_bm25_peak={mute} penalty={penalty}: objective "
                f"{100 * np.mean([r['objective'] for r in runs]):.2f}, shortfall "
                f"{100 * np.mean([r['shortfall'] for r in runs]):.1f}, pairs failed (of {seeds} fold seeds) "
                + ", ".join(f"{g} {n}" for g, n in sorted(failed.items()))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cands", type=Path, required=True, help="folder of bench/fusion_lab.py dumps")
    parser.add_argument("--out", type=Path, help="e.g. indexer/retrieval/fusion_weights.json")
    parser.add_argument("--keep-bm25-top", type=int, default=FusionConfig.keep_bm25_top, help="0 = off")
    parser.add_argument("--keep-bm25-peak", type=float, default=FusionConfig.keep_bm25_peak)
    parser.add_argument("--keep-bm25-peak-und", type=float, default=FusionConfig.keep_bm25_peak_und)
    parser.add_argument("--mute-bm25-peak", type=float, default=FusionConfig.mute_bm25_peak, help="0 = off")
    parser.add_argument(
        "--no-fill", action="store_true", help="a cross-script dense hit BM25 lacks gets 0 from BM25"
    )
    parser.add_argument("--penalty", type=float, default=GATE_PENALTY, help="weight of the gate shortfall")
    parser.add_argument("--cv", action="store_true", help="print the out-of-fold dev scores that chose them")
    args = parser.parse_args()
    sets = {name: lab.load(args.cands, name) for name in DEV if (args.cands / f"{name}.npz").exists()}
    if not sets:
        parser.error(
            f"no candidate dumps ({', '.join(DEV)}) under {args.cands}; run bench/fusion_lab.py first"
        )
    if not args.cv and args.out is None:
        parser.error("give --out FILE to write the fit, or --cv to print the choice")
    base = FusionConfig(
        keep_bm25_top=args.keep_bm25_top,
        keep_bm25_peak=args.keep_bm25_peak,
        keep_bm25_peak_und=args.keep_bm25_peak_und,
        fill_cross_script=not args.no_fill,
        mute_bm25_peak=args.mute_bm25_peak,
    )
    if args.cv:
        choose(sets, base)
        return
    fits = {combine: fit(sets, combine, base, args.penalty) for combine in ("rrf", "convex")}
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
    config = dataclasses.replace(
        base, combine=chosen["combine"], coef=tuple(round(float(v), 4) for v in chosen["coef"])
    )
    out = {
        "config": config.to_dict(),
        "fits": fits,
        "splits": {name: DEV[name] for name in sets},
        "backends": {name: _backend(args.cands, name) for name in sets},
        "grid": GRID.tolist(),
        "objective": "mean of (cross-lingual mean over language pairs, SciFact, NFCorpus) nDCG@10 on dev splits, "
        f"minus {args.penalty:g} x the mean over language pairs of the gate shortfall "
        "(max(BM25, dense) - 0.5 - fused, when positive)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["config"]))


if __name__ == "__main__":
    main()
