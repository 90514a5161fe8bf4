"""Market regimes: pandas reference, causality (no label moves when later bars arrive), coverage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluation.regimes import label_rows, market_regimes, regime_coverage


def _bars(n: int, seed: int, drift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    vol = np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # wandering volatility
    r = drift + 0.01 * vol * rng.standard_normal(n)
    days = [dt.date(2000, 1, 3) + dt.timedelta(days=i) for i in range(n)]
    return pl.DataFrame({"date": days, "close": 100.0 * np.exp(np.cumsum(r))})


def _reference(bars: pl.DataFrame) -> pd.DataFrame:
    """The regime rules written with pandas rolling and expanding windows."""
    close = pd.Series(bars["close"].to_numpy())
    r = np.log(close).diff()
    trend = np.log(close / close.shift(120))
    band = r.rolling(120).std() * np.sqrt(120)
    vol = r.rolling(60).std() * np.sqrt(252)
    median = vol.expanding(min_periods=252).median()
    label = np.where(trend > band, "bull", np.where(trend < -band, "bear", "sideways"))
    return pd.DataFrame({
        "trend": np.where(trend.notna() & band.notna(), label, None),
        "volatility": np.where(vol.notna() & median.notna(),
                               np.where(vol > median, "high", "low"), None),
        "band": band, "median": median,
    })  # fmt: skip


def test_labels_match_the_pandas_reference():
    bars = _bars(900, seed=0)
    got = market_regimes(bars)
    want = _reference(bars)
    for column in ("trend", "volatility"):
        expected = [v if isinstance(v, str) else None for v in want[column]]
        assert got.get_column(column).to_list() == expected
    np.testing.assert_allclose(got["trend_band"].to_numpy().astype(float), want["band"], rtol=1e-9)
    np.testing.assert_allclose(got["volatility_median"].to_numpy().astype(float), want["median"],
                               rtol=1e-9)  # fmt: skip
    counts = got.get_column("trend").value_counts()
    assert set(counts["trend"].drop_nulls()) == {"bull", "bear", "sideways"}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(130, 699), drift=st.floats(-0.002, 0.002))
def test_a_date_keeps_its_labels_when_later_bars_arrive(seed, cut, drift):
    bars = _bars(700, seed, drift)
    full = market_regimes(bars).head(cut)
    partial = market_regimes(bars.head(cut))
    assert full.select("date", "trend", "volatility").equals(
        partial.select("date", "trend", "volatility")
    )
    np.testing.assert_array_equal(full["trend_band"].to_numpy(), partial["trend_band"].to_numpy())


def test_trend_follows_the_market():
    up = market_regimes(_bars(400, seed=1, drift=0.004))
    down = market_regimes(_bars(400, seed=1, drift=-0.004))
    assert up.get_column("trend").drop_nulls().to_list()[-50:] == ["bull"] * 50
    assert down.get_column("trend").drop_nulls().to_list()[-50:] == ["bear"] * 50


def test_bad_bars_are_named():
    bars = _bars(50, seed=0)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['close'\]"):
        market_regimes(bars.drop("close"))
    with pytest.raises(ValueError, match="repeat a date"):
        market_regimes(pl.concat([bars, bars.head(1)]))
    with pytest.raises(ValueError, match="`trend_days` must be an integer >= 2"):
        market_regimes(bars, trend_days=1)


def test_coverage_counts_each_test_day_once_per_window():
    regimes = market_regimes(_bars(800, seed=3))
    days = regimes.get_column("date").to_list()
    rows = pl.DataFrame({
        "model_id": ["wf00"] * 300 + ["wf01"] * 300,
        "date": days[200:500] + days[500:800],
    })  # fmt: skip
    rows = pl.concat([rows, rows.head(100)])  # a second ticker on some days: counted once
    labelled = label_rows(rows, regimes)
    table = regime_coverage(labelled)
    assert table.get_column("model_id").to_list() == ["wf00", "wf01", "all"]
    for model_id, lo, hi in (("wf00", 200, 500), ("wf01", 500, 800)):
        row = table.filter(pl.col("model_id") == model_id).row(0, named=True)
        ref = regimes.slice(lo, hi - lo)
        assert row["days"] == hi - lo
        for label in ("bull", "bear", "sideways"):
            assert row[f"trend:{label}"] == (ref["trend"] == label).sum()
        assert row["volatility:unknown"] == ref["volatility"].null_count()
    assert table.row(2, named=True)["days"] == 600
