"""PSR and DSR of every backtest Sharpe ratio, against the formulas evaluated directly.

Oracles: Bailey & Lopez de Prado's PSR and expected-maximum formulas written
out here with scipy's normal distribution and moments, and Lo's (2002)
variance of the Sharpe estimator for the floor of ``V``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from rich.console import Console
from scipy.stats import kurtosis, norm, skew
from typer.testing import CliRunner

from engine.backtest.inference import sharpe_inference
from engine.backtest.meta_labeling import load_out_of_sample_confidence
from engine.backtest.run import deflate_together, run_backtest
from engine.backtest.simulation import BacktestSettings
from engine.cli.app import app
from engine.data.store import BarStore
from tests.test_backtest_job import make_bars, make_predictions

FAST = {"n_null": 0, "n_boot": 20}
EULER_GAMMA = 0.5772156649015329


# --------------------------------------------------------------------------- oracles


def psr_formula(r: np.ndarray, sr_star: float = 0.0) -> float:
    """Bailey & Lopez de Prado (2012), eq. for PSR, from the returns."""
    sr = r.mean() / r.std(ddof=1)
    g3 = skew(r)
    g4 = kurtosis(r, fisher=False)
    z = (sr - sr_star) * math.sqrt(r.size - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return float(norm.cdf(z))


def expected_max_formula(n: int, v: float) -> float:
    """E[max of n skill-less Sharpe ratios] (Bailey & Lopez de Prado 2014)."""
    if n == 1:
        return 0.0
    return math.sqrt(v) * (
        (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n) + EULER_GAMMA * norm.ppf(1 - 1 / (n * math.e))
    )


def variance_used(runs: list[np.ndarray]) -> float:
    """V: the runs' per-day Sharpe variance, floored at (1 + SR^2 / 2) / T."""
    sharpes = np.array([r.mean() / r.std(ddof=1) for r in runs])
    floor = (1 + np.max(np.abs(sharpes)) ** 2 / 2) / min(r.size for r in runs)
    return max(float(np.var(sharpes, ddof=1)), floor)


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def confidence(bars, tmp_path_factory) -> pl.DataFrame:
    path = tmp_path_factory.mktemp("inference") / "predictions.parquet"
    make_predictions(bars).write_parquet(path)
    return load_out_of_sample_confidence(path, "momentum_persistence")


def drift_bars(drift: float, seed: int, n: int = 1600) -> pl.DataFrame:
    """Bars of 4 tickers whose closes drift by ``drift`` a day (momentum's planted edge)."""
    rng = np.random.default_rng(seed)
    days = [d.date() for d in pd.bdate_range("2020-01-01", periods=n)]
    frames = []
    for ticker in ("AAA", "BBB", "CCC", "DDD"):
        close = 50.0 * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))
        frames.append(pl.DataFrame({"ticker": ticker, "date": days, "open": close,
                                    "close": close}))  # fmt: skip
    return pl.concat(frames)


def always_confident(bars: pl.DataFrame, n_last: int = 1500) -> pl.DataFrame:
    days = sorted(bars.get_column("date").unique())[-n_last:]
    return (
        bars.filter(pl.col("date").is_in(days))
        .select("ticker", "date")
        .with_columns(confidence=pl.lit(0.9))
    )


# --------------------------------------------------------------------------- tests


def test_psr_of_each_run_is_the_formula_evaluated_directly(bars, confidence):
    report = run_backtest(bars, confidence, BacktestSettings(**FAST))
    for run in ("unfiltered", "filtered"):
        r = getattr(report, run).returns
        assert report.metrics[run]["psr"] == pytest.approx(psr_formula(r), rel=1e-10, abs=1e-14)
        assert report.inference["psr"][run] == report.metrics[run]["psr"]
    spy = report.benchmark
    assert report.metrics["SPY"]["psr"] == pytest.approx(psr_formula(spy), rel=1e-10)
    assert report.metrics["SPY"]["dsr"] is None  # the benchmark is not a trial


def test_dsr_is_the_psr_against_the_expected_best_of_n_trials(bars, confidence):
    for trials in (None, 7):
        report = run_backtest(bars, confidence, BacktestSettings(**FAST, trials=trials))
        runs = [report.unfiltered.returns, report.filtered.returns]
        v = variance_used(runs)
        n = trials or 2
        sr0 = expected_max_formula(n, v)
        inf = report.inference
        assert inf["n_trials"] == n and inf["n_runs"] == 2
        assert inf["sr_variance"] == pytest.approx(v, rel=1e-12)
        assert inf["expected_max_sharpe"] == pytest.approx(sr0, rel=1e-10)
        assert inf["expected_max_sharpe_annualised"] == pytest.approx(sr0 * math.sqrt(252))
        for run, r in zip(("unfiltered", "filtered"), runs, strict=True):
            assert report.metrics[run]["dsr"] == pytest.approx(psr_formula(r, sr0), rel=1e-10)
    json.dumps(report.to_dict(), allow_nan=False, default=str)
    assert report.to_dict()["sharpe_inference"]["trials"] == "declared"
    assert report.to_dict()["settings"]["trials"] == 7


