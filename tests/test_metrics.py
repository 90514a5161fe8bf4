"""Tests for engine.evaluation: point metrics against independent oracles, bootstrap calibration.

Measured figures quoted in the assertions' comments come from these exact seeds.
"""

from __future__ import annotations

import datetime as dt
import math
from itertools import product

import numpy as np
import polars as pl
import pytest
from arch.bootstrap import StationaryBootstrap
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter
from scipy.stats import pointbiserialr

from engine.evaluation import (
    LOG_LOSS_EPS,
    METRICS,
    accuracy,
    auc,
    block_length,
    bootstrap_interval,
    brier,
    evaluate,
    evaluate_frame,
    log_loss,
    majority_rate,
    point_biserial,
    replicates,
    skill,
    stationary_bootstrap_indices,
)
from engine.evaluation.bootstrap import date_bootstrap_weights, date_codes, date_draw_counts
from engine.evaluation.replicates import replicate_stats

# --------------------------------------------------------------------------- oracles


def auc_pairwise(y, p):
    """Brute force: share of (event, non-event) pairs ordered right, ties 1/2."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=float)
    pos = p[y == 1]
    neg = p[y == 0]
    total = 0.0
    for a in pos:
        for b in neg:
            total += 1.0 if a > b else 0.5 if a == b else 0.0
    return total / (len(pos) * len(neg))


def brier_loop(y, p):
    return sum((pi - yi) ** 2 for yi, pi in zip(y, p, strict=True)) / len(y)


def log_loss_loop(y, p, eps=1e-15):
    total = 0.0
    for yi, pi in zip(y, p, strict=True):
        q = min(max(pi, eps), 1 - eps)
        total += -math.log(q) if yi == 1 else -math.log(1 - q)
    return total / len(y)


def ar1(rng, n, phi, burn=200):
    """Unit-variance Gaussian AR(1)."""
    e = rng.standard_normal(n + burn)
    return lfilter([1.0], [1.0, -phi], e)[burn:] * math.sqrt(1 - phi**2)


def tied_sample(seed, n=60, levels=7):
    rng = np.random.default_rng(seed)
    p = rng.integers(0, levels, n) / (levels - 1)  # many ties, includes 0 and 1
    y = (rng.uniform(size=n) < 0.3 + 0.4 * p).astype(float)
    y[:2] = [0.0, 1.0]  # both classes
    return y, p


# --------------------------------------------------------------------------- point metrics


@pytest.mark.parametrize("seed", range(6))
def test_auc_matches_pairwise_with_ties(seed):
    y, p = tied_sample(seed)
    assert auc(y, p) == pytest.approx(auc_pairwise(y, p), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0])),
        min_size=2,
        max_size=40,
    ).filter(lambda rows: len({r[0] for r in rows}) == 2)
)
def test_auc_property_pairwise(rows):
    y = [r[0] for r in rows]
    p = [r[1] for r in rows]
    assert auc(y, p) == pytest.approx(auc_pairwise(y, p), abs=1e-12)


def test_auc_known_values():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.3, 0.3]) == 0.5
    assert auc([0, 0, 1], [0.1, 0.2, 0.9]) == 1.0
    assert auc([0, 0, 1], [0.9, 0.8, 0.1]) == 0.0
    assert auc([1, 0, 1, 0], [0.5] * 4) == 0.5  # constant score: no skill


@pytest.mark.parametrize("seed", range(4))
def test_point_biserial_matches_scipy(seed):
    y, p = tied_sample(seed, n=80)
    ref = pointbiserialr(y, p).statistic
    assert point_biserial(y, p) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_brier_log_loss_accuracy_hand_formulas(seed):
    y, p = tied_sample(seed, n=50)
    assert brier(y, p) == pytest.approx(brier_loop(y, p), abs=1e-14)
    assert log_loss(y, p) == pytest.approx(log_loss_loop(y, p), rel=1e-12)
    hand = sum((pi >= 0.5) == (yi == 1) for yi, pi in zip(y, p, strict=True)) / len(y)
    assert accuracy(y, p) == pytest.approx(hand)
    rate = y.mean()
    assert majority_rate(y) == pytest.approx(max(rate, 1 - rate))


def test_accuracy_threshold_tie_predicts_one():
    assert accuracy([1, 0], [0.5, 0.4999]) == 1.0
    assert accuracy([0], [0.5]) == 0.0


def test_log_loss_clipping_is_finite_and_documented():
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    assert log_loss([0], [1.0]) == pytest.approx(-math.log(1e-15), rel=1e-3)
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert LOG_LOSS_EPS == 1e-15


def test_single_class_raises_for_auc_pb_and_evaluate():
    for f in (auc, point_biserial):
        with pytest.raises(ValueError, match="both outcome classes, got 3 events out of n=3"):
            f([1, 1, 1], [0.1, 0.5, 0.9])
        with pytest.raises(ValueError, match="got 0 events"):
            f([0, 0], [0.1, 0.5])
    with pytest.raises(ValueError, match="evaluate needs both outcome classes"):
        evaluate(np.ones(50), np.linspace(0, 1, 50), n_boot=50)
    # Brier, log loss and accuracy are defined on one class
    assert brier([1, 1], [1.0, 0.5]) == pytest.approx(0.125)


def test_point_biserial_constant_score_is_nan():
    assert math.isnan(point_biserial([0, 1, 1], [0.4, 0.4, 0.4]))


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        pytest.param([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1", id="y not binary"),
        pytest.param([0, 1, np.nan], [0.1, 0.2, 0.3], "only 0 and 1", id="y NaN"),
        pytest.param([0, 1], [0.1, 1.2], r"\[0, 1\]", id="p above 1"),
        pytest.param([0, 1], [0.1, np.nan], r"\[0, 1\]", id="p NaN"),
        pytest.param([0, 1], [0.1], "same length", id="length"),
        pytest.param([], [], "empty", id="empty"),
    ],
)
def test_bad_input_messages(y, p, match):
    with pytest.raises(ValueError, match=match):
        brier(y, p)


# --------------------------------------------------------------------------- bootstrap internals


def multiplicities(idx, n):
    """Row counts of each replicate of an index matrix (the weights `replicate_stats` takes)."""
    return np.vstack([np.bincount(row, minlength=n) for row in idx]).astype(float)


def test_replicate_stats_match_point_functions():
    y, p = tied_sample(11, n=120)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, y.size, size=(25, y.size))
    _, codes = np.unique(p, return_inverse=True)
    reps = replicate_stats(y, p, multiplicities(idx, y.size), codes, int(codes.max()) + 1)
    for b in range(25):
        yb, pb = y[idx[b]], p[idx[b]]
        assert reps["auc"][b] == pytest.approx(auc_pairwise(yb, pb), abs=1e-12)
        assert reps["point_biserial"][b] == pytest.approx(pointbiserialr(yb, pb).statistic)
        assert reps["brier"][b] == pytest.approx(brier(yb, pb))
        assert reps["log_loss"][b] == pytest.approx(log_loss(yb, pb))
        assert reps["accuracy"][b] == pytest.approx(accuracy(yb, pb))
        assert reps["skill:accuracy"][b] == pytest.approx(accuracy(yb, pb) - majority_rate(yb))
        r = yb.mean()
        assert reps["skill:brier"][b] == pytest.approx(r * (1 - r) - brier(yb, pb))
        ent = -(r * math.log(r) + (1 - r) * math.log(1 - r))
        assert reps["skill:log_loss"][b] == pytest.approx(ent - log_loss(yb, pb))


def test_replicate_without_a_class_gives_nan_auc():
    y = np.array([0.0, 1.0, 0.0])
    p = np.array([0.2, 0.7, 0.4])
    _, codes = np.unique(p, return_inverse=True)
    reps = replicate_stats(y, p, multiplicities([[0, 2, 0]], 3), codes, 3)
    assert math.isnan(reps["auc"][0]) and math.isnan(reps["point_biserial"][0])


def test_replicate_with_one_confidence_value_gives_nan_correlation():
    # rows 0 and 2 share p = 0.4 but not y: both classes, constant score
    y = np.array([0.0, 1.0, 1.0, 0.0])
    p = np.array([0.4, 0.9, 0.4, 0.1])
    _, codes = np.unique(p, return_inverse=True)
    reps = replicate_stats(y, p, multiplicities([[0, 2, 2, 0]], 4), codes, 3)
    assert math.isnan(reps["point_biserial"][0])
    assert reps["auc"][0] == 0.5


def test_block_length_data_driven():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal(2000)
    assert block_length(iid) < 3.0
    assert block_length(ar1(rng, 2000, 0.9)) > 10.0
    # the maximum over series is taken; constant series are skipped
    assert block_length(iid, ar1(rng, 2000, 0.9)) > 10.0
    assert block_length(np.ones(100)) == 1.0
    assert block_length(iid[:5]) == 1.0
    assert block_length(ar1(rng, 100, 0.999), max_length=4.0) <= 4.0


def test_stationary_bootstrap_indices_are_arch_draws_in_chunks():
    # 300_000 positions: chunks of 2_000_000 // 300_000 = 6 rows, so 13 replicates come as 6, 6, 1
    n, block, n_boot = 300_000, 25.0, 13
    chunks = list(stationary_bootstrap_indices(n, block, n_boot, seed=4))
    assert [c.shape for c in chunks] == [(6, n), (6, n), (1, n)]
    arch = StationaryBootstrap(block, np.arange(n), seed=np.random.default_rng(4))
    expected = np.vstack([pos[0] for pos, _ in arch.bootstrap(n_boot)])
    np.testing.assert_array_equal(np.vstack(chunks), expected)
    # a Generator seed gives the same draws as the integer it came from
    again = stationary_bootstrap_indices(50, 3.0, 20, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(
        np.vstack(list(again)), np.vstack(list(stationary_bootstrap_indices(50, 3.0, 20, seed=7)))
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        pytest.param((0, 2.0, 10), "`n=0`", id="n 0"),
        pytest.param((10, 0.5, 10), "`block=0.5`", id="block below 1"),
        pytest.param((10, np.nan, 10), "`block=nan`", id="block nan"),
        pytest.param((10, 2.0, 0), "`n_boot=0`", id="n_boot 0"),
        pytest.param((10, 2.0, 2.5), "`n_boot=2.5`", id="n_boot fraction"),
        pytest.param((10, 2.0, True), "`n_boot=True`", id="n_boot bool"),
    ],
)
def test_stationary_bootstrap_indices_raise_at_the_call(args, match):
    with pytest.raises(ValueError, match=match):
        stationary_bootstrap_indices(*args)  # no next(): errors must not wait for the first draw


def date_panel(seed, n_dates=40, most=6):
    """Rows in date order, 1 to ``most`` rows per date (unequal counts), y following p."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, most + 1, n_dates)
    dates = np.repeat(np.arange(n_dates), counts)
    p = np.round(rng.uniform(size=dates.size), 2)  # some ties
    y = (rng.uniform(size=dates.size) < 0.2 + 0.6 * p).astype(float)
    return y, p, dates


