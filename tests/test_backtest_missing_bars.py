"""A missing bar inside a ticker's trading span holds the position: no exit, no re-entry.

Oracles: the hold rule written with pandas pivots and forward fills (below),
simulated by the share-count backtest of :mod:`tests.oracles.backtest`; the
pre-fix behaviour (signal 0 on a missing bar) simulated by the kernel
directly, to show the spike the rule removes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.backtest.missing_bars import hold_through_missing_bars, missing_inside_span
from engine.backtest.run import run_backtest
from engine.backtest.signals import compute_signals
from engine.backtest.simulation import BacktestSettings
from kernels.backtest import simulate_portfolio
from tests.oracles.backtest import reference_backtest

TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")
N_DAYS = 260
N_PREDICTED = 160
FIRST = N_DAYS - N_PREDICTED  # row of the first predicted day
#: DDD's missing rows: the first predicted day, three single days and a run of two.
DDD_GONE = (FIRST, FIRST + 30, FIRST + 61, FIRST + 62, FIRST + 100, FIRST + 140)
#: The day before this missing row DDD's confidence is low: the filtered run is flat there.
DDD_LOW_BEFORE = FIRST + 100
EEE_FROM = FIRST + 50  # EEE starts trading inside the window: no holding before its first bar
THRESHOLD = 0.6


def make_bars(seed: int = 0) -> pl.DataFrame:
    """Rising closes (momentum stays long), DDD with missing rows, EEE listed late."""
    rng = np.random.default_rng(seed)
    days = [d.date() for d in pd.bdate_range("2021-01-04", periods=N_DAYS)]
    frames = []
    for ticker in TICKERS:
        close = 20.0 * np.exp(np.cumsum(rng.normal(0.005, 0.005, N_DAYS)))
        open_ = np.r_[20.0, close[:-1]] * np.exp(rng.normal(0.0, 0.002, N_DAYS))
        frame = pl.DataFrame({"ticker": ticker, "date": days, "open": open_, "close": close})
        if ticker == "DDD":
            frame = frame.filter(~pl.int_range(pl.len()).is_in(list(DDD_GONE)))
        if ticker == "EEE":
            frame = frame.slice(EEE_FROM)
        frames.append(frame)
    return pl.concat(frames)


def make_confidence(bars: pl.DataFrame) -> pl.DataFrame:
    days = sorted(bars.get_column("date").unique())
    low = days[DDD_LOW_BEFORE - 1]
    rng = np.random.default_rng(1)
    frame = bars.filter(pl.col("date") >= days[FIRST]).select("ticker", "date")
    confidence = np.where(rng.uniform(size=frame.height) < 0.9, 0.8, 0.4)
    ddd = pl.col("ticker") == "DDD"  # confident on every DDD day but one
    return frame.with_columns(confidence=confidence).with_columns(
        confidence=pl.when(ddd & (pl.col("date") == low))
        .then(0.2)
        .when(ddd)
        .then(0.8)
        .otherwise(pl.col("confidence"))
    )


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def confidence(bars) -> pl.DataFrame:
    return make_confidence(bars)


def settings(**kwargs) -> BacktestSettings:
    return BacktestSettings(**{"n_null": 0, "n_boot": 20, "threshold": THRESHOLD, **kwargs})


# --------------------------------------------------------------------------- the pandas oracle


def pandas_hold(bars: pl.DataFrame, confidence: pl.DataFrame, s: BacktestSettings) -> dict:
    """The hold rule with pandas: forward fill into the missing days inside each span.

    The backtest starts flat, so the fill starts on the first day of the window.
    """
    b = bars.to_pandas()
    tickers = sorted(confidence.get_column("ticker").unique())
    calendar = sorted(b.loc[b["ticker"].isin(tickers), "date"].unique())

    def wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        table = frame.pivot(index="date", columns="ticker", values=column)
        return table.reindex(index=calendar, columns=tickers).astype("float64")

    has_bar = wide(b.assign(one=1.0), "one").notna()
    first, last = has_bar.idxmax(), has_bar[::-1].idxmax()
    days = pd.Series(calendar, index=calendar)
    inside = pd.DataFrame({t: (days > first[t]) & (days < last[t]) for t in tickers})
    missing = inside & ~has_bar

    start, end = pd.Timestamp(confidence["date"].min()), pd.Timestamp(confidence["date"].max())
    window = ((days >= start) & (days <= end)).to_numpy()
    missing, has_bar = missing[window], has_bar[window]
    signal = wide(compute_signals(bars, s.strategy).to_pandas(), "signal")[window]  # NaN: no bar
    held_signal = signal.ffill().where(missing, signal).fillna(0.0)
    conf = wide(confidence.to_pandas(), "confidence")[window]
    marked = conf.where(~(has_bar & conf.isna()), -1.0)  # a bar without a confidence
    held_conf = marked.ffill().where(missing, conf).replace(-1.0, np.nan)
    filtered = held_signal.where(held_conf >= s.threshold, 0.0)
    return {
        "open": wide(b, "open")[window].to_numpy(),
        "close": wide(b, "close")[window].to_numpy(),
        "unfiltered": held_signal.to_numpy(),
        "filtered": filtered.to_numpy(),
        "zero_filled": signal.fillna(0.0).to_numpy(),  # the rule before the fix
        "missing": missing.to_numpy(),
    }


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("fill", ["open", "close"])
def test_the_backtest_agrees_with_the_pandas_hold_and_the_oracle(bars, confidence, fill):
    s = settings(fill=fill)
    report = run_backtest(bars, confidence, s)
    ref = pandas_hold(bars, confidence, s)
    for name in ("unfiltered", "filtered"):
        want = reference_backtest(
            ref["open"], ref["close"], ref[name], s.cost_rate, fill == "close", trades=False
        )
        run = getattr(report, name)
        for key in ("returns", "weights", "turnover", "costs"):
            np.testing.assert_allclose(getattr(run, key), want[key], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(run.orders, want["orders"])
        held = int((ref["missing"] & (ref[name] != 0)).sum())
        assert report.metrics[name]["held_through_missing_bars"] == held


def test_the_held_days_are_counted(bars, confidence):
    report = run_backtest(bars, confidence, settings())
    d = report.tickers.index("DDD")
    # every missing DDD day lies inside its span; momentum is long on all of them, but the
    # backtest starts flat: nothing to hold on the first day
    assert report.metrics["unfiltered"]["held_through_missing_bars"] == len(DDD_GONE) - 1
    # the filter was also flat on the day before one missing day
    assert report.metrics["filtered"]["held_through_missing_bars"] == len(DDD_GONE) - 2
    notes = " ".join(report.notes)
    assert "6 (ticker, day)s inside a ticker's trading span have no bar" in notes
    assert "(5 held with a position unfiltered, 4 filtered)" in notes
    # EEE before its first bar is not trading: no position, no order
    e = report.tickers.index("EEE")
    before = report.dates < np.datetime64(make_bars().filter(pl.col("ticker") == "EEE")
                                          .get_column("date").min())  # fmt: skip
    assert before.sum() == EEE_FROM - FIRST
    assert not report.unfiltered.weights[before, e].any()
    # DDD's position, entered on day 2, is carried, never dropped, across its missing days
    assert not report.unfiltered.weights[:2, d].any()
    assert (report.unfiltered.weights[2:, d] > 0).all()


def test_turnover_and_costs_no_longer_spike_at_missing_bars(bars, confidence):
    s = settings()
    report = run_backtest(bars, confidence, s)
    ref = pandas_hold(bars, confidence, s)
    signal = ref["unfiltered"]
    assert (signal >= 0).all()  # momentum never turns short: every trade comes from a gap
    # the days of each gap and the two after it (its fills): the day-to-day rebalancing only
    # (days 1 and 2 fill the first entries: DDD, without a bar on day 0, enters on day 2)
    around = sorted({g - FIRST + k for g in DDD_GONE for k in range(3)} - {0, 1, 2})
    turnover = report.unfiltered.turnover[around]
    assert turnover.max() < 0.05, turnover.max()
    assert report.unfiltered.costs[around].max() < 0.05 * s.cost_rate
    # after the first entries, one day trades more than 0.2: EEE's entry (5 positions, not 4)
    assert (report.unfiltered.turnover[3:] > 0.2).sum() == 1
    # the rule before the fix, on the same prices: an exit and a re-entry at every gap
    arrays = [np.ascontiguousarray(a) for a in (ref["open"], ref["close"], ref["zero_filled"])]
    before_fix = simulate_portfolio(*arrays, s.cost_rate, False)
    assert (before_fix[2][around] > 0.2).sum() >= 2 * 4  # 4 gaps after the first day
    assert before_fix[3][around].sum() > 5 * report.unfiltered.costs[around].sum()


def test_hold_carries_runs_and_starts_flat():
    values = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, -1.0], [0.0, np.nan]])
    missing = np.array([[True, False], [False, True], [False, True], [True, False],
                        [True, True]])  # fmt: skip
    out = hold_through_missing_bars(values, missing)
    np.testing.assert_array_equal(
        out, [[0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, -1.0], [0.0, -1.0]]
    )
    assert not np.shares_memory(out, values)


def test_missing_inside_span_ignores_days_outside_the_span(bars):
    dates = np.array(sorted(bars.get_column("date").unique()), dtype="datetime64[D]")
    tickers = list(TICKERS)
    missing = missing_inside_span(bars, tickers, dates)
    assert missing.sum() == len(DDD_GONE)
    assert sorted(np.flatnonzero(missing[:, tickers.index("DDD")])) == list(DDD_GONE)
