"""Small universes for the tuning tests: a random walk, and one with a planted, learnable signal.

Both hold a few stocks plus the ``SPY`` and ``XLK`` benchmarks (the
features need them) on business days from 2005.

* :func:`random_walk_bars`: i.i.d. returns and volumes; nothing is
  predictable, so no configuration may be promoted.
* :func:`planted_bars`: on half of the days (at random) the next five days
  continue the past week's trend, on the other half they reverse it; a day
  that continues closes near its high, one that reverses near its low. The
  ``momentum_persistence`` head can learn "close near the high: the trend
  persists" from ``end_of_day_momentum``, and the momentum strategy filtered
  by that head trades the drift.
"""

from __future__ import annotations

import numpy as np
import polars as pl

START = np.datetime64("2005-01-03")


def _days(n_days: int) -> np.ndarray:
    days = np.arange(START, START + 2 * n_days)
    return days[np.is_busday(days)][:n_days]


def _frame(ticker: str, days: np.ndarray, close: np.ndarray, volume: np.ndarray, rng):
    intraday = rng.normal(0, 0.004, close.size)
    open_ = close * np.exp(-intraday)
    spread = np.abs(rng.normal(0, 0.004, (2, close.size)))
    return pl.DataFrame(
        {
            "ticker": ticker,
            "date": days,
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(spread[0]),
            "low": np.minimum(open_, close) * np.exp(-spread[1]),
            "close": close,
            "volume": np.round(volume),
        }
    )


def random_walk_bars(seed: int = 0, n_days: int = 900, n_stocks: int = 4) -> pl.DataFrame:
    """I.i.d. daily returns (sd 1 %) and log-normal volumes: nothing to learn."""
    rng = np.random.default_rng(seed)
    days = _days(n_days)
    frames = []
    for ticker in [f"S{i}" for i in range(n_stocks)] + ["SPY", "XLK"]:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days)))
        frames.append(_frame(ticker, days, close, rng.lognormal(14, 0.3, n_days), rng))
    return pl.concat(frames)


def planted_bars(
    seed: int = 0, n_days: int = 900, n_stocks: int = 4, drift: float = 0.006
) -> pl.DataFrame:
    """Random walks whose trend persists or reverses, as the day's close location says.

    Every stock day is a *persist* or a *reverse* day (a fair coin). Over the
    next five days the price drifts by ``drift`` a day along (persist) or
    against (reverse) the sign of the past seven days' return. A persist day
    closes near its high, a reverse day near its low, so the feature
    ``end_of_day_momentum`` observed at t tells which way the trend goes.
    """
    rng = np.random.default_rng(seed)
    days = _days(n_days)
    frames = []
    for i in range(n_stocks + 2):
        ticker = f"S{i}" if i < n_stocks else ("SPY", "XLK")[i - n_stocks]
        planted = i < n_stocks
        persist = rng.random(n_days) < 0.5
        noise = rng.normal(0, 0.01, n_days)
        r = np.zeros(n_days)
        push = np.zeros(n_days + 6)
        for t in range(n_days):
            r[t] = noise[t] + push[t]
            if planted and t >= 7:
                direction = np.sign(r[t - 6 : t + 1].sum()) * (1.0 if persist[t] else -1.0)
                push[t + 1 : t + 6] += drift * direction
        close = 50 * np.exp(np.cumsum(r))
        frame = _frame(ticker, days, close, rng.lognormal(14, 0.3, n_days), rng)
        if planted:
            # close location: near the high on persist days, near the low on reverse days
            top = np.maximum(frame["open"].to_numpy(), close)
            bottom = np.minimum(frame["open"].to_numpy(), close)
            small, big = np.exp(0.0005), np.exp(0.012)
            frame = frame.with_columns(
                high=pl.Series(np.where(persist, top * small, top * big)),
                low=pl.Series(np.where(persist, bottom / big, bottom / small)),
            )
        frames.append(frame)
    return pl.concat(frames)
