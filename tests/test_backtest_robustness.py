"""The filter's verdict across prediction files (training seeds): stated only where all agree.

Oracles: Holm's adjustment written from its definition (every step's
threshold checked by hand); confidences with planted foresight (high when
the next day's move goes the signal's way), planted anti-foresight, and
no information, whose verdicts are known in advance.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from engine.backtest.robustness import DISAGREE, file_verdict, holm_adjusted, seed_robustness
from engine.backtest.signals import compute_signals
from engine.backtest.simulation import BacktestSettings
from engine.cli.app import app
from engine.data.store import BarStore
from engine.jobs.backtest import run_backtest_files, run_backtest_job
from engine.labels.targets import CONFIDENCE_SUFFIX
from tests.test_backtest_job import make_bars, make_predictions

HEAD = "momentum_persistence" + CONFIDENCE_SUFFIX
FAST = {"n_null": 100, "n_boot": 100}
runner = CliRunner()


# --------------------------------------------------------------------------- Holm


def holm_by_definition(p: list[float]) -> list[float]:
    """p_adj(i) = max over the j ranked at or below i of min(1, (m - j + 1) p_(j))."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    rank = {i: r for r, i in enumerate(order)}  # 0-based
    return [max(min(1.0, (m - r) * p[order[r]]) for r in range(rank[i] + 1)) for i in range(m)]


@pytest.mark.parametrize("seed", range(20))
def test_holm_matches_its_definition(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 0.2, rng.integers(1, 9)).tolist()
    assert holm_adjusted(p) == pytest.approx(holm_by_definition(p), abs=1e-15)


def test_holm_rejects_by_step_down():
    # m = 3: 0.01 <= 0.05/3 rejects; 0.02 <= 0.05/2 rejects; 0.04 <= 0.05 rejects
    assert all(q <= 0.05 for q in holm_adjusted([0.04, 0.01, 0.02]))
    # 0.03 fails its step (0.05/2), so 0.04 is not rejected either, though below 0.05
    assert [q <= 0.05 for q in holm_adjusted([0.03, 0.04, 0.001])] == [False, False, True]
    assert holm_adjusted([None, 0.3]) == [None, 0.3]


def test_file_verdicts():
    assert file_verdict(0.1, 0.9, 0.01) == "helps"
    assert file_verdict(0.1, 0.9, None) == "helps"  # no null was run
    assert file_verdict(0.1, 0.9, 0.2) == "no evidence"  # beats unfiltered, not the null
    assert file_verdict(-0.9, -0.1, 0.01) == "hurts"
    assert file_verdict(-0.2, 0.3, 0.01) == "no evidence"
    assert file_verdict(None, None, None) == "no evidence"


# --------------------------------------------------------------------------- planted files


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, bars):
    directory = tmp_path_factory.mktemp("data")
    BarStore(directory).write(bars, source="test")
    return directory


def planted(bars: pl.DataFrame, kind: str, seed: int) -> pl.DataFrame:
    """Predictions whose momentum confidence sees the next day (``kind``) or nothing."""
    predictions = make_predictions(bars, seed=seed)
    signals = compute_signals(bars, "momentum")
    move = (
        bars.sort("ticker", "date")
        .with_columns(
            move=(pl.col("close").shift(-1) / pl.col("open").shift(-1) - 1.0).over("ticker")
        )  # fmt: skip
        .join(signals, on=["ticker", "date"])
        .select("ticker", "date", right=pl.col("signal").cast(pl.Float64) * pl.col("move") > 0)
    )
    joined = predictions.join(move, on=["ticker", "date"], how="left")
    rng = np.random.default_rng(seed)
    noise = pl.Series(rng.uniform(size=joined.height))
    # each seed sees the next day through its own noise: 15 % of its rows are guesses
    good = pl.col("right").fill_null(False) ^ pl.Series(rng.uniform(size=joined.height) < 0.15)
    high, low = 0.6 + 0.4 * noise, 0.6 * noise
    if kind == "foresight":
        value = pl.when(good).then(high).otherwise(low)
    elif kind == "anti":
        value = pl.when(good).then(low).otherwise(high)
    else:
        value = noise
    return joined.with_columns(value.cast(pl.Float32).alias(HEAD)).select(predictions.columns)


