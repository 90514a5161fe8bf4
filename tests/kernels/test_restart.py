"""Restartable kernels: computed from a row on the restart grid, they reach the full result.

The tail mode (``engine.features.tail``) computes a ticker's last rows from a
window of its history. That is exact only because every running statistic
recomputes its state on the grid ``t % ROLLING_ANCHOR == 0`` and rolling
GARCH refits from each window's own starting values on a grid anchored at
the start of each run of valid returns. These tests check the property
itself, bit for bit, against the kernels run over the whole series.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import garch
from kernels.garch import GARCH_MAX_WINDOW, GARCH_MIN_OBS, GARCH_REFIT_EVERY
from kernels.rolling import ROLLING_ANCHOR
from tests.oracles import ORACLES

# Statistics whose kernels keep running sums (min/max deques are exact anyway).
RUNNING = ["rolling_mean", "rolling_std", "rolling_corr", "rolling_cov", "rolling_var",
           "rolling_constant", "rolling_skew", "rolling_min", "rolling_max"]  # fmt: skip


def _walk(seed: int, n: int, nan_every: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    if nan_every:
        x[nan_every::nan_every] = np.nan
    return x


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(RUNNING),
    window=st.integers(3, 60),
    grid_steps=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    nan_every=st.sampled_from([0, 13, 97]),
)
def test_rolling_state_restarts_exactly_on_the_grid(name, window, grid_steps, seed, nan_every):
    """From any grid row s, every output from s + window + ROLLING_ANCHOR on is the full one."""
    n = 900
    x = _walk(seed, n, nan_every)
    y = _walk(seed + 1, n, 0)
    kernel = ORACLES[name]["kernel"]
    full = kernel(x, y, window)
    s = grid_steps * ROLLING_ANCHOR
    part = kernel(x[s:].copy(), y[s:].copy(), window)
    settled = window + ROLLING_ANCHOR
    np.testing.assert_array_equal(part[settled:], full[s + settled :])


def test_rolling_state_does_not_restart_off_the_grid():
    """The property needs the grid: a window starting off it drifts by rounding (this is why)."""
    x = _walk(3, 3000, 0)
    full = ORACLES["rolling_std"]["kernel"](x, None, 20)
    off = ROLLING_ANCHOR // 2 + 1
    part = ORACLES["rolling_std"]["kernel"](x[off:].copy(), None, 20)
    # Equal to rounding, but not bit for bit between two grid rows.
    np.testing.assert_allclose(part[40:60], full[off + 40 : off + 60], rtol=1e-12)
    assert not np.array_equal(part[20 : ROLLING_ANCHOR - off], full[off + 20 : ROLLING_ANCHOR])


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    rng = np.random.default_rng(11)
    r = np.r_[np.nan, rng.standard_t(5, 1999) * 0.01]
    r[700] = np.nan  # a missing return restarts the run and its refit grid
    return r


@pytest.fixture(scope="module")
def full_sigma(returns) -> np.ndarray:
    return garch.rolling_garch_sigma(returns, GARCH_REFIT_EVERY, GARCH_MAX_WINDOW, GARCH_MIN_OBS)


def _run_through(r: np.ndarray, row: int) -> int:
    """Consecutive valid returns ending at ``row`` (row 0 of a history has none)."""
    run = 0
    for t in range(1, row + 1):
        run = run + 1 if np.isfinite(r[t]) else 0
    return run


@settings(max_examples=25, deadline=None)
@given(start=st.integers(1, 900), extra=st.integers(0, 1050))
def test_garch_from_a_window_equals_the_full_forecast(returns, full_sigma, start, extra):
    """Any window holding the governing fit's returns gives the full forecast, bit for bit."""
    first_out = start + GARCH_REFIT_EVERY + GARCH_MAX_WINDOW + extra
    if first_out >= returns.shape[0]:
        first_out = returns.shape[0] - 1
    window = returns[start:].copy()
    window[0] = np.nan  # a window cannot compute its first row's return
    part = garch.rolling_garch_sigma_from(
        window,
        _run_through(returns, start),
        first_out - start,
        GARCH_REFIT_EVERY,
        GARCH_MAX_WINDOW,
        GARCH_MIN_OBS,
    )
    np.testing.assert_array_equal(part[first_out - start :], full_sigma[first_out:])
    assert np.isnan(part[: first_out - start]).all()


def test_garch_refits_only_where_the_rows_need_them(returns, full_sigma, monkeypatch):
    """The last 20 rows need at most two fits (the governing one and one on the grid after it)."""
    calls = []
    real = garch.garch_refit_py
    monkeypatch.setattr(garch, "garch_refit_py", lambda r, t, m: calls.append(t) or real(r, t, m))
    n = 1300
    r = returns[:n]
    start = n - 20 - GARCH_MAX_WINDOW - GARCH_REFIT_EVERY
    with np.errstate(all="ignore"):
        part = garch.rolling_garch_sigma_from_py(
            r[start:].copy(), _run_through(r, start), n - 20 - start,
            GARCH_REFIT_EVERY, GARCH_MAX_WINDOW, GARCH_MIN_OBS,
        )  # fmt: skip
    assert 1 <= len(calls) <= 2
    np.testing.assert_allclose(part[-20:], full_sigma[n - 20 : n], rtol=1e-12)


def test_garch_refuses_a_window_without_the_governing_fit(returns):
    with pytest.raises(ValueError, match="governing fit"):
        garch.rolling_garch_sigma_from(
            returns[1000:].copy(), 299, 30, GARCH_REFIT_EVERY, GARCH_MAX_WINDOW, GARCH_MIN_OBS
        )


def test_python_twin_equals_kernel_from_a_window(returns):
    r = returns[1400:1750].copy()
    args = (_run_through(returns, 1400), 325, GARCH_REFIT_EVERY, 300, GARCH_MIN_OBS)
    with np.errstate(all="ignore"):
        twin = garch.rolling_garch_sigma_from_py(r, *args)
    np.testing.assert_allclose(twin, garch.rolling_garch_sigma_from(r, *args), rtol=1e-12,
                               equal_nan=True)  # fmt: skip
    assert np.isfinite(twin[325:]).all()


def test_refit_is_a_function_of_its_window_only(returns):
    """The same window of returns, wherever it sits, gives the same fit and forecast."""
    y = returns[900:1400]
    shifted = np.r_[np.full(37, 0.003), y]
    theta_a, s2_a = garch.garch_refit(y, y.shape[0] - 1, 400)
    theta_b, s2_b = garch.garch_refit(shifted, shifted.shape[0] - 1, 400)
    np.testing.assert_array_equal(theta_a, theta_b)
    assert s2_a == s2_b
