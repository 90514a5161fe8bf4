"""Tail mode: the last rows of every ticker equal the full computation, bit for bit.

The reference is the engine's own full-history computation, which
``tests/test_features_reference.py`` holds to the pandas, Polars and arch
oracles; here the claim is narrower and exact: computing only the last rows
gives the same numbers. Random histories (lengths, listing dates, missing
dates, null closes and volumes, benchmark calendars that differ) come from
hypothesis; the demo universe is checked as a whole.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data.demo import generate_demo_universe
from engine.features.build import FEATURE_NAMES, compute_features
from engine.features.source import SortedBars
from engine.features.tail import (
    FEATURE_LOOKBACK,
    GARCH_LOOKBACK,
    _valid_run_through,
    compute_features_tail,
    tail_features,
)
from kernels.rolling import ROLLING_ANCHOR
from tests.oracles.bars import bars_to_polars, random_walk_bars

VARIANT = "market_vol_ratio"


def _last_rows(full: pl.DataFrame, rows: int) -> pl.DataFrame:
    return full.group_by("ticker", maintain_order=True).tail(rows)


def assert_same(tail: pl.DataFrame, full: pl.DataFrame) -> None:
    """Same keys, same nulls, same values bit for bit."""
    assert tail.columns == full.columns
    assert tail.select("ticker", "date").equals(full.select("ticker", "date"))
    for name in tail.columns[2:]:
        a = tail.get_column(name).to_numpy()
        b = full.get_column(name).to_numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)


# ---------------------------------------------------------------------------
# random histories
# ---------------------------------------------------------------------------
def _panel(seed: int, n_days: int, listing: int, p_gap: float, p_null: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2001-01-02", periods=n_days)
    parts = []
    for ticker in ("AAA", "BBB", "SPY", "XLK"):
        days = dates[listing:] if ticker == "BBB" else dates
        df = random_walk_bars(ticker, days, rng, start=float(rng.uniform(5, 500)),
                              vol=float(rng.uniform(0.005, 0.04)))  # fmt: skip
        if p_gap and ticker != "AAA":  # benchmarks and BBB miss some dates of AAA's calendar
            keep = rng.random(len(df)) >= p_gap
            keep[0] = True
            df = df[keep]
        if p_null:
            df = df.copy()
            df.loc[df.index[rng.random(len(df)) < p_null], "close"] = np.nan
            df.loc[df.index[rng.random(len(df)) < p_null], "volume"] = np.nan
        parts.append(df)
    return bars_to_polars(pd.concat(parts, ignore_index=True))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    n_days=st.integers(300, 1700),
    listing=st.integers(0, 250),
    rows=st.integers(1, 45),
    cut=st.floats(0.6, 1.0),
    p_gap=st.sampled_from([0.0, 0.01]),
    p_null=st.sampled_from([0.0, 0.002]),
)
def test_tail_equals_full_computation_on_random_histories(
    seed, n_days, listing, rows, cut, p_gap, p_null
):
    """All 17 features, GARCH included; ``as_of`` cuts the history as the full run's bars."""
    bars = _panel(seed, n_days, listing, p_gap, p_null)
    days = bars.get_column("date").unique().sort()
    as_of = days[int(cut * (days.len() - 1))]
    full = compute_features(bars.filter(pl.col("date") <= as_of), vix_variant=VARIANT)
    tail = compute_features_tail(bars, rows, vix_variant=VARIANT, as_of=as_of)
    assert_same(tail, _last_rows(full, rows))


def test_long_history_with_a_gap_restarts_the_refit_grid_in_the_window():
    """1,700 days, a null close 300 days in: the GARCH window starts mid-history, after the
    gap, and the governing fit's grid is anchored at the run after the gap (whose phase
    differs from the first bar's), not at the window's start."""
    bars = _panel(5, 1700, 0, 0.0, 0.0)
    gap_day = bars.filter(pl.col("ticker") == "AAA").get_column("date")[300]
    bars = bars.with_columns(
        close=pl.when((pl.col("ticker") == "AAA") & (pl.col("date") == gap_day))
        .then(None)
        .otherwise(pl.col("close"))
    )
    full = compute_features(bars, ["garch_vol_ratio", "price_level"], vix_variant=VARIANT)
    tail = compute_features_tail(bars, 30, ["garch_vol_ratio", "price_level"], vix_variant=VARIANT)
    assert_same(tail, _last_rows(full, 30))
    assert tail.get_column("garch_vol_ratio").null_count() == 0


