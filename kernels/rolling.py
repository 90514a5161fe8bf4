"""Rolling-window statistics over 1-D float64 arrays, as O(1)-per-row running states.

Conventions shared by every kernel here:

* ``out[t]`` uses ``x[t - window + 1 .. t]`` only (causal, right-aligned).
* A window that is incomplete or holds any NaN gives NaN (pandas'
  ``rolling(window)`` with the default ``min_periods=window``).
* Variances are sample variances (ddof = 1). Moments are updated online:
  Welford's add/remove formulas for mean and variance, their co-moment form
  for covariances, and Pébay's for the third central moment (skewness).
  They stay accurate for prices far from zero, where the textbook
  sum-of-squares formula loses every digit. Rounding error in a running sum
  of squared deviations is absolute, so it is kept relative by recomputing
  the window exactly (two passes) whenever that sum falls below
  ``_RECOMPUTE_BELOW`` times its peak since the last exact computation: a
  large value leaving the window, or a calm stretch after a volatile one.
* **Restart grid.** Every running state is also recomputed exactly at each
  row ``t`` with ``t % ROLLING_ANCHOR == 0``. This bounds the rounding that
  can accumulate to ``ROLLING_ANCHOR`` updates and, more to the point, makes
  a statistic restartable: computed from any row ``s`` on the grid, it
  reaches, bit for bit, the state of the computation from row 0 at the first
  grid row ``a >= s + window``. The tail mode (``engine.features.tail``)
  relies on it to compute a ticker's last rows from a window of its history.
* A window whose values are all equal has variance exactly 0 (tracked by
  the length of the current run of equal values, as pandas does), so
  "zero denominator" fallbacks fire exactly.

The running states are tuples of scalars that a kernel keeps in local
variables and passes through the ``*_update`` functions row by row, so that
one loop (``kernels.features``) can advance many statistics at once. Each
kernel has a pure-Python twin (suffix ``_py``) that is the same source run
by the interpreter; tests assert the two agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import register_jitable

from kernels._typing import Float64Array1D

#: Rows between exact recomputations of every running state (see "Restart grid").
ROLLING_ANCHOR = 64
# Relative accuracy is about 1e-16 * steps / _RECOMPUTE_BELOW; on ordinary
# price and return series the recomputation almost never fires.
_RECOMPUTE_BELOW = 1e-4
# The third moment's rounding error, relative to the skewness, grows like
# (peak m2 / m2) ** 1.5, so it recomputes after a tenfold fall in m2 already:
# measured on a random walk near 55 at window 3, 1e-4 left errors of 2e-7.
_SKEW_RECOMPUTE_BELOW = 0.1


@register_jitable(error_model="numpy")
def log_return_py(close: Float64Array1D, lag: int) -> Float64Array1D:
    """``ln(close[t] / close[t - lag])``; NaN for ``t < lag`` or a non-positive price.

    Examples
    --------
    >>> import numpy as np
    >>> log_return(np.array([100.0, 110.0, 99.0, np.nan, 120.0]), 1).round(4)
    array([    nan,  0.0953, -0.1054,     nan,     nan])
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    for t in range(lag, n):
        a = close[t]
        b = close[t - lag]
        if a > 0.0 and b > 0.0:
            out[t] = math.log(a / b)
    return out


# --------------------------------------------------------------------------- mean and variance
# A running state is a tuple of scalars that the caller keeps in local variables.
# ``*_update`` adds the row's value and removes the one leaving the window
# (NaN: none leaves); it takes and returns scalars only, so Numba inlines it
# and keeps the state in registers. It also says when the state must be
# recomputed from the window (``*_exact``, which reads the array): the
# caller does that then and on the restart grid. The mean/variance state is
# (count of finite values in the window, mean, m2 = sum of squared
# deviations, peak of m2 since the last exact computation, run of equal
# values); it starts at MEAN_VAR_START.

MEAN_VAR_START = (0.0, 0.0, 0.0, 0.0, 0.0)


