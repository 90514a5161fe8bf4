"""``engine validate --data-dir``: the regimes' bars from another directory, fingerprint-checked.

A tiny holdout run is trained (through the CLI) on demo bars where AAPL
paid a dividend: its ``adj_close`` is 2 % below the close before
2015-06-01, so the run trained on adjusted prices and its recorded
fingerprint is that of the adjusted bars, not of the stored ones. Then:

* the data directory is moved: plain ``validate`` can no longer check the
  recorded directory and says regimes are absent; ``--data-dir`` with the
  moved directory passes the check and gives the per-regime rows that
  ``validate`` gave before the move, row for row;
* a copy with one AAPL close changed by 1 % is refused, naming the
  fingerprint mismatch, and so is a directory without the run's tickers;
* a bare predictions file with ``--data-dir`` gets its regimes from there,
  with a note that nothing recorded could check those bars.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.demo import generate_demo_universe
from engine.data.store import BarStore

runner = CliRunner()
TICKERS = ["AAPL", "MSFT"]
BENCHMARKS = ["SPY", "XLK", "VIX", "VIX3M"]
DIVIDEND = dt.date(2015, 6, 1)


def _validate(*args):
    result = runner.invoke(app, ["validate", "--n-boot", "20", "--no-track", "--json", *args])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def _regime_rows(report):
    """The per-regime rows without the bootstrap columns' float noise (same seed anyway)."""
    return sorted(json.dumps(r, sort_keys=True) for r in report["by_regime"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate_data_dir")
    bars = generate_demo_universe(seed=7).bars
    bars = bars.filter(pl.col("ticker").is_in(TICKERS + BENCHMARKS))
    paid = (pl.col("ticker") == "AAPL") & (pl.col("date") < DIVIDEND)
    bars = bars.with_columns(
        adj_close=pl.when(paid).then(pl.col("close") * 0.98).otherwise(pl.col("close"))
    )
    data = root / "data"
    BarStore(data).write(bars)
    run = root / "run"
    train = runner.invoke(app, ["train", "--tickers", ",".join(TICKERS), "--split", "holdout",
                                "--epochs", "1", "--start", "2014-01-01", "--no-track",
                                "--data-dir", str(data), "--out", str(run)])  # fmt: skip
    assert train.exit_code == 0, train.output
    recorded = json.loads((run / "run.json").read_text())["data"]
    assert recorded["prices"]["adjusted"] == ["AAPL"]  # the fingerprint is of adjusted bars
    before, report = _validate("--model", str(run))
    assert before.exit_code == 0, before.output
    moved = root / "moved"
    shutil.move(data, moved)
    changed = root / "changed"
    shutil.copytree(moved, changed)
    one = (pl.col("ticker") == "AAPL") & (pl.col("date") == dt.date(2016, 3, 1))
    edited = bars.filter(pl.col("ticker") == "AAPL").with_columns(
        *(pl.when(one).then(pl.col(c) * 1.01).otherwise(pl.col(c)).alias(c)
          for c in ("open", "high", "low", "close", "adj_close"))
    )  # fmt: skip
    BarStore(changed).write(edited, overwrite=True)
    lacking = root / "lacking"
    BarStore(lacking).write(bars.filter(pl.col("ticker") != "MSFT"))
    return {"run": run, "before": report, "moved": moved, "changed": changed,
            "lacking": lacking}  # fmt: skip


def test_the_run_had_regimes_before_the_move(world):
    assert world["before"]["by_regime"], "the recorded data directory gave no regimes"


def test_after_the_move_regimes_are_absent_with_a_note(world):
    result, report = _validate("--model", str(world["run"]))
    assert result.exit_code == 0, result.output
    assert report["by_regime"] is None
    note = " ".join(report["notes"])
    assert "regimes absent" in note and "--data-dir" in note


def test_data_dir_with_the_moved_bars_gives_the_same_regimes(world):
    result, report = _validate("--model", str(world["run"]), "--data-dir", str(world["moved"]))
    assert result.exit_code == 0, result.output
    assert _regime_rows(report) == _regime_rows(world["before"])
    assert report["regime_coverage"] == world["before"]["regime_coverage"]


def test_data_dir_with_other_bars_is_refused_naming_the_fingerprint(world):
    result, _ = _validate("--model", str(world["run"]), "--data-dir", str(world["changed"]))
    assert result.exit_code == 1
    squeezed = "".join(result.output.split())  # paths may be folded at 80 columns
    assert "fingerprintmismatch" in squeezed
    assert "--data-dir" + "".join(str(world["changed"]).split()) in squeezed
    assert "Traceback" not in result.output


def test_data_dir_without_the_run_tickers_is_refused_naming_them(world):
    result, _ = _validate("--model", str(world["run"]), "--data-dir", str(world["lacking"]))
    assert result.exit_code == 1
    assert "lacksMSFT" in "".join(result.output.split())


def test_a_bare_predictions_file_takes_its_regimes_from_data_dir_with_a_note(world):
    predictions = world["run"] / "predictions.parquet"
    result, report = _validate("--predictions", str(predictions), "--data-dir",
                               str(world["changed"]))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert report["by_regime"]
    assert any("no fingerprint is recorded" in n for n in report["notes"])
