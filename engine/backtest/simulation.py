"""One backtest's settings and the simulation: (days, tickers) arrays through the Numba kernel.

A decision at the close of t fills at the open (or the close) of t+1
(:mod:`kernels.backtest`). Annualisation: 252 trading days a year; Sharpe
and Sortino ratios use a zero risk-free rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import polars as pl

from engine.backtest.meta_labeling import DEFAULT_THRESHOLD
from engine.backtest.signals import STRATEGY_HEADS, check_strategy
from engine.backtest.summary import summarize
from engine.data.universe import MARKET_BENCHMARK
from engine.evaluation import PERIODS_PER_YEAR
from engine.labels.targets import DEFAULT_HORIZON, PATTERN_NAMES
from kernels.backtest import OrderStatus, simulate_portfolio

__all__ = [
    "DEFAULT_COSTS_BPS",
    "BacktestSettings",
    "PriceGrid",
    "Simulation",
    "benchmark_returns",
    "simulate",
]

#: Default cost of trading, in basis points of traded notional (liquid US large caps).
DEFAULT_COSTS_BPS = 5.0


@dataclass(frozen=True)
class BacktestSettings:
    """What ``engine backtest`` simulates.

    Attributes
    ----------
    strategy : {"momentum", "mean_reversion", "ma_cross"}
    threshold : float
        A signal is taken when its head's confidence is at least this.
    costs_bps, slippage_bps : float
        Paid on every fill, in basis points of traded notional.
    fill : {"open", "close"}
        A decision at the close of t fills at the open (or the close) of t+1.
    long_only : bool
        Drop short signals.
    head : str, optional
        Pattern head that filters the strategy (default
        :data:`engine.backtest.signals.STRATEGY_HEADS`).
    horizon : int
        Days ahead that decide whether a signal was right (filter precision).
    n_boot : int
        Bootstrap replicates of the Sharpe difference.
    n_null : int
        Shifted-confidence filters in the null (0 turns it off; :mod:`engine.backtest.null`).
    seed : int
        Seed of the bootstrap and the null.
    trials : int, optional
        Strategy, head and threshold variants tried in all, the ``N`` of the
        deflated Sharpe ratio (:mod:`engine.backtest.inference`); default
        (None) the runs of this backtest (unfiltered and filtered).
    """

    strategy: str = "momentum"
    threshold: float = DEFAULT_THRESHOLD
    costs_bps: float = DEFAULT_COSTS_BPS
    slippage_bps: float = 0.0
    fill: Literal["open", "close"] = "open"
    long_only: bool = False
    head: str | None = None
    horizon: int = DEFAULT_HORIZON
    n_boot: int = 1000
    n_null: int = 200
    seed: int = 0
    trials: int | None = None

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"`threshold` must lie in [0, 1], got `threshold={self.threshold}`")
        for name in ("costs_bps", "slippage_bps"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0.0:
                raise ValueError(f"`{name}` must be a finite number >= 0, got `{name}={value}`")
        if self.fill not in ("open", "close"):
            raise ValueError(f"`fill` must be 'open' or 'close', got `fill={self.fill!r}`")
        if self.head is not None and self.head not in PATTERN_NAMES:
            raise ValueError(
                f"unknown head {self.head!r}; the pattern heads are: {', '.join(PATTERN_NAMES)}"
            )
        if self.horizon < 1:
            raise ValueError(f"`horizon` must be >= 1, got `horizon={self.horizon}`")
        if self.n_boot < 10:
            raise ValueError(f"`n_boot` must be >= 10, got `n_boot={self.n_boot}`")
        if self.n_null < 0:
            raise ValueError(f"`n_null` must be >= 0, got `n_null={self.n_null}`")
        if self.trials is not None and (int(self.trials) != self.trials or self.trials < 1):
            raise ValueError(f"`trials` must be an integer >= 1, got `trials={self.trials}`")

    @property
    def pattern_head(self) -> str:
        """The head whose confidence filters the strategy."""
        return self.head or STRATEGY_HEADS[self.strategy]

    @property
    def cost_rate(self) -> float:
        """Costs plus slippage as a fraction of traded notional."""
        return (self.costs_bps + self.slippage_bps) / 1e4

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, with the head actually used."""
        return {
            "strategy": self.strategy,
            "head": self.pattern_head,
            "threshold": self.threshold,
            "costs_bps": self.costs_bps,
            "slippage_bps": self.slippage_bps,
            "fill": self.fill,
            "long_only": self.long_only,
            "horizon": self.horizon,
            "n_boot": self.n_boot,
            "n_null": self.n_null,
            "seed": self.seed,
            "trials": self.trials,
            "periods_per_year": PERIODS_PER_YEAR,
        }


