"""Rolling statistics by pandas and by a brute-force loop over each window.

Every function has the signature ``f(x, y, window) -> ndarray`` (``y`` is
ignored by one-input statistics), the contract of :mod:`kernels.rolling`:
``out[t]`` uses ``x[t - window + 1 .. t]`` only, and a window that is
incomplete or holds a NaN gives NaN; variances are sample variances (ddof 1).

The pandas versions are ``Series.rolling(window)`` with its defaults. The
naive versions recompute every window from scratch with two-pass NumPy
statistics, exact to rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _naive_window(x, window, stat):
    out = np.full(x.shape[0], np.nan)
    for t in range(window - 1, x.shape[0]):
        w = x[t - window + 1 : t + 1]
        if not np.isnan(w).any():
            out[t] = stat(w)
    return out


def _naive_pair(x, y, window, stat):
    out = np.full(x.shape[0], np.nan)
    for t in range(window - 1, x.shape[0]):
        a = x[t - window + 1 : t + 1]
        b = y[t - window + 1 : t + 1]
        if not (np.isnan(a).any() or np.isnan(b).any()):
            out[t] = stat(a, b)
    return out


def _corr(a, b):
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da * da).sum() * (db * db).sum())
    return (da * db).sum() / den if den > 0 else np.nan


def _skew(w):
    n = w.shape[0]
    d = w - w.mean()
    m2, m3 = (d * d).mean(), (d**3).mean()
    return np.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5 if m2 > 0 else np.nan


def _either_constant(a, b):
    return float(a.min() == a.max() or b.min() == b.max())


def naive_log_return(x, y, lag):
    """``ln(x[t] / x[t - lag])``, NaN for ``t < lag`` or a non-positive price."""
    out = np.full(x.shape[0], np.nan)
    for t in range(lag, x.shape[0]):
        if x[t] > 0 and x[t - lag] > 0:
            out[t] = np.log(x[t] / x[t - lag])
    return out


def pandas_log_return(x, y, lag):
    s = pd.Series(x)
    ratio = (s / s.shift(lag)).where((s > 0) & (s.shift(lag) > 0))
    return np.log(ratio).to_numpy()


def pandas_constant(x, y, window):
    """1.0 where either side is constant over a complete window of pairs, else 0.0."""
    a, b = pd.Series(x), pd.Series(y)
    complete = (a.notna() & b.notna()).astype(float).rolling(window).sum() == window
    const_a = a.rolling(window).max() == a.rolling(window).min()
    const_b = b.rolling(window).max() == b.rolling(window).min()
    return (const_a | const_b).astype(float).where(complete).to_numpy()


#: name -> {"pandas": f, "naive": f}, each ``f(x, y, window) -> ndarray``.
ROLLING_REFERENCES = {
    "log_return": {"pandas": pandas_log_return, "naive": naive_log_return},
    "rolling_mean": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).mean().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, np.mean),
    },
    "rolling_std": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).std().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, lambda a: a.std(ddof=1)),
    },
    "rolling_var": {  # of y, over the windows where both x and y are complete
        "pandas": lambda x, y, w: (
            pd.Series(y).where(pd.Series(x).notna()).rolling(w).var().to_numpy()
        ),
        "naive": lambda x, y, w: _naive_pair(x, y, w, lambda a, b: b.var(ddof=1)),
    },
    "rolling_corr": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).corr(pd.Series(y)).to_numpy(),
        "naive": lambda x, y, w: _naive_pair(x, y, w, _corr),
    },
    "rolling_cov": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).cov(pd.Series(y)).to_numpy(),
        "naive": lambda x, y, w: _naive_pair(x, y, w, lambda a, b: np.cov(a, b)[0, 1]),
    },
    "rolling_constant": {
        "pandas": pandas_constant,
        "naive": lambda x, y, w: _naive_pair(x, y, w, _either_constant),
    },
    "rolling_skew": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).skew().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, _skew),
    },
    "rolling_min": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).min().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, np.min),
    },
    "rolling_max": {
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).max().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, np.max),
    },
}
