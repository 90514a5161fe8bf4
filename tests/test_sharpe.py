"""Tests for engine.evaluation.sharpe: the one Sharpe ratio, PSR and DSR against hand formulas."""

from __future__ import annotations

import math
from itertools import product
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluation import (
    PERIODS_PER_YEAR,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)


def psr_by_hand(r, sr_star):
    n = len(r)
    m = sum(r) / n
    s = math.sqrt(sum((v - m) ** 2 for v in r) / (n - 1))
    m2 = sum((v - m) ** 2 for v in r) / n
    g3 = sum((v - m) ** 3 for v in r) / n / m2**1.5
    g4 = sum((v - m) ** 4 for v in r) / n / m2**2
    sr = m / s
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return NormalDist().cdf(z)


def sr0_by_hand(n_trials, var):
    nd = NormalDist()
    g = 0.5772156649015329
    return math.sqrt(var) * (
        (1 - g) * nd.inv_cdf(1 - 1 / n_trials) + g * nd.inv_cdf(1 - 1 / (n_trials * math.e))
    )


@pytest.fixture
def skewed_returns():
    rng = np.random.default_rng(42)
    return 0.0008 + 0.01 * (rng.standard_t(5, 750) - 0.3 * rng.exponential(1.0, 750))


def test_sharpe_ratio_per_period_and_annualised_match_pandas():
    r = np.random.default_rng(7).normal(0.0004, 0.012, 300)
    s = pd.Series(r)
    assert sharpe_ratio(r, periods_per_year=1) == pytest.approx(s.mean() / s.std(), rel=1e-12)
    assert sharpe_ratio(r) == pytest.approx(s.mean() / s.std() * math.sqrt(252), rel=1e-12)
    assert sharpe_ratio(r, 12) == pytest.approx(s.mean() / s.std() * math.sqrt(12), rel=1e-12)
    assert PERIODS_PER_YEAR == 252
    # hand numbers: mean 0.005, ddof=1 std sqrt(0.0005 / 3)
    r = [0.01, -0.01, 0.02, 0.0]
    assert sharpe_ratio(r, 1) == pytest.approx(0.005 / math.sqrt(0.0005 / 3), rel=1e-12)


@pytest.mark.parametrize(
    "returns",
    [
        pytest.param([0.1, 0.1, 0.1], id="0.1 (std is rounding noise, not 0)"),
        pytest.param([0.0, 0.0], id="zeros (a strategy that never trades)"),
        pytest.param([-0.02] * 50, id="constant loss"),
    ],
)
def test_sharpe_ratio_of_constant_returns_is_none(returns):
    assert sharpe_ratio(returns) is None
    assert sharpe_ratio(returns, periods_per_year=1) is None


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda r: probabilistic_sharpe_ratio(r), id="psr"),
        pytest.param(lambda r: probabilistic_sharpe_ratio(r, 0.05), id="psr benchmark"),
        pytest.param(lambda r: deflated_sharpe_ratio(r, 10, sr_variance=1e-3), id="dsr"),
        pytest.param(lambda r: deflated_sharpe_ratio(r, trial_sharpes=[0.1, 0.2]), id="dsr trials"),
    ],
)
def test_psr_and_dsr_of_constant_returns_raise(call):
    with pytest.raises(ValueError, match=r"constant \(every value 0.01\): its Sharpe ratio is"):
        call([0.01, 0.01, 0.01, 0.01])


