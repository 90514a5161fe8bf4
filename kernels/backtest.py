"""Portfolio simulation over a (days, tickers) panel: signals in, returns out.

One call simulates every ticker at once on a shared calendar. Arrays are
time-major, shape ``(T, N)``, C-contiguous float64; a missing bar is NaN.

The rules (the contract ``tests/kernels/test_backtest.py`` holds this to, against
the oracle in ``tests/oracles/backtest.py``):

* ``signal[t, i]`` in [-1, 1] is decided at the **close of day t** (NaN
  counts as 0). Its target weight is ``signal[t, i] / max(1, sum_j
  |signal[t, j]|)``: equal weight across the open positions when signals are
  -1/0/+1, and gross exposure at most 1.
* The order that moves ticker ``i`` to its target weight fills on day
  ``t + 1``, at the **open** (``fill_at_close=False``) or at the **close**
  (``fill_at_close=True``). Nothing is ever filled on the day it was
  decided, so a signal never trades at a price it has seen.
* Targets are sized on the portfolio value just before the fill (positions
  marked at the fill prices), so weights drift between fills exactly as
  holdings would.
* Each fill pays ``cost_rate * |traded notional|`` (``cost_rate`` = costs
  plus slippage, as a fraction: 10 bps is 0.001). Cash earns nothing, and a
  short's proceeds sit in cash.
* A ticker whose fill price is NaN is not traded that day (its order gets
  ``OrderStatus.NO_PRICE``) and keeps its holding. Holdings are marked at every
  finite open and close when filling at the open, at every finite close
  when filling at the close (opens are then never read), and carried
  unchanged across NaN prices.
* Targets are sized on the value before costs, so after a fill a holding
  sits a hair above its target and the next fill trims it: a constant
  signal keeps paying costs of order ``cost_rate ** k`` on day k.

Outputs, per day ``t`` (the close-to-close period ending at the close of t):

* ``returns[t]``: portfolio return, ``V_t / V_{t-1} - 1`` with ``V_{-1} = 1``
  (day 0 holds nothing, so it returns 0);
* ``weights[t, i]``: holding value over portfolio value at the close of t;
* ``turnover[t]``: traded notional over the portfolio value at the fill;
* ``costs[t]``: costs paid on day t over ``V_{t-1}`` (a return drag);
* ``orders[t, i]``: an :class:`OrderStatus` code (int8): ``NONE``, ``FILLED``
  or ``NO_PRICE``;
* ``trade_returns[t, i]``: the return of the trade in ticker ``i`` that
  closed on day t (NaN otherwise). A trade is a run of holdings of one sign;
  it closes when a fill takes the holding to zero or flips its sign. Its
  return is its P&L (marks and its share of costs: the entry fill, size
  changes and the exit) over the notional at entry;
* ``open_trade_returns[i]``: the same for a trade still open after the last
  day, marked at the last price (NaN when flat).

Each kernel has a pure-Python twin (suffix ``_py``), the same source run by
the interpreter; tests assert the two agree, and an independent share-count
oracle (``tests/oracles/backtest.py``) checks both.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
from numba import njit
from numba.extending import register_jitable

from kernels._typing import Float64Array1D, Float64Array2D

__all__ = [
    "ORDER_FILLED",
    "ORDER_NONE",
    "ORDER_NO_PRICE",
    "OrderStatus",
    "simulate_portfolio",
    "simulate_portfolio_py",
    "target_weights",
    "target_weights_py",
]


class OrderStatus(IntEnum):
    """What happened to the order of one ticker on one day (``orders[t, i]``).

    Numba cannot raise with run-time messages, so an order that cannot fill is
    reported, not raised (vectorbt's ``OrderStatus`` habit). The kernel writes
    the plain integer values into an int8 array; ``OrderStatus(code)`` reads
    one back.

    Examples
    --------
    >>> OrderStatus(2)
    <OrderStatus.NO_PRICE: 2>
    >>> import numpy as np
    >>> int((np.array([0, 1, 2, 1], dtype=np.int8) == OrderStatus.FILLED).sum())
    2
    """

    NONE = 0  # the holding already matched its target: nothing to trade
    FILLED = 1
    NO_PRICE = 2  # a trade was wanted but the fill price is missing


# Plain-int aliases of the statuses (the names the engine has always imported).
ORDER_NONE: int = OrderStatus.NONE.value
ORDER_FILLED: int = OrderStatus.FILLED.value
ORDER_NO_PRICE: int = OrderStatus.NO_PRICE.value


@register_jitable(error_model="numpy")
def target_weights_py(signal_row: Float64Array1D, out: Float64Array1D) -> None:
    """Weights ``signal / max(1, sum |signal|)`` (NaN signals count as 0) into ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> out = np.empty(4)
    >>> target_weights(np.array([1.0, -1.0, np.nan, 1.0]), out)
    >>> out.round(4)
    array([ 0.3333, -0.3333,  0.    ,  0.3333])
    """
    n = signal_row.shape[0]
    gross = 0.0
    for i in range(n):
        s = signal_row[i]
        if math.isfinite(s):
            gross += abs(s)
    scale = 1.0 / gross if gross > 1.0 else 1.0
    for i in range(n):
        s = signal_row[i]
        out[i] = s * scale if math.isfinite(s) else 0.0


def simulate_portfolio_py(
    open_: Float64Array2D,
    close: Float64Array2D,
    signal: Float64Array2D,
    cost_rate: float,
    fill_at_close: bool,
):
    """Simulate the portfolio over a (days, tickers) panel.

    Returns
    -------
    tuple
        ``(returns, weights, turnover, costs, orders, trade_returns,
        open_trade_returns)`` as described in the module docstring.

    Examples
    --------
    One ticker bought at the open of day 1 (decided at the close of day 0)
    and sold at the open of day 2, paying 10 bps a fill:

    >>> import numpy as np
    >>> open_ = np.array([[100.0], [100.0], [120.0]])
    >>> close = np.array([[100.0], [110.0], [125.0]])
    >>> signal = np.array([[1.0], [0.0], [0.0]])
    >>> returns, weights, turnover, costs, orders, trades, still_open = simulate_portfolio(
    ...     open_, close, signal, 0.001, False
    ... )
    >>> returns.round(6)  # day 1: 100 -> 110 less the entry cost; day 2: 110 -> 120, exit
    array([0.    , 0.099 , 0.0899])
    >>> [OrderStatus(code).name for code in orders[:, 0]]
    ['NONE', 'FILLED', 'FILLED']
    >>> round(float(trades[2, 0]), 6)  # (120 - 100) / 100 less 0.1 % in and 0.12 % out
    0.1978
    """
    n_days, n = close.shape
    returns = np.zeros(n_days)
    weights = np.zeros((n_days, n))
    turnover = np.zeros(n_days)
    costs = np.zeros(n_days)
    orders = np.zeros((n_days, n), dtype=np.int8)
    trade_returns = np.full((n_days, n), np.nan)
    open_trade_returns = np.full(n, np.nan)

    held = np.zeros(n)  # signed value of each holding at its last mark
    last = np.full(n, np.nan)  # last finite price each holding was marked at
    trade_pnl = np.zeros(n)  # P&L of the open trade, costs included
    trade_entry = np.zeros(n)  # |notional| when the open trade was entered
    target = np.zeros(n)
    cash = 1.0
    value = 1.0  # portfolio value at the previous close

    for t in range(n_days):
        prev_value = value
        day_cost = 0.0
        for phase in range(2):  # 0: the open, 1: the close
            if phase == 0 and fill_at_close:
                continue
            price = close[t] if phase == 1 else open_[t]
            for i in range(n):
                p = price[i]
                if not math.isfinite(p):
                    continue
                if held[i] != 0.0:
                    gain = held[i] * (p / last[i] - 1.0)
                    held[i] += gain
                    trade_pnl[i] += gain
                last[i] = p
            if t == 0 or (phase == 0) == fill_at_close:
                continue
            # Fill yesterday's decision at these prices.
            target_weights_py(signal[t - 1], target)
            fill_value = cash
            for i in range(n):
                fill_value += held[i]
            traded_total = 0.0
            for i in range(n):
                want = target[i] * fill_value
                if want == held[i]:
                    continue
                if not math.isfinite(price[i]):
                    orders[t, i] = OrderStatus.NO_PRICE
                    continue
                orders[t, i] = OrderStatus.FILLED
                old = held[i]
                flips = old != 0.0 and (want == 0.0 or (want > 0.0) != (old > 0.0))
                if flips:  # the old trade closes: it pays the cost of its exit
                    exit_cost = cost_rate * abs(old)
                    trade_pnl[i] -= exit_cost
                    trade_returns[t, i] = trade_pnl[i] / trade_entry[i]
                    trade_pnl[i] = 0.0
                    entry_cost = cost_rate * abs(want)
                    if want != 0.0:
                        trade_entry[i] = abs(want)
                        trade_pnl[i] = -entry_cost
                    cost = exit_cost + entry_cost
                else:
                    cost = cost_rate * abs(want - old)
                    if old == 0.0:
                        trade_entry[i] = abs(want)
                    trade_pnl[i] -= cost
                traded_total += abs(want - old)
                cash -= want - old + cost
                day_cost += cost
                held[i] = want
            turnover[t] = traded_total / fill_value if fill_value != 0.0 else 0.0
        value = cash
        for i in range(n):
            value += held[i]
        returns[t] = value / prev_value - 1.0
        costs[t] = day_cost / prev_value
        for i in range(n):
            weights[t, i] = held[i] / value
    for i in range(n):
        if held[i] != 0.0:
            open_trade_returns[i] = trade_pnl[i] / trade_entry[i]
    return returns, weights, turnover, costs, orders, trade_returns, open_trade_returns


target_weights = njit(cache=True, error_model="numpy")(target_weights_py)
simulate_portfolio = njit(cache=True, error_model="numpy")(simulate_portfolio_py)
