"""Paired model comparison: weighted metrics, the date-block bootstrap, its null, alignment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.evaluation import auc, brier, log_loss
from engine.evaluation.comparison import (
    ComparisonError,
    _date_weights,
    align_predictions,
    compare_frame,
    paired_differences,
    weighted_auc,
)


def _codes(s):
    return np.unique(s, return_inverse=True)[1], np.unique(s).size


def test_weighted_auc_equals_the_auc_of_the_repeated_rows():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=300) < 0.4).astype(float)
    s = np.round(rng.uniform(size=300), 2)  # ties on purpose
    w = rng.integers(0, 4, size=(5, 300)).astype(float)
    codes, k = _codes(s)
    got = weighted_auc(y, codes, k, w)
    for b in range(5):
        rows = np.repeat(np.arange(300), w[b].astype(int))
        assert got[b] == pytest.approx(auc(y[rows], s[rows]), abs=1e-12)
    assert weighted_auc(y, codes, k, np.ones((1, 300)))[0] == pytest.approx(auc(y, s))


def test_date_weights_keep_every_row_of_a_date_together():
    day = np.repeat(np.arange(40), 3)
    for w in _date_weights(day, 40, 3.0, 50, seed=1):
        per_date = w.reshape(-1, 40, 3)
        assert (per_date == per_date[:, :, :1]).all()  # a date's rows share a multiplicity
        assert (per_date[:, :, 0].sum(axis=1) == 40).all()  # each replicate draws 40 dates


def test_point_estimates_and_antisymmetry():
    rng = np.random.default_rng(1)
    n = 500
    y = (rng.uniform(size=n) < 0.5).astype(float)
    pa = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)
    pb = rng.uniform(0.01, 0.99, n)
    dates = np.repeat(np.arange(250), 2)
    ab = {r["metric"]: r for r in paired_differences(y, pa, pb, dates, n_boot=100, seed=3)}
    ba = {r["metric"]: r for r in paired_differences(y, pb, pa, dates, n_boot=100, seed=3)}
    assert ab["auc"]["a"] == pytest.approx(auc(y, pa)) and ab["auc"]["b"] == pytest.approx(
        auc(y, pb)
    )
    assert ab["brier"]["difference"] == pytest.approx(brier(y, pa) - brier(y, pb))
    assert ab["log_loss"]["difference"] == pytest.approx(log_loss(y, pa) - log_loss(y, pb))
    for m in ab:
        assert ba[m]["difference"] == pytest.approx(-ab[m]["difference"])
        assert ba[m]["p_value"] == pytest.approx(ab[m]["p_value"])
        assert ba[m]["ci_low"] == pytest.approx(-ab[m]["ci_high"])


def test_a_real_difference_is_found():
    rng = np.random.default_rng(2)
    n = 1200
    y = (rng.uniform(size=n) < 0.5).astype(float)
    good = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)
    noise = np.clip(0.5 + rng.normal(0, 0.2, n), 0.01, 0.99)
    rows = paired_differences(y, good, noise, np.repeat(np.arange(400), 3), n_boot=300, seed=0)
    for r in rows:
        assert r["p_value"] < 0.01
    assert rows[0]["ci_low"] > 0 and rows[1]["ci_high"] < 0  # AUC up, Brier down


def test_null_rejects_about_five_percent_with_a_shared_market_factor():
    """Two skill-free models whose errors share a date factor: the test must stay at its level."""
    rejected, sims = 0, 200
    for s in range(sims):
        rng = np.random.default_rng(100 + s)
        dates = np.repeat(np.arange(120), 4)
        day = rng.normal(0, 1, 120)[dates]  # rows of a date move together
        y = (day + rng.normal(0, 1, dates.size) > 0).astype(float)
        common = rng.normal(0, 1, 120)[dates]
        pa = 1 / (1 + np.exp(-(0.5 * common + rng.normal(0, 0.5, dates.size))))
        pb = 1 / (1 + np.exp(-(0.5 * common + rng.normal(0, 0.5, dates.size))))
        p = paired_differences(y, pa, pb, dates, n_boot=199, seed=s)[1]["p_value"]  # Brier
        rejected += p < 0.05
    assert 0.01 <= rejected / sims <= 0.10, rejected


def test_too_few_dates_get_no_interval():
    y = np.array([0, 1, 0, 1.0])
    row = paired_differences(y, np.full(4, 0.4), np.full(4, 0.6), np.arange(4), n_boot=50)[0]
    assert row["difference"] == 0.0 and row["ci_low"] is None and row["p_value"] is None


def _frame(days, tickers=("A", "B"), patterns=("p", "q"), seed=0):
    rng = np.random.default_rng(seed)
    rows = [(t, d) for d in days for t in tickers]
    n = len(rows)
    data = {
        "ticker": [r[0] for r in rows],
        "date": [r[1] for r in rows],
        "model_id": ["wf00"] * n,
    }
    for p in patterns:
        data[p] = rng.integers(0, 2, n).astype(np.int8)
        data[p + "_p"] = rng.uniform(size=n)
    return pl.DataFrame(data)


DAYS = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(60)]


def test_alignment_keeps_common_rows_only():
    a = _frame(DAYS[:40])
    b = _frame(DAYS[20:], seed=1)
    # outcomes must agree where both have them: B takes A's outcomes on the common rows
    common = a.select("ticker", "date", pl.col("p").alias("pa"), pl.col("q").alias("qa"))
    b = (
        b.join(common, on=["ticker", "date"], how="left")
        .with_columns(pl.coalesce("pa", "p").alias("p"), pl.coalesce("qa", "q").alias("q"))
        .drop("pa", "qa")
    )
    frame, patterns = align_predictions(a, b, ["p", "q"], ["q", "p"])
    assert patterns == ["p", "q"] and frame.height == 2 * 20
    assert frame.get_column("date").min() == DAYS[20] and frame.get_column("date").max() == DAYS[39]
    joined = frame.join(
        b.select("ticker", "date", pl.col("q_p").alias("want")), on=["ticker", "date"]
    )
    assert (joined.get_column("q_b") == joined.get_column("want")).all()


def test_alignment_errors():
    a = _frame(DAYS[:30])
    with pytest.raises(ComparisonError, match="different pattern sets"):
        align_predictions(a, a.rename({"q": "r", "q_p": "r_p"}), ["p", "q"], ["p", "r"])
    with pytest.raises(ComparisonError, match=r"no \(ticker, date\) row in common: A covers"):
        align_predictions(a, _frame(DAYS[30:]), ["p", "q"], ["p", "q"])
    with pytest.raises(ComparisonError, match="more than once"):
        align_predictions(pl.concat([a, a]), a, ["p", "q"], ["p", "q"])
    flipped = a.with_columns((1 - pl.col("p")).cast(pl.Int8).alias("p"))
    with pytest.raises(ComparisonError, match="disagree on the outcome of 'p'"):
        align_predictions(a, flipped, ["p", "q"], ["p", "q"])


def _holm(p):
    """Brute-force Holm: max over the sorted prefix of (m - j) p_(j)."""
    order = np.argsort(p)
    m = len(p)
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_compare_frame_adjusts_per_metric_over_heads():
    a = _frame(DAYS, patterns=("p", "q", "r"))
    b = a.with_columns(*(pl.Series(c + "_p", np.random.default_rng(9).uniform(size=a.height))
                         for c in ("p", "q", "r")))  # fmt: skip
    frame, patterns = align_predictions(a, b, ["p", "q", "r"], ["p", "q", "r"])
    table = compare_frame(frame, patterns, n_boot=100, seed=0)
    assert table.height == 9
    for metric in ("auc", "brier", "log_loss"):
        part = table.filter(pl.col("metric") == metric)
        np.testing.assert_allclose(
            part["p_value_adj"].to_numpy(), _holm(part["p_value"].to_numpy())
        )
    by = compare_frame(frame, patterns, by=["model_id"], adjust="bh", n_boot=50)
    assert set(by.get_column("model_id")) == {"wf00"}
    with pytest.raises(ValueError, match="`adjust` must be one of"):
        compare_frame(frame, patterns, adjust="bonferroni")
