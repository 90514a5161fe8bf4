r"""Feature importance on out-of-sample windows: permutation for any model, gain and SHAP for trees.

**Permutation importance** (:func:`permute_feature`, :func:`permutation_importance`)
asks how much a head's out-of-sample AUC falls when the model loses one
feature: that feature's whole 20-day block is shuffled across the windows
of a test period (window ``i`` gets window ``perm[i]``'s 20 values of the
feature, every other feature untouched), so its link to the outcome is
broken while its distribution and its own time shape stay intact. The drop
``AUC(original) - AUC(permuted)`` on the same rows gets the paired
date-block bootstrap interval and p-value of
:func:`engine.evaluation.comparison.paired_differences`, Holm-adjusted over
the features of each head. A feature the model ignores has a drop of
exactly 0. Each feature is permuted once per test window (seeded), so the
interval covers the sampling of dates, not the luck of that one shuffle:
rerun with another seed to see it.

Permuting a feature that is correlated with others understates its
importance (the others still carry its information), as with any
permutation importance; the 17 features share inputs (returns, volatility),
so read small drops with that in mind.

**For LightGBM** (:mod:`engine.model.gbm`) two model-internal measures are
added, both grouped from the 85 window summaries back to the 17 features:
the total split **gain** of each feature's summaries (a share of the head's
gain, averaged over windows), and the mean absolute **SHAP** value (TreeSHAP,
``pred_contrib=True``) of the feature's summaries summed per window row, on
the out-of-sample rows: its average contribution to the log-odds.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(6, 3, 2)).astype(np.float32)
>>> Xp = permute_feature(X, 1, rng)
>>> bool((Xp[:, :, 0] == X[:, :, 0]).all()), sorted(Xp[:, 0, 1]) == sorted(X[:, 0, 1])
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from engine.evaluation.comparison import paired_differences
from engine.evaluation.multiple_testing import holm

__all__ = [
    "group_summaries",
    "permutation_importance",
    "permute_feature",
    "permuted_scores",
]


def permute_feature(X: np.ndarray, feature: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``X`` (n, length, features) with one feature's block shuffled across rows."""
    out = X.copy()
    out[:, :, feature] = X[rng.permutation(X.shape[0]), :, feature]
    return out


def permuted_scores(
    predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """``predict`` of ``X`` with each feature permuted in turn (one list entry per feature)."""
    return [predict(permute_feature(X, f, rng)) for f in range(X.shape[2])]


def permutation_importance(
    y: np.ndarray,
    dates: np.ndarray,
    base: np.ndarray,
    permuted: Sequence[np.ndarray],
    feature_names: Sequence[str],
    pattern_names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pl.DataFrame:
    """AUC drop per head and feature with its paired date-block bootstrap interval.

    Parameters
    ----------
    y : ndarray, shape (n, n_patterns)
        Outcomes (1, 0, NaN where a head has no event), rows in date order.
    dates : ndarray, shape (n,)
        Each row's date, non-decreasing.
    base : ndarray, shape (n, n_patterns)
        The model's confidences on the original windows.
    permuted : sequence of ndarray, each (n, n_patterns)
        Its confidences with feature ``f`` permuted, one per feature.
    feature_names, pattern_names : sequence of str
    n_boot, seed, level
        See :func:`engine.evaluation.comparison.paired_differences`.

    Returns
    -------
    polars.DataFrame
        ``pattern, feature, n, auc, auc_permuted, drop, ci_low, ci_high,
        p_value, p_value_adj`` (Holm over the features of each head),
        sorted by head and by drop, largest first. Heads whose rows hold
        one outcome only are left out.
    """
    if len(permuted) != len(feature_names):
        raise ValueError(f"{len(permuted)} permuted score sets for {len(feature_names)} features")
    rows = []
    for j, pattern in enumerate(pattern_names):
        labelled = ~np.isnan(y[:, j])
        t = y[labelled, j]
        if not 0 < t.sum() < t.size:
            continue
        d = dates[labelled]
        head = []
        for name, scores in zip(feature_names, permuted, strict=True):
            auc = paired_differences(t, base[labelled, j], scores[labelled, j], d, n_boot=n_boot,
                                     seed=seed, level=level)[0]  # fmt: skip
            head.append({"pattern": pattern, "feature": name, "n": auc["n"], "auc": auc["a"],
                         "auc_permuted": auc["b"], "drop": auc["difference"],
                         "ci_low": auc["ci_low"], "ci_high": auc["ci_high"],
                         "p_value": auc["p_value"]})  # fmt: skip
        raw = np.array([np.nan if r["p_value"] is None else r["p_value"] for r in head])
        for r, adj in zip(head, holm(raw), strict=True):
            r["p_value_adj"] = None if np.isnan(adj) else float(adj)
        rows += sorted(head, key=lambda r: -r["drop"])
    if not rows:
        return pl.DataFrame(schema={"pattern": pl.String, "feature": pl.String, "drop": pl.Float64})
    return pl.DataFrame(rows, infer_schema_length=None)


def group_summaries(values: np.ndarray, n_features: int) -> np.ndarray:
    """Sum the last axis's summary-major columns (``5 * n_features``) per feature.

    Examples
    --------
    >>> import numpy as np
    >>> group_summaries(np.arange(6.0), 2).tolist()   # columns f0_s0, f1_s0, f0_s1, ...
    [6.0, 9.0]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] % n_features:
        raise ValueError(f"{values.shape[-1]} columns are not a multiple of {n_features} features")
    per = values.reshape(*values.shape[:-1], values.shape[-1] // n_features, n_features)
    return per.sum(axis=-2)