def gathered_rows(dates, draws):
    """Oracle: for each replicate of drawn date positions, the rows of those dates, concatenated."""
    first = np.searchsorted(dates, np.unique(dates), side="left")
    last = np.searchsorted(dates, np.unique(dates), side="right")
    return [np.concatenate([np.arange(first[d], last[d]) for d in draw]) for draw in draws]


def arch_draws(n_dates, block, n_boot, seed):
    bs = StationaryBootstrap(block, np.arange(n_dates), seed=np.random.default_rng(seed))
    return [pos[0] for pos, _ in bs.bootstrap(n_boot)]


@pytest.mark.parametrize("cells", [2_000_000, 50], ids=["one band", "a band per date"])
def test_date_tables_give_the_row_statistics(monkeypatch, cells):
    # replicates with absent dates, single-row dates, ties, a one-class and a
    # one-confidence replicate: per-date tables and row weights must agree
    monkeypatch.setattr(replicates, "_PAIR_TABLE_CELLS", cells)
    y, p, dates = date_panel(6, n_dates=30)
    y[dates == 3] = 1.0
    p[dates == 3] = 0.5
    _, codes = np.unique(p, return_inverse=True)
    k = int(codes.max()) + 1
    day = date_codes(dates)
    rng = np.random.default_rng(1)
    counts = rng.poisson(1.0, size=(40, 30)).astype(float)
    counts[0] = 0.0
    counts[0, 3] = 2.0  # only date 3: all events, one confidence
    counts[1] = 1.0  # the sample itself
    tables = replicates.date_tables(y, p, day, 30, codes, k)
    by_date = replicates.date_replicate_stats(tables, counts)
    by_row = replicate_stats(y, p, counts[:, day], codes, k)
    for key in by_row:
        np.testing.assert_allclose(by_date[key], by_row[key], rtol=1e-12, atol=1e-14, err_msg=key)
    assert math.isnan(by_date["auc"][0]) and math.isnan(by_date["point_biserial"][0])
    assert by_date["auc"][1] == pytest.approx(auc_pairwise(y, p), abs=1e-12)
    for b in range(2, 6):  # oracle: the rows of the drawn dates, gathered
        rows = np.repeat(np.arange(y.size), counts[b, day].astype(int))
        assert by_date["auc"][b] == pytest.approx(auc_pairwise(y[rows], p[rows]), abs=1e-12)
        assert by_date["point_biserial"][b] == pytest.approx(
            pointbiserialr(y[rows], p[rows]).statistic
        )