@register_jitable(error_model="numpy")
def _exact_moments_py(x: Float64Array1D, start: int, stop: int) -> tuple[float, float]:
    """Mean and sum of squared deviations of the finite values in ``x[start:stop]``."""
    total = 0.0
    count = 0
    for i in range(start, stop):
        if x[i] == x[i]:
            total += x[i]
            count += 1
    if count == 0:
        return 0.0, 0.0
    mean = total / count
    m2 = 0.0
    for i in range(start, stop):
        if x[i] == x[i]:
            m2 += (x[i] - mean) ** 2
    return mean, m2


@register_jitable(error_model="numpy")
def mean_var_update_py(
    state: tuple[float, float, float, float, float], v: float, v_prev: float, old: float
) -> tuple[tuple[float, float, float, float, float], bool]:
    """Add ``v`` (``v_prev`` is the row before it) and remove ``old`` (NaN: nothing leaves).

    Returns the new state and whether it must be recomputed exactly
    (:func:`mean_var_exact`): the sum of squares fell far below its peak.
    """
    count, mean, m2, peak, run = state
    if v == v:
        count += 1.0
        d = v - mean
        mean += d / count
        m2 += d * (v - mean)
        run = run + 1.0 if run > 0.0 and v == v_prev else 1.0
    else:
        run = 0.0
    redo = False
    if old == old:
        count -= 1.0
        if count == 0.0:
            mean = 0.0
            m2 = 0.0
            peak = 0.0
        else:
            d = old - mean
            mean -= d / count
            m2 -= d * (old - mean)
            redo = m2 < _RECOMPUTE_BELOW * peak
    return (count, mean, m2, max(peak, m2), run), redo


@register_jitable(error_model="numpy")
def mean_var_exact_py(
    state: tuple[float, float, float, float, float], x: Float64Array1D, t: int, window: int
) -> tuple[float, float, float, float, float]:
    """The state with its moments recomputed from the window of ``x`` ending at ``t``."""
    mean, m2 = _exact_moments_py(x, max(0, t - window + 1), t + 1)
    return state[0], mean, m2, m2, state[4]


@register_jitable(error_model="numpy")
def mean_std_at_py(
    state: tuple[float, float, float, float, float], v: float, t: int, window: int
) -> tuple[float, float]:
    """Mean and sample sd of the window ending at row ``t`` (value ``v``); NaN if incomplete."""
    count, mean, m2, _, run = state
    if t >= window - 1 and count == window:
        if run >= window:
            return v, 0.0
        return mean, math.sqrt(m2 / (window - 1)) if m2 > 0.0 else 0.0
    return np.nan, np.nan


@register_jitable(error_model="numpy")
def rolling_mean_std_py(
    x: Float64Array1D, window: int, mean_out: Float64Array1D, std_out: Float64Array1D
) -> None:
    """Rolling mean and sample standard deviation (ddof = 1) of ``x``, into the outputs.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 4.0, 7.0, np.nan, 5.0])
    >>> mean, std = np.empty(6), np.empty(6)
    >>> rolling_mean_std(x, 3, mean, std)
    >>> mean.round(4)
    array([   nan,    nan, 2.3333, 4.3333,    nan,    nan])
    >>> std.round(4)
    array([   nan,    nan, 1.5275, 2.5166,    nan,    nan])
    """
    state = MEAN_VAR_START
    prev = np.nan
    for t in range(x.shape[0]):
        v = x[t]
        state, redo = mean_var_update_py(state, v, prev, x[t - window] if t >= window else np.nan)
        if redo or t % ROLLING_ANCHOR == 0:
            state = mean_var_exact_py(state, x, t, window)
        mean_out[t], std_out[t] = mean_std_at_py(state, v, t, window)
        prev = v


# --------------------------------------------------------------------------- co-moments
# state: (count of complete pairs, mean x, mean y, sxx, syy, sxy, peak sxx, peak syy,
# run of equal x, run of equal y), from COMOMENT_START

