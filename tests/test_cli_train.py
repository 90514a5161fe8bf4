"""``engine train`` and ``engine validate`` end to end through the CLI (tiny runs)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.labels.targets import CONFIDENCE_SUFFIX, PATTERN_NAMES
from engine.model.artifacts import load_model_artifact
from engine.model.run_files import PREDICTION_KEYS
from engine.model.trainer import predict

runner = CliRunner()
TICKERS = "AAPL,MSFT"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["data", "demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return data_dir


@pytest.fixture(scope="module")
def holdout_run(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "holdout"
    args = ["train", "--tickers", TICKERS, "--split", "holdout", "--epochs", "2",
            "--start", "2010-01-01", "--data-dir", str(demo_dir), "--out", str(out),
            "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_writes_run_predictions_and_artifact(holdout_run):
    out, summary = holdout_run
    assert summary["status"] == "complete" and summary["planned_windows"] == 1
    (window,) = summary["windows"]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert run["settings"]["split"] == "holdout"

    predictions = pl.read_parquet(out / "predictions.parquet")
    expected = [*PREDICTION_KEYS]
    for p in PATTERN_NAMES:
        expected += [p + CONFIDENCE_SUFFIX]
    expected += list(PATTERN_NAMES)
    assert predictions.columns == expected
    assert predictions.height == window["n_test"]
    assert sorted(predictions["ticker"].unique().to_list()) == TICKERS.split(",")
    # out of sample: every prediction after its model's embargo end, which follows train_end
    assert (predictions["date"] > predictions["embargo_end"]).all()
    assert (predictions["embargo_end"] > predictions["train_end"]).all()
    assert predictions["date"].min().isoformat() >= window["test_start"]
    assert predictions.select("ticker", "date").is_unique().all()
    conf = predictions.select(pl.col(f"^.*{CONFIDENCE_SUFFIX}$")).to_numpy()
    assert np.all((conf > 0) & (conf < 1))

    artifact = load_model_artifact(out / window["artifact"])
    assert artifact.metadata["split"]["kind"] == "holdout"
    assert artifact.history.height == window["epochs"] == 2


def test_saved_model_reproduces_the_run_predictions(holdout_run, demo_dir):
    """The artifact's model, fed the same windows, gives the written confidences."""
    from engine.data.store import BarStore
    from engine.model.runs import RunSettings, prepare_dataset

    out, summary = holdout_run
    (window,) = summary["windows"]
    artifact = load_model_artifact(out / window["artifact"])
    bars = BarStore(demo_dir).read_bars()
    from datetime import date

    data = prepare_dataset(bars, TICKERS.split(","), RunSettings(split="holdout"),
                           start=date(2010, 1, 1))  # fmt: skip
    written = pl.read_parquet(out / "predictions.parquet")
    keys = data.score_set.index.with_row_index("row").join(
        written.select("ticker", "date"), on=["ticker", "date"], how="semi"
    )
    rows = keys["row"].to_numpy()
    again = predict(artifact.model, data.score_set.X[rows])
    stored = written.select(p + CONFIDENCE_SUFFIX for p in PATTERN_NAMES).to_numpy()
    np.testing.assert_allclose(again, stored, rtol=0, atol=1e-6)


def test_validate_run_json(holdout_run):
    out, _ = holdout_run
    result = runner.invoke(app, ["validate", "--model", str(out), "--n-boot", "50", "--null",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"]["kind"] == "run"
    patterns = {row["pattern"] for row in report["metrics"]}
    assert patterns == set(PATTERN_NAMES)
    assert report["null"] is not None and len(report["null"]["metrics"]) == len(PATTERN_NAMES)
    predictions = pl.read_parquet(out / "predictions.parquet")
    for row in report["metrics"]:
        assert row["n"] == predictions[row["pattern"]].drop_nulls().len()


def test_validate_prints_tables_and_writes_report(holdout_run, tmp_path):
    out, _ = holdout_run
    report_dir = tmp_path / "report"
    result = runner.invoke(app, ["validate", "--predictions", str(out / "predictions.parquet"),
                                 "--n-boot", "50", "--report", str(report_dir)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "AUC [95 % CI]" in result.stdout
    assert (report_dir / "report.html").stat().st_size > 0


def test_train_refuses_existing_out_without_overwrite(holdout_run, demo_dir):
    out, _ = holdout_run
    result = runner.invoke(app, ["train", "--tickers", TICKERS, "--split", "holdout",
                                 "--epochs", "1", "--data-dir", str(demo_dir),
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1
    assert "already exists" in result.output and "--overwrite" in result.output


def test_train_unknown_ticker_is_a_clear_error(demo_dir, tmp_path):
    result = runner.invoke(app, ["train", "--tickers", "NOPE", "--data-dir", str(demo_dir),
                                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 1
    assert "NOPE" in result.output
    assert not (tmp_path / "run").exists()


def test_validate_needs_exactly_one_source(holdout_run):
    out, _ = holdout_run
    neither = runner.invoke(app, ["validate"])
    both = runner.invoke(app, ["validate", "--model", str(out), "--predictions",
                               str(out / "predictions.parquet")])  # fmt: skip
    assert neither.exit_code == 1 and both.exit_code == 1