def test_date_codes_and_their_errors():
    days = [dt.date(2024, 1, 2)] * 2 + [dt.date(2024, 1, 3), dt.date(2024, 1, 8)]
    np.testing.assert_array_equal(date_codes(days), [0, 0, 1, 2])
    np.testing.assert_array_equal(date_codes(np.array(days, dtype="datetime64[D]")), [0, 0, 1, 2])
    message = "row 2 has date 2024-01-02 after row 1 with date 2024-01-03"
    with pytest.raises(ValueError, match=message):
        date_codes(["2024-01-02", "2024-01-03", "2024-01-02"])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        date_codes([])


def test_date_bootstrap_weights_take_every_row_of_each_drawn_date():
    # 250_000 rows over 1_000 dates: chunks of 2_000_000 // 250_000 = 8 replicates
    rng = np.random.default_rng(3)
    dates = np.sort(rng.integers(0, 1_000, 250_000))
    n_boot, block = 17, 4.0
    chunks = list(date_bootstrap_weights(dates, block, n_boot, seed=9))
    assert [c.shape for c in chunks] == [(8, dates.size), (8, dates.size), (1, dates.size)]
    rows = gathered_rows(dates, arch_draws(1_000, block, n_boot, 9))
    expected = np.vstack([np.bincount(r, minlength=dates.size) for r in rows])
    np.testing.assert_array_equal(np.vstack(chunks), expected)


