"""``engine validate`` by market regime: counts against a direct join, coverage by brute force."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.data.store import BarStore
from engine.evaluation.validation import validate_predictions
from engine.jobs.validate import _regimes, run_validate_job
from engine.model.prediction_sources import PredictionSource, resolve_prediction_source

N_DAYS = 700
PATTERNS = ["breakout", "reversal"]


def _reference_regimes(days: list[dt.date], close: np.ndarray) -> dict[dt.date, tuple]:
    """Trend and volatility labels written with pandas rolling windows (independent of the code)."""
    c = pd.Series(close)
    r = np.log(c).diff()
    trend = np.log(c / c.shift(120))
    band = r.rolling(120).std() * np.sqrt(120)
    vol = r.rolling(60).std() * np.sqrt(252)
    median = vol.expanding(min_periods=252).median()
    out = {}
    for i, day in enumerate(days):
        t = None
        if pd.notna(trend[i]) and pd.notna(band[i]):
            t = "bull" if trend[i] > band[i] else "bear" if trend[i] < -band[i] else "sideways"
        v = None
        if pd.notna(vol[i]) and pd.notna(median[i]):
            v = "high" if vol[i] > median[i] else "low"
        out[day] = (t, v)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("regimes")
    rng = np.random.default_rng(13)  # a seed whose test days reach all five labels
    days = [d.date() for d in pd.bdate_range("2018-01-01", periods=N_DAYS)]
    wander = np.exp(np.cumsum(rng.normal(0, 0.05, N_DAYS)))
    close = 100.0 * np.exp(np.cumsum(0.01 * wander * rng.standard_normal(N_DAYS)))
    spy = pl.DataFrame({"ticker": "SPY", "date": days, "open": close, "high": close,
                        "low": close, "close": close, "volume": 1e6})  # fmt: skip
    data_dir = root / "data"
    BarStore(data_dir).write(spy)
    # predictions from day 300 (some before the volatility label starts) to the end, two
    # windows, three tickers; one predicted date the benchmark did not trade (a Saturday)
    test_days = days[300:]
    split = len(test_days) // 2
    rows = []
    for k, day in enumerate(test_days + [dt.date(2020, 6, 6)]):
        model = "wf00" if k < split else "wf01"
        train_end = days[250] if model == "wf00" else test_days[split - 30]
        embargo_end = train_end + dt.timedelta(days=10)
        for ticker in ("AAA", "BBB", "CCC"):
            rows.append({"ticker": ticker, "date": day, "t1": day, "model_id": model,
                         "train_end": train_end, "embargo_end": embargo_end})  # fmt: skip
    frame = pl.DataFrame(rows)
    n = frame.height
    for p in PATTERNS:
        y = (rng.uniform(size=n) < 0.4).astype(np.float64)
        y[rng.uniform(size=n) < 0.05] = np.nan  # some unlabelled outcomes
        prob = np.clip(0.4 + 0.2 * np.nan_to_num(y) + rng.normal(0, 0.2, n), 0, 1)
        frame = frame.with_columns(
            pl.Series(f"{p}_p", prob, dtype=pl.Float32),
            pl.Series(p, y).fill_nan(None).cast(pl.Int8),
        )
    predictions = root / "predictions.parquet"
    frame.write_parquet(predictions)
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"data": {"data_dir": str(data_dir)}}))
    return {"frame": frame, "predictions": predictions, "run_dir": run_dir,
            "labels": _reference_regimes(days, close)}  # fmt: skip


@pytest.fixture(scope="module")
def report(world):
    bare = resolve_prediction_source(predictions=world["predictions"])
    source = PredictionSource(kind="run", path=world["run_dir"], predictions=bare.predictions,
                              patterns=None, histories={})  # fmt: skip
    regimes, why = _regimes(source)
    assert why is None and regimes is not None
    return validate_predictions(bare, n_boot=20, regimes=regimes)


def test_regime_rows_count_what_a_direct_join_counts(world, report):
    labels = world["labels"]
    frame = world["frame"]
    want = Counter()
    for row in frame.iter_rows(named=True):
        trend, vol = labels.get(row["date"], (None, None))
        for p in PATTERNS:
            if row[p] is None:
                continue
            if trend is not None:
                want[(p, "trend", trend)] += 1
            if vol is not None:
                want[(p, "volatility", vol)] += 1
    got = {(r["pattern"], r["dimension"], r["regime"]): r["n"]
           for r in report.by_regime.iter_rows(named=True)}  # fmt: skip
    assert got == dict(want)
    assert {k[2] for k in got} == {"bull", "bear", "sideways", "high", "low"}
    # Benjamini-Hochberg across every regime row, recomputed here
    p = report.by_regime["auc_p_value"].to_numpy().astype(float)
    order = np.argsort(p)
    m = p.size
    scaled = p[order] * m / np.arange(1, m + 1)
    bh = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    expected = np.empty(m)
    expected[order] = bh
    np.testing.assert_allclose(report.by_regime["auc_p_value_bh"].to_numpy(), expected)
    assert report.by_regime["auc_ci_low"].is_not_null().all()
    assert any("without a regime label" in n for n in report.notes)


def test_coverage_counts_test_days_per_window_by_brute_force(world, report):
    labels = world["labels"]
    frame = world["frame"]
    windows = {m: set(frame.filter(pl.col("model_id") == m)["date"]) for m in ("wf00", "wf01")}
    windows["all"] = set(frame["date"])
    cov = {r["model_id"]: r for r in report.coverage.iter_rows(named=True)}
    assert set(cov) == set(windows)
    for model, dates in windows.items():
        row = cov[model]
        assert row["days"] == len(dates)
        for k, (dim, names) in enumerate(
            (("trend", ("bull", "bear", "sideways")), ("volatility", ("high", "low")))
        ):
            seen = Counter(labels.get(d, (None, None))[k] for d in dates)
            for name in names:
                assert row[f"{dim}:{name}"] == seen[name]
            assert row[f"{dim}:unknown"] == seen[None]
    assert report.to_dict()["regime_coverage"][-1]["model_id"] == "all"


def test_predictions_without_benchmark_bars_validate_with_a_note(world):
    result = run_validate_job(predictions=world["predictions"], n_boot=20)
    assert result.by_regime is None and result.coverage is None
    assert any(n.startswith("regimes absent") for n in result.notes)
    assert result.metrics.height == len(PATTERNS)
    assert result.to_dict()["by_regime"] is None


def test_report_shows_the_regime_tables(report, tmp_path):
    from engine.reports.validation import write_report

    html = write_report(report, tmp_path)[0].read_text()
    assert "Per market regime" in html and "Walk-forward regime coverage" in html
    assert "Benjamini-Hochberg over the 10 pattern x regime rows" in html


def test_a_regime_with_one_test_date_is_left_out_with_a_note(world):
    dates = sorted(set(world["frame"]["date"]))
    regimes = pl.DataFrame({"date": dates, "trend": ["bear"] + ["bull"] * (len(dates) - 1),
                            "volatility": "low"})  # fmt: skip
    bare = resolve_prediction_source(predictions=world["predictions"])
    result = validate_predictions(bare, n_boot=20, regimes=regimes)
    assert set(result.by_regime["regime"]) == {"bull", "low"}
    assert any("['bear'] have fewer than two" in n for n in result.notes)
    assert result.coverage.filter(pl.col("model_id") == "all")["trend:bear"].item() == 1
