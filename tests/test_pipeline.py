"""``engine pipeline --quick`` end to end through the CLI: every stage, every artifact."""

from __future__ import annotations

import json

import numpy as np
import onnx
import polars as pl
import pytest
from typer.testing import CliRunner

from engine.backtest.signals import STRATEGIES
from engine.cli.app import app
from engine.jobs.pipeline import QUICK, STAGES
from export import PatternScorer

runner = CliRunner()
BACKTEST_FILES = (
    "report.html", "equity.png", "drawdown.png", "metrics.json", "daily.parquet",
    "signals.parquet",
)  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data_dir, out = root / "data", root / "out"
    args = ["pipeline", "--quick", "--data-dir", str(data_dir), "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return data_dir, out, json.loads(result.stdout)


@pytest.mark.slow
def test_quick_pipeline_runs_every_stage(quick_run):
    data_dir, out, summary = quick_run
    assert set(summary["stages"]) == set(STAGES)  # the JSON output sorts keys
    assert summary["stages"]["data"]["generated"] is True  # the empty data dir got the demo
    assert (data_dir / "metadata.json").is_file()
    assert summary["settings"]["tickers"] == QUICK.tickers
    assert json.loads((out / "summary.json").read_text())["stages"].keys() == set(STAGES)
    assert summary["report"] == str(out / "report.html")


@pytest.mark.slow
def test_quick_pipeline_writes_every_artifact(quick_run):
    _, out, summary = quick_run
    features = pl.read_parquet(out / "features.parquet")
    targets = pl.read_parquet(out / "targets.parquet")
    tickers = sorted(QUICK.tickers.split(","))
    assert sorted(features["ticker"].unique().to_list()) == tickers
    assert sorted(targets["ticker"].unique().to_list()) == tickers
    assert json.loads((out / "run" / "run.json").read_text())["status"] == "complete"
    assert (out / "validation" / "report.html").is_file()
    assert (out / "onnx" / "model.onnx").is_file()
    for strategy in STRATEGIES:
        for name in BACKTEST_FILES:
            assert (out / "backtest" / strategy / name).is_file(), (strategy, name)
    page = (out / "report.html").read_text()
    for strategy in STRATEGIES:
        assert f"backtest/{strategy}/report.html" in page
    assert page.count("data:image/png;base64,") == 2 * len(STRATEGIES)


@pytest.mark.slow
def test_quick_pipeline_is_out_of_sample_end_to_end(quick_run):
    _, out, summary = quick_run
    predictions = pl.read_parquet(out / "run" / "predictions.parquet")
    assert (predictions["date"] > predictions["embargo_end"]).all()
    first, last = predictions["date"].min(), predictions["date"].max()
    for strategy in STRATEGIES:
        daily = pl.read_parquet(out / "backtest" / strategy / "daily.parquet")
        assert daily["date"].min() >= first and daily["date"].max() <= last
        signals = pl.read_parquet(out / "backtest" / strategy / "signals.parquet")
        taken = signals.filter(pl.col("taken"))
        assert (taken["confidence"] >= QUICK.threshold).all()
        row = summary["stages"]["backtest"]["strategies"][strategy]
        metrics = json.loads((out / "backtest" / strategy / "metrics.json").read_text())
        assert metrics["metrics"]["filtered"]["sharpe"] == row["sharpe_filtered"]
        equity = np.prod(1.0 + daily["filtered_return"].to_numpy()) - 1.0
        assert equity == pytest.approx(metrics["metrics"]["filtered"]["total_return"], abs=1e-12)


@pytest.mark.slow
def test_quick_pipeline_onnx_matches_its_parity_report_and_serves(quick_run):
    data_dir, out, summary = quick_run
    export = summary["stages"]["export"]
    assert all(p["ok"] and p["max_abs_diff"] <= p["tolerance"] for p in export["parity"])
    proto = onnx.load(str(out / "onnx" / "model.onnx"))
    assert proto.graph.input[0].name == "sequences"
    scorer = PatternScorer.load(out / "onnx" / "model.onnx")
    x = np.random.default_rng(0).standard_normal((3, 20, 17)).astype(np.float32)
    scores = scorer.score(x)
    assert scores.shape == (3, 4) and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.slow
def test_pipeline_refuses_a_non_empty_out_without_overwrite(quick_run):
    data_dir, out, _ = quick_run
    result = runner.invoke(app, ["pipeline", "--quick", "--data-dir", str(data_dir),
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1
    assert "--overwrite" in result.output
