r"""Sharpe ratio and its inference: the probabilistic and the deflated Sharpe ratio.

:func:`sharpe_ratio` is the one Sharpe ratio of the project: the backtest
reports it annualised, the formulas below use it per period. A series of
constant returns has no Sharpe ratio (zero standard deviation): it returns
``None``, never NaN or infinity, and :func:`probabilistic_sharpe_ratio` and
:func:`deflated_sharpe_ratio` raise on it.

:func:`probabilistic_sharpe_ratio`, :func:`expected_max_sharpe`,
:func:`deflated_sharpe_ratio` follow Bailey & Lopez de Prado (2012, 2014);
they need the **per-period** Sharpe ratio, ``sharpe_ratio(r, periods_per_year=1)``.
:func:`check_returns` and :func:`check_periods_per_year` validate the inputs
of any returns metric with one wording.

Examples
--------
>>> r = [0.01, -0.01, 0.02, 0.0]
>>> round(sharpe_ratio(r, periods_per_year=1), 6), round(sharpe_ratio(r), 4)
(0.387298, 6.1482)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import kurtosis, skew

__all__ = [
    "PERIODS_PER_YEAR",
    "check_periods_per_year",
    "check_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
]

#: Trading days per year: the default annualisation factor.
PERIODS_PER_YEAR = 252
_EULER_GAMMA = 0.5772156649015329


def check_returns(returns, name: str = "returns", *, min_size: int = 2) -> np.ndarray:
    """Validate a series of per-period returns and return it as float64.

    Parameters
    ----------
    returns : array_like
        Per-period returns in time order.
    name : str, default "returns"
        Name of the argument, used in the error messages.
    min_size : int, default 2
        Fewest values accepted.

    Returns
    -------
    numpy.ndarray
        The returns, 1-D float64.

    Raises
    ------
    ValueError
        If the series is not 1-D, has fewer than ``min_size`` values, or holds
        a NaN or an infinity (the message gives the first bad index and value).

    Examples
    --------
    >>> check_returns([0.01, 0.02]).dtype
    dtype('float64')
    >>> check_returns([0.01, float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: `returns` must be finite, got `returns[1]=nan`
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {r.shape}")
    if r.size < min_size:
        raise ValueError(f"`{name}` needs at least {min_size} values, got {r.size}")
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"`{name}` must be finite, got `{name}[{i}]={r[i]}`")
    return r


def check_periods_per_year(periods_per_year) -> float:
    """Validate an annualisation factor (a positive, finite number) and return it as float.

    Examples
    --------
    >>> check_periods_per_year(252)
    252.0
    >>> check_periods_per_year(0)
    Traceback (most recent call last):
    ...
    ValueError: `periods_per_year` must be a positive number, got `periods_per_year=0`
    """
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0.0):
        raise ValueError(
            "`periods_per_year` must be a positive number, "
            f"got `periods_per_year={periods_per_year}`"
        )
    return ppy


