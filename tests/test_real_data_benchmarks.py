"""Benchmarks chosen by the user (issue 17, item 5): ``--market`` and ``--sector-map FILE``.

A universe without SPY or XLK (stocks AAA and BBB, market MKT, sector ETF
SEC) is refused with a message that names the flag to use, and computed once
the flags are given. The cross-asset features are checked against the pandas
oracle of ``tests.oracles`` run with the same market and sector map.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from engine.data.loading import BarInputs, benchmark_inputs
from engine.data.sector_map import read_sector_map
from engine.data.store import BarStore
from engine.jobs.features import run_feature_job
from tests.oracles.features import reference_features

CROSS = ["sector_relative_strength", "market_beta_instability"]


def _universe(n: int = 260, seed: int = 11) -> pl.DataFrame:
    """Four correlated random walks: a market, a sector ETF and two stocks."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, n)
    sector = 0.8 * market + rng.normal(0, 0.006, n)
    returns = {
        "MKT": market,
        "SEC": sector,
        "AAA": 1.2 * sector + rng.normal(0, 0.01, n),
        "BBB": 0.5 * market + rng.normal(0, 0.015, n),
    }
    days = np.busday_offset(np.datetime64("2015-01-02", "D"), np.arange(n), roll="forward")
    frames = []
    for ticker, r in returns.items():
        close = 40 * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, 0.003, n))
        frames.append(
            pl.DataFrame(
                {"ticker": ticker, "date": [d.astype(dt.date) for d in days], "open": open_,
                 "high": np.maximum(open_, close) * 1.005, "low": np.minimum(open_, close) * 0.995,
                 "close": close, "volume": rng.integers(100, 10_000, n).astype(float)}
            )
        )  # fmt: skip
    return pl.concat(frames)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = BarStore(tmp_path_factory.mktemp("no_spy"))
    store.write(_universe())
    return store


# ------------------------------------------------------------------ sector map files


def test_sector_maps_read_from_toml_and_csv(tmp_path):
    top = tmp_path / "top.toml"
    top.write_text('aaa = "sec"\nBBB = "MKT"\n')
    table = tmp_path / "table.toml"
    table.write_text('[sector_map]\nAAA = "SEC"\nBBB = "MKT"\n')
    csv = tmp_path / "map.csv"
    csv.write_text("Ticker,ETF\nAAA,SEC\n\nbbb,mkt\n")
    expected = {"AAA": "SEC", "BBB": "MKT"}
    assert read_sector_map(top) == read_sector_map(table) == read_sector_map(csv) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        pytest.param("dup.csv", "ticker,sector\nAAA,SEC\nBBB,SEC\naaa,MKT\n",
                     r"line 4: AAA is listed twice \(first at line 2\)", id="duplicate"),
        pytest.param("bad.csv", "ticker,sector\nAAA,not an etf\n",
                     r"line 2: sector ETF 'NOT AN ETF' is not a valid ticker", id="bad etf"),
        pytest.param("cols.csv", "symbol,etf\nAAA,SEC\n",
                     "the header must name a ticker and a sector column", id="header"),
        pytest.param("num.toml", "AAA = 3\n", r"key 'AAA': the value must be a sector ETF",
                     id="toml value"),
        pytest.param("broken.toml", "AAA = \n", "is not valid TOML", id="toml syntax"),
        pytest.param("map.json", "{}", "the file must be .toml or .csv", id="suffix"),
        pytest.param("empty.toml", "", "maps no ticker", id="empty"),
    ],
)  # fmt: skip
def test_bad_sector_maps_name_the_file_and_the_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        read_sector_map(path)
    assert str(caught.value).startswith(f"--sector-map {path}")


def test_missing_sector_map_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="--sector-map file .*nope.toml does not exist"):
        read_sector_map(tmp_path / "nope.toml")


# ------------------------------------------------------------------ features


def test_a_universe_without_spy_or_xlk_names_the_flags(store):
    with pytest.raises(ValueError, match=r"market benchmark SPY is not in .*--market TICKER"):
        run_feature_job(store, "AAA,BBB")
    with pytest.raises(ValueError) as caught:
        run_feature_job(store, "AAA,BBB", inputs=BarInputs(market="MKT"))
    assert "XLK (sector of AAA, BBB)" in str(caught.value)
    assert "--sector-map FILE" in str(caught.value)
    # features that need no benchmark need no flag
    plain = run_feature_job(store, "AAA", features=["price_level"])
    assert plain.frame.height == 260


def test_cross_asset_features_match_the_oracle(store):
    inputs = BarInputs(market="MKT", sector_map={"AAA": "SEC", "BBB": "MKT"})
    report = run_feature_job(store, "AAA,BBB", features=CROSS, inputs=inputs)
    assert report.manifest["market"] == "MKT"
    assert report.manifest["sector_map"] == {"AAA": "SEC", "BBB": "MKT"}
    expected, _ = reference_features(
        store.read_bars(), CROSS, tickers=["AAA", "BBB"], market="MKT",
        sector_map={"AAA": "SEC", "BBB": "MKT"},
    )  # fmt: skip
    for name in CROSS:
        got = report.frame.get_column(name).to_numpy().astype(float)
        assert np.isfinite(got).sum() > 300, name  # the comparison covers real values
        np.testing.assert_allclose(got, expected[name].to_numpy(), rtol=1e-9, atol=1e-12,
                                   equal_nan=True, err_msg=name)  # fmt: skip


def test_benchmark_inputs_follow_the_choices():
    available = ["AAA", "BBB", "MKT", "SEC", "SPY", "XLK", "VIX"]
    assert benchmark_inputs(["AAA"], available, "MKT", {"AAA": "SEC"}) == [
        "AAA",
        "MKT",
        "SEC",
        "VIX",
    ]
    assert BarInputs(market="MKT").sectors(["AAA", "SEC", "MKT"]) == {
        "AAA": "XLK", "MKT": "MKT", "SEC": "XLK",
    }  # fmt: skip
    with pytest.raises(ValueError, match="--market must be a ticker"):
        BarInputs(market="not a ticker")
    with pytest.raises(ValueError, match="--prices must be one of adjusted, raw"):
        BarInputs(prices="split-only")


def test_cli_features_with_market_and_sector_map(store, tmp_path):
    from typer.testing import CliRunner

    from engine.cli import app

    sectors = tmp_path / "sectors.toml"
    sectors.write_text('AAA = "SEC"\nBBB = "MKT"\n')
    result = CliRunner().invoke(
        app, ["features", "--tickers", "AAA,BBB", "--market", "MKT", "--sector-map",
              str(sectors), "--prices", "raw", "--data-dir", str(store.data_dir), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["market"] == "MKT" and summary["prices"]["mode"] == "raw"
    refused = CliRunner().invoke(
        app, ["features", "--tickers", "AAA", "--data-dir", str(store.data_dir)]
    )
    assert refused.exit_code == 1 and "--market TICKER" in refused.output


def test_cli_pipeline_on_a_universe_without_spy_names_the_flag(store, tmp_path):
    from typer.testing import CliRunner

    from engine.cli import app

    result = CliRunner().invoke(
        app, ["pipeline", "--data-dir", str(store.data_dir), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 1
    assert "market benchmark SPY is not in" in result.output and "--market TICKER" in result.output
    assert "Traceback" not in result.output