def test_dsr_falls_as_the_number_of_trials_grows(bars, confidence):
    dsr = {"unfiltered": [], "filtered": []}
    psr = set()
    for trials in (2, 5, 20, 100, 1000):
        report = run_backtest(bars, confidence, BacktestSettings(**FAST, trials=trials))
        for run in dsr:
            dsr[run].append(report.metrics[run]["dsr"])
        psr.add(report.metrics["filtered"]["psr"])
    for run, values in dsr.items():
        assert all(b < a for a, b in zip(values, values[1:], strict=False)), (run, values)
    assert len(psr) == 1  # PSR does not depend on N


def test_the_variance_is_floored_when_two_runs_agree(bars, confidence):
    # threshold 0: the filtered run is the unfiltered run, their Sharpe variance is 0
    report = run_backtest(bars, confidence, BacktestSettings(**FAST, threshold=0.0))
    inf = report.inference
    r = report.unfiltered.returns
    sr = r.mean() / r.std(ddof=1)
    assert inf["sr_variance_runs"] == pytest.approx(0.0, abs=1e-20)
    assert inf["sr_variance_source"] == "floor"
    assert inf["sr_variance"] == pytest.approx((1 + sr**2 / 2) / r.size, rel=1e-12)
    assert inf["expected_max_sharpe"] > 0.0


def test_a_filter_that_never_trades_has_no_psr_or_dsr(bars, confidence):
    report = run_backtest(bars, confidence, BacktestSettings(**FAST, threshold=1.0))
    assert report.metrics["filtered"]["psr"] is None and report.metrics["filtered"]["dsr"] is None
    assert report.metrics["unfiltered"]["dsr"] is not None


def test_trials_below_the_runs_at_hand_are_refused(bars, confidence):
    with pytest.raises(ValueError, match="at least the 2 runs"):
        run_backtest(bars, confidence, BacktestSettings(**FAST, trials=1))
    with pytest.raises(ValueError, match="trials"):
        BacktestSettings(trials=0)


@pytest.mark.parametrize("seed", range(4))
def test_a_planted_drift_among_noise_is_deflated_above_095_and_noise_is_not(seed):
    """Five backtests, one on drifting bars: the pipeline's selection of ten runs."""
    noise_runs = [drift_bars(0.0, seed=10 * seed + k) for k in range(4)]
    planted = drift_bars(0.002, seed=10 * seed + 9)
    reports = [
        run_backtest(b, always_confident(b), BacktestSettings(**FAST))
        for b in (planted, *noise_runs)
    ]
    shared = deflate_together(reports, "test")
    assert shared["n_trials"] == 10
    runs = [r for report in reports for r in report.run_returns().values()]
    assert shared["sr_variance"] == pytest.approx(variance_used(runs), rel=1e-12)
    assert reports[0].metrics["unfiltered"]["dsr"] > 0.95
    for report in reports[1:]:
        for run in ("unfiltered", "filtered"):
            assert report.metrics[run]["dsr"] < 0.95
            assert report.inference["n_trials"] == 10
    # the same noise without the planted run: still nothing above 0.95
    alone = deflate_together(reports[1:], "test")
    assert max(alone["dsr"].values()) < 0.95


def test_noise_can_pass_psr_but_not_dsr():
    """Among 40 skill-less series the best PSR tops 0.95 most of the time; its DSR never."""
    rng = np.random.default_rng(5)
    passed_psr = 0
    for _ in range(20):
        runs = {f"trial{k}": rng.normal(0.0, 0.01, 500) for k in range(40)}
        out = sharpe_inference(runs)
        passed_psr += max(out["psr"].values()) > 0.95
        assert max(out["dsr"].values()) < 0.95
    assert passed_psr >= 15


def test_cli_trials_reach_the_report_and_the_table_fits_80_columns(tmp_path, bars):
    BarStore(tmp_path / "data").write(bars, source="test")
    path = tmp_path / "predictions.parquet"
    make_predictions(bars).write_parquet(path)
    args = ["backtest", "--predictions", str(path), "--data-dir", str(tmp_path / "data"),
            "--n-null", "0", "--n-boot", "20", "--trials", "12"]  # fmt: skip
    payload = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert payload["settings"]["trials"] == 12
    assert payload["sharpe_inference"]["n_trials"] == 12
    assert isinstance(payload["metrics"]["filtered"]["dsr"], float)
    human = CliRunner().invoke(app, args)
    assert human.exit_code == 0, human.output
    assert "PSR (true Sharpe > 0)" in human.stdout and "DSR (deflated for N trials)" in human.stdout
    assert "N = 12 skill-less trials (declared)" in human.stdout
    from engine.cli.backtest import _backtest_table
    from engine.jobs.backtest import run_backtest_job

    report = run_backtest_job(path, BacktestSettings(**FAST), data_dir=tmp_path / "data")
    console = Console(width=200, record=True)
    console.print(_backtest_table(report, "out-of-sample backtest"))
    assert max(len(line.rstrip()) for line in console.export_text().splitlines()) <= 80
