"""Rolling-window statistics over 1-D float64 arrays.

Conventions shared by every kernel here:

* ``out[t]`` uses ``x[t - window + 1 .. t]`` only (causal, right-aligned).
* A window that is incomplete or holds any NaN gives NaN (pandas'
  ``rolling(window)`` with the default ``min_periods=window``).
* Variances are sample variances (ddof = 1). Moments are updated online with
  Welford's add/remove formulas, which stay accurate for prices far from
  zero where the textbook sum-of-squares formula loses every digit. Rounding
  error in the running sum of squared deviations is absolute, so it is kept
  relative by recomputing the window exactly (two passes) whenever that sum
  falls below ``_RECOMPUTE_BELOW`` times its peak since the last exact
  computation: a large value leaving the window, or a calm stretch after a
  volatile one.
* A window whose values are all equal has variance exactly 0 (tracked by
  the length of the current run of equal values, as pandas does), so
  "zero denominator" fallbacks fire exactly.

Each kernel has a pure-Python twin (suffix ``_py``) that is the same source
run by the interpreter; tests assert the two agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import register_jitable

from kernels._typing import Float64Array1D

# Relative accuracy is about 1e-16 * steps / _RECOMPUTE_BELOW; on ordinary
# price and return series the recomputation almost never fires.
_RECOMPUTE_BELOW = 1e-4


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
    n = x.shape[0]
    count = 0  # finite values inside the window
    mean = 0.0
    m2 = 0.0
    peak = 0.0  # largest m2 since the last exact computation
    run = 0  # length of the run of equal finite values ending at t
    for t in range(n):
        v = x[t]
        if v == v:
            count += 1
            d = v - mean
            mean += d / count
            m2 += d * (v - mean)
            if run > 0 and v == x[t - 1]:
                run += 1
            else:
                run = 1
        else:
            run = 0
        if t >= window:
            old = x[t - window]
            if old == old:
                count -= 1
                if count == 0:
                    mean = 0.0
                    m2 = 0.0
                    peak = 0.0
                else:
                    d = old - mean
                    mean -= d / count
                    m2 -= d * (old - mean)
                    if m2 < _RECOMPUTE_BELOW * peak:
                        mean, m2 = _exact_moments_py(x, t - window + 1, t + 1)
                        peak = m2
        peak = max(peak, m2)
        if t >= window - 1 and count == window:
            if run >= window:
                mean_out[t] = x[t]
                std_out[t] = 0.0
            else:
                mean_out[t] = mean
                std_out[t] = math.sqrt(m2 / (window - 1)) if m2 > 0.0 else 0.0
        else:
            mean_out[t] = np.nan
            std_out[t] = np.nan


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
    n = x.shape[0]
    count = 0
    mx = 0.0
    my = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    peak_x = 0.0
    peak_y = 0.0
    run_x = 0
    run_y = 0
    for t in range(n):
        a = x[t]
        b = y[t]
        if a == a and b == b:
            count += 1
            dx = a - mx
            dy = b - my
            mx += dx / count
            my += dy / count
            sxx += dx * (a - mx)
            syy += dy * (b - my)
            sxy += dx * (b - my)
            run_x = run_x + 1 if run_x > 0 and a == x[t - 1] else 1
            run_y = run_y + 1 if run_y > 0 and b == y[t - 1] else 1
        else:
            run_x = 0
            run_y = 0
        if t >= window:
            a = x[t - window]
            b = y[t - window]
            if a == a and b == b:
                count -= 1
                if count == 0:
                    mx = my = sxx = syy = sxy = peak_x = peak_y = 0.0
                else:
                    dx = a - mx
                    dy = b - my
                    mx -= dx / count
                    my -= dy / count
                    sxx -= dx * (a - mx)
                    syy -= dy * (b - my)
                    sxy -= dx * (b - my)
                    if sxx < _RECOMPUTE_BELOW * peak_x or syy < _RECOMPUTE_BELOW * peak_y:
                        mx, my, sxx, syy, sxy = _exact_comoments_py(x, y, t - window + 1, t + 1)
                        peak_x = sxx
                        peak_y = syy
        peak_x = max(peak_x, sxx)
        peak_y = max(peak_y, syy)
        if t >= window - 1 and count == window:
            const_x = run_x >= window
            const_y = run_y >= window
            vx = 0.0 if const_x else max(sxx, 0.0)
            vy = 0.0 if const_y else max(syy, 0.0)
            cov_out[t] = 0.0 if (const_x or const_y) else sxy / (window - 1)
            var_y_out[t] = vy / (window - 1)
            den = math.sqrt(vx) * math.sqrt(vy)  # not sqrt(vx * vy): that can underflow
            if den > 0.0:
                corr_out[t] = sxy / den
                constant_out[t] = 0.0
            else:
                corr_out[t] = np.nan
                constant_out[t] = 1.0
        else:
            corr_out[t] = np.nan
            cov_out[t] = np.nan
            var_y_out[t] = np.nan
            constant_out[t] = np.nan


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
def rolling_skew_py(x: Float64Array1D, window: int) -> Float64Array1D:
    """Rolling bias-corrected skewness, as pandas ``rolling(window).skew()``.

    Computed exactly (two passes) over each window: windows are short, and
    running third moments lose accuracy. A window with zero variance gives
    NaN, as pandas does.

    Examples
    --------
    >>> import numpy as np
    >>> rolling_skew(np.array([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]), 3).round(4)
    array([    nan,     nan,  0.9352,  0.9352, -1.7321,     nan])
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    nan_count = 0
    for t in range(n):
        if x[t] != x[t]:
            nan_count += 1
        if t >= window and x[t - window] != x[t - window]:
            nan_count -= 1
        if t < window - 1 or nan_count > 0:
            continue
        mean = 0.0
        for i in range(t - window + 1, t + 1):
            mean += x[i]
        mean /= window
        m2 = 0.0
        m3 = 0.0
        for i in range(t - window + 1, t + 1):
            d = x[i] - mean
            m2 += d * d
            m3 += d * d * d
        if m2 <= 0.0:
            continue
        m2 /= window
        m3 /= window
        out[t] = math.sqrt(window * (window - 1.0)) / (window - 2.0) * m3 / m2**1.5
    return out


@register_jitable(error_model="numpy")
def rolling_min_max_py(
    x: Float64Array1D, window: int, min_out: Float64Array1D, max_out: Float64Array1D
) -> None:
    """Rolling minimum and maximum with monotonic index deques (O(n)), into the outputs.

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
