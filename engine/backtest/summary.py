"""The report of one backtest: every metric of SPEC section 9 in one flat, JSON-ready dict.

:func:`summarize` gathers the return and risk metrics of
:mod:`engine.backtest.performance` and the Sharpe ratio
(:func:`engine.evaluation.sharpe_ratio`), and adds what needs more than the
returns: turnover, exposure, time in market, closed trades, and the ratios
against a benchmark. Undefined values are ``None``, so the dict serialises
as strict JSON.

Examples
--------
>>> import numpy as np
>>> r = np.random.default_rng(0).normal(0.0005, 0.01, 252)
>>> out = summarize(r, np.arange("2022-01-03", 252, dtype="datetime64[D]"))
>>> out["days"], out["end"], out["years"]
(252, '2022-09-11', 1.0)
"""

from __future__ import annotations

import numpy as np

from engine.backtest.performance import (
    _check_dates,
    _check_level,
    _check_returns,
    _drawdown,
    _to_date,
    annual_return,
    annual_volatility,
    beta,
    conditional_value_at_risk,
    information_ratio,
    sortino,
    total_return,
    value_at_risk,
)
from engine.evaluation import PERIODS_PER_YEAR, check_periods_per_year, sharpe_ratio

__all__ = ["summarize"]


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
    >>> out["sharpe"] == sharpe_ratio(r)
    True
    >>> text = json.dumps(out, allow_nan=False)
    """
    r = _check_returns(returns, compounding=True)
    d = _check_dates(dates, r.size)
    ppy = check_periods_per_year(periods_per_year)
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
        "sharpe": sharpe_ratio(r, ppy),
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