def write_files(tmp_path, bars, kinds: list[str]) -> list:
    paths = []
    for k, kind in enumerate(kinds):
        path = tmp_path / f"seed{k}" / "predictions.parquet"
        path.parent.mkdir()
        planted(bars, kind, seed=k + 1).write_parquet(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    "kinds, verdict",
    [
        (["foresight", "foresight", "foresight"], "helps"),
        (["anti", "anti"], "hurts"),
        (["foresight", "foresight", "anti"], DISAGREE),
    ],
)
def test_the_verdict_is_stated_only_when_every_file_agrees(tmp_path, bars, data_dir, kinds,
                                                           verdict):  # fmt: skip
    paths = write_files(tmp_path, bars, kinds)
    series = run_backtest_files(paths, BacktestSettings(**FAST), data_dir=data_dir)
    r = series.robustness
    assert r["verdict"] == verdict
    assert [f["verdict"] for f in r["files"]] == [
        {"foresight": "helps", "anti": "hurts"}[k] for k in kinds
    ]
    if verdict == DISAGREE:
        assert r["verdicts"] == {"helps": 2, "hurts": 1}
    # per file: the numbers of its own backtest, alone
    for f, path in zip(r["files"], paths, strict=True):
        alone = run_backtest_job(path, BacktestSettings(**FAST), data_dir=data_dir)
        assert f["predictions"] == str(path)
        assert f["sharpe_filtered"] == alone.metrics["filtered"]["sharpe"]
        assert f["difference"] == alone.sharpe_difference["estimate"]
        assert f["null_p"] == alone.null["p_value"]
    p = [f["null_p"] for f in r["files"]]
    assert [f["null_p_holm"] for f in r["files"]] == pytest.approx(holm_by_definition(p))
    sharpes = [f["sharpe_filtered"] for f in r["files"]]
    assert r["spread"]["sharpe_filtered"] == pytest.approx(
        {"min": min(sharpes), "median": float(np.median(sharpes)), "max": max(sharpes)}
    )
    # the files' runs are one selection: N = 2 runs per file
    assert series.inference["n_trials"] == 2 * len(kinds)
    for report in series.reports:
        assert report.inference["n_trials"] == 2 * len(kinds)


def test_no_information_gives_no_evidence(tmp_path, bars, data_dir):
    paths = write_files(tmp_path, bars, ["noise", "noise"])
    series = run_backtest_files(paths, BacktestSettings(**FAST), data_dir=data_dir)
    assert series.robustness["verdict"] == "no evidence"


def test_a_file_given_twice_and_too_few_trials_are_refused(tmp_path, bars, data_dir):
    paths = write_files(tmp_path, bars, ["noise", "noise"])
    with pytest.raises(ValueError, match="given twice"):
        run_backtest_files([paths[0], paths[0]], BacktestSettings(**FAST), data_dir=data_dir)
    with pytest.raises(ValueError, match="at least the 4 runs"):
        run_backtest_files(paths, BacktestSettings(**FAST, trials=3), data_dir=data_dir)
    with pytest.raises(ValueError, match="at least 2"):
        run_backtest_files(paths[:1], BacktestSettings(**FAST), data_dir=data_dir)


def test_seed_robustness_needs_one_label_per_report():
    with pytest.raises(ValueError, match="one label per report"):
        seed_robustness([], [])


# --------------------------------------------------------------------------- CLI


def test_cli_several_predictions_files(tmp_path, bars, data_dir):
    paths = write_files(tmp_path, bars, ["foresight", "foresight"])
    args = ["backtest", "--predictions", str(paths[0]), "--predictions", str(paths[1]),
            "--data-dir", str(data_dir), "--n-null", "100", "--n-boot", "100"]  # fmt: skip
    payload = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert payload["predictions"] == [str(p) for p in paths]
    assert payload["robustness"]["verdict"] == "helps"
    assert payload["sharpe_inference"]["n_trials"] == 4
    assert set(payload["backtests"]) == {"1", "2"}
    human = runner.invoke(app, [*args, "--report", str(tmp_path / "report")])
    assert human.exit_code == 0, human.output
    out = human.stdout
    assert "filter verdict: helps (every one of the 2 files)" in out
    assert f"file 1: {paths[0]}" in out and "verdict rule: per file" in out
    assert "N = 4 skill-less trials" in out
    assert (tmp_path / "report" / "report.html").is_file()
    assert (tmp_path / "report" / "1" / "report.html").is_file()
    assert (tmp_path / "report" / "2" / "daily.parquet").is_file()
    written = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert written["robustness"]["verdict"] == "helps"
    # the table fits 80 columns
    from engine.cli.backtest import _print_seed_backtests

    series = run_backtest_files(paths, BacktestSettings(**FAST), data_dir=data_dir)
    console = Console(width=80, record=True)
    _print_seed_backtests(series, console)
    text = console.export_text()
    table = text[text.index("filter across prediction files") : text.index("file 1:")]
    assert all(len(line.rstrip()) <= 80 for line in table.splitlines())
    assert "no evidence" not in table.split("verdict", 1)[1]  # both files: helps
