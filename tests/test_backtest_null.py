"""The backtest null: a persistent zero-skill filter is not skill; a planted one is.

The universe is a set of independent random walks, so no filter can beat
chance. A model whose confidence moves slowly (AR(1), phi 0.98) but knows
nothing about prices takes signals in long runs and so trades less than a
filter of random single (ticker, day) picks. The old null (random picks of as
many signals as the model took) therefore called it significant through
turnover alone: p = 0.005 in 12 of 12 seeds at 5 bps. The shifted-confidence
null keeps the filter's persistence and take rate and must reject at about
the nominal rate.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.backtest.null import MIN_SHIFT, shifted_filter, shifted_filter_null
from engine.backtest.run import run_backtest
from engine.backtest.simulation import BacktestSettings, PriceGrid, simulate
from engine.evaluation import sharpe_ratio

N_TICKERS, N_DAYS, WARM_UP = 8, 700, 60
START = dt.date(2015, 1, 1)


def _random_walk_bars(rng: np.random.Generator) -> pl.DataFrame:
    days = [START + dt.timedelta(days=k) for k in range(N_DAYS)]
    frames = []
    for j in range(N_TICKERS):
        log_close = np.cumsum(rng.normal(0.0, 0.015, N_DAYS)) + np.log(50.0)
        close = np.exp(log_close)
        open_ = np.exp(
            np.concatenate(([log_close[0]], log_close[:-1])) + rng.normal(0, 0.004, N_DAYS)
        )
        high = np.maximum(open_, close) * 1.005
        low = np.minimum(open_, close) * 0.995
        frames.append(
            pl.DataFrame(
                {
                    "ticker": f"T{j}",
                    "date": days,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": np.full(N_DAYS, 1e6),
                }  # fmt: skip
            )
        )
    return pl.concat(frames)


def _confidence(bars: pl.DataFrame, values: np.ndarray) -> pl.DataFrame:
    """A head's confidence frame (as head_confidence returns) over the post-warm-up days."""
    frame = bars.select("ticker", "date").with_columns(confidence=pl.Series(values.ravel()))
    frame = frame.filter(pl.col("date") >= START + dt.timedelta(days=WARM_UP))
    return frame.with_columns(
        model_id=pl.lit("m"), embargo_end=pl.lit(START + dt.timedelta(days=WARM_UP - 1))
    ).select("ticker", "date", "model_id", "embargo_end", "confidence")


def _persistent_noise(rng: np.random.Generator, phi: float = 0.98) -> np.ndarray:
    """Zero-skill confidence, ticker-major like the bars: logistic of an AR(1) per ticker."""
    x = np.empty((N_TICKERS, N_DAYS))
    x[:, 0] = rng.normal(0.0, 1.0, N_TICKERS)
    shocks = rng.normal(0.0, np.sqrt(1 - phi**2), (N_TICKERS, N_DAYS))
    for t in range(1, N_DAYS):
        x[:, t] = phi * x[:, t - 1] + shocks[:, t]
    return 1.0 / (1.0 + np.exp(-x))


def _settings(seed: int, n_null: int = 199) -> BacktestSettings:
    return BacktestSettings(strategy="momentum", costs_bps=5.0, n_boot=10, n_null=n_null, seed=seed)


@pytest.mark.slow
def test_zero_skill_persistent_confidence_is_rejected_at_the_nominal_rate():
    p_values = []
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        bars = _random_walk_bars(rng)
        report = run_backtest(bars, _confidence(bars, _persistent_noise(rng)), _settings(seed))
        assert report.null is not None
        p_values.append(report.null["p_value"])
    rejected = sum(p <= 0.05 for p in p_values)
    assert rejected <= 4, sorted(p_values)  # at most 10 % of 40 seeds
    assert 0.3 <= float(np.median(p_values)) <= 0.7, sorted(p_values)  # about uniform


def test_planted_skill_gives_a_small_p():
    """A confidence that knows whether the next days move with the signal."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        bars = _random_walk_bars(rng)
        close = bars.get_column("close").to_numpy().reshape(N_TICKERS, N_DAYS)
        ahead = np.full_like(close, np.nan)
        ahead[:, 1:-5] = np.log(close[:, 6:] / close[:, 1:-5])  # from the fill day on
        past = np.full_like(close, np.nan)
        past[:, 20:] = np.log(close[:, 20:] / close[:, :-20])  # the momentum signal's sign
        agrees = np.sign(ahead) == np.sign(past)
        noise = _persistent_noise(rng)
        values = np.where(np.isfinite(ahead), np.where(agrees, 0.5 + noise / 2, noise / 2), 0.0)
        report = run_backtest(bars, _confidence(bars, values), _settings(seed))
        assert report.null is not None and report.null["p_value"] <= 0.02, report.null


def test_shift_zero_is_the_models_own_filter():
    rng = np.random.default_rng(5)
    bars = _random_walk_bars(rng)
    confidence = _confidence(bars, _persistent_noise(rng))
    settings = _settings(0, n_null=5)
    report = run_backtest(bars, confidence, settings)
    start, end = confidence["date"].min(), confidence["date"].max()
    grid = PriceGrid.of(bars, report.tickers, start, end)
    signal = grid.signal_array(report.signals, "signal")
    own = shifted_filter(signal, grid.value_array(report.signals, "confidence"), 0.6, 0)
    np.testing.assert_array_equal(own, grid.signal_array(report.signals, "filtered_signal"))
    run = simulate(grid.open, grid.close, own, settings)
    assert sharpe_ratio(run.returns) == report.metrics["filtered"]["sharpe"]


def test_shifted_filter_moves_every_ticker_by_the_same_offset_and_never_takes_nan():
    signal = np.ones((6, 2))
    confidence = np.array([[0.9, 0.1], [0.1, 0.9], [np.nan, 0.9], [0.1, 0.1], [0.9, 0.1],
                           [0.1, np.nan]])  # fmt: skip
    got = shifted_filter(signal, confidence, 0.6, 2)
    # day t sees day t-2 (circularly): rows 4, 5, 0, 1, 2, 3 of the confidence
    want = np.array([[1, 0], [0, 0], [1, 0], [0, 1], [0, 1], [0, 0]], dtype=float)
    np.testing.assert_array_equal(got, want)


def test_null_needs_room_for_its_shifts():
    rng = np.random.default_rng(0)
    bars = _random_walk_bars(rng).filter(pl.col("date") < START + dt.timedelta(days=2 * MIN_SHIFT))
    grid = PriceGrid.of(bars, ["T0"], START, START + dt.timedelta(days=2 * MIN_SHIFT))
    signal = np.ones_like(grid.close)
    assert shifted_filter_null(grid, signal, np.full_like(signal, 0.9), _settings(0), 0.1) is None
