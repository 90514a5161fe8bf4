"""Tests of the embedded demo universe (``engine.data.demo``).

The checks are written out here independently of the generator's helpers:
only :func:`engine.data.demo.generate_demo_universe` is called.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import polars as pl
import pytest

from engine.data.demo import DemoUniverse, generate_demo_universe
from engine.data.universe import DEFAULT_UNIVERSE, STOCKS

REAL = ("SPY", "QQQ", "VIX")
SYNTHETIC = (*STOCKS, "XLK")
COLUMNS = ["ticker", "date", "open", "high", "low", "close", "volume", "adj_close"]
FIRST_DAY = dt.date(1999, 1, 4)
LAST_DAY = dt.date(2018, 12, 31)
LATE_LISTINGS = {
    "FTNT": dt.date(2009, 11, 18),
    "TSLA": dt.date(2010, 6, 29),
    "META": dt.date(2012, 5, 18),
    "NOW": dt.date(2012, 6, 29),
    "PANW": dt.date(2012, 7, 20),
    "UBER": dt.date(2016, 1, 4),
    "ZM": dt.date(2016, 1, 4),
    "DDOG": dt.date(2016, 1, 4),
}


@pytest.fixture(scope="module")
def demo() -> DemoUniverse:
    """Demo universe with the default seed."""
    return generate_demo_universe()


@pytest.fixture(scope="module")
def other_seed() -> DemoUniverse:
    """Demo universe with another seed."""
    return generate_demo_universe(seed=8)


def _ticker(bars: pl.DataFrame, ticker: str) -> pl.DataFrame:
    return bars.filter(pl.col("ticker") == ticker).sort("date")


def _parquet_hash(frame: pl.DataFrame) -> str:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _log_returns(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    """Wide frame of close-to-close log returns on SPY's calendar."""
    wide = (
        bars.filter(pl.col("date") <= LAST_DAY)
        .pivot(on="ticker", index="date", values="close")
        .sort("date")
    )
    closes = wide.drop("date")
    logs = np.log(closes.to_numpy())
    return dict(zip(closes.columns, np.diff(logs, axis=0).T, strict=True))


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


# ---------------------------------------------------------------- determinism


def test_same_seed_is_bit_identical(demo: DemoUniverse) -> None:
    """The same seed gives equal frames and byte-identical Parquet files."""
    again = generate_demo_universe(seed=7)
    assert demo.seed == again.seed == 7
    assert demo.bars.equals(again.bars)
    assert _parquet_hash(demo.bars) == _parquet_hash(again.bars)
    assert demo.info == again.info


def test_other_seed_changes_only_synthetic(demo: DemoUniverse, other_seed: DemoUniverse) -> None:
    """A different seed changes every synthetic ticker and no real one."""
    assert other_seed.seed == 8
    for ticker in REAL:
        assert _ticker(demo.bars, ticker).equals(_ticker(other_seed.bars, ticker)), ticker
    for ticker in SYNTHETIC:
        a = _ticker(demo.bars, ticker)["close"].to_numpy()
        b = _ticker(other_seed.bars, ticker)["close"].to_numpy()
        assert a.shape == b.shape, ticker  # listing dates do not depend on the seed
        assert not np.array_equal(a, b), ticker
    assert _parquet_hash(demo.bars) != _parquet_hash(other_seed.bars)
    assert "seed 8" in other_seed.info["AAPL"]["source"]


# ---------------------------------------------------------------- real data


