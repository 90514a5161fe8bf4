"""GARCH(1,1) by ``arch``: fits, one-step forecasts and the rolling forecast of SPEC 3.

The reference model is the SPEC's, ``arch.arch_model(y, mean="Constant",
vol="GARCH", p=1, q=1, dist="normal")``, on returns in percent. The rolling
forecast follows the SPEC's schedule (and the one ``kernels.garch``
documents): a fit on the trailing ``min(run, 1000)`` returns once a run of
consecutive returns reaches 252, a refit every 21 days, parameters held
fixed in between while the variance recursion advances daily; a missing
return ends the run. Every number comes from ``arch`` itself: the fit's
``forecast(horizon=1)`` on a refit day, and the fixed-parameter model
(``fix``) over the window extended to day ``t`` on the days between.
"""

from __future__ import annotations

import warnings

import numpy as np
from arch import arch_model

REFIT_EVERY = 21
MAX_WINDOW = 1000
MIN_OBS = 252
PERCENT = 100.0


def garch_model(y: np.ndarray):
    """The SPEC's reference model on returns in percent ``y``."""
    return arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")


def arch_fit(y: np.ndarray):
    """arch's QMLE fit of ``y`` (returns in percent); its convergence warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return garch_model(y).fit(disp="off")


def arch_params(y: np.ndarray) -> np.ndarray:
    """``(mu, omega, alpha, beta)`` as arch estimates them on ``y``."""
    return arch_fit(y).params.to_numpy()


def next_variance(result) -> float:
    """One-step-ahead variance after the last observation of a fitted (or fixed) model."""
    return float(result.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])


def fixed_forecasts(y: np.ndarray, params, start: int) -> np.ndarray:
    """One-step variances forecast at each of ``y[start:]`` with ``params`` held fixed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = garch_model(y).fix(params)
        return fixed.forecast(horizon=1, start=start, reindex=False).variance.to_numpy()[:, 0]


def refit_schedule(
    r: np.ndarray,
    refit_every: int = REFIT_EVERY,
    max_window: int = MAX_WINDOW,
    min_obs: int = MIN_OBS,
) -> list[tuple[int, int]]:
    """``(t, window length)`` of every refit of the rolling forecast over returns ``r``."""
    out = []
    run, last, fitted = 0, 0, False
    for t, v in enumerate(r):
        if np.isnan(v):
            run, fitted = 0, False
            continue
        run += 1
        if run < min_obs:
            continue
        if not fitted or t - last >= refit_every:
            out.append((t, min(run, max_window)))
            last, fitted = t, True
    return out


def arch_rolling_sigma(
    r: np.ndarray,
    refit_every: int = REFIT_EVERY,
    max_window: int = MAX_WINDOW,
    min_obs: int = MIN_OBS,
) -> np.ndarray:
    """``sigma_hat(t+1 | t)`` in decimal for every day of log returns ``r`` (NaN where none).

    One arch fit per refit, then one fixed-parameter forecast pass over the
    days up to the next refit (or the end of the run).
    """
    r = np.asarray(r, dtype=np.float64)
    n = r.shape[0]
    sigma = np.full(n, np.nan)
    schedule = refit_schedule(r, refit_every, max_window, min_obs)
    refits = {t for t, _ in schedule}
    for t_fit, m in schedule:
        first = t_fit - m + 1
        end = t_fit  # the last day forecast with this fit's parameters
        while end + 1 < n and np.isfinite(r[end + 1]) and end + 1 not in refits:
            end += 1
        result = arch_fit(PERCENT * r[first : t_fit + 1])
        sigma[t_fit] = np.sqrt(next_variance(result)) / PERCENT
        if end > t_fit:
            var = fixed_forecasts(PERCENT * r[first : end + 1], result.params, t_fit + 1 - first)
            sigma[t_fit + 1 : end + 1] = np.sqrt(var) / PERCENT
    return sigma
