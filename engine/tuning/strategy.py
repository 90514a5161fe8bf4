"""The filtered strategy of each trial on the validation periods: the returns the DSR deflates.

A trial's model scores every validation day; the meta-labeling filter of
``engine backtest`` (base signal taken when the matching head's confidence
reaches the threshold) turns those confidences into positions, and the
backtest kernel into daily returns. Each tuned window's validation period
is simulated on its own price grid, flat at its start; the returns of the
periods are concatenated in time order. When validation periods overlap
(a step shorter than the validation length), a day belongs to the latest
window whose validation period holds it (see :func:`own_rows`).

Only prices inside a validation period are read: a decision on its last day
never fills, so no test-period price enters a trial's returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.backtest.meta_labeling import meta_label
from engine.backtest.signals import compute_signals
from engine.backtest.simulation import BacktestSettings, PriceGrid, simulate
from engine.evaluation import sharpe_ratio
from engine.tuning.windows import TuningWindow

__all__ = ["ValidationStrategy", "own_rows", "per_day_sharpe"]


def own_rows(plan: list[TuningWindow], dates: list[np.ndarray]) -> list[np.ndarray]:
    """Per window, which of its validation days no later tuned window's validation period holds.

    Parameters
    ----------
    plan : list of TuningWindow
    dates : list of ndarray of datetime64[D]
        Dates of each window's ``validation_days`` rows.

    Returns
    -------
    list of ndarray of bool
    """
    out = []
    for i, d in enumerate(dates):
        keep = np.ones(d.size, dtype=bool)
        for later in plan[i + 1 :]:
            _, v, t, _ = later.bounds
            keep &= ~((d >= v) & (d < t))
        out.append(keep)
    return out


@dataclass
class _Period:
    grid: PriceGrid
    signals: pl.DataFrame
    keys: pl.DataFrame  # ticker, date of the window's own validation rows


class ValidationStrategy:
    """Daily returns of the filtered strategy over the tuned windows' validation periods.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars of the traded tickers, with history before the first
        validation period (the base signals need 50 days).
    keys : list of polars.DataFrame
        Per window, ``ticker`` and ``date`` of its own validation rows
        (in the order their confidences will be given).
    settings : BacktestSettings
        Strategy, threshold, costs, fill; ``settings.pattern_head`` is the
        head whose confidence filters.
    """

    def __init__(
        self, bars: pl.DataFrame, keys: list[pl.DataFrame], settings: BacktestSettings
    ) -> None:
        self.settings = settings
        tickers = sorted(set().union(*(k.get_column("ticker").unique().to_list() for k in keys)))
        traded = bars.filter(pl.col("ticker").is_in(tickers))
        signals = compute_signals(traded, settings.strategy, long_only=settings.long_only)
        self.periods: list[_Period] = []
        for k in keys:
            if k.height == 0:
                continue
            start, end = k.get_column("date").min(), k.get_column("date").max()
            names = sorted(k.get_column("ticker").unique().to_list())
            grid = PriceGrid.of(bars, names, start, end)
            period_signals = signals.filter(
                pl.col("ticker").is_in(names) & pl.col("date").is_between(start, end)
            )
            self.periods.append(_Period(grid, period_signals, k.select("ticker", "date")))
        self.dates = (
            np.concatenate([p.grid.dates for p in self.periods])
            if self.periods
            else np.zeros(0, dtype="datetime64[D]")
        )

    def returns(self, confidence: list[np.ndarray]) -> np.ndarray:
        """Daily returns of the filtered strategy, given the head's confidence per own row.

        Parameters
        ----------
        confidence : list of ndarray
            Per window (the windows with own rows, in order), the filtering
            head's confidence of each row of its ``keys``.
        """
        if len(confidence) != len(self.periods):
            raise ValueError(
                f"confidence for {len(confidence)} periods, the strategy has {len(self.periods)}"
            )
        out = []
        for period, conf in zip(self.periods, confidence, strict=True):
            frame = period.keys.with_columns(confidence=pl.Series(conf, dtype=pl.Float64))
            labelled = meta_label(period.signals, frame, self.settings.threshold)
            grid = period.grid
            signal = grid.signal_array(labelled, "filtered_signal")
            out.append(simulate(grid.open, grid.close, signal, self.settings).returns)
        return np.concatenate(out) if out else np.zeros(0)

    def unfiltered_returns(self) -> np.ndarray:
        """Daily returns of the base strategy on the same days (every signal taken)."""
        out = []
        for period in self.periods:
            grid = period.grid
            signal = grid.signal_array(period.signals, "signal")
            out.append(simulate(grid.open, grid.close, signal, self.settings).returns)
        return np.concatenate(out) if out else np.zeros(0)


def per_day_sharpe(returns: np.ndarray) -> float | None:
    """Per-day Sharpe ratio; ``None`` for a strategy that never moved (constant returns)."""
    if returns.size < 3:
        return None
    return sharpe_ratio(returns, periods_per_year=1)
