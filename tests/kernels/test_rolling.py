"""Rolling kernels against the oracles (pandas and a naive loop), their Python twins, causality."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kernels import rolling
from tests.oracles import ORACLES, ROLLING_STATISTICS

WINDOWS = [3, 5, 20, 60]  # skewness needs at least 3 values


def _series(seed: int, n: int = 700, nan_every: int = 0, offset: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = offset * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if nan_every:
        x[nan_every::nan_every] = np.nan
    return x


@pytest.mark.parametrize("name", ROLLING_STATISTICS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("nan_every", [0, 37], ids=["no-gaps", "nan-every-37"])
def test_kernel_matches_pandas_and_naive(name, window, nan_every):
    ref = ORACLES[name]
    x = _series(1, nan_every=nan_every)
    y = _series(2, nan_every=nan_every + 5 if nan_every else 0)
    got = ref["kernel"](x, y, window)
    # The naive two-pass loop is exact to rounding; pandas' online updates carry
    # their own error (seen up to 4e-9 relative at window 3), so it gets the
    # SPEC's feature tolerance.
    for oracle, rtol in (("naive", 1e-9), ("pandas", 1e-7)):
        expected = ref[oracle](x, y, window)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=oracle)
        # Absolute slack relative to the output's scale: covariances cross zero.
        finite = np.abs(expected[np.isfinite(expected)])
        scale = finite.max() if finite.size else 1.0
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-10 * scale, err_msg=oracle)


def test_rolling_std_numerical_stability_large_offset():
    # Prices far from zero: the one-pass sum-of-squares formula loses every digit here.
    rng = np.random.default_rng(3)
    x = 1e8 + rng.normal(0, 1.0, 4000)
    x[::37] = np.nan
    got = ORACLES["rolling_std"]["kernel"](x, None, 400)
    expected = ORACLES["rolling_std"]["naive"](x, None, 400)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_rolling_std_recovers_after_huge_value_leaves_window():
    # Welford removal of a 1e9 outlier cancels the running sum; the kernel must recompute.
    x = np.concatenate([[1e9], np.random.default_rng(4).normal(0, 1e-3, 200)])
    got = ORACLES["rolling_std"]["kernel"](x, None, 20)
    expected = ORACLES["rolling_std"]["naive"](x, None, 20)
    np.testing.assert_allclose(got[21:], expected[21:], rtol=1e-9)


def test_rolling_corr_recovers_after_huge_value_leaves_window():
    rng = np.random.default_rng(5)
    x = np.concatenate([[1e9], rng.normal(0, 1e-3, 200)])
    y = np.concatenate([[-1e9], rng.normal(0, 1e-3, 200)])
    got = ORACLES["rolling_corr"]["kernel"](x, y, 20)
    expected = ORACLES["rolling_corr"]["naive"](x, y, 20)
    np.testing.assert_allclose(got[21:], expected[21:], rtol=1e-8, atol=1e-12)


def test_constant_window_has_exactly_zero_std_and_flags_constant_corr():
    x = np.concatenate([np.linspace(1, 2, 10), np.full(30, 0.1 + 0.2)])
    mean = np.empty_like(x)
    std = np.empty_like(x)
    rolling.rolling_mean_std(x, 20, mean, std)
    assert std[29] == 0.0 and std[39] == 0.0
    assert std[28] > 0.0
    y = np.arange(40.0)
    corr, cov, var_y, constant = (np.empty_like(x) for _ in range(4))
    rolling.rolling_corr_cov(x, y, 20, corr, cov, var_y, constant)
    assert constant[29] == 1.0 and np.isnan(corr[29]) and cov[29] == 0.0
    assert constant[28] == 0.0


def _twin_inputs(seed: int, data: str) -> np.ndarray:
    x = _series(seed, n=300, nan_every=41 + seed % 5)
    if data == "spike":  # a huge value leaving the window makes Welford recompute exactly
        x[60] = 1e9
    return x


TWIN_DATA = ["random-walk", "spike"]


@pytest.mark.parametrize("data", TWIN_DATA)
@pytest.mark.parametrize("name", ["log_return_py", "rolling_skew_py"])
def test_python_twin_equals_kernel_returning(name, data):
    x = _twin_inputs(6, data)
    twin = getattr(rolling, name)
    jitted = getattr(rolling, name.removesuffix("_py"))
    window = 3 if name.startswith("log") else 7
    np.testing.assert_allclose(twin(x, window), jitted(x, window), rtol=1e-14, equal_nan=True)


@pytest.mark.parametrize("data", TWIN_DATA)
@pytest.mark.parametrize(
    ("name", "n_in", "n_out"),
    [("rolling_mean_std_py", 1, 2), ("rolling_min_max_py", 1, 2), ("rolling_corr_cov_py", 2, 4)],
)
def test_python_twin_equals_kernel_filling(name, n_in, n_out, data):
    xs = [_twin_inputs(7 + k, data) for k in range(n_in)]
    twin = getattr(rolling, name)
    jitted = getattr(rolling, name.removesuffix("_py"))
    outs_twin = [np.empty(300) for _ in range(n_out)]
    outs_jit = [np.empty(300) for _ in range(n_out)]
    twin(*xs, 20, *outs_twin)
    jitted(*xs, 20, *outs_jit)
    for a, b in zip(outs_twin, outs_jit, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, equal_nan=True)


finite_or_nan = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.just(float("nan"))
)


@settings(max_examples=60, deadline=None)
@given(
    data=arrays(np.float64, st.integers(1, 120), elements=finite_or_nan),
    window=st.integers(3, 30),
    cut=st.integers(0, 120),
    name=st.sampled_from(ROLLING_STATISTICS),
)
def test_bigger_arrays_have_same_beginning(data, window, cut, name):
    """Causality: f(x[:t]) == f(x)[:t] for every kernel (numbagg's prefix property)."""
    kernel = ORACLES[name]["kernel"]
    y = np.roll(data, 1)
    cut = min(cut, data.shape[0])
    with np.errstate(all="ignore"):
        full = kernel(data, y, window)
        prefix = kernel(data[:cut].copy(), y[:cut].copy(), window)
    np.testing.assert_array_equal(prefix, full[:cut])
