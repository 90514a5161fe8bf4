"""Adjusted prices (issue 17, item 3), on a series with known dividends.

The series DIV pays three dividends of 2 % of the previous close. On each
ex-date its raw open and close drop by the dividend. ``adj_close`` is built
by hand the way Yahoo does: every close before an ex-date is multiplied by
``1 - D / C_ex-1``. The references are independent of the engine: that loop,
the reinvestment identity ``adj_t / adj_t-1 = C_t / (C_t-1 - D_t)``, and the
pandas feature oracle of ``tests.oracles`` run on OHLC adjusted by hand.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.data.loading import BarInputs
from engine.data.prices import PriceBasis, apply_basis, apply_prices
from engine.data.store import BarStore
from engine.jobs.features import run_feature_job
from tests.oracles.features import reference_features

N_DAYS = 320
EX_DATES = (80, 160, 240)
DIVIDEND = 0.02  # of the previous close
FEATURES = ["overnight_gap", "multi_timeframe_return", "price_level", "end_of_day_momentum"]


def dividend_series(seed: int = 0) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Bars of DIV with ``adj_close`` built by hand; also the dividends and the multipliers."""
    rng = np.random.default_rng(seed)
    close = np.empty(N_DAYS)
    open_ = np.empty(N_DAYS)
    dividend = np.zeros(N_DAYS)
    close[0] = open_[0] = 50.0
    for t in range(1, N_DAYS):
        if t in EX_DATES:
            dividend[t] = DIVIDEND * close[t - 1]
        open_[t] = close[t - 1] * np.exp(rng.normal(0, 0.004)) - dividend[t]
        close[t] = close[t - 1] * np.exp(rng.normal(0, 0.012)) - dividend[t]
    multiplier = np.ones(N_DAYS)  # Yahoo: closes before an ex-date times 1 - D / C_prev
    running = 1.0
    for t in range(N_DAYS - 1, -1, -1):
        multiplier[t] = running
        if dividend[t]:
            running *= 1 - dividend[t] / close[t - 1]
    days = np.busday_offset(np.datetime64("2010-01-04", "D"), np.arange(N_DAYS), roll="forward")
    bars = pl.DataFrame(
        {
            "ticker": ["DIV"] * N_DAYS,
            "date": [d.astype(dt.date) for d in days],
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": rng.integers(1_000, 50_000, N_DAYS).astype(float),
            "adj_close": close * multiplier,
        }
    )
    return bars, dividend, multiplier


@pytest.fixture(scope="module")
def dividend_store(tmp_path_factory):
    bars, dividend, multiplier = dividend_series()
    store = BarStore(tmp_path_factory.mktemp("dividends"))
    plain = bars.with_columns(
        pl.lit("RAW").alias("ticker"), pl.lit(None, pl.Float64).alias("adj_close")
    )
    store.write(pl.concat([bars, plain]))  # RAW: the same prices without adj_close
    return store, bars, dividend, multiplier


def test_adjusted_prices_are_a_total_return_series(dividend_store):
    _, bars, dividend, multiplier = dividend_store
    adjusted, basis = apply_prices(bars)
    assert basis == PriceBasis("adjusted", adjusted=("DIV",))
    for name in ("open", "high", "low", "close"):  # OHLC x adj_close / close = OHLC x multiplier
        np.testing.assert_allclose(
            adjusted.get_column(name).to_numpy(), bars.get_column(name).to_numpy() * multiplier,
            rtol=1e-13,
        )  # fmt: skip
    close = bars.get_column("close").to_numpy()
    adj = adjusted.get_column("close").to_numpy()
    reinvested = close[1:] / (close[:-1] - dividend[1:])  # dividend reinvested ex-dividend
    np.testing.assert_allclose(adj[1:] / adj[:-1], reinvested, rtol=1e-12)
    raw_drop = close[list(EX_DATES)] / close[[e - 1 for e in EX_DATES]]
    assert (np.log(raw_drop) < np.log(adj[list(EX_DATES)] / adj[[e - 1 for e in EX_DATES]])).all()
    ordered = adjusted.select(
        (pl.col("low") <= pl.min_horizontal("open", "close"))
        & (pl.col("high") >= pl.max_horizontal("open", "close"))
    )
    assert ordered.to_series().all()  # one factor per bar keeps the OHLC order


