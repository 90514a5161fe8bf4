"""Shared oracles: each rolling kernel beside an independent pandas and naive version.

``REFERENCES[name]`` maps to ``{"kernel", "pandas", "naive"}``; each is a
function ``f(x, y, window) -> ndarray`` (``y`` is ignored by one-input
statistics). The kernel tests and ``bench/`` use the same registry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kernels.rolling import (
    log_return,
    rolling_corr_cov,
    rolling_mean_std,
    rolling_min_max,
    rolling_skew,
)


def _mean_std(x, window):
    mean = np.empty_like(x)
    std = np.empty_like(x)
    rolling_mean_std(x, window, mean, std)
    return mean, std


def _corr_cov(x, y, window):
    outs = [np.empty_like(x) for _ in range(4)]
    rolling_corr_cov(x, y, window, *outs)
    return outs  # corr, cov, var_y, constant


def _min_max(x, window):
    lo = np.empty_like(x)
    hi = np.empty_like(x)
    rolling_min_max(x, window, lo, hi)
    return lo, hi


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


def _naive_corr(a, b):
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da * da).sum() * (db * db).sum())
    return (da * db).sum() / den if den > 0 else np.nan


def _naive_skew(w):
    n = w.shape[0]
    d = w - w.mean()
    m2, m3 = (d * d).mean(), (d**3).mean()
    return np.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5 if m2 > 0 else np.nan


REFERENCES = {
    "log_return": {
        "kernel": lambda x, y, w: log_return(x, w),
        "pandas": lambda x, y, w: np.log(pd.Series(x) / pd.Series(x).shift(w)).to_numpy(),
        "naive": lambda x, y, w: np.array(
            [np.log(x[t] / x[t - w]) if t >= w else np.nan for t in range(len(x))]
        ),
    },
    "rolling_mean": {
        "kernel": lambda x, y, w: _mean_std(x, w)[0],
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).mean().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, np.mean),
    },
    "rolling_std": {
        "kernel": lambda x, y, w: _mean_std(x, w)[1],
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).std().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, lambda a: a.std(ddof=1)),
    },
    "rolling_corr": {
        "kernel": lambda x, y, w: _corr_cov(x, y, w)[0],
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).corr(pd.Series(y)).to_numpy(),
        "naive": lambda x, y, w: _naive_pair(x, y, w, _naive_corr),
    },
    "rolling_cov": {
        "kernel": lambda x, y, w: _corr_cov(x, y, w)[1],
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).cov(pd.Series(y)).to_numpy(),
        "naive": lambda x, y, w: _naive_pair(x, y, w, lambda a, b: np.cov(a, b)[0, 1]),
    },
    "rolling_skew": {
        "kernel": lambda x, y, w: rolling_skew(x, w),
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).skew().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, _naive_skew),
    },
    "rolling_min": {
        "kernel": lambda x, y, w: _min_max(x, w)[0],
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).min().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, np.min),
    },
    "rolling_max": {
        "kernel": lambda x, y, w: _min_max(x, w)[1],
        "pandas": lambda x, y, w: pd.Series(x).rolling(w).max().to_numpy(),
        "naive": lambda x, y, w: _naive_window(x, w, np.max),
    },
}