def sharpe_ratio(returns, periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """Sharpe ratio ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``; ``None`` if undefined.

    Returns are per period (e.g. daily) and in excess of the risk-free rate
    (pass excess returns; the backtest takes the rate as zero). The default
    annualises daily returns; ``periods_per_year=1`` gives the per-period
    value that :func:`probabilistic_sharpe_ratio` and
    :func:`deflated_sharpe_ratio` use (their ``sr_benchmark`` and
    ``trial_sharpes`` are per period too).

    Parameters
    ----------
    returns : array_like
        Per-period returns in time order: finite, 1-D, at least 2 values.
    periods_per_year : float, default 252
        Annualisation factor; the result scales with its square root.

    Returns
    -------
    float or None
        ``None`` when the returns are constant (every value equal, so the
        standard deviation is zero and the ratio undefined; tested exactly,
        as the computed standard deviation of a constant series can be
        rounding noise instead of 0). Reports show it as "undefined".

    Raises
    ------
    ValueError
        On returns that are not a finite 1-D series of at least 2 values, or
        a ``periods_per_year`` that is not a positive number.

    Examples
    --------
    >>> round(sharpe_ratio([0.01, -0.01, 0.02, 0.0]), 4)
    6.1482
    >>> sharpe_ratio([0.01, -0.01, 0.02, 0.0], periods_per_year=1)
    0.3872983346207417
    >>> sharpe_ratio([0.001, 0.001, 0.001]) is None
    True
    """
    r = check_returns(returns)
    ppy = check_periods_per_year(periods_per_year)
    if np.ptp(r) == 0.0:
        return None
    return float(r.mean() / r.std(ddof=1) * math.sqrt(ppy))


def probabilistic_sharpe_ratio(returns, sr_benchmark: float = 0.0) -> float:
    r"""Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (Bailey & Lopez de Prado).

    .. math::

        \mathrm{PSR}(SR^*) = \Phi\left(
            \frac{(\widehat{SR} - SR^*)\sqrt{n - 1}}
                 {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}
        \right)

    with ``SR`` the per-period Sharpe ratio
    (``sharpe_ratio(returns, periods_per_year=1)``), ``gamma_3`` the sample
    skewness and ``gamma_4`` the sample (non-excess, normal = 3) kurtosis,
    both the biased moment estimators (``scipy.stats.skew``,
    ``scipy.stats.kurtosis(fisher=False)``).

    Parameters
    ----------
    returns : array_like
        Per-period excess returns in time order (at least 3, not constant).
    sr_benchmark : float, default 0.0
        Benchmark Sharpe ratio **per period** (same units as the returns).

    Returns
    -------
    float
        In [0, 1]; NaN in the degenerate case where the estimated variance of
        the Sharpe ratio is not positive. (The formula assumes i.i.d. returns.)

    Raises
    ------
    ValueError
        On returns that are not a finite 1-D series of at least 3 values, or
        constant returns: their Sharpe ratio (:func:`sharpe_ratio` gives
        ``None``) and so the probability are undefined.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.random.default_rng(0).normal(0.001, 0.01, 1000)
    >>> round(probabilistic_sharpe_ratio(r), 4)
    0.9532
    """
    return _psr(returns, float(sr_benchmark), "probabilistic Sharpe ratio")


def _psr(returns, sr_star: float, what: str) -> float:
    """PSR of ``returns`` against ``sr_star``; ``what`` names the caller's ratio in errors."""
    r = check_returns(returns, min_size=3)
    sr = sharpe_ratio(r, periods_per_year=1)
    if sr is None:
        raise ValueError(
            f"`returns` is constant (every value {r[0]}): its Sharpe ratio is undefined, "
            f"and so is the {what}"
        )
    n = r.size
    g3 = float(skew(r))
    g4 = float(kurtosis(r, fisher=False))
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if not var > 0.0:
        return math.nan
    return float(ndtr((sr - sr_star) * math.sqrt(n - 1.0) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    r"""Expected maximum of ``n_trials`` Sharpe ratios under the null of no skill.

    .. math::

        SR_0 = \sqrt{V}\left((1 - \gamma)\Phi^{-1}\left(1 - \frac1N\right)
              + \gamma\,\Phi^{-1}\left(1 - \frac1{N e}\right)\right)

    with ``gamma`` the Euler-Mascheroni constant and ``V`` the variance of
    the trials' (per-period) Sharpe ratios. ``N = 1`` gives 0.

    Examples
    --------
    >>> expected_max_sharpe(1, 0.01)
    0.0
    >>> round(expected_max_sharpe(100, 0.01), 4)
    0.2531
    """
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"`n_trials` must be an integer >= 1, got `n_trials={n_trials}`")
    if not sr_variance >= 0.0:
        raise ValueError(f"`sr_variance` must be >= 0, got `sr_variance={sr_variance}`")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    z = (1.0 - _EULER_GAMMA) * ndtri(1.0 - 1.0 / n) + _EULER_GAMMA * ndtri(1.0 - 1.0 / (n * math.e))
    return float(math.sqrt(sr_variance) * z)


def deflated_sharpe_ratio(
    returns,
    n_trials: int | None = None,
    *,
    sr_variance: float | None = None,
    trial_sharpes=None,
) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): PSR against the best of N null trials.

    ``DSR = PSR(SR_0)`` with ``SR_0 = expected_max_sharpe(n_trials, V)``:
    the probability that the selected strategy's true Sharpe ratio beats the
    maximum that ``n_trials`` skill-less trials would be expected to reach.

    Parameters
    ----------
    returns : array_like
        Per-period excess returns of the **selected** strategy.
    n_trials : int, optional
        Number of (independent) trials the selection was made from; default
        ``len(trial_sharpes)``.
    sr_variance : float, optional
        Variance of the trials' per-period Sharpe ratios.
    trial_sharpes : array_like, optional
        The trials' per-period Sharpe ratios
        (``sharpe_ratio(trial_returns, periods_per_year=1)``, all defined);
        ``V`` is their ``ddof=1`` variance. Give exactly one of
        ``sr_variance`` and ``trial_sharpes``.

    Returns
    -------
    float
        In [0, 1]; falls as ``n_trials`` or ``V`` grows.

    Raises
    ------
    ValueError
        On constant ``returns`` (their Sharpe ratio is undefined, and so is
        the DSR), returns as refused by :func:`probabilistic_sharpe_ratio`,
        or bad trial arguments.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.random.default_rng(0).normal(0.001, 0.01, 1000)
    >>> dsr_10 = deflated_sharpe_ratio(r, 10, sr_variance=0.001)
    >>> dsr_1000 = deflated_sharpe_ratio(r, 1000, sr_variance=0.001)
    >>> bool(dsr_1000 < dsr_10 < probabilistic_sharpe_ratio(r))
    True
    """
    if (sr_variance is None) == (trial_sharpes is None):
        raise ValueError("give exactly one of `sr_variance` and `trial_sharpes`")
    if trial_sharpes is not None:
        ts = np.asarray(trial_sharpes, dtype=np.float64)
        if ts.ndim != 1 or ts.size < 2 or not np.all(np.isfinite(ts)):
            raise ValueError("`trial_sharpes` must be a finite 1-D array with at least 2 values")
        sr_variance = float(ts.var(ddof=1))
        if n_trials is None:
            n_trials = ts.size
    if n_trials is None:
        raise ValueError("`n_trials` is required with `sr_variance`")
    sr0 = expected_max_sharpe(n_trials, float(sr_variance))
    return _psr(returns, sr0, "deflated Sharpe ratio")