def test_date_bootstrap_of_one_row_per_date_is_the_stationary_bootstrap():
    n = 500
    weights = np.vstack(list(date_bootstrap_weights(np.arange(n) * 7, 5.0, 30, seed=1)))
    rows = np.vstack(list(stationary_bootstrap_indices(n, 5.0, 30, seed=1)))
    np.testing.assert_array_equal(weights, multiplicities(rows, n))


def test_date_draw_counts_are_the_weights_per_date():
    rng = np.random.default_rng(2)
    dates = np.sort(rng.integers(0, 50, 400))
    day = date_codes(dates)
    counts = np.vstack(list(date_draw_counts(int(day[-1]) + 1, 3.0, 25, seed=6)))
    weights = np.vstack(list(date_bootstrap_weights(dates, 3.0, 25, seed=6)))
    np.testing.assert_array_equal(counts[:, day], weights)
    assert (counts.sum(axis=1) == day[-1] + 1).all()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        pytest.param(([2, 1, 1], 2.0, 10), "date order", id="dates unsorted"),
        pytest.param(([0, 1, 1], 0.5, 10), "`block=0.5`", id="block below 1"),
        pytest.param(([0, 1, 1], 2.0, 0), "`n_boot=0`", id="n_boot 0"),
    ],
)
def test_date_bootstrap_weights_raise_at_the_call(args, match):
    with pytest.raises(ValueError, match=match):
        date_bootstrap_weights(*args)  # no next()


@pytest.mark.parametrize("by_tables", [True, False], ids=["date tables", "row weights"])
def test_evaluate_by_date_equals_point_metrics_on_gathered_dates(monkeypatch, by_tables):
    monkeypatch.setattr(skill, "by_date_tables", lambda n, n_dates: by_tables)
    y, p, dates = date_panel(4)
    n_boot, block, seed = 60, 3.0, 2
    res = evaluate(y, p, n_boot=n_boot, seed=seed, block=block, dates=dates)
    rows = gathered_rows(dates, arch_draws(40, block, n_boot, seed))
    both = [r for r in rows if 0 < y[r].sum() < r.size]
    reps = np.array([auc(y[r], p[r]) for r in both])
    lo, hi = np.quantile(reps, [0.025, 0.975])
    a = res.metrics["auc"]
    assert (a.ci_low, a.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    d_hat = auc(y, p) - 0.5
    assert a.p_value == pytest.approx((1 + np.sum(reps - 0.5 - d_hat >= d_hat)) / (1 + reps.size))
    briers = [brier(y[r], p[r]) for r in rows]
    lo, hi = np.quantile(briers, [0.025, 0.975])
    assert (res.metrics["brier"].ci_low, res.metrics["brier"].ci_high) == (
        pytest.approx(lo),
        pytest.approx(hi),
    )
    assert res.n == y.size and res.block_length == block


def test_evaluate_one_row_per_date_is_the_row_bootstrap():
    rng = np.random.default_rng(8)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(float)
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=2 * i) for i in range(200)]
    plain = evaluate(y, p, n_boot=50, seed=1)
    assert evaluate(y, p, n_boot=50, seed=1, dates=days) == plain
    assert evaluate(y, p, n_boot=50, seed=1, dates=np.arange(200)) == plain