@dataclass
class Simulation:
    """One kernel run: arrays over the backtest calendar (see :mod:`kernels.backtest`)."""

    returns: np.ndarray
    weights: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    orders: np.ndarray
    trade_returns: np.ndarray
    open_trade_returns: np.ndarray

    def all_trade_returns(self) -> np.ndarray:
        """Returns of the closed trades, then of the trades open at the end (marked)."""
        closed = self.trade_returns[np.isfinite(self.trade_returns)]
        still_open = self.open_trade_returns[np.isfinite(self.open_trade_returns)]
        return np.concatenate([closed, still_open])

    def metrics(self, dates: np.ndarray, benchmark: np.ndarray | None) -> dict[str, Any]:
        """:func:`engine.backtest.summary.summarize` of this run."""
        out = summarize(
            self.returns,
            dates,
            weights=self.weights,
            turnover=self.turnover,
            trade_returns=self.all_trade_returns(),
            benchmark=benchmark,
        )
        out["costs_paid"] = float(self.costs.sum())
        out["orders_without_price"] = int((self.orders == OrderStatus.NO_PRICE).sum())
        out["trades_open_at_end"] = int(np.isfinite(self.open_trade_returns).sum())
        return out


def simulate(
    open_: np.ndarray, close: np.ndarray, signal: np.ndarray, settings: BacktestSettings
) -> Simulation:
    """Run :func:`kernels.backtest.simulate_portfolio` on (days, tickers) arrays."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (open_, close, signal)]
    out = simulate_portfolio(*arrays, settings.cost_rate, settings.fill == "close")
    return Simulation(*out)


@dataclass
class PriceGrid:
    """Opens and closes of the traded tickers on one calendar: arrays of shape (days, tickers)."""

    dates: np.ndarray  # datetime64[D]
    tickers: list[str]
    open: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: pl.DataFrame, tickers: list[str], start: date, end: date) -> PriceGrid:
        """The union calendar of ``tickers`` within ``[start, end]``; NaN where no bar."""
        kept = bars.filter(pl.col("ticker").is_in(tickers) & pl.col("date").is_between(start, end))
        dates = kept.get_column("date").unique().sort()
        return cls(
            dates=dates.to_numpy().astype("datetime64[D]"),
            tickers=tickers,
            open=cls._wide(kept, dates, tickers, "open"),
            close=cls._wide(kept, dates, tickers, "close"),
        )

    @staticmethod
    def _wide(frame: pl.DataFrame, dates: pl.Series, tickers: list[str], column: str):
        wide = frame.pivot(on="ticker", index="date", values=column)
        wide = pl.DataFrame({"date": dates}).join(
            wide, on="date", how="left", maintain_order="left"
        )
        missing = [t for t in tickers if t not in wide.columns]
        wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(t) for t in missing)
        return np.ascontiguousarray(
            wide.select(pl.col(t).cast(pl.Float64) for t in tickers).to_numpy(), dtype=np.float64
        )

    def signal_array(self, signals: pl.DataFrame, column: str) -> np.ndarray:
        """``column`` of a (ticker, date) frame on this calendar; 0 where absent."""
        return np.nan_to_num(self.value_array(signals, column))

    def value_array(self, frame: pl.DataFrame, column: str) -> np.ndarray:
        """``column`` of a (ticker, date) frame on this calendar; NaN where absent or null."""
        calendar = pl.Series("date", self.dates).cast(pl.Date)
        return self._wide(frame, calendar, self.tickers, column)


def benchmark_returns(bars: pl.DataFrame, dates: np.ndarray) -> np.ndarray | None:
    """SPY close-to-close returns on ``dates`` (0 on the first day and where SPY has no bar)."""
    spy = bars.filter(pl.col("ticker") == MARKET_BENCHMARK)
    if spy.height == 0:
        return None
    calendar = pl.DataFrame({"date": pl.Series(dates).cast(pl.Date)})
    close = (
        calendar.join(spy.select("date", "close"), on="date", how="left", maintain_order="left")
        .get_column("close")
        .forward_fill()
        .to_numpy()
    )
    out = np.zeros(close.shape[0])
    ok = np.isfinite(close[1:]) & np.isfinite(close[:-1])
    out[1:][ok] = close[1:][ok] / close[:-1][ok] - 1.0
    return out
