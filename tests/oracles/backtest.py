"""The portfolio backtest by share counts, a cash balance and a ledger of fills.

Written from the contract in the :mod:`kernels.backtest` docstring only (it
imports from there just the :class:`~kernels.backtest.OrderStatus` codes).
Where the kernel carries signed holding *values* and marks them by price
ratios, this oracle holds *share counts* bought at fill prices, worth
``shares * last finite price``; the day loop is vectorised across tickers
with NumPy rows. Trades are rebuilt afterwards from the ledger of fills: a
trade's P&L is its cash flows (what it paid for shares, what it sold them
for, its costs) plus what it still holds, over the notional of its entry
fill.

:func:`reference_metrics` computes the headline metrics of a run with pandas
(the bench's pandas baseline for :func:`engine.backtest.summary.summarize`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kernels.backtest import OrderStatus

OUTPUTS = ("returns", "weights", "turnover", "costs", "orders", "trade_returns",
           "open_trade_returns")  # fmt: skip
#: A holding within this fraction of the portfolio value of its target is not traded.
AT_TARGET = 1e-13
PERIODS_PER_YEAR = 252


def target_weights(signal: np.ndarray) -> np.ndarray:
    """``signal / max(1, sum |signal|)`` per day, a NaN signal counting as 0."""
    clean = pd.DataFrame(signal).fillna(0.0)
    return clean.div(clean.abs().sum(axis=1).clip(lower=1.0), axis=0).to_numpy()


def reference_backtest(
    open_: np.ndarray,
    close: np.ndarray,
    signal: np.ndarray,
    cost_rate: float,
    fill_at_close: bool,
    *,
    trades: bool = True,
) -> dict[str, np.ndarray]:
    """Simulate the (days, tickers) panel; the outputs of ``simulate_portfolio`` by name.

    With ``trades=False`` the ledger is not kept and ``trade_returns`` and
    ``open_trade_returns`` are left out (the bench times it that way).
    """
    n_days, n = close.shape
    target = target_weights(signal)
    # The prices the simulation sees each day, in time order; the first one fills.
    # Filling at the close, the open is never seen (so never used as a mark either).
    sessions = [close] if fill_at_close else [open_, close]
    cash = 1.0
    shares = np.zeros(n)
    last = np.full(n, np.nan)
    value = np.zeros(n_days)
    turnover = np.zeros(n_days)
    paid = np.zeros(n_days)
    weights = np.zeros((n_days, n))
    orders = np.full((n_days, n), OrderStatus.NONE, dtype=np.int8)
    ledger = []  # (day, tickers, shares before, shares after, price), one entry per day

    def worth() -> np.ndarray:
        return np.where(shares != 0.0, shares * last, 0.0)

    for k in range(n_days):
        for session, prices in enumerate(sessions):
            row = prices[k]
            priced = np.isfinite(row)
            last[priced] = row[priced]
            if k == 0 or session != 0:
                continue  # nothing was decided before day 0; fills happen at sessions[0]
            held = worth()
            fill_value = cash + held.sum()
            want = target[k - 1] * fill_value
            wanted = np.abs(want - held) > AT_TARGET * abs(fill_value)
            orders[k, wanted & ~priced] = OrderStatus.NO_PRICE
            fill = np.flatnonzero(wanted & priced)
            orders[k, fill] = OrderStatus.FILLED
            after = want[fill] / row[fill]
            notional = (after - shares[fill]) * row[fill]
            fees = cost_rate * np.abs(notional)
            cash -= notional.sum() + fees.sum()
            turnover[k] = np.abs(notional).sum() / fill_value
            paid[k] = fees.sum()
            if trades:
                ledger.append((k, fill, shares[fill].copy(), after, row[fill]))
            shares[fill] = after
        held = worth()
        value[k] = cash + held.sum()
        weights[k] = held / value[k]

    previous = np.r_[1.0, value[:-1]]  # V_{-1} = 1
    out = {
        "returns": value / previous - 1.0,
        "weights": weights,
        "turnover": turnover,
        "costs": paid / previous,
        "orders": orders,
    }
    if trades:
        closed, still_open = _trade_returns(ledger, shares, last, cost_rate, n_days)
        out.update(trade_returns=closed, open_trade_returns=still_open)
    return out


def _trade_returns(ledger, shares, last, cost_rate, n_days):
    """Closed trades' returns by exit day and open trades' returns, from the fills."""
    n = shares.shape[0]
    closed = np.full((n_days, n), np.nan)
    still_open = np.full(n, np.nan)
    fills: list[list[tuple]] = [[] for _ in range(n)]  # per ticker, in time order
    for day, tickers, before, after, price in ledger:
        for i, b, a, p in zip(tickers, before, after, price, strict=True):
            fills[i].append((day, b, a, p))
    for i in range(n):
        flows = entry = 0.0
        for day, before, after, price in fills[i]:
            legs = [(before, after)]
            if before * after < 0.0:  # a flip: exit to flat, then a new entry
                legs = [(before, 0.0), (0.0, after)]
            for b, a in legs:
                notional = (a - b) * price
                if b == 0.0:
                    entry, flows = abs(notional), 0.0
                flows -= notional + cost_rate * abs(notional)
                if a == 0.0:
                    closed[day, i] = flows / entry
        if shares[i] != 0.0:
            still_open[i] = (flows + shares[i] * last[i]) / entry
    return closed, still_open


def reference_metrics(
    dates: np.ndarray,
    returns: np.ndarray,
    turnover: np.ndarray,
    weights: np.ndarray,
    benchmark: np.ndarray,
) -> dict:
    """Headline metrics of a run with pandas (252 days a year, zero risk-free rate)."""
    r = pd.Series(returns, index=pd.DatetimeIndex(dates))
    gross_exposure = np.abs(weights).sum(axis=1)
    equity = (1.0 + r).cumprod()
    drawdown = equity / equity.cummax().clip(lower=1.0) - 1.0
    years = len(r) / PERIODS_PER_YEAR
    cagr = equity.iloc[-1] ** (1.0 / years) - 1.0
    downside = np.sqrt((r.clip(upper=0.0) ** 2).mean())
    q = r.quantile(0.05)
    bench = pd.Series(benchmark, index=r.index)
    active = r - bench
    return {
        "total_return": equity.iloc[-1] - 1.0,
        "annual_return": cagr,
        "annual_volatility": r.std() * np.sqrt(PERIODS_PER_YEAR),
        "sharpe": r.mean() / r.std() * np.sqrt(PERIODS_PER_YEAR),
        "sortino": r.mean() / downside * np.sqrt(PERIODS_PER_YEAR),
        "max_drawdown": drawdown.min(),
        "max_drawdown_trough": drawdown.idxmin(),
        "calmar": cagr / abs(drawdown.min()),
        "var": -q,
        "cvar": -r[r <= q].mean(),
        "turnover": turnover.mean() * PERIODS_PER_YEAR,
        "exposure": gross_exposure.mean(),
        "net_exposure": weights.sum(axis=1).mean(),
        "time_in_market": (gross_exposure > 0.0).mean(),
        "beta": r.cov(bench) / bench.var(),
        "information_ratio": active.mean() / active.std() * np.sqrt(PERIODS_PER_YEAR),
    }
