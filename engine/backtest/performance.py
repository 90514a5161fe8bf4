r"""Performance metrics of a daily backtest (SPEC section 9).

Every function takes **simple per-period returns** (``0.01`` is +1 %) in time
order, oldest first, as a finite 1-D array of at least 2 values; functions
that compound (:func:`equity_curve`, :func:`total_return`,
:func:`annual_return`, :func:`max_drawdown`, :func:`calmar`) also need every
return ``>= -1``. The risk-free rate is taken as zero. Ratios that are
undefined (a zero denominator) are ``None``, never NaN or infinity, so the
output of :func:`engine.backtest.summary.summarize` serialises as strict JSON.

Returns and risk
    :func:`equity_curve`, :func:`total_return`, :func:`annual_return`,
    :func:`annual_volatility`, :func:`sortino`, :func:`max_drawdown` (with
    its dates, as a :class:`Drawdown`), :func:`calmar`; the Sharpe ratio is
    :func:`engine.evaluation.sharpe_ratio` (annualised by default).
Tail risk
    :func:`value_at_risk`, :func:`conditional_value_at_risk` (historical).
Against a benchmark
    :func:`beta`, :func:`information_ratio`.
All of them for one backtest, as a flat dict, come from
:func:`engine.backtest.summary.summarize`; the meta-labeling filter is scored
in :mod:`engine.backtest.filter_metrics`.

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

from engine.evaluation import PERIODS_PER_YEAR, check_periods_per_year, check_returns
from kernels._typing import Float64Array1D

__all__ = [
    "Drawdown",
    "annual_return",
    "annual_volatility",
    "beta",
    "calmar",
    "conditional_value_at_risk",
    "equity_curve",
    "information_ratio",
    "max_drawdown",
    "sortino",
    "total_return",
    "value_at_risk",
]


# --------------------------------------------------------------------------- validation


def _check_returns(returns, name: str = "returns", *, compounding: bool = False) -> np.ndarray:
    r = check_returns(returns, name)
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
    ppy = check_periods_per_year(periods_per_year)
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
    ppy = check_periods_per_year(periods_per_year)
    return float(r.std(ddof=1) * math.sqrt(ppy))


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
    ppy = check_periods_per_year(periods_per_year)
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
    ppy = check_periods_per_year(periods_per_year)
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
    ppy = check_periods_per_year(periods_per_year)
    active = r - b
    # r - b is "constant" also when the inputs differ by a constant up to their own rounding
    # (0.03 - 0.02 != 0.01 - 0.0 in float64): the ratio would be noise over ~1e-18
    scale = max(float(np.abs(r).max()), float(np.abs(b).max()))
    if np.ptp(active) <= 4.0 * np.finfo(np.float64).eps * scale:
        return None
    return float(active.mean() / active.std(ddof=1) * math.sqrt(ppy))
