"""Base technical trading signals, computed causally from daily closes.

A signal at day ``t`` is +1 (long), -1 (short) or 0 (flat), decided at the
close of ``t`` from closes up to ``t`` only; the backtest fills it on day
``t + 1``. Each strategy is stateless: the day's signal depends on the
day's indicator, not on the previous position. Notation for one ticker,
counting its own rows: ``C`` close, ``mean_n`` and ``sd_n`` the rolling mean
and sample standard deviation (ddof = 1) of the last ``n`` closes.

* ``momentum``: ``sign(ln(C_t / C_{t-20}))``.
* ``mean_reversion``: the Bollinger position ``b = (C_t - mean_20) /
  (2 sd_20)`` is -1 and +1 on the usual 20-day, 2-sd bands; the signal bets
  on a return inside them: +1 when ``b < -1``, -1 when ``b > 1``, else 0.
  A window of equal closes (``sd_20 = 0``) gives 0.
* ``ma_cross``: +1 when ``mean_10 > mean_50``, -1 when below, 0 when equal.

An indicator that cannot be computed (warm-up, a missing close in the
window) gives 0. ``long_only=True`` turns every -1 into 0.

Each strategy is matched to the pattern head whose event it resembles, for
meta-labeling (SPEC section 9): momentum and the moving-average crossover
follow trends (``momentum_persistence``), mean reversion bets on a reversal
(``trend_exhaustion``).

Examples
--------
>>> import datetime as dt
>>> import polars as pl
>>> days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(25)]
>>> bars = pl.DataFrame({"ticker": ["A"] * 25, "date": days,
...                      "close": [100.0 + i for i in range(25)]})
>>> compute_signals(bars, "momentum").get_column("signal").to_list()[18:]
[0, 0, 1, 1, 1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import polars as pl

from engine.data.panel import sorted_panel, ticker_ranges
from kernels.rolling import log_return, rolling_mean_std

__all__ = [
    "MOMENTUM_LOOKBACK",
    "STRATEGIES",
    "STRATEGY_HEADS",
    "compute_signals",
    "ma_cross_signal",
    "mean_reversion_signal",
    "momentum_signal",
]

MOMENTUM_LOOKBACK: Final = 20
BOLLINGER_WINDOW: Final = 20
BOLLINGER_WIDTH: Final = 2.0
MA_FAST: Final = 10
MA_SLOW: Final = 50


def _sign(x: np.ndarray) -> np.ndarray:
    """-1/0/+1 as int8; NaN gives 0."""
    return np.where(np.isfinite(x), np.sign(np.nan_to_num(x)), 0.0).astype(np.int8)


def _rolling(close: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    mean = np.empty_like(close)
    std = np.empty_like(close)
    rolling_mean_std(close, window, mean, std)
    return mean, std


def momentum_signal(close: np.ndarray) -> np.ndarray:
    """``sign(ln(C_t / C_{t-20}))`` of one ticker's closes (float64), as int8."""
    return _sign(log_return(close, MOMENTUM_LOOKBACK))


def bollinger_position(close: np.ndarray) -> np.ndarray:
    """``(C_t - mean_20) / (2 sd_20)``; NaN in the warm-up and when ``sd_20 = 0``."""
    mean, std = _rolling(close, BOLLINGER_WINDOW)
    band = BOLLINGER_WIDTH * std
    out = np.full_like(close, np.nan)
    ok = np.isfinite(band) & (band > 0.0)
    out[ok] = (close[ok] - mean[ok]) / band[ok]
    return out


def mean_reversion_signal(close: np.ndarray) -> np.ndarray:
    """+1 below the lower Bollinger band, -1 above the upper one, else 0 (int8)."""
    b = bollinger_position(close)
    out = np.zeros(close.shape[0], dtype=np.int8)
    out[b < -1.0] = 1
    out[b > 1.0] = -1
    return out


def ma_cross_signal(close: np.ndarray) -> np.ndarray:
    """``sign(mean_10 - mean_50)`` of one ticker's closes, as int8 (warm-up: 0)."""
    fast, _ = _rolling(close, MA_FAST)
    slow, _ = _rolling(close, MA_SLOW)
    return _sign(fast - slow)


STRATEGIES: Final[dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    "momentum": momentum_signal,
    "mean_reversion": mean_reversion_signal,
    "ma_cross": ma_cross_signal,
}

STRATEGY_HEADS: Final[dict[str, str]] = {
    "momentum": "momentum_persistence",
    "mean_reversion": "trend_exhaustion",
    "ma_cross": "momentum_persistence",
}


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if known; else raise a ValueError listing the known ones."""
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; known strategies are: {', '.join(STRATEGIES)}"
        )
    return strategy


def compute_signals(bars: pl.DataFrame, strategy: str, *, long_only: bool = False) -> pl.DataFrame:
    """Signals of ``strategy`` for every (ticker, date) of ``bars``.

    Parameters
    ----------
    bars : polars.DataFrame
        ``ticker``, ``date`` and ``close`` (other columns are ignored); one
        row per (ticker, date). A null close is a missing close.
    strategy : {"momentum", "mean_reversion", "ma_cross"}
    long_only : bool, default False
        Replace short signals (-1) with 0.

    Returns
    -------
    polars.DataFrame
        ``ticker``, ``date``, ``signal`` (Int8: -1, 0 or 1), sorted by
        ticker and date.

    Raises
    ------
    ValueError
        An unknown strategy, a missing column, or duplicate (ticker, date).
    """
    rule = STRATEGIES[check_strategy(strategy)]
    if "close" not in bars.columns:
        raise ValueError(f"bars lack the column 'close' (have {bars.columns})")
    frame = sorted_panel(bars.select("ticker", "date", "close"), "bars")
    close = frame.get_column("close").cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    out = np.zeros(frame.height, dtype=np.int8)
    for start, stop in ticker_ranges(frame).values():
        out[start:stop] = rule(np.ascontiguousarray(close[start:stop]))
    if long_only:
        out[out < 0] = 0
    return frame.select("ticker", "date").with_columns(signal=pl.Series(out, dtype=pl.Int8))