def test_raw_mode_and_tickers_without_adj_close_keep_their_prices(dividend_store):
    store, bars, _, _ = dividend_store
    both = store.read_bars()
    raw, basis = apply_prices(both, "raw")
    assert raw.equals(both)
    assert basis == PriceBasis("raw", unchanged=("DIV",), without_adj_close=("RAW",))
    adjusted, basis = apply_prices(both)
    assert basis.without_adj_close == ("RAW",)
    assert adjusted.filter(pl.col("ticker") == "RAW").equals(both.filter(pl.col("ticker") == "RAW"))
    partial = bars.with_columns(
        pl.when(pl.col("date") == bars["date"][5])
        .then(None)
        .otherwise("adj_close")
        .alias("adj_close")
    )
    with pytest.raises(ValueError, match="adj_close is missing on some bars of DIV.*--prices raw"):
        apply_prices(partial)


def _oracle(bars: pl.DataFrame) -> pd.DataFrame:
    frame, _ = reference_features(bars, FEATURES, tickers=["DIV"])
    return frame


@pytest.mark.parametrize("prices", ["adjusted", "raw"])
def test_features_job_uses_the_basis_and_records_it(dividend_store, prices):
    store, bars, _, multiplier = dividend_store
    report = run_feature_job(store, "DIV", features=FEATURES, inputs=BarInputs(prices=prices))
    if prices == "adjusted":
        by_hand = bars.with_columns(
            pl.col(c) * pl.Series(multiplier) for c in ("open", "high", "low", "close")
        )
        assert report.manifest["prices"] == {
            "mode": "adjusted", "adjusted": ["DIV"], "unchanged": [], "without_adj_close": [],
        }  # fmt: skip
    else:
        by_hand = bars
        assert report.manifest["prices"]["mode"] == "raw"
    expected = _oracle(by_hand)
    for name in FEATURES:
        np.testing.assert_allclose(
            report.frame.get_column(name).to_numpy().astype(float), expected[name].to_numpy(),
            rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name,
        )  # fmt: skip
    assert report.to_dict()["prices"]["mode"] == prices


def test_the_ex_dividend_gap_is_gone_only_when_adjusted(dividend_store):
    store, *_ = dividend_store
    gaps = {
        prices: run_feature_job(
            store, "DIV", features=["overnight_gap"], inputs=BarInputs(prices=prices)
        )
        .frame.get_column("overnight_gap")
        .to_numpy()
        for prices in ("adjusted", "raw")
    }
    ex = list(EX_DATES)
    # raw: the 2 % dividend comes on top of the open's own gap, about 1.5 daily sd more
    assert (gaps["raw"][ex] < gaps["adjusted"][ex] - 1.0).all()
    others = np.setdiff1d(np.arange(N_DAYS), ex)
    np.testing.assert_allclose(gaps["raw"][others][-20:], gaps["adjusted"][others][-20:], rtol=1e-9)


def test_serving_reproduces_the_training_basis_ticker_by_ticker(dividend_store):
    _, bars, _, multiplier = dividend_store
    basis = PriceBasis("adjusted", adjusted=("DIV",), unchanged=("EQ",), without_adj_close=("RAW",))
    copies = [bars.with_columns(pl.lit(t).alias("ticker")) for t in ("EQ", "RAW", "NEW")]
    served = apply_basis(pl.concat([bars, *copies]), basis, ["DIV", "EQ", "RAW", "NEW"])
    closes = {t: served.filter(pl.col("ticker") == t).get_column("close").to_numpy()
              for t in ("DIV", "EQ", "RAW", "NEW")}  # fmt: skip
    raw = bars.get_column("close").to_numpy()
    np.testing.assert_allclose(closes["DIV"], raw * multiplier, rtol=1e-13)  # adjusted in training
    np.testing.assert_array_equal(closes["EQ"], raw)  # kept raw in training: stays raw
    np.testing.assert_array_equal(closes["RAW"], raw)
    np.testing.assert_allclose(closes["NEW"], raw * multiplier, rtol=1e-13)  # unseen: the mode
    with pytest.raises(ValueError, match="trained on dividend-adjusted prices of DIV"):
        apply_basis(bars.drop("adj_close"), basis, ["DIV"])
    assert apply_basis(bars, PriceBasis("raw"), ["DIV"]).equals(bars)


def test_targets_job_measures_outcomes_on_the_chosen_prices(dividend_store):
    from engine.jobs.targets import run_target_job

    store, *_ = dividend_store
    adjusted = run_target_job(store, "DIV")
    raw = run_target_job(store, "DIV", inputs=BarInputs(prices="raw"))
    assert adjusted.to_dict()["prices"]["adjusted"] == ["DIV"]
    assert raw.to_dict()["prices"]["mode"] == "raw"
    assert not adjusted.frame.equals(raw.frame)  # the ex-dividend drops move some outcomes
