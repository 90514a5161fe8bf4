r"""Performance metrics of a daily backtest (SPEC section 9).

Every function takes **simple per-period returns** (``0.01`` is +1 %) in time
order, oldest first, as a finite 1-D array of at least 2 values; functions
that compound (:func:`equity_curve`, :func:`total_return`,
:func:`annual_return`, :func:`max_drawdown`, :func:`calmar`) also need every
return ``>= -1``. The risk-free rate is taken as zero. Ratios that are
undefined (a zero denominator) are ``None``, never NaN or infinity, so the
output of :func:`summarize` serialises as strict JSON.

Returns and risk
    :func:`equity_curve`, :func:`total_return`, :func:`annual_return`,
    :func:`annual_volatility`, :func:`sharpe`, :func:`sortino`,
    :func:`max_drawdown` (with its dates, as a :class:`Drawdown`),
    :func:`calmar`.
Tail risk
    :func:`value_at_risk`, :func:`conditional_value_at_risk` (historical).
Against a benchmark
    :func:`beta`, :func:`information_ratio`.
Meta-labeling filter
    :func:`filter_scores` (precision and recall of the filter over the
    candidate signals), :func:`sharpe_difference` (Sharpe uplift of the
    filtered strategy with a paired stationary-bootstrap interval).
Report
    :func:`summarize`: all of the above for one backtest, as a flat dict.

Examples
--------
>>> import datetime as dt
>>> import numpy as np
>>> r = np.array([0.0, 0.1, 0.1, 0.9 / 1.21 - 1, 1.0 / 0.9 - 1, 0.3])
>>> dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(6)]
>>> dd = max_drawdown(r, dates)
>>> round(dd.depth, 4), dd.peak, dd.trough, dd.recovery
(-0.2562, datetime.date(2024, 1, 3), datetime.date(2024, 1, 4), datetime.date(2024, 1, 6))
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

import numpy as np

from engine.evaluation.metrics import _index_chunks, block_length
from kernels._typing import Float64Array1D

__all__ = [
    "PERIODS_PER_YEAR",
    "Drawdown",
    "annual_return",
    "annual_volatility",
    "beta",
    "calmar",
    "conditional_value_at_risk",
    "equity_curve",
    "filter_scores",
    "information_ratio",
    "max_drawdown",
    "sharpe",
    "sharpe_difference",
    "sortino",
    "summarize",
    "total_return",
    "value_at_risk",
]

#: Trading days per year: the default annualisation factor.
PERIODS_PER_YEAR = 252


# --------------------------------------------------------------------------- validation


def _check_returns(returns, name: str = "returns", *, compounding: bool = False) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {r.shape}")
    if r.size < 2:
        raise ValueError(f"`{name}` needs at least 2 values, got {r.size}")
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"`{name}` must be finite, got `{name}[{i}]={r[i]}`")
    if compounding:
        low = np.flatnonzero(r < -1.0)
        if low.size:
            i = int(low[0])
            raise ValueError(
                f"`{name}` must be >= -1 (a simple return cannot lose more than everything), "
                f"got `{name}[{i}]={r[i]}`"
            )
    return r


def _check_pair(returns, other, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    r = _check_returns(returns)
    b = _check_returns(other, other_name)
    if b.size != r.size:
        raise ValueError(
            f"`returns` and `{other_name}` must have the same length, got {r.size} and {b.size}"
        )
    return r, b


def _check_periods(periods_per_year) -> float:
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0.0):
        raise ValueError(
            "`periods_per_year` must be a positive number, "
            f"got `periods_per_year={periods_per_year}`"
        )
    return ppy


def _check_level(level) -> float:
    lv = float(level)
    if not 0.0 < lv < 1.0:
        raise ValueError(f"`level` must lie in (0, 1), got `level={level}`")
    return lv


def _check_dates(dates, n: int) -> np.ndarray:
    try:
        d = np.asarray(dates, dtype="datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`dates` must hold dates, could not convert: {exc}") from None
    if d.ndim != 1:
        raise ValueError(f"`dates` must be 1-D, got shape {d.shape}")
    if d.size != n:
        raise ValueError(f"`returns` and `dates` must have the same length, got {n} and {d.size}")
    nat = np.flatnonzero(np.isnat(d))
    if nat.size:
        raise ValueError(f"`dates` must not hold NaT, got `dates[{int(nat[0])}]=NaT`")
    step = np.flatnonzero(np.diff(d) <= np.timedelta64(0, "D"))
    if step.size:
        i = int(step[0])
        what = "duplicate" if d[i] == d[i + 1] else "unsorted"
        raise ValueError(
            f"`dates` must be strictly increasing, got {what} "
            f"`dates[{i}]={d[i]}` and `dates[{i + 1}]={d[i + 1]}`"
        )
    return d


def _is_constant(x: np.ndarray) -> bool:
    # exact test: std() of a constant series can be rounding noise instead of 0
    return bool(np.ptp(x) == 0.0)


def _to_date(d: np.datetime64) -> datetime.date:
    return d.astype("datetime64[D]").item()


# --------------------------------------------------------------------------- returns and risk


def equity_curve(returns) -> Float64Array1D:
    """Compounded value of 1 invested before the first period, ``cumprod(1 + r)``.

    Parameters
    ----------
    returns : array_like
        Simple per-period returns, finite and ``>= -1``.

    Returns
    -------
    numpy.ndarray
        ``E_t = prod_{s <= t} (1 + r_s)``, float64, same length as ``returns``.

    Examples
    --------
    >>> equity_curve([0.1, -0.5, 1.0]).tolist()
    [1.1, 0.55, 1.1]
    """
    r = _check_returns(returns, compounding=True)
    return np.cumprod(1.0 + r)


def total_return(returns) -> float:
    """Compounded return over the whole sample, ``prod(1 + r) - 1``.

    Examples
    --------
    >>> round(total_return([0.1, 0.1]), 10)
    0.21
    """
    r = _check_returns(returns, compounding=True)
    return float(np.prod(1.0 + r) - 1.0)


def annual_return(returns, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """Geometric annual return (CAGR), ``prod(1 + r) ** (periods_per_year / n) - 1``.

    Parameters
    ----------
    returns : array_like
        Simple per-period returns, finite and ``>= -1``.
    periods_per_year : float, default 252
        Periods in a year.

    Returns
    -------
    float
        ``-1.0`` after a total loss.

    Examples
    --------
    >>> round(annual_return([0.01] * 126), 6)      # half a year at +1 % a day
    11.274002
    """
    r = _check_returns(returns, compounding=True)
    ppy = _check_periods(periods_per_year)
    growth = float(np.prod(1.0 + r))
    return growth ** (ppy / r.size) - 1.0


def annual_volatility(returns, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """Annualised volatility, ``std(r, ddof=1) * sqrt(periods_per_year)``.

    Examples
    --------
    >>> round(annual_volatility([0.01, -0.01]), 6)
    0.224499
    """
    r = _check_returns(returns)
    ppy = _check_periods(periods_per_year)
    return float(r.std(ddof=1) * math.sqrt(ppy))


def sharpe(returns, periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """Annualised Sharpe ratio, ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``.

    The risk-free rate is zero (pass excess returns to use another). For the
    per-period value used by the PSR/DSR formulas see
    :func:`engine.evaluation.metrics.sharpe_ratio`.

    Returns
    -------
    float or None
        ``None`` when the returns are constant (zero standard deviation).

    Examples
    --------
    >>> round(sharpe([0.01, -0.01, 0.02, 0.0]), 4)
    6.1482
    >>> sharpe([0.001, 0.001]) is None
    True
    """
    r = _check_returns(returns)
    ppy = _check_periods(periods_per_year)
    if _is_constant(r):
        return None
    return float(r.mean() / r.std(ddof=1) * math.sqrt(ppy))


def sortino(returns, periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    r"""Annualised Sortino ratio with target 0 (Sortino & Price 1994).

    .. math::

        \mathrm{Sortino} = \frac{\bar r \cdot P}
                                {\sqrt{\frac1n \sum_{t=1}^n \min(r_t, 0)^2}\,\sqrt{P}}

    The downside deviation averages over **all** ``n`` periods (a period with a
    gain contributes 0), not over the losing periods only.

    Returns
    -------
    float or None
        ``None`` when no return is negative (zero downside deviation).

    Examples
    --------
    >>> round(sortino([0.02, -0.01, 0.03, -0.02]), 4)
    7.0993
    >>> sortino([0.01, 0.0]) is None
    True
    """
    r = _check_returns(returns)
    ppy = _check_periods(periods_per_year)
    down = np.minimum(r, 0.0)
    if not np.any(down < 0.0):
        return None
    dd = math.sqrt(float(np.mean(down * down)))
    if dd == 0.0:  # losses so small that their squares underflow
        return None
    return float(r.mean() * ppy / (dd * math.sqrt(ppy)))


@dataclass(frozen=True)
class Drawdown:
    """The largest peak-to-trough fall of the equity curve, with its dates.

    Attributes
    ----------
    depth : float
        ``E_trough / E_peak - 1``, in ``[-1, 0]``; ``0.0`` when the equity
        never falls below a previous peak.
    peak : datetime.date or None
        Last date at which the equity stood at the peak that precedes the
        worst trough (``dates[0]`` when that peak is the starting value 1).
    trough : datetime.date or None
        Date of the worst trough (the first one, on a tie).
    recovery : datetime.date or None
        First date after the trough with equity at or above the peak value;
        ``None`` if it never gets back there (or there is no drawdown).
    """

    depth: float
    peak: datetime.date | None
    trough: datetime.date | None
    recovery: datetime.date | None

    def to_dict(self) -> dict[str, float | str | None]:
        """``{"depth", "peak", "trough", "recovery"}`` with the dates as ISO strings.

        Examples
        --------
        >>> Drawdown(-0.1, datetime.date(2024, 1, 2), datetime.date(2024, 1, 5), None).to_dict()
        {'depth': -0.1, 'peak': '2024-01-02', 'trough': '2024-01-05', 'recovery': None}
        """
        return {
            "depth": self.depth,
            "peak": None if self.peak is None else self.peak.isoformat(),
            "trough": None if self.trough is None else self.trough.isoformat(),
            "recovery": None if self.recovery is None else self.recovery.isoformat(),
        }


def _drawdown(r: np.ndarray, d: np.ndarray) -> Drawdown:
    equity = np.cumprod(1.0 + r)
    # the starting value 1 (before the first period) also counts as a peak, on dates[0]
    peak_value = np.maximum(np.maximum.accumulate(equity), 1.0)
    dd = equity / peak_value - 1.0
    trough = int(np.argmin(dd))
    depth = float(dd[trough])
    if depth >= 0.0:
        return Drawdown(0.0, None, None, None)
    top = peak_value[trough]
    at_top = np.flatnonzero(equity[: trough + 1] == top)
    peak = int(at_top[-1]) if at_top.size else 0
    back = np.flatnonzero(equity[trough + 1 :] >= top)
    recovery = _to_date(d[trough + 1 + int(back[0])]) if back.size else None
    return Drawdown(depth, _to_date(d[peak]), _to_date(d[trough]), recovery)


def max_drawdown(returns, dates) -> Drawdown:
    """Maximum drawdown of the equity curve, with its peak, trough and recovery dates.

    The equity is ``E_t = prod_{s <= t} (1 + r_s)``, starting from 1 before
    the first period; that starting value is attributed to ``dates[0]``, so
    the running peak is ``max(1, E_0, ..., E_t)`` and a loss on the first day
    counts as a drawdown from ``dates[0]``.

    Parameters
    ----------
    returns : array_like
        Simple per-period returns, finite and ``>= -1``.
    dates : sequence of datetime.date or array_like of datetime64[D]
        Date of each return (the end of its period), strictly increasing.

    Returns
    -------
    Drawdown
        ``depth`` in ``[-1, 0]`` with the dates of the worst drawdown; dates are
        ``None`` when there is no drawdown.

    Raises
    ------
    ValueError
        On bad returns, or dates of another length, unsorted, duplicated or NaT.

    Examples
    --------
    >>> import datetime as dt
    >>> dates = [dt.date(2024, 1, d) for d in (2, 3, 4, 5)]
    >>> max_drawdown([0.2, -0.5, 0.5, 0.1], dates).to_dict()
    {'depth': -0.5, 'peak': '2024-01-02', 'trough': '2024-01-03', 'recovery': None}
    >>> max_drawdown([0.01, 0.02, 0.0, 0.01], dates).depth
    0.0
    """
    r = _check_returns(returns, compounding=True)
    d = _check_dates(dates, r.size)
    return _drawdown(r, d)


def calmar(returns, dates, periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """Calmar ratio, ``annual_return / |max drawdown depth|``.

    Returns
    -------
    float or None
        ``None`` when there is no drawdown.

    Examples
    --------
    >>> import datetime as dt
    >>> dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(252)]
    >>> r = [0.001] * 251 + [-0.1]
    >>> round(calmar(r, dates), 4)          # (1.001**251 * 0.9 - 1) / 0.1
    1.5663
    """
    r = _check_returns(returns, compounding=True)
    d = _check_dates(dates, r.size)
    ppy = _check_periods(periods_per_year)
    depth = _drawdown(r, d).depth
    if depth == 0.0:
        return None
    return annual_return(r, ppy) / abs(depth)


# --------------------------------------------------------------------------- tail risk


def value_at_risk(returns, level: float = 0.95) -> float:
    """Historical value at risk: ``-quantile(r, 1 - level)``, a loss as a positive number.

    The quantile is numpy's default (linear interpolation between order
    statistics). A negative result means even the ``1 - level`` quantile is a
    gain.

    Parameters
    ----------
    returns : array_like
        Per-period returns.
    level : float, default 0.95
        Confidence level in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> round(value_at_risk(np.arange(-50, 50) / 1000), 6)
    0.04505
    """
    r = _check_returns(returns)
    lv = _check_level(level)
    return float(-np.quantile(r, 1.0 - lv))


def conditional_value_at_risk(returns, level: float = 0.95) -> float:
    """Historical conditional VaR (expected shortfall): ``-mean(r[r <= quantile(r, 1 - level)])``.

    The quantile is the one of :func:`value_at_risk`, so the result is never
    below the VaR (the tail mean is clipped to the quantile against rounding
    in the sum).

    Examples
    --------
    >>> import numpy as np
    >>> round(conditional_value_at_risk(np.arange(-50, 50) / 1000), 6)
    0.048
    """
    r = _check_returns(returns)
    lv = _check_level(level)
    q = float(np.quantile(r, 1.0 - lv))
    tail = r[r <= q]  # never empty: q >= min(r)
    return -min(float(tail.mean()), q)


# --------------------------------------------------------------------------- benchmark


def beta(returns, benchmark) -> float | None:
    """Beta to a benchmark, ``cov(r, b) / var(b)`` (both ``ddof=1``).

    Parameters
    ----------
    returns, benchmark : array_like
        Per-period returns on the same dates (e.g. the strategy and SPY).

    Returns
    -------
    float or None
        The OLS slope of ``r`` on ``b``; ``None`` when the benchmark is constant.

    Examples
    --------
    >>> round(beta([0.03, -0.01, 0.03], [0.01, -0.01, 0.01]), 6)   # r = 2 b + 0.01
    2.0
    """
    r, b = _check_pair(returns, benchmark, "benchmark")
    if _is_constant(b):
        return None
    cov = float(np.sum((r - r.mean()) * (b - b.mean())) / (r.size - 1))
    return cov / float(b.var(ddof=1))


def information_ratio(
    returns, benchmark, periods_per_year: float = PERIODS_PER_YEAR
) -> float | None:
    """Annualised information ratio, ``mean(r - b) / std(r - b, ddof=1) * sqrt(P)``.

    Returns
    -------
    float or None
        ``None`` when the active return ``r - b`` is constant (up to the
        rounding of the inputs: its range within ``4 * eps * max(|r|, |b|)``).

    Examples
    --------
    >>> round(information_ratio([0.01, 0.03, 0.0], [0.0, 0.01, 0.0]), 4)
    15.8745
    """
    r, b = _check_pair(returns, benchmark, "benchmark")
    ppy = _check_periods(periods_per_year)
    active = r - b
    # r - b is "constant" also when the inputs differ by a constant up to their own rounding
    # (0.03 - 0.02 != 0.01 - 0.0 in float64): the ratio would be noise over ~1e-18
    scale = max(float(np.abs(r).max()), float(np.abs(b).max()))
    if np.ptp(active) <= 4.0 * np.finfo(np.float64).eps * scale:
        return None
    return float(active.mean() / active.std(ddof=1) * math.sqrt(ppy))


# --------------------------------------------------------------------------- meta-labeling filter


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
    """Per-period Sharpe ratio of each row of ``m`` where ``ok`` (rows with ptp > 0)."""
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

    The estimate is ``sharpe(filtered) - sharpe(unfiltered)`` (annualised).
    The interval resamples **dates**: each replicate draws one set of
    stationary-bootstrap indices (Politis & Romano 1994, via
    :class:`arch.bootstrap.StationaryBootstrap`) and applies it to both
    series, so the strong dependence between a strategy and its filtered
    version is kept and the interval is that of the difference, not of two
    independent estimates. The mean block length is
    :func:`engine.evaluation.metrics.block_length` of the two series.

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
    f = _check_returns(filtered, "filtered")
    u = _check_returns(unfiltered, "unfiltered")
    if f.size != u.size:
        raise ValueError(
            f"`filtered` and `unfiltered` must have the same length, got {f.size} and {u.size}"
        )
    ppy = _check_periods(periods_per_year)
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 10:
        raise ValueError(f"`n_boot` must be an integer >= 10, got `n_boot={n_boot}`")
    n_boot = int(n_boot)
    lv = _check_level(level)
    if _is_constant(f) or _is_constant(u):
        return None, None, None
    scale = math.sqrt(ppy)
    # the same per-period formula on the full sample and on the replicates
    est = float((f.mean() / f.std(ddof=1) - u.mean() / u.std(ddof=1)) * scale)

    parts = []
    for idx in _index_chunks(f.size, block_length(f, u), n_boot, seed):
        ff = f[idx]
        uu = u[idx]
        ok = (np.ptp(ff, axis=1) > 0.0) & (np.ptp(uu, axis=1) > 0.0)
        parts.append((_row_sharpe(ff, ok) - _row_sharpe(uu, ok)) * scale)
    reps = np.concatenate(parts)
    if 2 * reps.size < n_boot:
        return est, None, None
    alpha = (1.0 - lv) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return est, float(lo), float(hi)


# --------------------------------------------------------------------------- report


def _optional_series(x, name: str, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},) like `returns`, got {a.shape}")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"`{name}` must be finite, got `{name}[{i}]={a[i]}`")
    return a


def _plain(x) -> float | None:
    return None if x is None else float(x)


def summarize(
    returns,
    dates,
    *,
    weights=None,
    turnover=None,
    trade_returns=None,
    benchmark=None,
    periods_per_year: float = PERIODS_PER_YEAR,
    level: float = 0.95,
) -> dict[str, float | int | str | None]:
    """Every backtest metric of SPEC section 9 in one flat, JSON-ready dict.

    Parameters
    ----------
    returns : array_like
        Daily portfolio returns, length ``T``, finite and ``>= -1``.
    dates : sequence of datetime.date or array_like of datetime64[D]
        Strictly increasing dates of the returns.
    weights : array_like, optional
        ``(T, N)`` end-of-day portfolio weights (a 1-D array is one asset).
    turnover : array_like, optional
        ``(T,)`` traded notional over portfolio value, per day (>= 0).
    trade_returns : array_like, optional
        Returns of the closed trades. NaN entries are ignored, so the
        ``(T, N)`` NaN-padded matrix of :func:`kernels.backtest.simulate_portfolio`
        can be passed as is.
    benchmark : array_like, optional
        ``(T,)`` benchmark returns on the same dates (e.g. SPY).
    periods_per_year : float, default 252
        Annualisation factor.
    level : float, default 0.95
        Level of VaR and CVaR.

    Returns
    -------
    dict
        ``start``, ``end`` (ISO dates), ``days``, ``years`` (``days /
        periods_per_year``), ``periods_per_year``, ``total_return``,
        ``annual_return``, ``annual_volatility``, ``sharpe``, ``sortino``,
        ``max_drawdown`` (depth), ``max_drawdown_peak``,
        ``max_drawdown_trough``, ``max_drawdown_recovery`` (ISO or None),
        ``calmar``, ``var``, ``cvar``, ``var_level``; ``turnover``
        (annualised: mean daily turnover times ``periods_per_year``);
        ``exposure`` (mean gross exposure ``sum_i |w_ti|``), ``net_exposure``
        (mean ``sum_i w_ti``), ``time_in_market`` (share of days with any
        non-zero weight); ``trades`` (count), ``hit_rate`` (share of trades
        with a return > 0), ``avg_trade_return``; ``beta``,
        ``information_ratio``. Values are plain ``int``, ``float``, ``str``
        or ``None``: a metric whose input was not given, or that is undefined,
        is ``None``.

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> r = np.random.default_rng(0).normal(0.0005, 0.01, 504)
    >>> dates = np.arange("2022-01-03", 504, dtype="datetime64[D]")
    >>> out = summarize(r, dates)
    >>> out["start"], out["days"], out["years"], out["turnover"]
    ('2022-01-03', 504, 2.0, None)
    >>> out["sharpe"] == sharpe(r)
    True
    >>> text = json.dumps(out, allow_nan=False)
    """
    r = _check_returns(returns, compounding=True)
    d = _check_dates(dates, r.size)
    ppy = _check_periods(periods_per_year)
    lv = _check_level(level)
    n = r.size

    drawdown = _drawdown(r, d)
    depth = drawdown.depth
    dd = drawdown.to_dict()
    out: dict[str, float | int | str | None] = {
        "start": _to_date(d[0]).isoformat(),
        "end": _to_date(d[-1]).isoformat(),
        "days": int(n),
        "years": n / ppy,
        "periods_per_year": int(ppy) if ppy.is_integer() else ppy,
        "total_return": total_return(r),
        "annual_return": annual_return(r, ppy),
        "annual_volatility": annual_volatility(r, ppy),
        "sharpe": sharpe(r, ppy),
        "sortino": sortino(r, ppy),
        "max_drawdown": depth,
        "max_drawdown_peak": dd["peak"],
        "max_drawdown_trough": dd["trough"],
        "max_drawdown_recovery": dd["recovery"],
        "calmar": None if depth == 0.0 else annual_return(r, ppy) / abs(depth),
        "var": value_at_risk(r, lv),
        "cvar": conditional_value_at_risk(r, lv),
        "var_level": lv,
    }

    if turnover is None:
        out["turnover"] = None
    else:
        to = _optional_series(turnover, "turnover", n)
        neg = np.flatnonzero(to < 0.0)
        if neg.size:
            i = int(neg[0])
            raise ValueError(f"`turnover` must be >= 0, got `turnover[{i}]={to[i]}`")
        out["turnover"] = float(to.mean() * ppy)

    if weights is None:
        out.update(exposure=None, time_in_market=None, net_exposure=None)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim == 1:
            w = w[:, None]
        if w.ndim != 2 or w.shape[0] != n:
            raise ValueError(f"`weights` must have shape ({n}, N) like `returns`, got {w.shape}")
        if not np.all(np.isfinite(w)):
            t, i = (int(k) for k in np.argwhere(~np.isfinite(w))[0])
            raise ValueError(f"`weights` must be finite, got `weights[{t}, {i}]={w[t, i]}`")
        out["exposure"] = float(np.abs(w).sum(axis=1).mean())
        out["time_in_market"] = float(np.any(w != 0.0, axis=1).mean())
        out["net_exposure"] = float(w.sum(axis=1).mean())

    if trade_returns is None:
        out.update(trades=None, hit_rate=None, avg_trade_return=None)
    else:
        tr = np.asarray(trade_returns, dtype=np.float64).ravel()
        if np.any(np.isinf(tr)):
            raise ValueError("`trade_returns` must be finite or NaN (no trade), got an infinity")
        tr = tr[np.isfinite(tr)]
        out["trades"] = int(tr.size)
        out["hit_rate"] = float(np.mean(tr > 0.0)) if tr.size else None
        out["avg_trade_return"] = float(tr.mean()) if tr.size else None

    if benchmark is None:
        out.update(beta=None, information_ratio=None)
    else:
        out["beta"] = _plain(beta(r, benchmark))
        out["information_ratio"] = _plain(information_ratio(r, benchmark, ppy))
    return out
