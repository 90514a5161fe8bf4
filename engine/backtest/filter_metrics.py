"""Scores of a meta-labeling filter: precision and recall, and the Sharpe uplift it brings.

A meta-labeling filter takes or skips each candidate signal of a base
strategy. :func:`filter_scores` gives its precision and recall over the
candidate signals; :func:`sharpe_difference` gives the Sharpe uplift of the
filtered strategy over the unfiltered one with a paired stationary-bootstrap
interval (:func:`engine.evaluation.stationary_bootstrap_indices`).

Examples
--------
>>> filter_scores([1, 1, 0, 0], [1, 0, 1, 0])["precision"]
0.5
"""

from __future__ import annotations

import math

import numpy as np

from engine.evaluation import (
    PERIODS_PER_YEAR,
    block_length,
    check_bootstrap_settings,
    check_periods_per_year,
    check_returns,
    sharpe_ratio,
    stationary_bootstrap_indices,
)

__all__ = ["filter_scores", "sharpe_difference"]


def _check_flags(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {a.shape}")
    if a.dtype != np.bool_:
        if a.dtype.kind not in "iuf":
            raise ValueError(f"`{name}` must be boolean (or 0/1), got dtype {a.dtype}")
        bad = np.flatnonzero((a != 0) & (a != 1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"`{name}` must be boolean (or 0/1), got `{name}[{i}]={a[i]}`")
        a = a == 1
    return a


def filter_scores(taken, good) -> dict[str, int | float | None]:
    """Quality of a meta-labeling filter over the candidate signals.

    Each candidate signal of the base strategy is either taken or skipped by
    the filter, and either good (e.g. its trade would have made money) or
    not. The filter is useful when its precision beats the base rate, the
    precision of taking every signal.

    Parameters
    ----------
    taken : array_like of bool
        One entry per candidate signal: did the filter take it?
    good : array_like of bool
        Same length: was the signal good?

    Returns
    -------
    dict
        ``n_signals``, ``n_taken``, ``n_good`` (int); ``base_rate`` =
        ``n_good / n_signals``; ``precision`` = good among taken; ``recall`` =
        taken among good; ``f1`` = harmonic mean of precision and recall
        (``2 * n_taken_and_good / (n_taken + n_good)``, so 0 when both are 0).
        A ratio is ``None`` where its denominator is 0; ``f1`` is ``None``
        when precision or recall is.

    Examples
    --------
    >>> s = filter_scores([1, 1, 1, 0, 0], [1, 1, 0, 1, 0])
    >>> s["n_taken"], s["n_good"], s["base_rate"], s["precision"], s["recall"]
    (3, 3, 0.6, 0.6666666666666666, 0.6666666666666666)
    >>> filter_scores([0, 0], [1, 0])["precision"] is None     # nothing taken
    True
    """
    t = _check_flags(taken, "taken")
    g = _check_flags(good, "good")
    if t.size != g.size:
        raise ValueError(f"`taken` and `good` must have the same length, got {t.size} and {g.size}")
    n = int(t.size)
    n_taken = int(t.sum())
    n_good = int(g.sum())
    hits = int((t & g).sum())
    precision = hits / n_taken if n_taken else None
    recall = hits / n_good if n_good else None
    f1 = None if precision is None or recall is None else 2.0 * hits / (n_taken + n_good)
    return {
        "n_signals": n,
        "n_taken": n_taken,
        "n_good": n_good,
        "base_rate": n_good / n if n else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _row_sharpe(m: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio of each row of ``m`` where ``ok`` (rows with ptp > 0).

    The row-wise form of ``sharpe_ratio(row, periods_per_year=1)`` for the
    bootstrap replicates (the tests check that the two agree).
    """
    sub = m[ok]
    return sub.mean(axis=1) / sub.std(axis=1, ddof=1)


def sharpe_difference(
    filtered,
    unfiltered,
    *,
    periods_per_year: float = PERIODS_PER_YEAR,
    n_boot: int = 1000,
    seed=0,
    level: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """Sharpe uplift of the filtered strategy, with a paired stationary-bootstrap interval.

    The estimate is ``sharpe_ratio(filtered) - sharpe_ratio(unfiltered)``
    (:func:`engine.evaluation.sharpe_ratio`, annualised with ``periods_per_year``).
    The interval resamples **dates**: each replicate draws one set of
    stationary-bootstrap indices (Politis & Romano 1994, via
    :class:`arch.bootstrap.StationaryBootstrap`) and applies it to both
    series, so the strong dependence between a strategy and its filtered
    version is kept and the interval is that of the difference, not of two
    independent estimates. The mean block length is
    :func:`engine.evaluation.block_length` of the two series.

    Parameters
    ----------
    filtered, unfiltered : array_like
        Per-period returns of the two strategies on the same dates.
    periods_per_year : float, default 252
        Annualisation factor.
    n_boot : int, default 1000
        Bootstrap replicates (at least 10).
    seed : int or numpy.random.Generator, default 0
        Seeds the resampling.
    level : float, default 0.95
        Two-sided coverage of the percentile interval.

    Returns
    -------
    (estimate, low, high) : tuple
        ``estimate`` is ``None`` when either series is constant (its Sharpe
        ratio is undefined). Replicates in which either resampled series is
        constant are dropped; ``low`` and ``high`` are ``None`` when fewer
        than half of the ``n_boot`` replicates are usable, or the estimate is
        ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> unfiltered = rng.normal(0.0, 0.01, 750)
    >>> filtered = np.where(rng.uniform(size=750) < 0.5, unfiltered, 0.0) + 0.001
    >>> est, lo, hi = sharpe_difference(filtered, unfiltered, n_boot=200)
    >>> bool(lo < est < hi)
    True
    >>> sharpe_difference(unfiltered, unfiltered, n_boot=200)
    (0.0, 0.0, 0.0)
    """
    f = check_returns(filtered, "filtered")
    u = check_returns(unfiltered, "unfiltered")
    if f.size != u.size:
        raise ValueError(
            f"`filtered` and `unfiltered` must have the same length, got {f.size} and {u.size}"
        )
    ppy = check_periods_per_year(periods_per_year)
    check_bootstrap_settings(n_boot, level)
    n_boot = int(n_boot)
    # per period on the full sample, as on the replicates; annualised after the difference
    sr_f = sharpe_ratio(f, periods_per_year=1)
    sr_u = sharpe_ratio(u, periods_per_year=1)
    if sr_f is None or sr_u is None:
        return None, None, None
    scale = math.sqrt(ppy)
    est = float((sr_f - sr_u) * scale)

    parts = []
    for idx in stationary_bootstrap_indices(f.size, block_length(f, u), n_boot, seed):
        ff = f[idx]
        uu = u[idx]
        ok = (np.ptp(ff, axis=1) > 0.0) & (np.ptp(uu, axis=1) > 0.0)
        parts.append((_row_sharpe(ff, ok) - _row_sharpe(uu, ok)) * scale)
    reps = np.concatenate(parts)
    if 2 * reps.size < n_boot:
        return est, None, None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return est, float(lo), float(hi)
