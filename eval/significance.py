"""Paired significance tests and bootstrap confidence intervals over per-query metric values.

Two systems evaluated on the same queries give paired samples, so the tests are paired: Student's paired t-test
(``scipy.stats.ttest_rel``) and a paired randomisation (sign-flip permutation) test, which Smucker et al. (2007)
recommend for IR because it assumes nothing about the distribution of differences. Confidence intervals are
percentile bootstraps of the mean over queries. Everything is seeded, so a report is reproducible.

Non-goal: correction for multiple comparisons. With several retrievers and metrics, read p-values near 0.05 with
care (or apply Holm-Bonferroni to the reported values).
"""

from __future__ import annotations

import numpy as np

N_RESAMPLES = 10_000
CONFIDENCE = 0.95


def bootstrap_ci(
    values: np.ndarray, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per query)."""
    from scipy import stats  # here, not at import: scipy costs ~1 s and `e5search --help` needs none of it

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (0.0, 0.0)
    if np.all(values == values[0]):  # no spread: the bootstrap distribution is a point
        return (float(values[0]), float(values[0]))
    res = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def paired_test(
    a: np.ndarray, b: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Compare system ``a`` with baseline ``b`` on the same queries (two-sided).

    Returns ``delta`` (mean of a - b), ``t`` and ``p_ttest`` (paired t-test) and ``p_randomization`` (paired
    sign-flip permutation test). Identical systems give delta 0 and p-values 1.
    """
    from scipy import stats  # lazily, as above

    a = np.asarray(a, dtype=np.float64)  # (n_queries,)
    b = np.asarray(b, dtype=np.float64)  # (n_queries,)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs equal lengths, got {a.shape} and {b.shape}")
    diff = a - b
    if a.size < 2 or np.all(diff == diff[0]):
        # no variance in the differences: the t statistic is undefined, so both p-values report the exact
        # randomisation p: 1 for a zero shift, 2 / 2**n for a constant non-zero one (only the all-plus and
        # all-minus sign flips are as extreme)
        p = 1.0 if a.size < 2 or diff[0] == 0 else float(2.0 ** (1 - a.size))
        return {"delta": float(diff.mean()) if a.size else 0.0, "t": 0.0, "p_ttest": p, "p_randomization": p}
    t = stats.ttest_rel(a, b)
    perm = stats.permutation_test(
        (a, b),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    return {
        "delta": float(diff.mean()),
        "t": float(t.statistic),
        "p_ttest": float(t.pvalue),
        "p_randomization": float(perm.pvalue),
    }