def test_copies_of_a_row_on_its_date_add_no_information():
    # five identical rows per date carry the information of one: resampling
    # whole dates gives the intervals of the one-row series; blocks of rows
    # cut through the copies and claim more precision (measured: 0.83 of the width)
    y, p, _ = date_panel(5, n_dates=150, most=1)
    dates = np.repeat(np.arange(y.size), 5)
    copied = evaluate(np.repeat(y, 5), np.repeat(p, 5), n_boot=100, seed=3, dates=dates)
    single = evaluate(y, p, n_boot=100, seed=3)
    rows = evaluate(np.repeat(y, 5), np.repeat(p, 5), n_boot=100, seed=3)
    assert copied.n == 5 * single.n
    assert copied.block_length == pytest.approx(single.block_length)
    for name in METRICS:
        got, ref = copied.metrics[name], single.metrics[name]
        assert (got.ci_low, got.ci_high) == (pytest.approx(ref.ci_low), pytest.approx(ref.ci_high))
        assert got.p_value == pytest.approx(ref.p_value)
    width = single.metrics["auc"].ci_high - single.metrics["auc"].ci_low
    assert rows.metrics["auc"].ci_high - rows.metrics["auc"].ci_low < 0.9 * width


@pytest.mark.parametrize(
    ("dates", "match"),
    [
        pytest.param([0, 0, 1, 0], "date order", id="unsorted"),
        pytest.param([0, 1, 1], "one entry per row: got 3 for n=4", id="length"),
        pytest.param([5, 5, 5, 5], "at least 2 dates", id="one date"),
    ],
)
def test_evaluate_bad_dates(dates, match):
    with pytest.raises(ValueError, match=match):
        evaluate([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], n_boot=20, dates=dates)


def test_evaluate_is_seeded_and_complete():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=300)
    y = (rng.uniform(size=300) < p).astype(float)
    a = evaluate(y, p, n_boot=100, seed=3)
    b = evaluate(y, p, n_boot=100, seed=3)
    c = evaluate(y, p, n_boot=100, seed=4)
    g = evaluate(y, p, n_boot=100, seed=np.random.default_rng(3))
    assert a == b == g
    assert a.metrics["auc"].ci_low != c.metrics["auc"].ci_low
    d = a.to_dict()
    assert d["n"] == 300 and d["events"] == int(y.sum())
    assert d["base_rate"] == pytest.approx(y.mean())
    assert d["brier_reference"] == pytest.approx(y.mean() * (1 - y.mean()))
    for name in METRICS:
        m = a.metrics[name]
        assert m.ci_low <= m.estimate <= m.ci_high, name
        assert 0 < m.p_value <= 1
        assert {f"{name}_ci_low", f"{name}_ci_high", f"{name}_p_value"} <= d.keys()
    assert a.metrics["auc"].estimate == auc(y, p)
    assert a.metrics["log_loss"].estimate == pytest.approx(log_loss(y, p))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": 5}, "n_boot"),
        ({"level": 1.0}, "level"),
        ({"block": 0.5}, "block"),
    ],
)
def test_evaluate_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], **kwargs)


# --------------------------------------------------------------------------- calibration