def test_psr_and_dsr_name_themselves_on_constant_returns():
    with pytest.raises(ValueError, match="so is the probabilistic Sharpe ratio"):
        probabilistic_sharpe_ratio(np.zeros(20))
    with pytest.raises(ValueError, match="so is the deflated Sharpe ratio"):
        deflated_sharpe_ratio(np.zeros(20), 5, sr_variance=1e-3)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-1000, 1000).map(lambda k: k / 10000.0), min_size=2, max_size=60),
    st.floats(0.01, 100.0),
)
def test_sharpe_ratio_invariant_to_positive_scaling(r, c):
    base = sharpe_ratio(r)
    scaled = sharpe_ratio([c * x for x in r])
    if base is None:
        assert scaled is None
    else:
        assert scaled == pytest.approx(base, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: sharpe_ratio([0.01]), "at least 2 values, got 1", id="too short"),
        pytest.param(lambda: sharpe_ratio([0.01, np.nan]), r"`returns\[1\]=nan`", id="nan"),
        pytest.param(lambda: sharpe_ratio([np.inf, 0.0]), r"`returns\[0\]=inf`", id="inf"),
        pytest.param(lambda: sharpe_ratio([[0.01, 0.02]]), "must be 1-D", id="2-D"),
        pytest.param(lambda: sharpe_ratio([0.1, 0.2], 0), "`periods_per_year=0`", id="ppy 0"),
        pytest.param(
            lambda: sharpe_ratio([0.1, 0.2], periods_per_year=np.inf),
            "`periods_per_year=inf`",
            id="ppy inf",
        ),
        pytest.param(
            lambda: probabilistic_sharpe_ratio([0.01, 0.02]), "at least 3 values, got 2", id="psr"
        ),
    ],
)
def test_sharpe_errors_name_parameter_and_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("sr_star", [0.0, 0.02, -0.03])
def test_psr_matches_hand_formula(skewed_returns, sr_star):
    r = list(skewed_returns)
    assert probabilistic_sharpe_ratio(r, sr_star) == pytest.approx(psr_by_hand(r, sr_star))


def test_psr_worked_number():
    # mean 0.1, population moments symmetric: r = 0.1 +/- 1 (n=4, ddof=1 std = 1.1547)
    r = [1.1, -0.9, 1.1, -0.9]
    sr = 0.1 / math.sqrt(4 / 3)
    z = sr * math.sqrt(3) / math.sqrt(1 + (1 - 1) / 4 * sr**2)  # skew 0, kurtosis 1
    assert probabilistic_sharpe_ratio(r) == pytest.approx(NormalDist().cdf(z))
    assert probabilistic_sharpe_ratio(r, sr) == pytest.approx(0.5)


def test_psr_monotone_in_benchmark(skewed_returns):
    vals = [probabilistic_sharpe_ratio(skewed_returns, b) for b in (-0.05, 0.0, 0.05, 0.1)]
    assert all(a > b for a, b in itertools_pairwise(vals))


def itertools_pairwise(v):
    return zip(v[:-1], v[1:], strict=True)


@pytest.mark.parametrize(("n_trials", "var"), list(product([2, 10, 1000], [1e-4, 0.01])))
def test_expected_max_sharpe_and_dsr_hand(skewed_returns, n_trials, var):
    sr0 = sr0_by_hand(n_trials, var)
    assert expected_max_sharpe(n_trials, var) == pytest.approx(sr0)
    dsr = deflated_sharpe_ratio(skewed_returns, n_trials, sr_variance=var)
    assert dsr == pytest.approx(psr_by_hand(list(skewed_returns), sr0))


def test_dsr_monotone_and_trial_sharpes(skewed_returns):
    dsrs = [deflated_sharpe_ratio(skewed_returns, n, sr_variance=1e-3) for n in (2, 5, 50, 5000)]
    assert all(a > b for a, b in itertools_pairwise(dsrs))
    assert dsrs[0] < probabilistic_sharpe_ratio(skewed_returns)
    by_var = [deflated_sharpe_ratio(skewed_returns, 20, sr_variance=v) for v in (1e-5, 1e-3, 1e-2)]
    assert all(a > b for a, b in itertools_pairwise(by_var))
    trials = np.array([0.01, 0.05, -0.02, 0.03, 0.0])
    assert deflated_sharpe_ratio(skewed_returns, trial_sharpes=trials) == pytest.approx(
        deflated_sharpe_ratio(skewed_returns, 5, sr_variance=trials.var(ddof=1))
    )
    assert expected_max_sharpe(1, 0.5) == 0.0


def test_dsr_argument_errors():
    with pytest.raises(ValueError, match="exactly one"):
        deflated_sharpe_ratio([0.01, 0.02, 0.0], 3)
    with pytest.raises(ValueError, match="n_trials=0"):
        expected_max_sharpe(0, 0.1)