@pytest.mark.parametrize(
    ("ticker", "module"), [("SPY", "arch.data.sp500"), ("QQQ", "arch.data.nasdaq")]
)
def test_real_indices_equal_arch_data(demo: DemoUniverse, ticker: str, module: str) -> None:
    """SPY and QQQ are the arch.data index bars, unchanged."""
    import importlib

    src = importlib.import_module(module).load()
    got = _ticker(demo.bars, ticker)
    assert got.height == len(src) == 5031
    dates = [d.date() for d in src.index]
    assert got["date"].to_list() == dates
    for col, name in [
        ("open", "Open"),
        ("high", "High"),
        ("low", "Low"),
        ("close", "Close"),
        ("adj_close", "Adj Close"),
        ("volume", "Volume"),
    ]:
        np.testing.assert_array_equal(
            got[col].to_numpy(), src[name].to_numpy().astype(np.float64), err_msg=col
        )
    info = demo.info[ticker]
    assert info["synthetic"] is False
    assert module in info["source"]
    assert sum(info["data_rule_repairs"].values()) == 0


def test_vix_equals_arch_data(demo: DemoUniverse) -> None:
    """VIX is the arch.data VIX closes, non-trading (NaN) days dropped."""
    from arch.data import vix

    src = vix.load()["vix"]
    valid = src.dropna()
    got = _ticker(demo.bars, "VIX")
    assert got.height == len(valid) == len(src) - 46
    assert got["date"].to_list() == [d.date() for d in valid.index]
    close = valid.to_numpy()
    for col in ("open", "high", "low", "close", "adj_close"):
        np.testing.assert_array_equal(got[col].to_numpy(), close, err_msg=col)
    assert (got["volume"] == 0.0).all()
    info = demo.info["VIX"]
    assert info["synthetic"] is False
    assert "closes only" in info["source"]
    assert info["data_rule_repairs"]["dropped_nan_rows"] == 46


# ---------------------------------------------------------------- structure


def test_schema_tickers_and_order(demo: DemoUniverse) -> None:
    """35 tickers, the documented schema, sorted, no duplicate key."""
    bars = demo.bars
    assert bars.columns == COLUMNS
    assert bars.schema["ticker"] == pl.String
    assert bars.schema["date"] == pl.Date
    for col in COLUMNS[2:]:
        assert bars.schema[col] == pl.Float64, col
    tickers = sorted(bars["ticker"].unique().to_list())
    assert tickers == sorted((*DEFAULT_UNIVERSE, "VIX"))
    assert len(tickers) == 35
    assert sorted(demo.info) == tickers
    assert bars.equals(bars.sort(["ticker", "date"]))
    assert bars.select(["ticker", "date"]).is_duplicated().sum() == 0


def test_every_row_obeys_data_rules(demo: DemoUniverse, other_seed: DemoUniverse) -> None:
    """Positive finite prices, volume >= 0, high/low contain open/close."""
    for bars in (demo.bars, other_seed.bars):
        values = bars.select(COLUMNS[2:]).to_numpy()
        assert np.isfinite(values).all()
        o, h, low, c, v, adj = values.T
        assert (values[:, [0, 1, 2, 3, 5]] > 0).all()
        assert (v >= 0).all()
        assert (h >= np.maximum(o, c)).all()
        assert (low <= np.minimum(o, c)).all()
        synth = bars.filter(pl.col("ticker").is_in(SYNTHETIC))
        vol = synth["volume"].to_numpy()
        assert (vol > 0).all()
        assert np.array_equal(vol, np.round(vol))
        assert synth["adj_close"].equals(synth["close"])


def test_listing_dates_and_flags(demo: DemoUniverse) -> None:
    """Synthetic tickers start on their documented listing date, on SPY's calendar."""
    spy_dates = _ticker(demo.bars, "SPY")["date"].to_list()
    assert spy_dates[0] == FIRST_DAY and spy_dates[-1] == LAST_DAY
    for ticker in SYNTHETIC:
        dates = _ticker(demo.bars, ticker)["date"].to_list()
        first = LATE_LISTINGS.get(ticker, FIRST_DAY)
        assert dates[0] == first, ticker
        assert dates == [d for d in spy_dates if d >= first], ticker
        info = demo.info[ticker]
        assert info["synthetic"] is True
        assert info["source"].startswith("synthetic factor model (seed 7)")
        assert info["listing_date"] == first.isoformat()
        for key in ("beta", "gamma", "garch_omega", "garch_alpha", "garch_beta"):
            assert isinstance(info[key], float), (ticker, key)
        assert 0.0 < info["garch_alpha"] + info["garch_beta"] < 1.0
        assert info.get("listing_date_fictional", False) == (ticker in {"UBER", "ZM", "DDOG"})
    for ticker in REAL:
        assert demo.info[ticker]["synthetic"] is False