COMOMENT_START = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@register_jitable(error_model="numpy")
def _exact_comoments_py(
    x: Float64Array1D, y: Float64Array1D, start: int, stop: int
) -> tuple[float, float, float, float, float]:
    """Means and centred co-moments of the complete pairs in ``x, y[start:stop]``."""
    sx = 0.0
    sy = 0.0
    count = 0
    for i in range(start, stop):
        if x[i] == x[i] and y[i] == y[i]:
            sx += x[i]
            sy += y[i]
            count += 1
    if count == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    mx = sx / count
    my = sy / count
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for i in range(start, stop):
        if x[i] == x[i] and y[i] == y[i]:
            dx = x[i] - mx
            dy = y[i] - my
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
    return mx, my, sxx, syy, sxy


@register_jitable(error_model="numpy")
def comoment_update_py(
    state: tuple[float, float, float, float, float, float, float, float, float, float],
    a: float,
    b: float,
    a_prev: float,
    b_prev: float,
    a_old: float,
    b_old: float,
) -> tuple[tuple[float, float, float, float, float, float, float, float, float, float], bool]:
    """Add the pair ``(a, b)`` and remove ``(a_old, b_old)``; a pair with a NaN is left out.

    ``a_prev, b_prev`` are the row before (for the runs of equal values).
    Returns the new state and whether it must be recomputed exactly
    (:func:`comoment_exact`).
    """
    count, mx, my, sxx, syy, sxy, peak_x, peak_y, run_x, run_y = state
    if a == a and b == b:
        count += 1.0
        dx = a - mx
        dy = b - my
        mx += dx / count
        my += dy / count
        sxx += dx * (a - mx)
        syy += dy * (b - my)
        sxy += dx * (b - my)
        run_x = run_x + 1.0 if run_x > 0.0 and a == a_prev else 1.0
        run_y = run_y + 1.0 if run_y > 0.0 and b == b_prev else 1.0
    else:
        run_x = 0.0
        run_y = 0.0
    redo = False
    if a_old == a_old and b_old == b_old:
        count -= 1.0
        if count == 0.0:
            mx = my = sxx = syy = sxy = peak_x = peak_y = 0.0
        else:
            dx = a_old - mx
            dy = b_old - my
            mx -= dx / count
            my -= dy / count
            sxx -= dx * (a_old - mx)
            syy -= dy * (b_old - my)
            sxy -= dx * (b_old - my)
            redo = sxx < _RECOMPUTE_BELOW * peak_x or syy < _RECOMPUTE_BELOW * peak_y
    peak_x = max(peak_x, sxx)
    peak_y = max(peak_y, syy)
    return (count, mx, my, sxx, syy, sxy, peak_x, peak_y, run_x, run_y), redo


@register_jitable(error_model="numpy")
def comoment_exact_py(
    state: tuple[float, float, float, float, float, float, float, float, float, float],
    x: Float64Array1D,
    y: Float64Array1D,
    t: int,
    window: int,
) -> tuple[float, float, float, float, float, float, float, float, float, float]:
    """The state with its co-moments recomputed from the window ending at ``t``."""
    mx, my, sxx, syy, sxy = _exact_comoments_py(x, y, max(0, t - window + 1), t + 1)
    return state[0], mx, my, sxx, syy, sxy, sxx, syy, state[8], state[9]


@register_jitable(error_model="numpy")
def corr_cov_at_py(
    state: tuple[float, float, float, float, float, float, float, float, float, float],
    t: int,
    window: int,
) -> tuple[float, float, float, float]:
    """``(corr, cov, var_y, constant)`` of the window ending at ``t`` (NaN if incomplete).

    ``constant`` is 1.0 when either side is constant (correlation is then
    undefined and NaN, covariance 0), else 0.0.
    """
    count, _, _, sxx, syy, sxy, _, _, run_x, run_y = state
    if t >= window - 1 and count == window:
        const_x = run_x >= window
        const_y = run_y >= window
        vx = 0.0 if const_x else max(sxx, 0.0)
        vy = 0.0 if const_y else max(syy, 0.0)
        cov = 0.0 if (const_x or const_y) else sxy / (window - 1)
        den = math.sqrt(vx) * math.sqrt(vy)  # not sqrt(vx * vy): that can underflow
        if den > 0.0:
            return sxy / den, cov, vy / (window - 1), 0.0
        return np.nan, cov, vy / (window - 1), 1.0
    return np.nan, np.nan, np.nan, np.nan


