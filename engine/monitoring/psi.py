"""The population stability index with bins frozen from the reference.

PSI compares the share of a current window that falls in each bin with the
share of the reference (the training fold) in the same bin::

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i)

Bins are the reference's deciles: nine inner edges at its 10 %, ..., 90 %
quantiles and two open-ended outer bins, so a current value below or above
anything seen in training still lands in a bin. A bin is ``(e_{i-1}, e_i]``.
Edges that coincide (a feature with few distinct values) are merged, so such
a feature has fewer, still well-defined bins. A share of zero is floored at
:data:`EPSILON` before the logarithm (an empty bin would otherwise give an
infinite PSI); the floor is applied to both sides and the shares are not
renormalised.

Status per row: ``ok`` below :data:`WARN` (0.1), ``warn`` from it, ``drift``
from :data:`DRIFT` (0.25); ``insufficient`` when the window is too small to
tell (:func:`min_rows`).

Why a minimum window. Without drift, ``PSI * n_eff`` with
``1 / n_eff = 1 / n + 1 / m`` (``n`` current and ``m`` reference rows) is
close to chi-squared with ``bins - 1`` degrees of freedom, the same
approximation as Pearson's statistic. Its 99th percentile with ten bins is
21.7, so a window of 250 rows against 2,000 reference rows reaches PSI 0.1
about once in a hundred times by chance alone: PSI 0.1 there is noise. A
window is *insufficient* when that 99th percentile, :func:`noise_floor`, is
at least half of :data:`WARN`; with a large reference that takes 434 rows.
Rows that are serially dependent (rolling features of daily bars) carry
less information than their count, so this floor is a lower bound.

Examples
--------
>>> import numpy as np
>>> reference = np.random.default_rng(0).standard_normal(20_000)
>>> edges = decile_edges(reference)
>>> edges.size
9
>>> shifted = np.random.default_rng(1).standard_normal(20_000) + 0.5
>>> round(psi(bin_shares(reference, edges), bin_shares(shifted, edges)), 2)
0.22
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = [
    "DRIFT",
    "EPSILON",
    "N_BINS",
    "NOISE_QUANTILE",
    "WARN",
    "Status",
    "bin_counts",
    "bin_shares",
    "decile_edges",
    "min_rows",
    "noise_floor",
    "psi",
    "psi_status",
    "worst_status",
]

#: Bins of the reference (deciles).
N_BINS = 10
#: Floor for an empty bin's share before the logarithm.
EPSILON = 1e-4
#: PSI from which a row is ``warn``.
WARN = 0.1
#: PSI from which a row is ``drift``.
DRIFT = 0.25
#: Quantile of the no-drift PSI that must stay below half of :data:`WARN`.
NOISE_QUANTILE = 0.99

Status = Literal["ok", "warn", "drift", "insufficient"]
_ORDER: dict[str, int] = {"insufficient": -1, "ok": 0, "warn": 1, "drift": 2}


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def decile_edges(values, n_bins: int = N_BINS) -> np.ndarray:
    """Inner bin edges at the ``1/n_bins .. (n_bins-1)/n_bins`` quantiles, duplicates merged.

    Parameters
    ----------
    values : array_like
        Reference values; NaN and infinities are ignored.
    n_bins : int, default 10
        Bins wanted (at least 2).

    Returns
    -------
    numpy.ndarray
        Strictly increasing inner edges, at most ``n_bins - 1`` of them (fewer
        when quantiles coincide). The outer bins are open-ended. Quantiles are
        values of the data (``method="inverted_cdf"``), so a discrete feature
        gets edges at its own values, not between them.

    Raises
    ------
    ValueError
        ``n_bins`` below 2, or no finite value.

    Examples
    --------
    >>> decile_edges(np.arange(1.0, 101.0), n_bins=4)
    array([25., 50., 75.])
    >>> decile_edges([0.0, 0.0, 0.0, 1.0])          # quantiles coincide: merged
    array([0., 1.])
    """
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 2:
        raise ValueError(f"`n_bins` must be an integer >= 2, got `n_bins={n_bins}`")
    x = _finite(values)
    if x.size == 0:
        raise ValueError("decile edges need at least one finite reference value")
    q = np.quantile(x, np.arange(1, int(n_bins)) / int(n_bins), method="inverted_cdf")
    return np.unique(q)


def bin_counts(values, edges) -> np.ndarray:
    """Counts of ``values`` in the bins ``(-inf, e_1], (e_1, e_2], ..., (e_k, inf)``.

    NaN and infinite values are not counted.

    Examples
    --------
    >>> bin_counts([0.5, 1.0, 1.5, 3.0, np.nan], [1.0, 2.0])
    array([2, 1, 1])
    """
    e = np.asarray(edges, dtype=np.float64)
    x = _finite(values)
    return np.bincount(np.searchsorted(e, x, side="left"), minlength=e.size + 1)


def bin_shares(values, edges) -> np.ndarray:
    """Share of the finite ``values`` in each bin of ``edges`` (see :func:`bin_counts`).

    Raises
    ------
    ValueError
        No finite value.

    Examples
    --------
    >>> bin_shares([0.5, 1.0, 1.5, 3.0], [1.0, 2.0])
    array([0.5 , 0.25, 0.25])
    """
    counts = bin_counts(values, edges)
    total = counts.sum()
    if total == 0:
        raise ValueError("bin shares need at least one finite value")
    return counts / total


def psi(reference_shares, current_shares, epsilon: float = EPSILON) -> float:
    """Population stability index of two share vectors over the same bins.

    Parameters
    ----------
    reference_shares, current_shares : array_like
        Shares per bin (each summing to 1).
    epsilon : float
        Floor applied to each share before the logarithm.

    Returns
    -------
    float
        ``sum((c - r) * ln(c / r))`` with both shares floored at ``epsilon``;
        0 for identical shares, never negative.

    Examples
    --------
    >>> round(psi([0.25, 0.25, 0.5], [0.5, 0.25, 0.25]), 6)   # 0.5 * ln 2
    0.346574
    """
    r = np.maximum(np.asarray(reference_shares, dtype=np.float64), epsilon)
    c = np.maximum(np.asarray(current_shares, dtype=np.float64), epsilon)
    if r.shape != c.shape or r.ndim != 1:
        raise ValueError(f"share vectors must be 1-D and of equal length, got {r.shape}, {c.shape}")
    return float(np.sum((c - r) * np.log(c / r)))


def noise_floor(
    n_current: int, n_reference: int, n_bins: int = N_BINS, quantile: float = NOISE_QUANTILE
) -> float:
    """The PSI a window reaches by chance alone, at ``quantile``, with no drift at all.

    The chi-squared approximation: ``chi2_{bins-1}(quantile) * (1/n + 1/m)``.

    Examples
    --------
    >>> round(noise_floor(250, 2000), 3)     # PSI 0.1 is chance at this size
    0.097
    >>> round(noise_floor(5000, 20000), 4)
    0.0054
    """
    from scipy.stats import chi2

    if n_current < 1 or n_reference < 1:
        return math.inf
    dof = max(int(n_bins) - 1, 1)
    return float(chi2.ppf(quantile, dof) * (1.0 / n_current + 1.0 / n_reference))


def min_rows(
    n_reference: int, n_bins: int = N_BINS, quantile: float = NOISE_QUANTILE
) -> int | None:
    """Fewest current rows whose :func:`noise_floor` is below half of :data:`WARN`.

    Returns
    -------
    int or None
        The minimum window size; None when no window is large enough (the
        reference alone is too small: ``chi2 / n_reference`` reaches the limit).

    Examples
    --------
    >>> min_rows(2000), min_rows(10**9), min_rows(300)
    (554, 434, None)
    """
    from scipy.stats import chi2

    limit = WARN / 2.0
    per_row = limit / chi2.ppf(quantile, max(int(n_bins) - 1, 1)) - 1.0 / max(n_reference, 1)
    if per_row <= 0.0:
        return None
    n = math.ceil(1.0 / per_row)
    while noise_floor(n, n_reference, n_bins, quantile) >= limit:  # float rounding at the edge
        n += 1
    return n


def psi_status(value: float, n_current: int, n_reference: int, n_bins: int = N_BINS) -> Status:
    """``ok``, ``warn`` or ``drift`` by :data:`WARN` / :data:`DRIFT`; ``insufficient`` if small.

    Examples
    --------
    >>> psi_status(0.12, 5000, 5000), psi_status(0.3, 5000, 5000), psi_status(0.3, 100, 5000)
    ('warn', 'drift', 'insufficient')
    """
    needed = min_rows(n_reference, n_bins)
    if needed is None or n_current < needed:
        return "insufficient"
    if value >= DRIFT:
        return "drift"
    if value >= WARN:
        return "warn"
    return "ok"


def worst_status(statuses) -> Status:
    """The most severe status (``insufficient`` only when every row is).

    Examples
    --------
    >>> worst_status(["ok", "warn", "insufficient"]), worst_status(["insufficient"])
    ('warn', 'insufficient')
    """
    seen = list(statuses)
    if not seen:
        return "insufficient"
    return max(seen, key=lambda s: _ORDER[s])  # type: ignore[return-value]