# ---------------------------------------------------------------- stylised facts


def test_correlations_with_market_and_sector(demo: DemoUniverse) -> None:
    """Single stocks co-move with SPY (0.2..0.95); XLK tracks QQQ closely."""
    ret = _log_returns(demo.bars)
    for ticker in STOCKS:
        rho = _corr(ret[ticker], ret["SPY"])
        assert 0.2 < rho < 0.95, (ticker, rho)
    assert _corr(ret["XLK"], ret["QQQ"]) > 0.8
    assert _corr(ret["XLK"], ret["SPY"]) > 0.8


def test_volatility_clustering_and_level(demo: DemoUniverse) -> None:
    """Volatility clusters at lag 1 and its annualised level is plausible."""
    ret = _log_returns(demo.bars)
    positive = 0
    for ticker in SYNTHETIC:
        r = ret[ticker][np.isfinite(ret[ticker])]
        ann = r.std(ddof=1) * np.sqrt(252)
        assert 0.10 < ann < 1.20, (ticker, ann)
        q = r**2
        positive += _corr(q[1:], q[:-1]) > 0
    assert positive >= 0.8 * len(SYNTHETIC)


def test_volume_rises_with_absolute_return(demo: DemoUniverse) -> None:
    """Volume correlates positively with |return| for every synthetic ticker."""
    for ticker in SYNTHETIC:
        df = _ticker(demo.bars, ticker)
        r = np.diff(np.log(df["close"].to_numpy()))
        v = df["volume"].to_numpy()[1:]
        assert _corr(np.log(v), np.abs(r)) > 0.05, ticker


def test_ranges_and_overnight_gaps(demo: DemoUniverse) -> None:
    """Median (H-L)/C is realistic; opens are not all at the previous close."""
    for ticker in SYNTHETIC:
        df = _ticker(demo.bars, ticker)
        o, h, low, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
        rng = np.median((h - low) / c)
        assert 0.003 < rng < 0.06, (ticker, rng)
        gap = np.log(o[1:] / c[:-1])
        assert np.mean(np.abs(gap) > 1e-12) > 0.5, ticker
        intraday = np.log(c / o)
        assert np.std(intraday) > 0, ticker
    # the market part of a synthetic gap follows the real SPY gap
    spy = _ticker(demo.bars, "SPY")
    spy_gap = np.log(spy["open"].to_numpy()[1:] / spy["close"].to_numpy()[:-1])
    xlk = _ticker(demo.bars, "XLK")
    xlk_gap = np.log(xlk["open"].to_numpy()[1:] / xlk["close"].to_numpy()[:-1])
    assert _corr(xlk_gap, spy_gap) > 0.3


def test_idiosyncratic_volatility_clusters(demo: DemoUniverse) -> None:
    """The part of returns not explained by SPY and QQQ shows GARCH clustering."""
    ret = _log_returns(demo.bars)
    positive = 0
    for ticker in SYNTHETIC:
        r = ret[ticker]
        ok = np.isfinite(r)
        x = np.column_stack([np.ones(ok.sum()), ret["SPY"][ok], ret["QQQ"][ok]])
        coef, *_ = np.linalg.lstsq(x, r[ok], rcond=None)
        q = (r[ok] - x @ coef) ** 2
        positive += _corr(q[1:], q[:-1]) > 0.02
    assert positive >= 0.75 * len(SYNTHETIC), positive
