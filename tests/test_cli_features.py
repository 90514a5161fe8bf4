"""``engine data demo`` then ``engine features`` end to end through the CLI."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.store import BarStore
from engine.features.build import FEATURE_NAMES, compute_features

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["data", "demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return data_dir


def test_demo_then_features_all_writes_file_and_manifest(demo_dir, tmp_path):
    out = tmp_path / "features.parquet"
    result = runner.invoke(
        app,
        ["features", "--tickers", "all", "--data-dir", str(demo_dir), "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    frame = pl.read_parquet(out)
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())

    assert frame.columns == ["ticker", "date", *FEATURE_NAMES]
    assert summary["rows"] == frame.height
    assert len(summary["tickers"]) == 34 and "VIX" not in summary["tickers"]
    assert manifest["feature_names"] == list(FEATURE_NAMES)
    assert manifest["vix_variant"] == "market_vol_ratio"
    assert "SPY" not in manifest["synthetic_tickers"] and "AAPL" in manifest["synthetic_tickers"]
    # the file holds exactly what the API computes from the stored bars
    bars = BarStore(demo_dir).read_bars()
    expected = compute_features(bars)
    assert frame.equals(expected)
    # every ticker leaves warm-up: the 252-day price range and GARCH need the most
    assert all(252 <= n < 600 for n in summary["warm_up_rows"].values()), summary["warm_up_rows"]


def test_features_start_end_keep_rows_but_warm_up_from_history(demo_dir):
    args = ["features", "--tickers", "AAPL,MSFT", "--data-dir", str(demo_dir), "--json"]
    result = runner.invoke(app, [*args, "--start", "2010-01-04", "--end", "2010-12-31"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["start"] == "2010-01-04" and summary["end"] == "2010-12-31"
    assert summary["warm_up_rows"] == {"AAPL": 0, "MSFT": 0}


def test_features_subset_and_table_output(demo_dir):
    result = runner.invoke(
        app,
        [
            "features",
            "--tickers",
            "SPY",
            "--features",
            "price_level,overnight_gap",
            "--data-dir",
            str(demo_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 tickers" in result.output and "warm-up rows" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tickers", "FOO"], "tickers not in the data directory: FOO"),
        (["--features", "nope"], "unknown feature name(s): nope"),
        (["--start", "2012-01-01", "--end", "2011-01-01"], "is after --end"),
    ],
    ids=["unknown-ticker", "unknown-feature", "start-after-end"],
)
def test_features_bad_arguments_exit_1_with_message(demo_dir, args, message):
    result = runner.invoke(app, ["features", "--data-dir", str(demo_dir), *args])
    assert result.exit_code == 1
    assert message in result.output


def test_features_on_empty_data_dir_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["features", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "engine data demo" in result.output
