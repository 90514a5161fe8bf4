"""``engine backtest`` through the CLI on a small store and a hand-made predictions file."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.store import BarStore
from engine.labels.targets import CONFIDENCE_SUFFIX, PATTERN_NAMES

runner = CliRunner()
TICKERS = ("AAA", "BBB", "CCC")
FAST = ["--n-null", "20", "--n-boot", "50"]


def _bars(n: int = 220, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = [d.date() for d in pd.bdate_range("2023-01-02", periods=n)]
    frames = []
    for ticker in (*TICKERS, "SPY"):
        close = 30.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
        open_ = np.r_[30.0, close[:-1]] * np.exp(rng.normal(0.0, 0.005, n))
        frames.append(pl.DataFrame({
            "ticker": ticker, "date": days, "open": open_,
            "high": np.maximum(open_, close) * 1.004, "low": np.minimum(open_, close) * 0.996,
            "close": close, "volume": 1e6,
        }))  # fmt: skip
    return pl.concat(frames)


def _predictions(bars: pl.DataFrame, n_last: int = 100, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = sorted(bars.get_column("date").unique().to_list())[-n_last:]
    frame = (
        bars.filter(pl.col("ticker").is_in(list(TICKERS)) & pl.col("date").is_in(days))
        .select("ticker", "date")
        .with_columns(
            t1=pl.col("date") + pl.duration(days=7),
            model_id=pl.lit("wf00"),
            train_end=pl.lit(days[0] - dt.timedelta(days=20)),
            embargo_end=pl.lit(days[0] - dt.timedelta(days=5)),
        )
    )
    n = frame.height
    return frame.with_columns(
        **{p + CONFIDENCE_SUFFIX: rng.uniform(size=n) for p in PATTERN_NAMES}
    ).with_columns(**{p: pl.Series(rng.integers(0, 2, n), dtype=pl.Int8) for p in PATTERN_NAMES})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_backtest")
    bars = _bars()
    BarStore(root / "data").write(bars)
    predictions = _predictions(bars)
    path = root / "predictions.parquet"
    predictions.write_parquet(path)
    return root, path, predictions


def invoke(*args: str):
    return runner.invoke(app, ["backtest", *args])


def test_json_output_holds_the_settings(inputs):
    root, path, _ = inputs
    result = invoke("--predictions", str(path), "--strategy", "mean_reversion", "--json",
                    "--data-dir", str(root / "data"), "--threshold", "0.55", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["settings"]["strategy"] == "mean_reversion"
    assert payload["settings"]["head"] == "trend_exhaustion"
    assert payload["settings"]["threshold"] == 0.55
    assert payload["settings"]["fill"] == "open"
    assert payload["settings"]["n_null"] == 20 and payload["settings"]["n_boot"] == 50
    assert payload["tickers"] == list(TICKERS) and payload["days"] == 100
    assert payload["data_dir"] == str(root / "data")
    assert set(payload["metrics"]) == {"unfiltered", "filtered", "SPY"}
    assert isinstance(payload["metrics"]["unfiltered"]["total_return"], float)
    assert payload["filter"]["signals"] >= payload["filter"]["taken"]
    assert payload["predictions"] == str(path)
    assert payload["files"] == []


def test_json_options_reach_the_settings(inputs):
    root, path, _ = inputs
    result = invoke("--predictions", str(path), "--strategy", "ma_cross", "--fill", "close",
                    "--long-only", "--costs-bps", "12", "--slippage-bps", "3", "--head",
                    "volatility_regime", "--seed", "4", "--json", "--data-dir",
                    str(root / "data"), *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)["settings"]
    assert (s["strategy"], s["fill"], s["long_only"], s["head"]) == (
        "ma_cross", "close", True, "volatility_regime",
    )  # fmt: skip
    assert (s["costs_bps"], s["slippage_bps"], s["seed"]) == (12.0, 3.0, 4)


def test_human_output_shows_the_table(inputs):
    root, path, _ = inputs
    result = invoke("--predictions", str(path), "--strategy", "mean_reversion",
                    "--data-dir", str(root / "data"), *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "mean_reversion on 3 tickers" in out
    for word in ("metric", "unfiltered", "filtered", "SPY", "Sharpe (annualised)",
                 "max drawdown", "total return", "trend_exhaustion confidence >= 0.6"):  # fmt: skip
        assert word in out, word
    assert "shifted" in out and "null take rate" in out


@pytest.mark.parametrize("value", ["1.5", "-0.2"])
def test_a_threshold_outside_unit_interval_exits_nonzero(inputs, value):
    root, path, _ = inputs
    result = invoke("--predictions", str(path), "--threshold", value, "--data-dir",
                    str(root / "data"), *FAST)  # fmt: skip
    assert result.exit_code != 0
    assert "threshold" in result.output
    assert "Traceback" not in result.output


def test_an_in_sample_file_exits_1(inputs, tmp_path):
    root, _, predictions = inputs
    leaky = predictions.with_columns(
        embargo_end=pl.when(pl.col("ticker") == "BBB")
        .then(pl.col("date").max())
        .otherwise(pl.col("embargo_end"))
    )
    path = tmp_path / "predictions.parquet"
    leaky.write_parquet(path)
    result = invoke("--predictions", str(path), "--json", "--data-dir", str(root / "data"), *FAST)
    assert result.exit_code == 1
    assert "in-sample" in result.stderr and "BBB" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_a_missing_predictions_file_exits_1(inputs, tmp_path):
    root, _, _ = inputs
    result = invoke("--predictions", str(tmp_path / "nope.parquet"), "--data-dir",
                    str(root / "data"), *FAST)  # fmt: skip
    assert result.exit_code == 1
    assert "nope.parquet" in result.stderr


def test_report_dir_is_written(inputs, tmp_path):
    root, path, _ = inputs
    out = tmp_path / "report"
    result = invoke("--predictions", str(path), "--report", str(out), "--data-dir",
                    str(root / "data"), "--json", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    names = {"report.html", "equity.png", "drawdown.png", "metrics.json", "daily.parquet",
             "signals.parquet"}  # fmt: skip
    assert {p.name for p in out.iterdir()} == names
    payload = json.loads(result.stdout)
    assert {p.split("/")[-1] for p in payload["files"]} == names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"] == payload["settings"]
    assert metrics["metrics"] == payload["metrics"]
    assert pl.read_parquet(out / "daily.parquet").height == 100
    human = invoke("--predictions", str(path), "--report", str(tmp_path / "again"),
                   "--data-dir", str(root / "data"), *FAST)  # fmt: skip
    assert human.exit_code == 0, human.output
    assert "report.html" in human.stdout
