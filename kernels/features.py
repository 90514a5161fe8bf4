"""The 17 causal pattern features for one ticker, and the panel driver.

``ticker_features`` computes every requested feature of one ticker in one
pass over its rows: each row's inputs (returns, log volume changes, squared
returns, ranges, betas) are derived once and every rolling statistic is a
running state from :mod:`kernels.rolling`, advanced in O(1) per row and
kept in registers. The 252-day range (monotonic deques) and rolling GARCH
(over the returns, only from the rows that need it) run in passes of their
own before the main loop. ``panel_features`` runs the
tickers in parallel (``prange``). Cross-asset inputs (market return, sector
20-day return, the volatility-index series) arrive already aligned to the
ticker's dates: the engine computes them on the benchmark's own calendar
and joins them on date.

The ``*_from`` variants compute a window of a longer history: they take,
per ticker, the valid returns before the window and the first row that
needs a GARCH forecast (see ``engine.features.tail``). ``ticker_features``
and ``panel_features`` run the same loops over whole histories (both
arguments 0), so each loop is written, and each parallel kernel compiled,
once.

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
    rolling_garch_sigma_from_py,
)
from kernels.rolling import (
    COMOMENT_START,
    MEAN_VAR_START,
    ROLLING_ANCHOR,
    SKEW_START,
    comoment_exact_py,
    comoment_update_py,
    corr_cov_at_py,
    mean_std_at_py,
    mean_var_exact_py,
    mean_var_update_py,
    rolling_min_max_py,
    skew_at_py,
    skew_exact_py,
    skew_update_py,
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
def _lag_log_return_py(close: Float64Array1D, t: int, lag: int) -> float:
    """``ln(close[t] / close[t - lag])``, NaN for ``t < lag`` or a non-positive price."""
    if t < lag:
        return np.nan
    a = close[t]
    b = close[t - lag]
    if a > 0.0 and b > 0.0:
        return math.log(a / b)
    return np.nan


@register_jitable(error_model="numpy")
def ticker_features_from_py(
    open_: Float64Array1D,
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    volume: Float64Array1D,
    market_return: Float64Array1D,
    sector_r20: Float64Array1D,
    vix_term: Float64Array1D,
    wanted: np.ndarray,
    garch_run0: int,
    garch_first: int,
    out: Float64Array2D,
) -> None:
    """:func:`ticker_features` over a window of a longer history.

    ``garch_run0`` is the number of consecutive valid returns just before
    the window's first row and ``garch_first`` the first row that needs a
    ``garch_vol_ratio`` (earlier rows get NaN); both are 0 for a whole
    history. See :func:`kernels.garch.rolling_garch_sigma_from`.
    """
    n = close.shape[0]
    # Which running statistics the wanted features read.
    want_sd10 = wanted[2]
    want_sd20 = wanted[0] or wanted[9]
    want_sd60 = wanted[2] or wanted[7] or wanted[14]
    sqrt5 = math.sqrt(5.0)
    sqrt20 = math.sqrt(20.0)
    sqrt60 = math.sqrt(60.0)

    # Per-row inputs that later rows read back, derived once.
    r = np.empty(n)  # log return
    r5 = np.empty(n)  # 5-day log return
    lv = np.empty(n)  # log(1 + volume), NaN for a negative or missing volume
    dlv = np.empty(n)  # log volume change
    q = np.empty(n)  # squared return
    q_lag = np.empty(n)  # squared return of the day before
    g = np.empty(n)  # intraday range over close
    beta = np.empty(n)  # 20-day beta to the market
    for t in range(n):
        r[t] = _lag_log_return_py(close, t, 1)
    sigma = r  # replaced when garch_vol_ratio is wanted
    if wanted[7]:
        sigma = rolling_garch_sigma_from_py(
            r, garch_run0, garch_first, GARCH_REFIT_EVERY, GARCH_MAX_WINDOW, GARCH_MIN_OBS
        )
    if wanted[16]:  # the 252-day range: exact deques, in their own pass
        range_lo = np.empty(n)
        range_hi = np.empty(n)
        rolling_min_max_py(close, 252, range_lo, range_hi)

    # Running states, tuples of scalars kept in locals (see kernels.rolling).
    w10 = w20 = w60 = MEAN_VAR_START  # returns over 10, 20, 60 days
    wc = wg = wv = MEAN_VAR_START  # closes, ranges, volumes over 20 days
    wb = MEAN_VAR_START  # betas over 60 days
    kd = COMOMENT_START  # returns and log volume changes, 20 days
    kq = COMOMENT_START  # squared returns and their lag, 60 days
    km = COMOMENT_START  # returns and market returns, 20 days
    ks = SKEW_START  # returns, 20 days
    ups = downs = gaps = 0  # signs of the last 7 returns, for momentum_persistence
    nan = np.nan

    for t in range(n):
        exact = t % ROLLING_ANCHOR == 0  # the restart grid
        c = close[t]
        v = r[t]
        v_prev = r[t - 1] if t >= 1 else nan
        v_old10 = r[t - 10] if t >= 10 else nan
        v_old20 = r[t - 20] if t >= 20 else nan
        v_old60 = r[t - 60] if t >= 60 else nan
        sd10 = sd20 = sd60 = nan
        if want_sd10:
            w10, redo = mean_var_update_py(w10, v, v_prev, v_old10)
            if redo or exact:
                w10 = mean_var_exact_py(w10, r, t, 10)
            sd10 = mean_std_at_py(w10, v, t, 10)[1]
        if want_sd20:
            w20, redo = mean_var_update_py(w20, v, v_prev, v_old20)
            if redo or exact:
                w20 = mean_var_exact_py(w20, r, t, 20)
            sd20 = mean_std_at_py(w20, v, t, 20)[1]
        if want_sd60:
            w60, redo = mean_var_update_py(w60, v, v_prev, v_old60)
            if redo or exact:
                w60 = mean_var_exact_py(w60, r, t, 60)
            sd60 = mean_std_at_py(w60, v, t, 60)[1]
        r5[t] = _lag_log_return_py(close, t, 5)
        r20 = _lag_log_return_py(close, t, 20) if wanted[11] or wanted[14] else nan

        if wanted[0]:  # price_acceleration
            prev = r5[t - 5] if t >= 5 else nan
            out[0, t] = _ratio_py(r5[t] - prev, sd20 * sqrt5)

        if wanted[1]:  # volume_price_divergence
            lv[t] = math.log1p(volume[t]) if volume[t] >= 0.0 else nan
            dlv[t] = lv[t] - lv[t - 1] if t >= 1 else nan
            d_prev = dlv[t - 1] if t >= 1 else nan
            d_old = dlv[t - 20] if t >= 20 else nan
            kd, redo = comoment_update_py(kd, v, dlv[t], v_prev, d_prev, v_old20, d_old)
            if redo or exact:
                kd = comoment_exact_py(kd, r, dlv, t, 20)
            corr, _, _, const = corr_cov_at_py(kd, t, 20)
            out[1, t] = 0.0 if const == 1.0 else _finite_or_nan_py(corr)

        if wanted[2]:  # volatility_regime_change
            out[2, t] = _log_ratio_py(sd10, sd60)

        if wanted[3]:  # return_skewness
            ks, redo = skew_update_py(ks, v, v_prev, v_old20)
            if redo or exact:
                ks = skew_exact_py(ks, r, t, 20)
            out[3, t] = skew_at_py(ks, t, 20)

        if wanted[4]:  # momentum_persistence: signs of r over t-6..t against sign(R_7)
            if v != v:
                gaps += 1
            elif v > 0.0:
                ups += 1
            elif v < 0.0:
                downs += 1
            if t >= 7:
                old = r[t - 7]
                if old != old:
                    gaps -= 1
                elif old > 0.0:
                    ups -= 1
                elif old < 0.0:
                    downs -= 1
            s = _lag_log_return_py(close, t, 7)
            if s != s or gaps > 0:
                out[4, t] = nan
            elif s > 0.0:
                out[4, t] = ups / 7.0
            elif s < 0.0:
                out[4, t] = -downs / 7.0
            else:
                out[4, t] = 0.0

        if wanted[5]:  # volatility_clustering: corr_60(q_t, q_{t-1})
            q[t] = v * v
            q_lag[t] = q[t - 1] if t >= 1 else nan
            kq, redo = comoment_update_py(
                kq,
                q[t],
                q_lag[t],
                q[t - 1] if t >= 1 else nan,
                q_lag[t - 1] if t >= 1 else nan,
                q[t - 60] if t >= 60 else nan,
                q_lag[t - 60] if t >= 60 else nan,
            )
            if redo or exact:
                kq = comoment_exact_py(kq, q, q_lag, t, 60)
            out[5, t] = _finite_or_nan_py(corr_cov_at_py(kq, t, 60)[0])

        if wanted[6]:  # trend_exhaustion
            c_prev = close[t - 1] if t >= 1 else nan
            wc, redo = mean_var_update_py(wc, c, c_prev, close[t - 20] if t >= 20 else nan)
            if redo or exact:
                wc = mean_var_exact_py(wc, close, t, 20)
            mean_c, sd_c = mean_std_at_py(wc, c, t, 20)
            if sd_c == 0.0:
                out[6, t] = 0.0
            else:
                out[6, t] = _ratio_py(c - mean_c, 2.0 * sd_c)

        if wanted[7]:  # garch_vol_ratio
            out[7, t] = _ratio_py(sigma[t], sd60)

        if wanted[8]:  # intraday_range_expansion
            g[t] = _ratio_py(high[t] - low[t], c)
            g_prev = g[t - 1] if t >= 1 else nan
            wg, redo = mean_var_update_py(wg, g[t], g_prev, g[t - 20] if t >= 20 else nan)
            if redo or exact:
                wg = mean_var_exact_py(wg, g, t, 20)
            out[8, t] = _ratio_py(g[t], mean_std_at_py(wg, g[t], t, 20)[0])

        if wanted[9]:  # overnight_gap
            gap = _log_ratio_py(open_[t], close[t - 1]) if t >= 1 else nan
            out[9, t] = _ratio_py(gap, sd20)

        if wanted[10]:  # end_of_day_momentum
            span = high[t] - low[t]
            if span == 0.0 and c == c:
                out[10, t] = 0.0
            else:
                out[10, t] = _ratio_py(c - low[t], span) - 0.5

        if wanted[11]:  # sector_relative_strength
            out[11, t] = _finite_or_nan_py(r20 - sector_r20[t])

        if wanted[12]:  # market_beta_instability: sd_60 of 20-day betas
            m_prev = market_return[t - 1] if t >= 1 else nan
            m_old = market_return[t - 20] if t >= 20 else nan
            km, redo = comoment_update_py(km, v, market_return[t], v_prev, m_prev, v_old20, m_old)
            if redo or exact:
                km = comoment_exact_py(km, r, market_return, t, 20)
            _, cov, var_m, _ = corr_cov_at_py(km, t, 20)
            beta[t] = _ratio_py(cov, var_m)
            b_prev = beta[t - 1] if t >= 1 else nan
            wb, redo = mean_var_update_py(wb, beta[t], b_prev, beta[t - 60] if t >= 60 else nan)
            if redo or exact:
                wb = mean_var_exact_py(wb, beta, t, 60)
            out[12, t] = mean_std_at_py(wb, beta[t], t, 60)[1]

        if wanted[13]:  # vix_term_structure
            out[13, t] = _finite_or_nan_py(vix_term[t])

        if wanted[14]:  # multi_timeframe_return
            if sd60 > 0.0:
                total = r5[t] / (sd60 * sqrt5)
                total += r20 / (sd60 * sqrt20)
                total += _lag_log_return_py(close, t, 60) / (sd60 * sqrt60)
                out[14, t] = _finite_or_nan_py(total / 3.0)
            else:
                out[14, t] = nan

        if wanted[15]:  # normalized_volume
            vol = volume[t]
            vol_prev = volume[t - 1] if t >= 1 else nan
            wv, redo = mean_var_update_py(wv, vol, vol_prev, volume[t - 20] if t >= 20 else nan)
            if redo or exact:
                wv = mean_var_exact_py(wv, volume, t, 20)
            out[15, t] = _log_ratio_py(vol + 1.0, mean_std_at_py(wv, vol, t, 20)[0] + 1.0)

        if wanted[16]:  # price_level
            lo = range_lo[t]
            hi = range_hi[t]
            if hi == lo:
                out[16, t] = 0.5
            else:
                out[16, t] = _ratio_py(c - lo, hi - lo)


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
    ticker_features_from_py(
        open_, high, low, close, volume, market_return, sector_r20, vix_term, wanted, 0, 0, out
    )


def panel_features_from_py(
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
    garch_run0: Int64Array1D,
    garch_first: Int64Array1D,
) -> Float64Array2D:
    """:func:`panel_features` over a window of each ticker's history.

    ``garch_run0[i]`` and ``garch_first[i]`` are ticker ``i``'s arguments of
    :func:`ticker_features_from`.
    """
    n_rows = close.shape[0]
    out = np.empty((N_FEATURES, n_rows))
    for i in prange(offsets.shape[0] - 1):
        a = offsets[i]
        b = offsets[i + 1]
        ticker_features_from_py(
            open_[a:b],
            high[a:b],
            low[a:b],
            close[a:b],
            volume[a:b],
            market_return[a:b],
            sector_r20[a:b],
            vix_term[a:b],
            wanted,
            garch_run0[i],
            garch_first[i],
            out[:, a:b],
        )
    return out


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
    uninitialised (never written, so their memory is never touched). This is
    :func:`panel_features_from` over whole histories (no returns before a
    ticker's first row, GARCH forecasts from its first row on): one loop
    serves both, so ``panel_features`` compiles nothing of its own.

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
    whole = np.zeros(offsets.shape[0] - 1, dtype=np.int64)
    columns = (open_, high, low, close, volume, market_return, sector_r20, vix_term)
    return panel_features_from_py(offsets, *columns, wanted, whole, whole)


ticker_features_from = njit(cache=True, error_model="numpy")(ticker_features_from_py)
ticker_features = njit(cache=True, error_model="numpy")(ticker_features_py)
panel_features_from = njit(cache=True, parallel=True, error_model="numpy")(panel_features_from_py)


def panel_features(
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
    """:func:`panel_features_py` on the compiled :func:`panel_features_from` (parallel)."""
    whole = np.zeros(offsets.shape[0] - 1, dtype=np.int64)
    columns = (open_, high, low, close, volume, market_return, sector_r20, vix_term)
    return panel_features_from(offsets, *columns, wanted, whole, whole)
