"""PSI: a hand calculation, known shifts against the exact normal population, stationarity,
the minimum window against simulation, and the reference distributions a model stores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, norm

from engine.monitoring.psi import (
    DRIFT,
    EPSILON,
    WARN,
    bin_counts,
    bin_shares,
    decile_edges,
    min_rows,
    noise_floor,
    psi,
    psi_status,
    worst_status,
)
from engine.monitoring.reference import (
    ReferenceError,
    build_reference,
    read_reference,
    training_reference,
)


def test_psi_matches_a_hand_calculation():
    edges = [1.0, 2.0]
    reference = [0.5, 1.5, 2.5, 2.5]  # 1 | 1 | 2 of 4: 0.25, 0.25, 0.5
    current = [0.5, 0.7, 1.5, 2.5]  # 2 | 1 | 1 of 4: 0.5, 0.25, 0.25
    by_hand = (0.5 - 0.25) * math.log(0.5 / 0.25) + 0.0 + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert by_hand == pytest.approx(0.5 * math.log(2.0))
    got = psi(bin_shares(reference, edges), bin_shares(current, edges))
    assert got == pytest.approx(by_hand, rel=1e-12)


def test_an_empty_bin_is_floored_at_epsilon():
    by_hand = (1.0 - 0.5) * math.log(1.0 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(by_hand, rel=1e-12)
    assert math.isfinite(psi([0.0, 1.0], [1.0, 0.0]))


def test_bins_are_right_closed_and_open_ended():
    # (-inf, 1], (1, 2], (2, inf): a value on an edge goes to the lower bin
    assert bin_counts([-1e9, 1.0, 1.0000001, 2.0, 2.5, 1e9], [1.0, 2.0]).tolist() == [2, 2, 2]
    assert bin_counts([np.nan, np.inf, 0.0], [1.0]).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("name", "transform"),
    [
        pytest.param("mean shift 0.5 sd", lambda z: z + 0.5, id="mean+0.5sd"),
        pytest.param("sd x 1.5", lambda z: 1.5 * z, id="sd*1.5"),
    ],
)
def test_known_shifts_match_the_exact_normal_population(name, transform):
    """Sample PSI with reference deciles against the exact population PSI (scipy's normal CDF)."""
    rng = np.random.default_rng(7)
    n = 200_000
    reference = rng.standard_normal(n)
    current = transform(rng.standard_normal(n))
    edges = decile_edges(reference)
    sample = psi(bin_shares(reference, edges), bin_shares(current, edges))
    exact_edges = np.r_[-np.inf, norm.ppf(np.arange(1, 10) / 10), np.inf]
    shifted = (
        norm.cdf(exact_edges - 0.5) if name.startswith("mean") else norm.cdf(exact_edges / 1.5)
    )
    c = np.diff(shifted)
    exact = float(np.sum((c - 0.1) * np.log(c / 0.1)))
    assert sample == pytest.approx(exact, abs=0.01)
    target = 0.23 if name.startswith("mean") else 0.20
    assert abs(sample - target) <= 0.03
    assert psi_status(sample, n, n) == "warn"  # both sit between 0.1 and 0.25


def test_a_large_shift_is_drift():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal(20_000)
    edges = decile_edges(reference)
    value = psi(bin_shares(reference, edges), bin_shares(rng.standard_normal(5_000) + 1.0, edges))
    assert value >= DRIFT
    assert psi_status(value, 5_000, 20_000) == "drift"


@pytest.mark.parametrize("phi", [0.0, 0.5], ids=["iid", "ar1-0.5"])
def test_a_stationary_series_stays_below_warn(phi):
    """The same stationary AR(1) process (unit variance) for reference and window, 20 seeds."""
    worst = 0.0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        e = rng.standard_normal(7_000) * math.sqrt(1.0 - phi**2)
        x = np.empty_like(e)
        x[0] = rng.standard_normal()
        for t in range(1, x.size):
            x[t] = phi * x[t - 1] + e[t]
        reference, current = x[:5_000], x[5_000:]
        edges = decile_edges(reference)
        value = psi(bin_shares(reference, edges), bin_shares(current, edges))
        assert psi_status(value, current.size, reference.size) == "ok"
        worst = max(worst, value)
    assert worst < WARN


def test_small_windows_reach_warn_by_chance_and_are_insufficient():
    """250 no-drift rows against 2,000: PSI 0.1 happens by chance; the rule says insufficient."""
    rng = np.random.default_rng(3)
    sims = []
    for _ in range(1_000):
        reference = rng.standard_normal(2_000)
        edges = decile_edges(reference)
        sims.append(psi(bin_shares(reference, edges), bin_shares(rng.standard_normal(250), edges)))
    sims = np.asarray(sims)
    assert sims.max() >= WARN  # chance alone crosses the warn line
    # the noise floor (chi-squared approximation) is the simulated 99th percentile
    assert noise_floor(250, 2_000) == pytest.approx(np.quantile(sims, 0.99), rel=0.25)
    assert psi_status(0.12, 250, 2_000) == "insufficient"
    assert psi_status(0.12, 2_000, 2_000) == "warn"


def test_min_rows_is_where_the_noise_floor_drops_below_half_of_warn():
    for m in (1_000, 2_000, 20_000):
        n = min_rows(m)
        assert noise_floor(n, m) < WARN / 2 <= noise_floor(n - 1, m)
        # by hand: chi2_9(0.99) * (1/n + 1/m) < 0.05
        assert chi2.ppf(0.99, 9) * (1 / n + 1 / m) < 0.05
    assert min_rows(300) is None  # a small reference makes every window insufficient
    assert psi_status(0.0, 10**9, 300) == "insufficient"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12).map(np.asarray),
    st.integers(0, 2**31 - 1),
)
def test_psi_is_non_negative_symmetric_and_zero_on_itself(weights, seed):
    if weights.sum() == 0:
        return
    r = weights / weights.sum()
    c = np.random.default_rng(seed).dirichlet(np.ones(r.size))
    assert psi(r, c) >= 0.0
    assert psi(r, c) == pytest.approx(psi(c, r))
    assert psi(r, r) == 0.0