def _null_rates(phi, n, reps, n_boot, block=None):
    """Share of null datasets whose AUC interval covers 0.5, and rejection rates at 5 %."""
    rng = np.random.default_rng(123)
    cover = 0
    reject = dict.fromkeys(METRICS, 0)
    for i in range(reps):
        y = (ar1(rng, n, phi) > 0.3).astype(float)  # persistent outcomes, base rate ~0.38
        p = 1.0 / (1.0 + np.exp(-ar1(rng, n, phi)))  # smooth scores, independent of y
        res = evaluate(y, p, n_boot=n_boot, seed=i, block=block)
        a = res.metrics["auc"]
        cover += a.ci_low <= 0.5 <= a.ci_high
        for name in METRICS:
            reject[name] += res.metrics[name].p_value < 0.05
    return cover / reps, {k: v / reps for k, v in reject.items()}


def test_null_auc_interval_and_p_value_are_calibrated_under_serial_dependence():
    # 200 null datasets, n=500, both series AR(1) with phi=0.8.
    # Measured: AUC interval covers 0.5 in 0.950; AUC p < 0.05 in 0.035,
    # point-biserial 0.035, accuracy / Brier / log loss 0.0 (conservative).
    cover, reject = _null_rates(0.8, 500, 200, 300)
    assert 0.88 <= cover <= 0.99
    assert reject["auc"] <= 0.12
    assert reject["point_biserial"] <= 0.12
    for name in ("accuracy", "brier", "log_loss"):
        assert reject[name] <= 0.12


def test_null_iid_bootstrap_would_fail_the_same_check():
    # Same data, block length forced to 1 (an i.i.d. bootstrap): measured coverage
    # 0.70 and AUC rejection rate 0.17 -- the check above can fail.
    cover, reject = _null_rates(0.8, 500, 200, 300, block=1.0)
    assert cover < 0.85
    assert reject["auc"] > 0.12


def test_planted_signal_is_detected():
    rng = np.random.default_rng(7)
    n = 500
    p = 1.0 / (1.0 + np.exp(-ar1(rng, n, 0.8)))
    y = (rng.uniform(size=n) < 0.2 + 0.6 * p).astype(float)  # outcome depends on the score
    res = evaluate(y, p, n_boot=500, seed=0)
    a = res.metrics["auc"]
    assert a.ci_low > 0.5
    assert a.p_value < 0.01
    assert res.metrics["point_biserial"].ci_low > 0
    assert res.metrics["point_biserial"].p_value < 0.01


def _mean_coverage(phi, block, reps=200, n=500, mu=2.0, n_boot=400):
    rng = np.random.default_rng(2024)
    hits = 0
    for i in range(reps):
        x = mu + ar1(rng, n, phi)
        _, lo, hi = bootstrap_interval(x, n_boot=n_boot, seed=i, block=block)
        hits += lo <= mu <= hi
    return hits / reps


def test_stationary_bootstrap_mean_coverage_on_ar1():
    # AR(1), phi=0.5, n=500, 200 replications. Measured coverage of the 95 %
    # interval of the mean: 0.920 with the data-driven block, 0.770 with an
    # i.i.d. (block 1) bootstrap (theory: 2*Phi(1.96/sqrt(3)) - 1 = 0.74).
    stationary = _mean_coverage(0.5, None)
    iid = _mean_coverage(0.5, 1.0)
    assert 0.88 <= stationary <= 0.99
    assert iid < 0.85
    assert stationary > iid + 0.08


def test_bootstrap_interval_custom_statistic_and_errors():
    x = np.random.default_rng(0).standard_normal(200)
    est, lo, hi = bootstrap_interval(x, lambda m: m.std(axis=1), n_boot=100, seed=0)
    assert est == pytest.approx(x.std())
    assert lo < est < hi
    with pytest.raises(ValueError, match="finite 1-D"):
        bootstrap_interval([1.0, np.nan, 2.0])


# --------------------------------------------------------------------------- evaluate_frame


def make_predictions(seed=0, n_days=120):
    rng = np.random.default_rng(seed)
    tickers = ["AAA", "BBB", "CCC"]
    rows = []
    start = dt.date(2021, 1, 4)
    for d in range(n_days):
        for t in tickers:
            rows.append((t, start + dt.timedelta(days=d)))
    rng.shuffle(rows)  # input order must not matter
    n = len(rows)
    p1 = rng.uniform(size=n)
    y1 = (rng.uniform(size=n) < p1).astype(float)
    y1[rng.uniform(size=n) < 0.6] = np.nan  # sparse events
    p2 = rng.uniform(size=n)
    y2 = (rng.uniform(size=n) < 0.4).astype(float)
    y2[rng.uniform(size=n) < 0.3] = np.nan
    ticker = [r[0] for r in rows]
    y2[np.array(ticker) == "CCC"] = np.where(np.isnan(y2[np.array(ticker) == "CCC"]), np.nan, 1.0)
    return pl.DataFrame(
        {
            "ticker": ticker,
            "date": [r[1] for r in rows],
            "momentum_persistence": y1,
            "momentum_persistence_p": p1,
            "volume_divergence": y2,
            "volume_divergence_p": p2,
        }
    ).with_columns(pl.col("momentum_persistence", "volume_divergence").fill_nan(None))


