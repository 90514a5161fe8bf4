"""The 17 causal pattern features for one ticker, and the panel driver.

``ticker_features`` computes every requested feature of one ticker in one
call over its contiguous rows; ``panel_features`` runs it over all tickers in
parallel (``prange``). Cross-asset inputs (market return, sector 20-day
return, the volatility-index series) arrive already aligned to the ticker's
dates: the engine computes them on the benchmark's own calendar and joins
them on date.

Output rows follow ``FEATURE_NAMES``; every non-finite result is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from kernels._typing import Float64Array1D, Float64Array2D, Int64Array1D
from kernels.garch import (
    GARCH_MAX_WINDOW,
    GARCH_MIN_OBS,
    GARCH_REFIT_EVERY,
    rolling_garch_sigma_py,
)
from kernels.rolling import (
    log_return_py,
    rolling_corr_cov_py,
    rolling_mean_std_py,
    rolling_min_max_py,
    rolling_skew_py,
)

FEATURE_NAMES: tuple[str, ...] = (
    "price_acceleration",
    "volume_price_divergence",
    "volatility_regime_change",
    "return_skewness",
    "momentum_persistence",
    "volatility_clustering",
    "trend_exhaustion",
    "garch_vol_ratio",
    "intraday_range_expansion",
    "overnight_gap",
    "end_of_day_momentum",
    "sector_relative_strength",
    "market_beta_instability",
    "vix_term_structure",
    "multi_timeframe_return",
    "normalized_volume",
    "price_level",
)
N_FEATURES = len(FEATURE_NAMES)
GARCH_FEATURE = FEATURE_NAMES.index("garch_vol_ratio")


@register_jitable(error_model="numpy")
def _finite_or_nan_py(v: float) -> float:
    return v if math.isfinite(v) else np.nan


@register_jitable(error_model="numpy")
def _ratio_py(num: float, den: float) -> float:
    """``num / den``, NaN on a zero or missing denominator."""
    if den == 0.0 or den != den or num != num:
        return np.nan
    return _finite_or_nan_py(num / den)


@register_jitable(error_model="numpy")
def _log_ratio_py(num: float, den: float) -> float:
    """``ln(num / den)`` for two positive numbers, else NaN."""
    if num > 0.0 and den > 0.0:
        return _finite_or_nan_py(math.log(num / den))
    return np.nan


@register_jitable(error_model="numpy")
def ticker_features_py(
    open_: Float64Array1D,
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    volume: Float64Array1D,
    market_return: Float64Array1D,
    sector_r20: Float64Array1D,
    vix_term: Float64Array1D,
    wanted: np.ndarray,
    out: Float64Array2D,
) -> None:
    """Fill ``out[k, :]`` with feature ``k`` for every ``k`` where ``wanted[k]``.

    Parameters
    ----------
    open_, high, low, close, volume : ndarray
        The ticker's bars in date order (NaN for a missing value).
    market_return : ndarray
        The market benchmark's log return on each of the ticker's dates.
    sector_r20 : ndarray
        The sector benchmark's 20-day log return on each of the ticker's dates.
    vix_term : ndarray
        The ``vix_term_structure`` series on each of the ticker's dates.
    wanted : ndarray of bool, shape (17,)
        Which features to compute; rows of ``out`` not wanted are not written.
    out : ndarray, shape (17, n)
        Output, one row per feature in ``FEATURE_NAMES`` order.

    Examples
    --------
    A close rising 1 % a day in the middle of a 4 % range, no cross-asset inputs:

    >>> import numpy as np
    >>> n = 30
    >>> close = 100.0 * 1.01 ** np.arange(n)
    >>> high, low, volume, missing = 1.02 * close, 0.98 * close, np.full(n, 1e6), np.full(n, np.nan)
    >>> eod = FEATURE_NAMES.index("end_of_day_momentum")
    >>> persistence = FEATURE_NAMES.index("momentum_persistence")
    >>> wanted = np.zeros(N_FEATURES, dtype=np.bool_)
    >>> wanted[[eod, persistence]] = True
    >>> out = np.empty((N_FEATURES, n))
    >>> ticker_features(close, high, low, close, volume, missing, missing, missing, wanted, out)
    >>> out[eod, :3].round(12)  # (C - L) / (H - L) - 0.5
    array([0., 0., 0.])
    >>> out[persistence, 5:9]  # R_7 needs 7 returns: all 7 up from day 7
    array([nan, nan,  1.,  1.])
    """
    n = close.shape[0]
    r = log_return_py(close, 1)
    scratch = np.empty(n)
    # Shared statistics, computed only when a wanted feature reads them.
    sd10 = np.empty(n)
    sd20 = np.empty(n)
    sd60 = np.empty(n)
    if wanted[2]:
        rolling_mean_std_py(r, 10, scratch, sd10)
    if wanted[0] or wanted[9]:
        rolling_mean_std_py(r, 20, scratch, sd20)
    if wanted[2] or wanted[7] or wanted[14]:
        rolling_mean_std_py(r, 60, scratch, sd60)
    r5 = log_return_py(close, 5) if (wanted[0] or wanted[14]) else scratch
    sqrt5 = math.sqrt(5.0)

    if wanted[0]:  # price_acceleration
        for t in range(n):
            prev = r5[t - 5] if t >= 5 else np.nan
            out[0, t] = _ratio_py(r5[t] - prev, sd20[t] * sqrt5)

    if wanted[1]:  # volume_price_divergence
        dlv = np.full(n, np.nan)
        for t in range(1, n):
            if volume[t] >= 0.0 and volume[t - 1] >= 0.0:
                dlv[t] = math.log1p(volume[t]) - math.log1p(volume[t - 1])
        corr = np.empty(n)
        cov = np.empty(n)
        var_y = np.empty(n)
        const = np.empty(n)
        rolling_corr_cov_py(r, dlv, 20, corr, cov, var_y, const)
        for t in range(n):
            out[1, t] = 0.0 if const[t] == 1.0 else _finite_or_nan_py(corr[t])

    if wanted[2]:  # volatility_regime_change
        for t in range(n):
            out[2, t] = _log_ratio_py(sd10[t], sd60[t])

    if wanted[3]:  # return_skewness
        out[3, :] = rolling_skew_py(r, 20)

    if wanted[4]:  # momentum_persistence
        r7 = log_return_py(close, 7)
        for t in range(n):
            s = r7[t]
            if s != s or t < 7:
                out[4, t] = np.nan
                continue
            sign_s = np.sign(s)
            hits = 0
            complete = True
            for j in range(t - 6, t + 1):
                if r[j] != r[j]:
                    complete = False
                    break
                if np.sign(r[j]) == sign_s:
                    hits += 1
            if not complete:
                out[4, t] = np.nan
            elif sign_s == 0.0:
                out[4, t] = 0.0
            else:
                out[4, t] = sign_s * hits / 7.0

    if wanted[5]:  # volatility_clustering
        q = r * r
        q_lag = np.full(n, np.nan)
        q_lag[1:] = q[:-1]
        corr = np.empty(n)
        cov = np.empty(n)
        var_y = np.empty(n)
        const = np.empty(n)
        rolling_corr_cov_py(q, q_lag, 60, corr, cov, var_y, const)
        for t in range(n):
            out[5, t] = _finite_or_nan_py(corr[t])

    if wanted[6]:  # trend_exhaustion
        mean_c = np.empty(n)
        sd_c = np.empty(n)
        rolling_mean_std_py(close, 20, mean_c, sd_c)
        for t in range(n):
            if sd_c[t] == 0.0:
                out[6, t] = 0.0
            else:
                out[6, t] = _ratio_py(close[t] - mean_c[t], 2.0 * sd_c[t])

    if wanted[7]:  # garch_vol_ratio
        sigma = rolling_garch_sigma_py(r, GARCH_REFIT_EVERY, GARCH_MAX_WINDOW, GARCH_MIN_OBS)
        for t in range(n):
            out[7, t] = _ratio_py(sigma[t], sd60[t])

    if wanted[8]:  # intraday_range_expansion
        g = np.empty(n)
        for t in range(n):
            g[t] = _ratio_py(high[t] - low[t], close[t])
        mean_g = np.empty(n)
        rolling_mean_std_py(g, 20, mean_g, scratch)
        for t in range(n):
            out[8, t] = _ratio_py(g[t], mean_g[t])

    if wanted[9]:  # overnight_gap
        for t in range(n):
            gap = _log_ratio_py(open_[t], close[t - 1]) if t >= 1 else np.nan
            out[9, t] = _ratio_py(gap, sd20[t])

    if wanted[10]:  # end_of_day_momentum
        for t in range(n):
            span = high[t] - low[t]
            if span == 0.0 and close[t] == close[t]:
                out[10, t] = 0.0
            else:
                out[10, t] = _ratio_py(close[t] - low[t], span) - 0.5

    if wanted[11]:  # sector_relative_strength
        r20 = log_return_py(close, 20)
        for t in range(n):
            out[11, t] = _finite_or_nan_py(r20[t] - sector_r20[t])

    if wanted[12]:  # market_beta_instability
        corr = np.empty(n)
        cov = np.empty(n)
        var_m = np.empty(n)
        const = np.empty(n)
        rolling_corr_cov_py(r, market_return, 20, corr, cov, var_m, const)
        beta = np.empty(n)
        for t in range(n):
            beta[t] = _ratio_py(cov[t], var_m[t])
        sd_beta = np.empty(n)
        rolling_mean_std_py(beta, 60, scratch, sd_beta)
        out[12, :] = sd_beta

    if wanted[13]:  # vix_term_structure
        for t in range(n):
            out[13, t] = _finite_or_nan_py(vix_term[t])

    if wanted[14]:  # multi_timeframe_return
        r20 = log_return_py(close, 20)
        r60 = log_return_py(close, 60)
        for t in range(n):
            s = sd60[t]
            total = r5[t] / (s * sqrt5) + r20[t] / (s * math.sqrt(20.0))
            total += r60[t] / (s * math.sqrt(60.0))
            out[14, t] = _finite_or_nan_py(total / 3.0) if s > 0.0 else np.nan

    if wanted[15]:  # normalized_volume
        mean_v = np.empty(n)
        rolling_mean_std_py(volume, 20, mean_v, scratch)
        for t in range(n):
            out[15, t] = _log_ratio_py(volume[t] + 1.0, mean_v[t] + 1.0)

    if wanted[16]:  # price_level
        lo = np.empty(n)
        hi = np.empty(n)
        rolling_min_max_py(close, 252, lo, hi)
        for t in range(n):
            if hi[t] == lo[t]:
                out[16, t] = 0.5
            else:
                out[16, t] = _ratio_py(close[t] - lo[t], hi[t] - lo[t])


def panel_features_py(
    offsets: Int64Array1D,
    open_: Float64Array1D,
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    volume: Float64Array1D,
    market_return: Float64Array1D,
    sector_r20: Float64Array1D,
    vix_term: Float64Array1D,
    wanted: np.ndarray,
) -> Float64Array2D:
    """Run ``ticker_features`` for every ticker of a long panel, in parallel.

    Rows of ticker ``i`` are ``offsets[i]:offsets[i + 1]`` (sorted by date).
    Returns an array of shape (17, n_rows); rows not wanted are left
    uninitialised (never written, so their memory is never touched).

    Examples
    --------
    Two tickers of 10 and 20 rows; each one's windows count its own rows only:

    >>> import numpy as np
    >>> close = 100.0 * 1.01 ** np.arange(30)
    >>> volume, missing = np.full(30, 1e6), np.full(30, np.nan)
    >>> persistence = FEATURE_NAMES.index("momentum_persistence")
    >>> wanted = np.zeros(N_FEATURES, dtype=np.bool_)
    >>> wanted[persistence] = True
    >>> offsets = np.array([0, 10, 30])
    >>> out = panel_features(
    ...     offsets, close, close, close, close, volume, missing, missing, missing, wanted
    ... )
    >>> out[persistence, 5:20]
    array([nan, nan,  1.,  1.,  1., nan, nan, nan, nan, nan, nan, nan,  1.,
            1.,  1.])
    """
    n_rows = close.shape[0]
    out = np.empty((N_FEATURES, n_rows))
    for i in prange(offsets.shape[0] - 1):
        a = offsets[i]
        b = offsets[i + 1]
        ticker_features_py(
            open_[a:b],
            high[a:b],
            low[a:b],
            close[a:b],
            volume[a:b],
            market_return[a:b],
            sector_r20[a:b],
            vix_term[a:b],
            wanted,
            out[:, a:b],
        )
    return out


ticker_features = njit(cache=True, error_model="numpy")(ticker_features_py)
panel_features = njit(cache=True, parallel=True, error_model="numpy")(panel_features_py)