@settings(max_examples=30, deadline=None)
@given(
    close=st.lists(
        st.one_of(st.floats(0.5, 2.0), st.just(float("nan")), st.just(0.0)), min_size=1, max_size=60
    ),  # fmt: skip
    data=st.data(),
)
def test_valid_run_through_equals_a_loop(close, data):
    close = np.asarray(close)
    row = data.draw(st.integers(0, close.shape[0] - 1))
    run = 0
    for t in range(1, row + 1):
        ok = close[t] > 0 and close[t - 1] > 0
        run = run + 1 if ok else 0
    assert _valid_run_through(close, row) == run


def test_windows_start_on_the_restart_grid_and_early_enough():
    from engine.features.tail import tail_start

    for first_out in (0, 10, 300, 1021, 5000, 5031):
        for lookback in (FEATURE_LOOKBACK, GARCH_LOOKBACK):
            s = tail_start(first_out, lookback)
            assert s % ROLLING_ANCHOR == 0
            assert s == 0 or s <= first_out - lookback - 2 * ROLLING_ANCHOR


def test_rows_must_be_positive():
    bars = _panel(0, 300, 0, 0.0, 0.0)
    with pytest.raises(ValueError, match="`rows` must be a positive integer"):
        compute_features_tail(bars, 0)


def test_unknown_ticker_and_as_of_before_listing_are_refused_as_in_full():
    bars = _panel(1, 400, 200, 0.0, 0.0)
    with pytest.raises(ValueError, match="ticker\\(s\\) not in bars: ZZZ"):
        compute_features_tail(bars, 5, tickers=["ZZZ"])
    before = bars.filter(pl.col("ticker") == "BBB").get_column("date").min() - dt.timedelta(days=1)
    with pytest.raises(ValueError, match="ticker\\(s\\) not in bars: BBB"):
        compute_features_tail(bars, 5, tickers=["BBB"], as_of=before)


# ---------------------------------------------------------------------------
# the demo universe
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> pl.DataFrame:
    return generate_demo_universe(seed=7).bars


@pytest.fixture(scope="module")
def demo_full(demo) -> pl.DataFrame:
    return compute_features(demo, vix_variant=VARIANT)


@pytest.mark.slow
def test_demo_universe_last_20_rows_equal_full_history(demo, demo_full):
    """34 securities, about 5,000 days each, the rows a model scores."""
    assert_same(
        tail_features(SortedBars.of(demo), 20, vix_variant=VARIANT), _last_rows(demo_full, 20)
    )


@pytest.mark.slow
def test_demo_universe_as_of_mid_history(demo):
    as_of = dt.date(2011, 6, 30)
    full = compute_features(demo.filter(pl.col("date") <= as_of), vix_variant=VARIANT)
    tail = compute_features_tail(demo, 25, vix_variant=VARIANT, as_of=as_of)
    assert_same(tail, _last_rows(full, 25))
    assert tail.get_column("date").max() == as_of


def test_auto_variant_is_decided_from_the_full_history(demo):
    """VIX starts in 2014: the full history picks the market variant, and so must the tail."""
    few = demo.filter(pl.col("ticker").is_in(["AAPL", "SPY", "XLK", "VIX"]))
    full = compute_features(few, ["vix_term_structure"], tickers=["AAPL"])
    tail = compute_features_tail(few, 10, ["vix_term_structure"], tickers=["AAPL"])
    assert_same(tail, _last_rows(full, 10))
    # a 10-row history starting after VIX would have picked vix_mean60: not the same numbers
    late = compute_features(
        few.filter(pl.col("date") >= dt.date(2015, 1, 1)), ["vix_term_structure"], tickers=["AAPL"]
    )
    assert not np.allclose(
        _last_rows(late, 10).get_column("vix_term_structure").to_numpy(),
        tail.get_column("vix_term_structure").to_numpy(),
    )


def test_subset_of_features_is_the_same_subset(demo, demo_full):
    names = ["garch_vol_ratio", "price_level", "market_beta_instability"]
    tail = tail_features(
        SortedBars.of(demo), 3, names, tickers=["MSFT", "QQQ"], vix_variant=VARIANT
    )
    full = demo_full.filter(pl.col("ticker").is_in(["MSFT", "QQQ"])).select("ticker", "date", *[
        n for n in FEATURE_NAMES if n in names
    ])  # fmt: skip
    assert_same(tail, _last_rows(full, 3))
