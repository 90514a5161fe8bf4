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

The same dividend run checks the other commands that compare a data
directory with the run's fingerprint: ``engine backtest`` finds its bars
to be the training bars (it compared the stored prices, and called any
dividend a mismatch), and :func:`engine.model.reload.rebuild_run` (behind
``engine explain`` and ``engine ensemble``) rebuilds the run instead of
refusing it, with the features training computed on adjusted prices.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
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


def _backtest(world, data_dir):
    predictions = world["run"] / "predictions.parquet"  # run.json beside it: the fingerprint
    result = runner.invoke(app, ["backtest", "--predictions", str(predictions), "--data-dir",
                                 str(world[data_dir]), "--n-null", "0", "--n-boot", "20",
                                 "--no-track", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_backtest_finds_the_moved_bars_to_be_the_training_bars(world):
    report = _backtest(world, "moved")
    assert report["fingerprint_match"] is True
    assert not any("fingerprint" in n for n in report["notes"])


def test_backtest_calls_edited_bars_a_mismatch(world):
    report = _backtest(world, "changed")
    assert report["fingerprint_match"] is False
    assert any("fingerprint mismatch" in n for n in report["notes"])


def test_rebuild_run_reproduces_the_dividend_run_on_adjusted_prices(world):
    from engine.features.build import FEATURE_NAMES
    from engine.model.artifacts import read_metadata
    from engine.model.reload import rebuild_run
    from export.held_out import training_bars

    recorded = json.loads((world["run"] / "run.json").read_text())
    artifact = world["run"] / recorded["windows"][0]["artifact"]
    stored = training_bars(read_metadata(artifact), world["moved"])
    rebuilt = rebuild_run(world["run"], stored)  # refused before: the stored bars' fingerprint
    # oracle: the training features rebuilt by hand on prices adjusted as a user would
    ratio = pl.col("adj_close") / pl.col("close")
    adjusted = stored.with_columns(
        *(pl.when(pl.col("ticker") == "AAPL").then(pl.col(c) * ratio).otherwise(pl.col(c))
          .alias(c) for c in ("open", "high", "low", "close"))
    )  # fmt: skip
    from engine.features.build import compute_features

    want = compute_features(adjusted, tickers=TICKERS)
    scored = rebuilt.dataset.score_set
    last_rows = pl.DataFrame(scored.X[:, -1, :], schema=list(scored.feature_names))
    got = pl.concat([scored.index.select("ticker", "date"), last_rows], how="horizontal")
    joined = got.join(want, on=["ticker", "date"], suffix="_want")
    assert joined.height == got.height > 0
    for name in FEATURE_NAMES:
        a = joined.get_column(name).to_numpy()
        b = joined.get_column(f"{name}_want").cast(pl.Float32).to_numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)
