"""PBO by CSCV and the deflated Sharpe ratio: hand-worked cases, published examples, noise.

* The vectorised CSCV is compared with a brute-force loop written here
  (itertools over the splits, ``scipy.stats.rankdata`` for the ranks).
* A hand-worked 4 x 2 matrix shows both tie conventions.
* Bailey & López de Prado (2014): N = 100, V = 0.5 / 250 -> expected maximum
  0.1132 per day; annualised SR 2.5, T = 1250, skew -3, kurtosis 10 ->
  DSR 0.9004. Skew -3 with kurtosis 10 lies on the bound ``kurt >= skew^2
  + 1``, reached only by a two-point distribution, so the return series is
  two-valued.
* Pure noise (50 x 2,000 days) gives PBO in [0.3, 0.7] and a best DSR below
  0.95; one configuration with planted drift gives PBO < 0.1, DSR > 0.95.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.stats import kurtosis, norm, rankdata, skew

from engine.evaluation.overfitting import cscv_pbo
from engine.evaluation.sharpe import deflated_sharpe_ratio, expected_max_sharpe, sharpe_ratio


def brute_force_pbo(m: np.ndarray, n_blocks: int, statistic: str, ties: str):
    blocks = np.array_split(np.arange(m.shape[0]), n_blocks)

    def perf(rows):
        x = m[rows]
        if statistic == "mean":
            return x.mean(axis=0)
        mean = x.mean(axis=0)
        constant = np.ptp(x, axis=0) == 0
        sd = np.where(constant, 1.0, x.std(axis=0, ddof=1))
        # the documented convention: a constant series ranks by the sign of its mean
        return np.where(constant, np.sign(mean) * np.where(mean == 0, 0.0, np.inf), mean / sd)

    overfit, loss, pairs = [], [], []
    for pick in combinations(range(n_blocks), n_blocks // 2):
        inside = np.concatenate([blocks[b] for b in pick])
        outside = np.concatenate([blocks[b] for b in range(n_blocks) if b not in pick])
        r_in, r_out = perf(inside), perf(outside)
        best = int(np.argmax(r_in))
        w = rankdata(r_out)[best] / (m.shape[1] + 1)
        lam = math.log(w / (1 - w))
        overfit.append(lam <= 0 if ties == "overfit" else lam < 0)
        loss.append(r_out[best] < 0)
        pairs.append((r_in[best], r_out[best]))
    x, y = np.array(pairs).T
    finite = np.isfinite(x) & np.isfinite(y)  # a constant series' infinite Sharpe is left out
    x, y = x[finite], y[finite]
    slope = np.polyfit(x, y, 1)[0] if x.size > 1 and np.ptp(x) > 0 else math.nan
    return np.mean(overfit), np.mean(loss), slope


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_blocks=st.sampled_from([2, 4, 6, 8]),
    n=st.integers(2, 6),
    extra=st.integers(0, 9),
    statistic=st.sampled_from(["mean", "sharpe"]),
    ties=st.sampled_from(["overfit", "not_overfit"]),
    coarse=st.booleans(),
)
@example(seed=0, n_blocks=2, n=2, extra=0, statistic="mean", ties="overfit", coarse=True)
def test_cscv_matches_brute_force(seed, n_blocks, n, extra, statistic, ties, coarse):
    rng = np.random.default_rng(seed)
    t = 2 * n_blocks + extra
    m = rng.normal(0.0, 1.0, (t, n)) + rng.normal(0.0, 0.3, n)
    if coarse and statistic == "mean":
        # small integers: exact ties in both rankings (Sharpe ratios of integer data tie
        # or not depending on rounding, so exact ties are tested with means only)
        m = np.round(m)
    got = cscv_pbo(m, n_blocks, statistic=statistic, ties=ties)
    pbo, loss, slope = brute_force_pbo(m, n_blocks, statistic, ties)
    assert got.n_splits == math.comb(n_blocks, n_blocks // 2)
    assert got.pbo == pytest.approx(pbo)
    assert got.prob_oos_loss == pytest.approx(loss)
    if math.isnan(slope):
        assert math.isnan(got.slope)
    else:
        assert got.slope == pytest.approx(slope, rel=1e-6, abs=1e-9)


def test_a_constant_series_ranks_by_the_sign_of_its_mean():
    # column 0 is flat at +1 in every block: an infinite Sharpe ratio, always the in-sample
    # best and the out-of-sample best (rank N of N, w = 3/4), so PBO is 0
    rng = np.random.default_rng(1)
    m = np.column_stack([np.ones(16), rng.normal(0, 1, (16, 2))])
    result = cscv_pbo(m, 4, statistic="sharpe")
    assert result.pbo == 0.0
    np.testing.assert_allclose(result.logits, math.log(3.0))
    assert np.isinf(result.in_sample).all() and math.isnan(result.slope)
    flat_zero = np.column_stack([np.zeros(16), rng.normal(0, 1, (16, 2))])
    assert cscv_pbo(flat_zero, 4, statistic="sharpe").n_splits == 6  # 0, not NaN


def test_hand_worked_case_shows_both_tie_conventions():
    # A wins blocks 0-1, B wins blocks 2-3. Splits {0,1} and {2,3}: the in-sample
    # winner is last out of sample (w = 1/3). The other four splits tie 0.5 / 0.5
    # in and out of sample: n* = A, average rank 1.5, w = 1/2, lambda = 0.
    m = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    cautious = cscv_pbo(m, 4)
    lenient = cscv_pbo(m, 4, ties="not_overfit")
    assert cautious.n_splits == lenient.n_splits == 6
    np.testing.assert_allclose(np.sort(cautious.logits), [math.log(0.5)] * 2 + [0.0] * 4)
    assert cautious.pbo == 1.0  # esvhd/pypbo: lambda <= 0
    assert lenient.pbo == pytest.approx(2 / 6)  # eslazarev: lambda < 0
    assert cautious.prob_oos_loss == 0.0  # performance is never below zero here


def test_dsr_reproduces_bailey_lopez_de_prado_2014():
    n_trials, variance = 100, 0.5 / 250
    assert expected_max_sharpe(n_trials, variance) == pytest.approx(0.1132, abs=5e-5)
    t, sr = 1250, 2.5 / math.sqrt(250)
    # two-point returns: 1,145 of 1,250 on one value gives skew -2.9994, kurtosis 9.9965
    x = np.r_[np.ones(1145), np.zeros(t - 1145)]
    x = (x - x.mean()) / x.std(ddof=1)
    returns = 0.01 * (x + sr)
    assert skew(returns) == pytest.approx(-3.0, abs=1e-3)
    assert kurtosis(returns, fisher=False) == pytest.approx(10.0, abs=5e-3)
    assert sharpe_ratio(returns, periods_per_year=1) == pytest.approx(sr, rel=1e-12)
    dsr = deflated_sharpe_ratio(returns, n_trials, sr_variance=variance)
    assert dsr == pytest.approx(0.9004, abs=2e-4)
    # and the closed form with the published moments exactly
    sr0 = expected_max_sharpe(n_trials, variance)
    exact = norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 + 3 * sr + 9 / 4 * sr**2))
    assert exact == pytest.approx(0.9004, abs=1e-4)


def _best_dsr(returns: np.ndarray) -> float:
    sharpes = np.array([sharpe_ratio(c, periods_per_year=1) for c in returns.T])
    best = int(np.argmax(sharpes))
    return deflated_sharpe_ratio(returns[:, best], trial_sharpes=sharpes)


def test_pure_noise_is_not_skill():
    returns = np.random.default_rng(42).normal(0.0, 0.01, (2000, 50))
    result = cscv_pbo(returns, 16, statistic="sharpe")
    assert 0.3 <= result.pbo <= 0.7
    assert _best_dsr(returns) < 0.95


def test_planted_drift_is_found():
    rng = np.random.default_rng(42)
    returns = rng.normal(0.0, 0.01, (2000, 50))
    returns[:, 17] += 0.0012  # per-day Sharpe about 0.12 (annualised 1.9)
    result = cscv_pbo(returns, 16, statistic="sharpe")
    assert result.pbo < 0.1
    assert result.prob_oos_loss < 0.1
    assert _best_dsr(returns) > 0.95


@pytest.mark.parametrize(
    ("matrix", "kwargs", "message"),
    [
        pytest.param(np.zeros((32, 1)), {}, "at least 2 columns", id="one configuration"),
        pytest.param(np.zeros((32, 3)), {"n_blocks": 5}, "even integer", id="odd blocks"),
        pytest.param(np.zeros((10, 3)), {}, "too few", id="fewer rows than blocks"),
        pytest.param(np.zeros(32), {}, "matrix", id="1-D"),
        pytest.param(np.zeros((16, 3)), {"statistic": "sharpe"}, "too few", id="sharpe rows"),
        pytest.param(np.zeros((32, 3)), {"statistic": "median"}, "statistic", id="statistic"),
        pytest.param(np.zeros((32, 3)), {"ties": "maybe"}, "ties", id="ties"),
    ],
)
def test_bad_input_is_refused(matrix, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cscv_pbo(matrix, **kwargs)


def test_non_finite_value_is_named():
    m = np.zeros((32, 3))
    m[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"performance\[7, 2\]=nan"):
        cscv_pbo(m)
