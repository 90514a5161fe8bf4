"""Feature kernels against their pure-Python twins (values: tests/test_features_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.features import (
    FEATURE_NAMES,
    N_FEATURES,
    panel_features,
    panel_features_py,
    ticker_features,
    ticker_features_py,
)


def _ticker_inputs(seed: int, n: int, gaps: bool) -> list[np.ndarray]:
    """One ticker's bars and its aligned cross-asset inputs (NaN holes with ``gaps``)."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.005, n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    volume = np.round(1e6 * np.exp(rng.normal(0.0, 0.4, n)))
    market = rng.normal(0.0, 0.01, n)
    sector_r20 = rng.normal(0.0, 0.05, n)
    vix_term = rng.normal(0.0, 0.1, n)
    if gaps:  # closes stay complete, so the GARCH refits still run
        at = (np.array([0.1, 0.25, 0.4, 0.5, 0.6, 0.75]) * n).astype(int)
        volume[at[[0, 4]]] = np.nan
        high[at[1]] = np.nan
        market[at[[0, 3]]] = np.nan
        sector_r20[at[2]] = vix_term[at[5]] = np.nan
        low[at[3]] = high[at[3]] = close[at[3]]  # a bar with H = L
    return [open_, high, low, close, volume, market, sector_r20, vix_term]


@pytest.mark.parametrize("gaps", [False, True], ids=["clean", "holes"])
def test_python_twin_equals_kernel_ticker_features(gaps):
    """All 17 features, GARCH included (first fit at 252 returns, refits at 273, 294, 315)."""
    inputs = _ticker_inputs(3, 320, gaps)
    wanted = np.ones(N_FEATURES, dtype=np.bool_)
    jitted = np.full((N_FEATURES, 320), -1.0)
    twin = np.full((N_FEATURES, 320), -2.0)
    ticker_features(*inputs, wanted, jitted)
    with np.errstate(divide="ignore", invalid="ignore"):  # NumPy scalars, IEEE like the kernel
        ticker_features_py(*inputs, wanted, twin)
    assert np.isfinite(jitted[FEATURE_NAMES.index("garch_vol_ratio"), 253:]).all()
    for k, name in enumerate(FEATURE_NAMES):
        np.testing.assert_allclose(twin[k], jitted[k], rtol=1e-12, equal_nan=True, err_msg=name)


def test_python_twin_equals_kernel_panel_features():
    """Three tickers of different lengths; rows not wanted are never written by either."""
    lengths = (90, 61, 120)
    columns = [np.concatenate(c) for c in zip(*(_ticker_inputs(s, n, True) for s, n in
                                                enumerate(lengths)), strict=True)]  # fmt: skip
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    wanted = np.ones(N_FEATURES, dtype=np.bool_)
    wanted[FEATURE_NAMES.index("garch_vol_ratio")] = False  # needs 252 rows: the twin above
    jitted = panel_features(offsets, *columns, wanted)
    with np.errstate(divide="ignore", invalid="ignore"):
        twin = panel_features_py(offsets, *columns, wanted)
    for k in np.flatnonzero(wanted):
        np.testing.assert_allclose(
            twin[k], jitted[k], rtol=1e-12, equal_nan=True, err_msg=FEATURE_NAMES[k]
        )
    # each ticker's rows are its own: the panel equals the kernel run ticker by ticker
    for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        one = np.empty((N_FEATURES, b - a))
        ticker_features(*(c[a:b] for c in columns), wanted, one)
        np.testing.assert_array_equal(one[wanted], jitted[wanted][:, a:b], err_msg=f"ticker {i}")