@register_jitable(error_model="numpy")
def rolling_corr_cov_py(
    x: Float64Array1D,
    y: Float64Array1D,
    window: int,
    corr_out: Float64Array1D,
    cov_out: Float64Array1D,
    var_y_out: Float64Array1D,
    constant_out: Float64Array1D,
) -> None:
    """Rolling Pearson correlation, sample covariance and the variance of ``y``.

    ``constant_out[t]`` is 1.0 when either side is constant over a complete
    window (correlation is then undefined and left NaN), else 0.0.
    A pair where either value is NaN makes every window holding it NaN.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> y = np.array([2.0, 1.0, 4.0, 4.0, 4.0])
    >>> corr, cov, var_y, constant = (np.empty(5) for _ in range(4))
    >>> rolling_corr_cov(x, y, 3, corr, cov, var_y, constant)
    >>> corr.round(4)  # the last window of y is constant: no correlation, a flag instead
    array([   nan,    nan, 0.6547, 0.866 ,    nan])
    >>> cov
    array([nan, nan, 1. , 1.5, 0. ])
    >>> constant
    array([nan, nan,  0.,  0.,  1.])
    """
    state = COMOMENT_START
    a_prev = b_prev = np.nan
    for t in range(x.shape[0]):
        a = x[t]
        b = y[t]
        a_old = x[t - window] if t >= window else np.nan
        b_old = y[t - window] if t >= window else np.nan
        state, redo = comoment_update_py(state, a, b, a_prev, b_prev, a_old, b_old)
        if redo or t % ROLLING_ANCHOR == 0:
            state = comoment_exact_py(state, x, y, t, window)
        corr_out[t], cov_out[t], var_y_out[t], constant_out[t] = corr_cov_at_py(state, t, window)
        a_prev = a
        b_prev = b


# --------------------------------------------------------------------------- skewness
# state: (count, mean, m2, m3 = sum of cubed deviations, peak of m2, run of equal
# values), from SKEW_START

SKEW_START = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@register_jitable(error_model="numpy")
def skew_update_py(
    state: tuple[float, float, float, float, float, float], v: float, v_prev: float, old: float
) -> tuple[tuple[float, float, float, float, float, float], bool]:
    """Add ``v`` and remove ``old`` (NaN: nothing leaves) by Pébay's update and its inverse.

    Returns the new state and whether it must be recomputed exactly
    (:func:`skew_exact`).
    """
    count, mean, m2, m3, peak, run = state
    if v == v:
        n = count + 1.0
        delta = v - mean
        delta_n = delta / n
        term = delta * delta_n * count
        mean += delta_n
        m3 += term * delta_n * (n - 2.0) - 3.0 * delta_n * m2
        m2 += term
        count = n
        run = run + 1.0 if run > 0.0 and v == v_prev else 1.0
    else:
        run = 0.0
    redo = False
    if old == old:
        n = count
        count = n - 1.0
        if count == 0.0:
            mean = m2 = m3 = peak = 0.0
        else:
            mean = mean - (old - mean) / (n - 1.0)
            delta = old - mean
            delta_n = delta / n
            term = delta * delta_n * (n - 1.0)
            m2 -= term
            m3 -= term * delta_n * (n - 2.0) - 3.0 * delta_n * m2
            redo = m2 < _SKEW_RECOMPUTE_BELOW * peak
    return (count, mean, m2, m3, max(peak, m2), run), redo


@register_jitable(error_model="numpy")
def skew_exact_py(
    state: tuple[float, float, float, float, float, float], x: Float64Array1D, t: int, window: int
) -> tuple[float, float, float, float, float, float]:
    """The state with its moments recomputed from the window of ``x`` ending at ``t``."""
    start = max(0, t - window + 1)
    mean, m2 = _exact_moments_py(x, start, t + 1)
    m3 = 0.0
    for i in range(start, t + 1):
        if x[i] == x[i]:
            d = x[i] - mean
            m3 += d * d * d
    return state[0], mean, m2, m3, m2, state[5]