def test_decile_edges_split_the_reference_into_tenths_and_merge_ties():
    x = np.random.default_rng(0).standard_normal(10_000)
    shares = bin_shares(x, decile_edges(x))
    np.testing.assert_allclose(shares, 0.1, atol=1e-3)
    discrete = np.repeat([-1.0, 0.0, 1.0], [500, 300, 200])
    edges = decile_edges(discrete)
    assert edges.tolist() == [-1.0, 0.0, 1.0]
    np.testing.assert_allclose(bin_shares(discrete, edges), [0.5, 0.3, 0.2, 0.0])
    with pytest.raises(ValueError, match="finite"):
        decile_edges([np.nan])


def test_worst_status():
    assert worst_status(["ok", "drift", "warn"]) == "drift"
    assert worst_status(["insufficient", "ok"]) == "ok"
    assert worst_status([]) == "insufficient"


def test_training_reference_stores_features_heads_and_validation_auc():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 20, 3))
    Xv = rng.normal(size=(150, 20, 3))
    yv = np.where(rng.uniform(size=(150, 2)) < 0.3, np.nan, (Xv[:, -1, :2] > 0).astype(float))

    def predict(x):
        return 1.0 / (1.0 + np.exp(-x[:, -1, :2]))

    ref = training_reference(predict, X, Xv, yv, ["a", "b", "c"], ["h1", "h2"])
    entry = ref["features"]["c"]
    np.testing.assert_allclose(entry["edges"], decile_edges(X[:, -1, 2]))
    np.testing.assert_allclose(entry["shares"], bin_shares(X[:, -1, 2], entry["edges"]))
    assert entry["n"] == 400 and ref["heads"]["h2"]["n"] == 150
    np.testing.assert_allclose(ref["heads"]["h1"]["edges"], decile_edges(predict(Xv)[:, 0]))
    assert ref["validation_auc"] == {"h1": 1.0, "h2": 1.0}  # the score is the label's rule
    assert read_reference({"reference": ref}) == ref


def test_models_without_a_reference_are_told_to_re_export_or_retrain():
    with pytest.raises(ReferenceError, match="re-export .* retrain"):
        read_reference({"model_id": "old"}, source="old.onnx")
    ref = build_reference(np.zeros((10, 1)), ["a"], np.zeros((10, 1)), ["h"])
    ref["features"]["a"]["shares"] = [1.0]
    with pytest.raises(ReferenceError, match="edges but"):
        read_reference({"reference": ref})
    with pytest.raises(ReferenceError, match="format"):
        read_reference({"reference": {"format": "other"}})