PATTERNS = ["momentum_persistence", "volume_divergence"]


def test_evaluate_frame_pooled_counts_and_matches_evaluate():
    frame = make_predictions()
    out = evaluate_frame(frame, PATTERNS, n_boot=100, seed=5)
    assert out["pattern"].to_list() == PATTERNS
    for name in PATTERNS:
        sub = frame.filter(pl.col(name).is_not_null()).sort("date", "ticker")
        row = out.filter(pl.col("pattern") == name).row(0, named=True)
        assert row["n"] == sub.height
        assert row["events"] == int(sub[name].sum())
        assert row["base_rate"] == pytest.approx(sub[name].mean())
        y, p = sub[name].to_numpy(), sub[f"{name}_p"].to_numpy()
        ref = evaluate(y, p, n_boot=100, seed=5, dates=sub["date"].to_numpy())
        for key, val in ref.to_dict().items():
            assert row[key] == pytest.approx(val), key
        # pooled rows share dates: not the bootstrap of the rows as one series
        assert row["auc_ci_low"] != evaluate(y, p, n_boot=100, seed=5).metrics["auc"].ci_low


def test_evaluate_frame_per_ticker_and_single_class_group():
    frame = make_predictions()
    out = evaluate_frame(frame, PATTERNS, by=("pattern", "ticker"), n_boot=100)
    assert out.height == 6
    assert out.select("pattern", "ticker").rows() == sorted(
        product(PATTERNS, ["AAA", "BBB", "CCC"])
    )
    counts = (
        frame.unpivot(index=["ticker", "date"], on=PATTERNS, variable_name="pattern")
        .drop_nulls("value")
        .group_by("pattern", "ticker")
        .agg(
            n=pl.len(),
            events=pl.col("value").sum().cast(pl.Int64),
            base_rate=pl.col("value").mean(),
        )
    )
    joined = out.join(counts, on=["pattern", "ticker"], suffix="_ref")
    assert joined.height == 6
    assert (joined["n"] == joined["n_ref"]).all()
    assert (joined["events"] == joined["events_ref"]).all()
    np.testing.assert_allclose(joined["base_rate"], joined["base_rate_ref"])
    # CCC's volume_divergence outcomes are all 1: counts kept, metrics null
    ccc = out.filter((pl.col("pattern") == "volume_divergence") & (pl.col("ticker") == "CCC"))
    assert ccc["base_rate"].item() == 1.0
    assert ccc["auc"].item() is None and ccc["auc_p_value"].item() is None
    other = out.filter(pl.col("ticker") != "CCC")
    assert other["auc"].null_count() == 0


def test_evaluate_frame_ignores_confidence_where_outcome_is_null():
    frame = make_predictions()
    # confidences on non-event rows are garbage/null: must be ignored
    noisy = frame.with_columns(
        pl.when(pl.col("momentum_persistence").is_null())
        .then(None)
        .otherwise(pl.col("momentum_persistence_p"))
        .alias("momentum_persistence_p")
    )
    a = evaluate_frame(frame, PATTERNS[:1], n_boot=50)
    b = evaluate_frame(noisy, PATTERNS[:1], n_boot=50)
    assert a.equals(b)


def test_evaluate_frame_errors():
    frame = make_predictions()
    with pytest.raises(ValueError, match="lacks columns"):
        evaluate_frame(frame.drop("volume_divergence_p"), PATTERNS, n_boot=50)
    with pytest.raises(ValueError, match="must start with 'pattern'"):
        evaluate_frame(frame, PATTERNS, by=("ticker",), n_boot=50)
    broken = frame.with_columns(
        pl.when(pl.col("momentum_persistence") == 1)
        .then(None)
        .otherwise(pl.col("momentum_persistence_p"))
        .alias("momentum_persistence_p")
    )
    with pytest.raises(ValueError, match="outcome but no confidence"):
        evaluate_frame(broken, PATTERNS[:1], n_boot=50)