@register_jitable(error_model="numpy")
def skew_at_py(
    state: tuple[float, float, float, float, float, float], t: int, window: int
) -> float:
    """Bias-corrected skewness of the window ending at ``t``, as pandas; NaN if undefined.

    A window with zero variance (all values equal) gives NaN, as pandas does.
    """
    count, _, m2, m3, _, run = state
    if t < window - 1 or count != window or run >= window or m2 <= 0.0:
        return np.nan
    m2 /= window
    m3 /= window
    return math.sqrt(window * (window - 1.0)) / (window - 2.0) * m3 / m2**1.5


@register_jitable(error_model="numpy")
def rolling_skew_py(x: Float64Array1D, window: int) -> Float64Array1D:
    """Rolling bias-corrected skewness, as pandas ``rolling(window).skew()``.

    A window with zero variance gives NaN, as pandas does.

    Examples
    --------
    >>> import numpy as np
    >>> rolling_skew(np.array([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]), 3).round(4)
    array([    nan,     nan,  0.9352,  0.9352, -1.7321,     nan])
    """
    out = np.empty(x.shape[0])
    state = SKEW_START
    prev = np.nan
    for t in range(x.shape[0]):
        v = x[t]
        state, redo = skew_update_py(state, v, prev, x[t - window] if t >= window else np.nan)
        if redo or t % ROLLING_ANCHOR == 0:
            state = skew_exact_py(state, x, t, window)
        out[t] = skew_at_py(state, t, window)
        prev = v
    return out


# --------------------------------------------------------------------------- minimum and maximum


@register_jitable(error_model="numpy")
def rolling_min_max_py(
    x: Float64Array1D, window: int, min_out: Float64Array1D, max_out: Float64Array1D
) -> None:
    """Rolling minimum and maximum with monotonic index deques (O(n)), into the outputs.

    Exact: the deques hold the window's own values, no running sums.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, np.nan, 2.0])
    >>> lo, hi = np.empty(7), np.empty(7)
    >>> rolling_min_max(x, 3, lo, hi)
    >>> lo, hi
    (array([nan, nan,  1.,  1.,  1., nan, nan]), array([nan, nan,  4.,  4.,  5., nan, nan]))
    """
    n = x.shape[0]
    min_q = np.empty(n, dtype=np.int64)
    max_q = np.empty(n, dtype=np.int64)
    min_head = min_tail = 0
    max_head = max_tail = 0
    nan_count = 0
    for t in range(n):
        v = x[t]
        if v != v:
            nan_count += 1
        else:
            while min_tail > min_head and x[min_q[min_tail - 1]] >= v:
                min_tail -= 1
            min_q[min_tail] = t
            min_tail += 1
            while max_tail > max_head and x[max_q[max_tail - 1]] <= v:
                max_tail -= 1
            max_q[max_tail] = t
            max_tail += 1
        if t >= window and x[t - window] != x[t - window]:
            nan_count -= 1
        while min_tail > min_head and min_q[min_head] <= t - window:
            min_head += 1
        while max_tail > max_head and max_q[max_head] <= t - window:
            max_head += 1
        if t >= window - 1 and nan_count == 0:
            min_out[t] = x[min_q[min_head]]
            max_out[t] = x[max_q[max_head]]
        else:
            min_out[t] = np.nan
            max_out[t] = np.nan


log_return = njit(cache=True, error_model="numpy")(log_return_py)
rolling_mean_std = njit(cache=True, error_model="numpy")(rolling_mean_std_py)
rolling_corr_cov = njit(cache=True, error_model="numpy")(rolling_corr_cov_py)
rolling_skew = njit(cache=True, error_model="numpy")(rolling_skew_py)
rolling_min_max = njit(cache=True, error_model="numpy")(rolling_min_max_py)
