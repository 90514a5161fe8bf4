"""Every oracle by name, beside the code it checks (numbagg's ``COMPARISONS`` habit).

``ORACLES[name]`` maps roles to callables that share one signature. The role
``"kernel"`` or ``"engine"`` is the code under test; every other role is an
independent reference:

* the rolling statistics (:data:`ROLLING_STATISTICS`): ``f(x, y, window) ->
  ndarray``, roles ``kernel``, ``pandas`` and ``naive`` (``y`` is ignored by
  one-input statistics);
* the 17 features (:data:`FEATURE_NAMES`): ``f(bars, **options) -> ndarray``,
  the feature over the output rows sorted by ticker and date, NaN where
  missing; roles ``engine``, ``pandas`` (``garch_vol_ratio``: its forecast
  from arch) and, for the 16 non-GARCH features, ``polars``;
* ``"garch_fit"``: ``f(y) -> (mu, omega, alpha, beta)`` on returns in percent,
  roles ``kernel`` and ``arch``;
* ``"garch_sigma"``: ``f(r) -> ndarray``, the rolling one-step forecast in
  decimal, roles ``kernel`` and ``arch``;
* ``"backtest"``: ``f(open_, close, signal, cost_rate, fill_at_close) ->
  dict`` of the outputs named in :data:`tests.oracles.backtest.OUTPUTS`,
  roles ``kernel`` and ``pandas``.

Build the inputs beforehand and call the roles with them, so a benchmark times
the computation, not the setup.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.features.build import compute_features
from kernels.backtest import simulate_portfolio
from kernels.garch import _TOL as GARCH_TOL  # the fit tolerance the engine runs with
from kernels.garch import (
    GARCH_MAX_WINDOW,
    GARCH_MIN_OBS,
    GARCH_REFIT_EVERY,
    garch_fit,
    garch_prepare,
    garch_start,
    rolling_garch_sigma,
)
from kernels.rolling import (
    log_return,
    rolling_corr_cov,
    rolling_mean_std,
    rolling_min_max,
    rolling_skew,
)
from tests.oracles.backtest import OUTPUTS, reference_backtest
from tests.oracles.features import FEATURE_NAMES, REFERENCE_FEATURES, reference_features
from tests.oracles.features_polars import polars_features
from tests.oracles.garch import arch_params, arch_rolling_sigma
from tests.oracles.rolling import ROLLING_REFERENCES


# ---------------------------------------------------------------------------
# the kernels, each output of a multi-output kernel as its own statistic
# ---------------------------------------------------------------------------
def _mean_std(x, window):
    mean, std = np.empty_like(x), np.empty_like(x)
    rolling_mean_std(x, window, mean, std)
    return mean, std


def _corr_cov(x, y, window):
    outs = [np.empty_like(x) for _ in range(4)]
    rolling_corr_cov(x, y, window, *outs)
    return outs  # corr, cov, var_y, constant


def _min_max(x, window):
    lo, hi = np.empty_like(x), np.empty_like(x)
    rolling_min_max(x, window, lo, hi)
    return lo, hi


ROLLING_KERNELS: dict[str, Callable] = {
    "log_return": lambda x, y, w: log_return(x, w),
    "rolling_mean": lambda x, y, w: _mean_std(x, w)[0],
    "rolling_std": lambda x, y, w: _mean_std(x, w)[1],
    "rolling_var": lambda x, y, w: _corr_cov(x, y, w)[2],
    "rolling_corr": lambda x, y, w: _corr_cov(x, y, w)[0],
    "rolling_cov": lambda x, y, w: _corr_cov(x, y, w)[1],
    "rolling_constant": lambda x, y, w: _corr_cov(x, y, w)[3],
    "rolling_skew": lambda x, y, w: rolling_skew(x, w),
    "rolling_min": lambda x, y, w: _min_max(x, w)[0],
    "rolling_max": lambda x, y, w: _min_max(x, w)[1],
}
ROLLING_STATISTICS: tuple[str, ...] = tuple(ROLLING_KERNELS)


def _kernel_garch_fit(y):
    _, backcast = garch_prepare(y)
    theta, _ = garch_fit(y, backcast, garch_start(y, backcast), GARCH_TOL)
    return theta


def _kernel_backtest(open_, close, signal, cost_rate, fill_at_close):
    arrays = (np.ascontiguousarray(a, dtype=np.float64) for a in (open_, close, signal))
    return dict(zip(OUTPUTS, simulate_portfolio(*arrays, cost_rate, fill_at_close), strict=True))


def _feature_roles(name: str) -> dict[str, Callable]:
    roles = {
        "engine": lambda bars, **kw: compute_features(bars, [name], **kw)[name].to_numpy(),
        "pandas": lambda bars, **kw: reference_features(bars, [name], **kw)[0][name].to_numpy(),
    }
    if name in REFERENCE_FEATURES:
        roles["polars"] = lambda bars, **kw: polars_features(bars, [name], **kw)[name].to_numpy()
    return roles


ORACLES: dict[str, dict[str, Callable]] = {
    **{name: {"kernel": ROLLING_KERNELS[name], **ROLLING_REFERENCES[name]}
       for name in ROLLING_STATISTICS},
    **{name: _feature_roles(name) for name in FEATURE_NAMES},
    "garch_fit": {"kernel": _kernel_garch_fit, "arch": arch_params},
    "garch_sigma": {
        "kernel": lambda r: rolling_garch_sigma(
            r, GARCH_REFIT_EVERY, GARCH_MAX_WINDOW, GARCH_MIN_OBS
        ),
        "arch": arch_rolling_sigma,
    },
    "backtest": {"kernel": _kernel_backtest, "pandas": reference_backtest},
}  # fmt: skip
