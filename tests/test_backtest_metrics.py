"""Tests for the backtest's performance, summary and filter metrics against independent oracles.

Oracles: hand-made equity curves and hand-computed numbers, an O(n^2)
brute-force maximum drawdown, a plain-Python drawdown walk for the dates,
pandas for standard deviations and ``np.polyfit`` for beta.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import StationaryBootstrap
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backtest.filter_metrics import _row_sharpe, filter_scores, sharpe_difference
from engine.backtest.performance import (
    Drawdown,
    annual_return,
    annual_volatility,
    beta,
    calmar,
    conditional_value_at_risk,
    equity_curve,
    information_ratio,
    max_drawdown,
    sortino,
    total_return,
    value_at_risk,
)
from engine.backtest.summary import summarize
from engine.evaluation import block_length, sharpe_ratio

D0 = dt.date(2024, 1, 1)


def days(n):
    return [D0 + dt.timedelta(days=i) for i in range(n)]


def returns_from_equity(equity):
    """Returns whose compounded curve is ``equity`` (its first value sits on day 0)."""
    prev = [1.0, *equity[:-1]]
    return np.array([e / p - 1.0 for e, p in zip(equity, prev, strict=True)])


# --------------------------------------------------------------------------- oracles


def brute_force_depth(returns):
    """O(n^2): worst E_j / E_i - 1 over i <= j, the starting value 1 included as E_{-1}."""
    values = [1.0]
    for r in returns:
        values.append(values[-1] * (1.0 + r))
    worst = 0.0
    for j in range(len(values)):
        for i in range(j + 1):
            if values[i] > 0.0:
                worst = min(worst, values[j] / values[i] - 1.0)
    return worst


def drawdown_walk(returns):
    """Plain loop: (depth, peak, trough, recovery) as day indices (None if no drawdown)."""
    value = 1.0
    top, top_day = 1.0, 0
    worst, worst_peak, worst_day, worst_top = 0.0, None, None, None
    equity = []
    for t, r in enumerate(returns):
        value *= 1.0 + r
        equity.append(value)
        if value >= top:
            top, top_day = value, t
        dd = value / top - 1.0
        if dd < worst:
            worst, worst_peak, worst_day, worst_top = dd, top_day, t, top
    if worst_day is None:
        return 0.0, None, None, None
    recovery = next((t for t in range(worst_day + 1, len(equity)) if equity[t] >= worst_top), None)
    return worst, worst_peak, worst_day, recovery


# --------------------------------------------------------------------------- returns


def test_equity_and_total_return_by_hand():
    r = [0.1, -0.2, 0.05]
    np.testing.assert_allclose(equity_curve(r), [1.1, 1.1 * 0.8, 1.1 * 0.8 * 1.05])
    assert total_return(r) == pytest.approx(1.1 * 0.8 * 1.05 - 1.0)


def test_annual_return_is_geometric():
    r = np.full(126, 0.001)  # half a year
    assert annual_return(r) == pytest.approx(1.001**252 - 1.0)
    assert annual_return(r, periods_per_year=126) == pytest.approx(1.001**126 - 1.0)
    assert annual_return([0.5, -1.0, 0.3]) == -1.0  # total loss


def test_volatility_matches_pandas():
    r = np.random.default_rng(7).normal(0.0004, 0.012, 300)
    s = pd.Series(r)
    assert annual_volatility(r) == pytest.approx(s.std() * math.sqrt(252), rel=1e-12)
    assert annual_volatility(r, 12) == pytest.approx(s.std() * math.sqrt(12), rel=1e-12)


def test_sortino_by_hand():
    r = [0.02, -0.01, 0.03, -0.02]
    # mean 0.005; downside over all 4 periods: (0.01**2 + 0.02**2) / 4 = 0.000125
    assert sortino(r) == pytest.approx(0.005 / math.sqrt(0.000125) * math.sqrt(252), rel=1e-12)
    assert sortino([0.01, 0.0, 0.02]) is None


# --------------------------------------------------------------------------- drawdown


@pytest.mark.parametrize("as_datetime64", [False, True], ids=["date", "datetime64"])
def test_max_drawdown_hand_curve(as_datetime64):
    equity = [1.0, 1.1, 1.21, 0.9, 1.0, 1.3]
    dates = days(6)
    if as_datetime64:
        dates = np.array(dates, dtype="datetime64[D]")
    dd = max_drawdown(returns_from_equity(equity), dates)
    assert dd.depth == pytest.approx(0.9 / 1.21 - 1.0, rel=1e-12)
    assert (dd.peak, dd.trough, dd.recovery) == (days(6)[2], days(6)[3], days(6)[5])
    assert all(type(x) is dt.date for x in (dd.peak, dd.trough, dd.recovery))


def test_max_drawdown_never_recovers():
    equity = [1.0, 1.2, 0.8, 0.9, 1.1]
    dd = max_drawdown(returns_from_equity(equity), days(5))
    assert dd.depth == pytest.approx(0.8 / 1.2 - 1.0, rel=1e-12)
    assert (dd.peak, dd.trough, dd.recovery) == (days(5)[1], days(5)[2], None)


def test_max_drawdown_monotone_rising_has_no_dates():
    assert max_drawdown([0.01, 0.0, 0.02, 0.005], days(4)) == Drawdown(0.0, None, None, None)


def test_max_drawdown_first_day_loss_counts_from_starting_value():
    # E = 0.9, 0.81, 1.053: the peak is the starting value 1 on dates[0], not E_0 = 0.9
    dd = max_drawdown([-0.1, -0.1, 0.3], days(3))
    assert dd.depth == pytest.approx(-0.19, rel=1e-12)
    assert (dd.peak, dd.trough, dd.recovery) == (days(3)[0], days(3)[1], days(3)[2])


def test_max_drawdown_recovery_at_exactly_the_peak():
    dd = max_drawdown([0.0, 1.0, -0.5, 1.0], days(4))  # E = 1, 2, 1, 2 exactly
    assert (dd.depth, dd.peak, dd.trough, dd.recovery) == (-0.5, days(4)[1], days(4)[2], days(4)[3])


def test_max_drawdown_ties():
    # equal peaks: the last one before the trough; equal troughs: the first one
    dd = max_drawdown([1.0, 0.0, -0.5, 1.0, -0.5], days(5))  # E = 2, 2, 1, 2, 1
    assert (dd.peak, dd.trough, dd.recovery) == (days(5)[1], days(5)[2], days(5)[3])


def test_max_drawdown_total_loss():
    dd = max_drawdown([0.1, -1.0, 0.5], days(3))
    assert (dd.depth, dd.peak, dd.trough, dd.recovery) == (-1.0, days(3)[0], days(3)[1], None)


def test_drawdown_to_dict_iso():
    dd = max_drawdown(returns_from_equity([1.0, 1.2, 0.8, 0.9, 1.3]), days(5))
    out = dd.to_dict()
    assert out["peak"] == "2024-01-02" and out["trough"] == "2024-01-03"
    assert out["recovery"] == "2024-01-05" and out["depth"] == dd.depth
    assert Drawdown(0.0, None, None, None).to_dict() == {
        "depth": 0.0,
        "peak": None,
        "trough": None,
        "recovery": None,
    }


returns_st = st.lists(st.integers(-900, 1000).map(lambda k: k / 1000.0), min_size=2, max_size=40)


@settings(max_examples=150, deadline=None)
@given(returns_st)
def test_max_drawdown_matches_brute_force_and_walk(r):
    dd = max_drawdown(r, days(len(r)))
    assert dd.depth == pytest.approx(brute_force_depth(r), rel=1e-9, abs=1e-12)
    assert -1.0 <= dd.depth <= 0.0
    depth, peak, trough, recovery = drawdown_walk(r)
    assert dd.depth == pytest.approx(depth, rel=1e-12, abs=1e-15)
    idx = {d: i for i, d in enumerate(days(len(r)))}
    got = tuple(None if x is None else idx[x] for x in (dd.peak, dd.trough, dd.recovery))
    assert got == (peak, trough, recovery)


def test_calmar():
    r = returns_from_equity([1.0, 1.2, 0.8, 0.9, 1.3])
    ann = 1.3 ** (252 / 5) - 1.0
    assert calmar(r, days(5)) == pytest.approx(ann / (1.0 - 0.8 / 1.2), rel=1e-9)
    assert calmar([0.01, 0.02], days(2)) is None


# --------------------------------------------------------------------------- tail risk


def test_var_cvar_by_hand():
    r = np.arange(-50, 50) / 1000.0  # -0.050, -0.049, ..., 0.049
    # 95 %: quantile 0.05 sits at position 99 * 0.05 = 4.95 -> -0.046 + 0.95 * 0.001
    assert value_at_risk(r) == pytest.approx(0.04505, rel=1e-12)
    # tail r <= -0.04505: -0.050 ... -0.046, mean -0.048
    assert conditional_value_at_risk(r) == pytest.approx(0.048, rel=1e-12)
    # 99 %: position 99 * 0.01 = 0.99 -> -0.050 + 0.99 * 0.001; tail is -0.050 alone
    assert value_at_risk(r, 0.99) == pytest.approx(0.04901, rel=1e-12)
    assert conditional_value_at_risk(r, level=0.99) == pytest.approx(0.05, rel=1e-12)


def test_cvar_tail_includes_the_quantile_itself():
    # n = 5, level 0.75: position 4 * 0.25 = 1, so the quantile is the data point -0.02
    r = [0.03, -0.02, 0.0, -0.04, 0.01]
    assert value_at_risk(r, 0.75) == pytest.approx(0.02, rel=1e-12)
    assert conditional_value_at_risk(r, 0.75) == pytest.approx(0.03, rel=1e-12)  # -0.04, -0.02


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-1000, 1000).map(lambda k: k / 10000.0), min_size=2, max_size=60),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_cvar_at_least_var(r, level):
    assert conditional_value_at_risk(r, level) >= value_at_risk(r, level)


# --------------------------------------------------------------------------- benchmark


def test_beta_matches_polyfit_slope():
    rng = np.random.default_rng(11)
    b = rng.normal(0.0003, 0.01, 400)
    r = 0.7 * b + rng.normal(0.0, 0.005, 400)
    assert beta(r, b) == pytest.approx(np.polyfit(b, r, 1)[0], rel=1e-9)
    assert beta(r, np.full(400, 0.001)) is None


def test_information_ratio_by_hand():
    r = [0.01, 0.02, -0.01, 0.03]
    b = [0.0, 0.01, 0.0, 0.01]
    # active 0.01, 0.01, -0.01, 0.02: mean 0.0075, squared deviations sum 4.75e-4
    expected = 0.0075 / math.sqrt(4.75e-4 / 3) * math.sqrt(252)
    assert information_ratio(r, b) == pytest.approx(expected, rel=1e-12)
    # constant active return; in float64 0.03 - 0.02 != 0.01 - 0.0 (rounding, not risk)
    assert information_ratio([0.01, 0.03], [0.0, 0.02]) is None
    assert information_ratio([0.01, 0.03], [0.01, 0.03]) is None


# --------------------------------------------------------------------------- filter scores


def test_filter_scores_confusion_table():
    taken = [True, True, True, False, False, False, True, False]
    good = [True, False, True, True, False, False, False, False]
    # taken & good: 2; taken 4; good 3; signals 8
    assert filter_scores(taken, good) == {
        "n_signals": 8,
        "n_taken": 4,
        "n_good": 3,
        "base_rate": pytest.approx(3 / 8),
        "precision": pytest.approx(2 / 4),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)),
    }
    # 0/1 integers work like booleans
    assert filter_scores(np.array(taken, dtype=int), np.array(good, dtype=int)) == filter_scores(
        taken, good
    )


def test_filter_scores_undefined_ratios_are_none():
    nothing_taken = filter_scores([False, False, False], [True, False, True])
    assert nothing_taken["precision"] is None and nothing_taken["f1"] is None
    assert nothing_taken["recall"] == 0.0 and nothing_taken["base_rate"] == pytest.approx(2 / 3)
    nothing_good = filter_scores([True, False], [False, False])
    assert nothing_good["recall"] is None and nothing_good["f1"] is None
    assert nothing_good["precision"] == 0.0
    all_wrong = filter_scores([True, False], [False, True])
    assert (all_wrong["precision"], all_wrong["recall"], all_wrong["f1"]) == (0.0, 0.0, 0.0)
    empty = filter_scores([], [])
    assert empty["n_signals"] == 0 and empty["base_rate"] is None and empty["f1"] is None


def test_filter_scores_rejects_bad_input():
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        filter_scores([True, False], [True, False, True])
    with pytest.raises(ValueError, match=r"`taken` must be boolean \(or 0/1\), got `taken\[1\]=2`"):
        filter_scores([0, 2], [1, 0])
    with pytest.raises(ValueError, match=r"`good\[1\]=nan`"):
        filter_scores([1, 0], [1.0, np.nan])
    with pytest.raises(ValueError, match="got dtype <U3"):
        filter_scores(["yes", "no"], [True, False])


# --------------------------------------------------------------------------- sharpe difference


def test_row_sharpe_is_sharpe_ratio_row_by_row():
    m = np.random.default_rng(3).normal(0.001, 0.01, (5, 40))
    m[2] = 0.004  # a constant row is skipped, as sharpe_ratio would give None
    ok = np.ptp(m, axis=1) > 0.0
    expected = [sharpe_ratio(row, periods_per_year=1) for row in m]
    assert expected[2] is None
    np.testing.assert_allclose(_row_sharpe(m, ok), [e for e in expected if e is not None])


def test_sharpe_difference_of_equal_series_is_exactly_zero():
    r = np.random.default_rng(2).normal(0.0005, 0.01, 500)
    # paired resampling: each replicate's difference is exactly 0
    assert sharpe_difference(r, r.copy(), n_boot=200) == (0.0, 0.0, 0.0)


def test_sharpe_difference_estimate():
    rng = np.random.default_rng(4)
    u = rng.normal(0.0, 0.01, 300)
    f = np.where(rng.uniform(size=300) < 0.5, u, 0.0) + 0.0005
    est, lo, hi = sharpe_difference(f, u, n_boot=100, periods_per_year=52)
    assert est == pytest.approx(sharpe_ratio(f, 52) - sharpe_ratio(u, 52), rel=1e-12)
    assert lo < est < hi


def test_sharpe_difference_matches_replicate_loop():
    """Batch result equals a loop over the same arch draws (block length, pairing, percentiles)."""
    rng = np.random.default_rng(21)
    e = rng.normal(0.0, 0.01, 300)
    u = np.zeros(300)
    for t in range(1, 300):  # AR(1): the data-driven block is well above 1
        u[t] = 0.8 * u[t - 1] + e[t]
    f = np.where(rng.uniform(size=300) < 0.5, u, 0.0) + 0.0004
    block = block_length(f, u)
    assert block > 3.0
    bs = StationaryBootstrap(block, np.arange(300), seed=np.random.default_rng(9))
    diffs = []
    for pos, _ in bs.bootstrap(200):
        fs, us = pd.Series(f[pos[0]]), pd.Series(u[pos[0]])
        diffs.append((fs.mean() / fs.std() - us.mean() / us.std()) * math.sqrt(252))
    lo, hi = np.quantile(diffs, [0.05, 0.95])
    est, got_lo, got_hi = sharpe_difference(f, u, n_boot=200, seed=9, level=0.9)
    assert est == pytest.approx(sharpe_ratio(f) - sharpe_ratio(u), rel=1e-12)
    assert (got_lo, got_hi) == pytest.approx((lo, hi), rel=1e-9)


def test_sharpe_difference_covers_true_difference():
    # filtered: mean 0.0015, sd 0.01 (correlation 0.6 with unfiltered); unfiltered: mean 0
    true = 0.0015 / 0.01 * math.sqrt(252)
    covered = excludes_zero = 0
    for s in range(20):
        rng = np.random.default_rng(100 + s)
        z1, z2 = rng.standard_normal((2, 1000))
        unfiltered = 0.01 * z1
        filtered = 0.0015 + 0.01 * (0.6 * z1 + 0.8 * z2)
        _, lo, hi = sharpe_difference(filtered, unfiltered, n_boot=200, seed=s)
        covered += lo <= true <= hi
        excludes_zero += lo > 0.0
    # 95 % intervals: 96.5 % of 200 such sets were covered (seeds 1000-1199); 16/20 is lax
    assert covered >= 16
    assert excludes_zero == 20


def test_sharpe_difference_reproducible():
    rng = np.random.default_rng(8)
    u = rng.normal(0.0, 0.01, 400)
    f = u * (rng.uniform(size=400) < 0.6)
    a = sharpe_difference(f, u, n_boot=100, seed=5)
    assert sharpe_difference(f, u, n_boot=100, seed=5) == a
    assert sharpe_difference(f, u, n_boot=100, seed=6)[1:] != a[1:]


def test_sharpe_difference_none_cases():
    r = np.random.default_rng(0).normal(0.0, 0.01, 100)
    assert sharpe_difference(np.zeros(100), r, n_boot=50) == (None, None, None)
    # a single non-zero day in each series: a replicate is usable only when it drew both
    # days, which happens in about (1 - 1/e)**2 = 40 % of them, below the half required
    f = np.zeros(60)
    f[0] = 0.01
    u = np.zeros(60)
    u[-1] = 0.01
    est, lo, hi = sharpe_difference(f, u, n_boot=200)
    assert est == pytest.approx(0.0, abs=1e-12) and lo is None and hi is None


def test_sharpe_difference_rejects_bad_input():
    r = np.zeros(10)
    r[0] = 0.01
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        sharpe_difference(r, r[:9])
    with pytest.raises(ValueError, match="`n_boot=5`"):
        sharpe_difference(r, r, n_boot=5)
    with pytest.raises(ValueError, match="`level=1.0`"):
        sharpe_difference(r, r, level=1.0)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: sortino([0.01]), "at least 2 values, got 1", id="too short"),
        pytest.param(lambda: total_return([0.01, np.nan]), r"`returns\[1\]=nan`", id="nan"),
        pytest.param(lambda: annual_volatility([np.inf, 0.0]), r"`returns\[0\]=inf`", id="inf"),
        pytest.param(lambda: equity_curve([[0.01, 0.02]]), "must be 1-D", id="2-D"),
        pytest.param(lambda: total_return([0.1, -1.5]), r"`returns\[1\]=-1.5`", id="below -1"),
        pytest.param(lambda: value_at_risk([0.1, 0.2], 0.0), "`level=0.0`", id="level 0"),
        pytest.param(lambda: conditional_value_at_risk([0.1, 0.2], 1.5), "`level=1.5`", id="lvl"),
        pytest.param(
            lambda: annual_return([0.1, 0.2], periods_per_year=0), "`periods_per_year=0`", id="ppy"
        ),
        pytest.param(
            lambda: summarize([0.1, 0.2], days(2), periods_per_year=-1.0),
            "`periods_per_year=-1.0`",
            id="summarize ppy",
        ),
        pytest.param(
            lambda: beta([0.1, 0.2, 0.3], [0.1, 0.2]), "same length, got 3 and 2", id="beta len"
        ),
        pytest.param(
            lambda: information_ratio([0.1, 0.2], [0.1, np.nan]),
            r"`benchmark\[1\]=nan`",
            id="benchmark nan",
        ),
        pytest.param(
            lambda: max_drawdown([0.1, 0.2, 0.3], days(2)), "got 3 and 2", id="dates length"
        ),
        pytest.param(
            lambda: max_drawdown([0.1, 0.2, 0.3], [D0, D0 + dt.timedelta(2), D0]),
            r"unsorted `dates\[1\]=2024-01-03` and `dates\[2\]=2024-01-01`",
            id="unsorted",
        ),
        pytest.param(
            lambda: calmar([0.1, 0.2], [D0, D0]), r"duplicate `dates\[0\]=2024-01-01`", id="dup"
        ),
        pytest.param(
            lambda: max_drawdown([0.1, 0.2], np.array(["2024-01-01", "NaT"], dtype="M8[D]")),
            "NaT",
            id="NaT",
        ),
    ],
)
def test_errors_name_parameter_and_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- summarize

KEYS = {
    "start",
    "end",
    "days",
    "years",
    "periods_per_year",
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_peak",
    "max_drawdown_trough",
    "max_drawdown_recovery",
    "calmar",
    "var",
    "cvar",
    "var_level",
    "turnover",
    "exposure",
    "time_in_market",
    "net_exposure",
    "trades",
    "hit_rate",
    "avg_trade_return",
    "beta",
    "information_ratio",
}


def _plain_types(out):
    return all(v is None or type(v) in (int, float, str) for v in out.values())


def test_summarize_small_example():
    r = returns_from_equity([1.0, 1.1, 1.21, 0.9, 1.0, 1.3])
    dates = days(6)
    weights = np.array([[0.0, 0.0], [0.5, -0.5], [0.5, 0.0], [0.0, 0.0], [-0.25, 0.25], [1.0, 0.0]])
    turnover = np.array([0.0, 1.0, 0.5, 0.5, 0.5, 1.0])
    trades = np.full((6, 2), np.nan)
    trades[2, 1], trades[3, 0], trades[5, 1] = 0.02, -0.05, 0.0
    bench = np.array([0.0, 0.05, 0.02, -0.1, 0.05, 0.1])
    out = summarize(
        r, dates, weights=weights, turnover=turnover, trade_returns=trades, benchmark=bench
    )
    assert set(out) == KEYS
    assert _plain_types(out)
    json.dumps(out, allow_nan=False)

    assert (out["start"], out["end"], out["days"]) == ("2024-01-01", "2024-01-06", 6)
    assert out["years"] == pytest.approx(6 / 252) and out["periods_per_year"] == 252
    assert out["total_return"] == pytest.approx(0.3)
    assert out["annual_return"] == annual_return(r)
    assert out["annual_volatility"] == annual_volatility(r)
    assert out["sharpe"] == sharpe_ratio(r) and out["sortino"] == sortino(r)
    assert out["max_drawdown"] == pytest.approx(0.9 / 1.21 - 1.0)
    assert (out["max_drawdown_peak"], out["max_drawdown_trough"]) == ("2024-01-03", "2024-01-04")
    assert out["max_drawdown_recovery"] == "2024-01-06"
    assert out["calmar"] == calmar(r, dates)
    assert out["var"] == value_at_risk(r) and out["cvar"] == conditional_value_at_risk(r)
    assert out["var_level"] == 0.95
    assert out["turnover"] == pytest.approx(3.5 / 6 * 252)
    # gross 0, 1, 0.5, 0, 0.5, 1; net 0, 0, 0.5, 0, 0, 1; invested on 4 of 6 days
    assert out["exposure"] == pytest.approx(3.0 / 6)
    assert out["net_exposure"] == pytest.approx(1.5 / 6)
    assert out["time_in_market"] == pytest.approx(4 / 6)
    assert out["trades"] == 3
    assert out["hit_rate"] == pytest.approx(1 / 3)  # 0.0 is not a hit
    assert out["avg_trade_return"] == pytest.approx(-0.01)
    assert out["beta"] == beta(r, bench)
    assert out["information_ratio"] == information_ratio(r, bench)


def test_summarize_without_optional_inputs():
    r = np.random.default_rng(3).normal(0.0005, 0.01, 50)
    out = summarize(r, np.arange("2023-01-02", 50, dtype="datetime64[D]"), level=0.99)
    assert set(out) == KEYS and _plain_types(out)
    for key in ("turnover", "exposure", "time_in_market", "net_exposure", "trades"):
        assert out[key] is None
    for key in ("hit_rate", "avg_trade_return", "beta", "information_ratio"):
        assert out[key] is None
    assert out["var_level"] == 0.99 and out["var"] == value_at_risk(r, 0.99)
    json.dumps(out, allow_nan=False)


def test_summarize_sharpe_is_annualised_with_its_periods_per_year():
    r = np.random.default_rng(5).normal(0.001, 0.02, 60)
    s = pd.Series(r)
    out = summarize(r, days(60), periods_per_year=52)
    assert out["sharpe"] == pytest.approx(s.mean() / s.std() * math.sqrt(52), rel=1e-12)
    assert out["periods_per_year"] == 52 and type(out["periods_per_year"]) is int


def test_summarize_undefined_metrics_are_none():
    out = summarize([0.01, 0.01, 0.01], days(3), trade_returns=np.full(3, np.nan))
    assert out["sharpe"] is None and out["sortino"] is None and out["calmar"] is None
    assert out["max_drawdown"] == 0.0 and out["max_drawdown_peak"] is None
    assert (out["trades"], out["hit_rate"], out["avg_trade_return"]) == (0, None, None)
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"turnover": np.zeros(5)}, r"`turnover` must have shape \(4,\)", id="to"),
        pytest.param({"turnover": [0.1, -0.1, 0, 0]}, r"`turnover\[1\]=-0.1`", id="to<0"),
        pytest.param({"weights": np.zeros((3, 2))}, r"shape \(4, N\)", id="weights shape"),
        pytest.param(
            {"weights": [[0.0], [np.nan], [0.0], [0.0]]}, r"`weights\[1, 0\]=nan`", id="w nan"
        ),
        pytest.param({"trade_returns": [0.1, np.inf]}, "infinity", id="trade inf"),
        pytest.param({"benchmark": [0.1, 0.2]}, "got 4 and 2", id="benchmark length"),
    ],
)
def test_summarize_rejects_bad_optional_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        summarize([0.01, -0.01, 0.02, 0.0], days(4), **kwargs)
