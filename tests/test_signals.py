"""Base strategies of ``engine.backtest.signals`` against an independent pandas reference."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.backtest.signals import STRATEGIES, STRATEGY_HEADS, compute_signals

NAMES = ("momentum", "mean_reversion", "ma_cross")
START = dt.date(2020, 1, 1)
#: Rows of each strategy that cannot be computed (its warm-up).
WARM_UP = {"momentum": 20, "mean_reversion": 19, "ma_cross": 49}
#: Reference indicator values this close to a decision boundary are not compared
#: (the kernel and pandas accumulate floating-point sums differently).
TOLERANCE = 1e-9


# --------------------------------------------------------------------------- reference


def _reference_one(close: pd.Series, strategy: str) -> tuple[np.ndarray, np.ndarray]:
    """Signal of one ticker's closes (own rows, date order) and a 'near a boundary' mask."""
    c = close.astype("float64").reset_index(drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        if strategy == "momentum":
            x = np.log(c / c.shift(20)).to_numpy()
            sig = np.where(np.isfinite(x), np.sign(np.nan_to_num(x)), 0.0)
            near = np.isfinite(x) & (np.abs(x) < TOLERANCE)
        elif strategy == "mean_reversion":
            mean = c.rolling(20).mean()
            sd = c.rolling(20).std(ddof=1)
            upper = mean + 2.0 * sd
            lower = mean - 2.0 * sd
            ok = (sd > 0).to_numpy() & np.isfinite(sd.to_numpy()) & np.isfinite(c.to_numpy())
            cv, up, lo = c.to_numpy(), upper.to_numpy(), lower.to_numpy()
            sig = np.zeros(len(c))
            sig[ok & (cv < lo)] = 1.0
            sig[ok & (cv > up)] = -1.0
            scale = np.abs(cv) + np.abs(mean.to_numpy())
            near = ok & (
                (np.abs(cv - up) < TOLERANCE * scale) | (np.abs(cv - lo) < TOLERANCE * scale)
            )
        elif strategy == "ma_cross":
            fast = c.rolling(10).mean().to_numpy()
            slow = c.rolling(50).mean().to_numpy()
            ok = np.isfinite(fast) & np.isfinite(slow)
            sig = np.where(ok, np.sign(np.nan_to_num(fast - slow)), 0.0)
            near = ok & (np.abs(fast - slow) < TOLERANCE * np.abs(slow))
        else:  # pragma: no cover
            raise ValueError(strategy)
    return sig.astype(np.int8), near


def reference_signals(bars: pl.DataFrame, strategy: str, long_only: bool = False) -> pd.DataFrame:
    """pandas: per ticker sorted by date, its own rows; null closes are NaN."""
    frame = bars.select("ticker", "date", "close").to_pandas()
    frame["close"] = frame["close"].astype("float64")
    frame = frame.sort_values(["ticker", "date"], kind="mergesort").reset_index(drop=True)
    sig = np.zeros(len(frame), dtype=np.int8)
    near = np.zeros(len(frame), dtype=bool)
    for _, idx in frame.groupby("ticker", sort=True).indices.items():
        s, n = _reference_one(frame["close"].iloc[idx], strategy)
        sig[idx] = s
        near[idx] = n
    if long_only:
        sig = np.where(sig < 0, 0, sig).astype(np.int8)
    frame["signal"] = sig
    frame["near"] = near
    return frame


# --------------------------------------------------------------------------- data


def random_walks(
    seed: int, tickers: tuple[str, ...] = ("AAA", "BBB", "CCC"), n: int = 260,
    nan_share: float = 0.03,
) -> pl.DataFrame:  # fmt: skip
    """Geometric random walks, each ticker with its own (gappy) calendar and null closes."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, ticker in enumerate(tickers):
        days = [START + dt.timedelta(days=i) for i in range(n + 15 * k)]
        keep = rng.uniform(size=len(days)) > 0.05  # each ticker skips some days
        days = [d for d, kept in zip(days, keep, strict=True) if kept]
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(days))))
        close[rng.uniform(size=len(days)) < nan_share] = np.nan
        frames.append(
            pl.DataFrame({"ticker": ticker, "date": days, "close": close})
            .with_columns(pl.col("close").fill_nan(None))
            .with_columns(volume=pl.lit(1.0))  # an extra column is ignored
        )
    return pl.concat(frames)


def one_ticker(close) -> pl.DataFrame:
    close = [None if (c is None or np.isnan(c)) else float(c) for c in close]
    days = [START + dt.timedelta(days=i) for i in range(len(close))]
    return pl.DataFrame(
        {"ticker": ["A"] * len(close), "date": days, "close": close},
        schema={"ticker": pl.String, "date": pl.Date, "close": pl.Float64},
    )


def signal_list(bars: pl.DataFrame, strategy: str, **kwargs) -> list[int]:
    return compute_signals(bars, strategy, **kwargs).get_column("signal").to_list()


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("strategy", NAMES)
def test_matches_pandas_reference(strategy, seed):
    bars = random_walks(seed)
    assert bars.get_column("close").null_count() > 0
    out = compute_signals(bars, strategy)
    ref = reference_signals(bars, strategy)

    assert out.columns == ["ticker", "date", "signal"]
    assert out.schema["signal"] == pl.Int8
    assert out.height == bars.height
    assert out.get_column("ticker").to_list() == ref["ticker"].tolist()
    assert out.get_column("date").to_list() == [d.date() for d in pd.to_datetime(ref["date"])]
    got = out.get_column("signal").to_numpy()
    near = ref["near"].to_numpy()
    assert near.sum() <= 2  # boundary cases are rare on random walks
    np.testing.assert_array_equal(got[~near], ref["signal"].to_numpy()[~near])
    # the reference is not degenerate: every direction occurs
    assert set(np.unique(got)) == {-1, 0, 1}


@pytest.mark.parametrize("strategy", NAMES)
def test_nan_close_behaves_like_null_close(strategy):
    bars = random_walks(5)
    as_nan = bars.with_columns(pl.col("close").fill_null(float("nan")))
    assert as_nan.get_column("close").null_count() == 0
    assert signal_list(as_nan, strategy) == signal_list(bars, strategy)


@pytest.mark.parametrize("strategy", NAMES)
def test_missing_close_in_window_gives_zero(strategy):
    """A missing close kills the indicator on the rows whose window holds it."""
    rng = np.random.default_rng(8)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 140)))
    close[90] *= 1.3  # beyond the upper band: mean reversion is short there
    full = signal_list(one_ticker(close), strategy)
    gap = close.copy()
    gap[80] = np.nan
    with_gap = signal_list(one_ticker(gap), strategy)
    window = {"momentum": (80, 100), "mean_reversion": (80, 99), "ma_cross": (80, 129)}[strategy]
    lo, hi = window
    for t in range(len(close)):
        if strategy == "momentum":
            dead = t in (80, 100)  # the two ends of ln(C_t / C_{t-20})
        else:
            dead = lo <= t <= min(hi, len(close) - 1)
        if dead:
            assert with_gap[t] == 0, t
        else:
            assert with_gap[t] == full[t], t
    assert any(full[t] != 0 for t in range(len(close)) if lo <= t <= hi)


@pytest.mark.parametrize("strategy", NAMES)
def test_long_only_removes_shorts_only(strategy):
    bars = random_walks(3)
    both = compute_signals(bars, strategy).get_column("signal").to_numpy()
    long = compute_signals(bars, strategy, long_only=True).get_column("signal").to_numpy()
    assert (both == -1).any() and (both == 1).any()
    np.testing.assert_array_equal(long, np.where(both < 0, 0, both))
    ref = reference_signals(bars, strategy, long_only=True)
    near = ref["near"].to_numpy()
    np.testing.assert_array_equal(long[~near], ref["signal"].to_numpy()[~near])


def test_warm_up_rows_give_zero():
    rising = one_ticker(100.0 + np.arange(80.0))
    mom = signal_list(rising, "momentum")
    assert mom[:20] == [0] * 20 and mom[20:] == [1] * 60
    cross = signal_list(rising, "ma_cross")
    assert cross[:49] == [0] * 49 and cross[49:] == [1] * 31
    # a spike on row 18 would be beyond the upper band of a 19-row window
    spike = one_ticker([100.0] * 18 + [200.0, 300.0])
    assert signal_list(spike, "mean_reversion") == [0] * 19 + [-1]
    dip = one_ticker([100.0] * 18 + [50.0, 10.0])
    assert signal_list(dip, "mean_reversion") == [0] * 19 + [1]
    # the warm-up counts each ticker's own rows
    two = pl.concat([rising.with_columns(ticker=pl.lit("B")), rising.head(30)])
    out = compute_signals(two, "momentum")
    assert out.filter(pl.col("ticker") == "A").get_column("signal").to_list() == mom[:30]
    assert out.filter(pl.col("ticker") == "B").get_column("signal").to_list() == mom


def test_flat_window_gives_zero_for_mean_reversion():
    rng = np.random.default_rng(4)
    walk = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, 150)))
    flat = np.full(30, 87.123456789)
    close = np.r_[walk, flat]
    sig = signal_list(one_ticker(close), "mean_reversion")
    assert sig[150 + 19 :] == [0] * 11  # windows of 20 equal closes
    assert any(s != 0 for s in sig[:150])
    assert signal_list(one_ticker(np.full(40, 3.3)), "mean_reversion") == [0] * 40
    # a fresh close after the flat run is outside the (zero-width) band: a real signal again
    jump = signal_list(one_ticker(np.r_[np.full(25, 10.0), 12.0]), "mean_reversion")
    assert jump == [0] * 25 + [-1]


@pytest.mark.parametrize("strategy", NAMES)
def test_invariant_to_the_order_of_rows(strategy):
    bars = random_walks(7)
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=11)
    assert shuffled.get_column("ticker").to_list() != bars.get_column("ticker").to_list()
    expected = compute_signals(bars, strategy)
    assert compute_signals(shuffled, strategy).equals(expected)
    renamed = {"AAA": "ZZZ", "CCC": "AAB"}  # another ticker order, same series
    other = compute_signals(bars.with_columns(pl.col("ticker").replace(renamed)), strategy)
    for old, new in [("AAA", "ZZZ"), ("BBB", "BBB"), ("CCC", "AAB")]:
        a = expected.filter(pl.col("ticker") == old).get_column("signal")
        b = other.filter(pl.col("ticker") == new).get_column("signal")
        assert a.equals(b)


def test_unknown_strategy_lists_the_known_ones():
    bars = one_ticker([1.0, 2.0])
    with pytest.raises(ValueError, match="breakout") as info:
        compute_signals(bars, "breakout")
    for name in STRATEGIES:
        assert name in str(info.value)


def test_missing_close_column_and_duplicates_are_refused():
    bars = one_ticker([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="close"):
        compute_signals(bars.drop("close"), "momentum")
    with pytest.raises(ValueError, match="duplicate"):
        compute_signals(pl.concat([bars, bars.tail(1)]), "momentum")


def test_every_strategy_has_a_pattern_head():
    from engine.labels.targets import PATTERN_NAMES

    assert set(STRATEGY_HEADS) == set(STRATEGIES) == set(NAMES)
    assert STRATEGY_HEADS["momentum"] == "momentum_persistence"
    assert STRATEGY_HEADS["mean_reversion"] == "trend_exhaustion"
    assert STRATEGY_HEADS["ma_cross"] == "momentum_persistence"
    assert set(STRATEGY_HEADS.values()) <= set(PATTERN_NAMES)


# --------------------------------------------------------------------------- causality


@st.composite
def histories(draw):
    """A random walk (with a few missing closes), a day t, and another future after t."""
    n = draw(st.integers(2, 130))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = list(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, n))))
    for k in draw(st.lists(st.integers(0, n - 1), max_size=3)):
        close[k] = None
    t = draw(st.integers(1, n - 1))
    if draw(st.booleans()):  # a hand-picked future, maybe empty, maybe with gaps
        other = draw(st.lists(st.one_of(st.none(), st.floats(1.0, 1000.0)), max_size=40))
    else:  # the same walk shocked from t on
        shock = np.exp(rng.normal(0.0, 1.0, n - t))
        other = [None if c is None else c * f for c, f in zip(close[t:], shock, strict=True)]
    return close, t, other


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), strategy=st.sampled_from(NAMES), long_only=st.booleans())
def test_changing_later_closes_never_changes_earlier_signals(history, strategy, long_only):
    """Signals up to day t depend on closes up to t only."""
    close, t, other = history
    a = one_ticker(close)
    b = one_ticker(close[:t] + other)  # another future after t (maybe none at all)
    sa = signal_list(a, strategy, long_only=long_only)
    sb = signal_list(b, strategy, long_only=long_only)
    assert sa[:t] == sb[:t]
    # and with a second ticker beside it, whose own future also changes
    pad = pl.concat([b, a.with_columns(ticker=pl.lit("B"))])
    both = compute_signals(pad, strategy, long_only=long_only)
    assert both.filter(pl.col("ticker") == "A").get_column("signal").to_list()[:t] == sa[:t]


@pytest.mark.parametrize("strategy", NAMES)
def test_every_day_is_causal_on_a_long_walk(strategy):
    """Deterministic sweep: for every day t, a wildly different future leaves [0, t] alone."""
    rng = np.random.default_rng(12)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, 150)))
    close[[30, 95]] = np.nan
    full = signal_list(one_ticker(close), strategy)
    assert len(set(full[60:])) > 1
    for t in range(1, close.size):
        other = close.copy()
        other[t:] *= np.exp(rng.normal(0.0, 1.0, close.size - t))
        assert signal_list(one_ticker(other), strategy)[:t] == full[:t], t
        assert signal_list(one_ticker(close[:t]), strategy) == full[:t], t
