r"""Sharpe inference of backtest runs: the probabilistic and the deflated Sharpe ratio.

Every Sharpe ratio a backtest shows is one its user looked at, and the one
they keep is the best of those. :func:`sharpe_inference` gives each run

* its **PSR** against 0 (:func:`engine.evaluation.sharpe.probabilistic_sharpe_ratio`):
  the probability that the run's true Sharpe ratio is above 0, given the
  length, skewness and kurtosis of its daily returns;
* its **DSR** (:func:`engine.evaluation.sharpe.deflated_sharpe_ratio`): the
  same probability against :math:`SR_0`, the largest Sharpe ratio that
  ``N`` skill-less trials would be expected to reach (Bailey & Lopez de
  Prado 2014).

``N`` is the number of trials the selection was made from. One ``engine
backtest`` shows at least two (the unfiltered and the filtered run); a user
who tried other strategies, heads or thresholds declares the total with
``--trials``. The pipeline counts every (strategy, unfiltered/filtered) run
it backtested.

``V``, the variance of the trials' per-day Sharpe ratios, is estimated from
the runs at hand. Two or six runs estimate it poorly, and the runs of one
backtest are not independent trials: the filtered run holds a subset of the
unfiltered run's positions, so their Sharpe ratios sit closer together than
two unrelated strategies' would, and ``V`` comes out too small (a small
``V`` lowers :math:`SR_0` and flatters the DSR). So ``V`` is floored at the
variance of the Sharpe estimator of one run,

.. math::

    V_{\min} = \frac{1 + \widehat{SR}^2 / 2}{T}

(Lo 2002, i.i.d. returns; :math:`\widehat{SR}` the largest per-day Sharpe
ratio in absolute value among the runs, :math:`T` the fewest days of a
run). That is the spread a skill-less trial's estimate shows around its
true value: ``N`` independent skill-less trials cannot have Sharpe ratios
that vary less than each estimate does on its own. The floor only makes the
DSR more conservative; the report says whether the runs' variance or the
floor was used.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> runs = {"noise": rng.normal(0.0, 0.01, 1000), "drift": rng.normal(0.002, 0.01, 1000)}
>>> out = sharpe_inference(runs)
>>> out["n_trials"], out["sr_variance_source"]
(2, 'runs')
>>> bool(out["dsr"]["drift"] > 0.95 > out["dsr"]["noise"])
True
>>> sharpe_inference(runs, n_trials=100)["dsr"]["drift"] < out["dsr"]["drift"]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.evaluation import (
    PERIODS_PER_YEAR,
    check_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)

__all__ = ["inference_line", "probabilistic_sharpe", "sharpe_inference", "sharpe_variance_floor"]


def sharpe_variance_floor(sharpes, n_days: int) -> float:
    """``(1 + SR^2 / 2) / T``: the variance of one run's per-day Sharpe estimator.

    Parameters
    ----------
    sharpes : array_like
        Per-day Sharpe ratios of the runs (the largest in absolute value is
        used; none gives ``SR = 0``).
    n_days : int
        ``T``, the number of daily returns (the fewest among the runs).

    Examples
    --------
    >>> sharpe_variance_floor([0.0], 1000)
    0.001
    >>> sharpe_variance_floor([0.1, -0.2], 100)
    0.0102
    """
    if int(n_days) != n_days or n_days < 1:
        raise ValueError(f"`n_days` must be an integer >= 1, got `n_days={n_days}`")
    values = np.abs(np.asarray(sharpes, dtype=np.float64))
    sr = float(values.max()) if values.size else 0.0
    return (1.0 + sr * sr / 2.0) / float(n_days)


def probabilistic_sharpe(returns) -> float | None:
    """PSR against 0 of daily returns; None when undefined (constant, under 3 days, degenerate)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 3 or sharpe_ratio(r, periods_per_year=1) is None:
        return None
    value = probabilistic_sharpe_ratio(r)
    return None if math.isnan(value) else float(value)


def sharpe_inference(runs: Mapping[str, Any], n_trials: int | None = None) -> dict[str, Any]:
    """PSR and DSR of every run, with the ``N`` and ``V`` of the deflation.

    Parameters
    ----------
    runs : mapping of str to array_like
        Daily returns of each run the user looked at (finite).
    n_trials : int, optional
        ``N``, the trials the selection was made from; default (None) the
        number of runs. Must count at least the runs given.

    Returns
    -------
    dict
        ``n_trials``, ``n_runs``; ``sr_variance`` (``V``, per day, the one
        used), ``sr_variance_runs`` (the ``ddof=1`` variance of the runs'
        per-day Sharpe ratios, None with fewer than 2 defined),
        ``sr_variance_floor`` (:func:`sharpe_variance_floor`) and
        ``sr_variance_source`` (``"runs"`` or ``"floor"``);
        ``expected_max_sharpe`` (``SR_0`` per day) and
        ``expected_max_sharpe_annualised``; ``psr`` and ``dsr``: run name to
        value, None where the run's Sharpe ratio is undefined (constant
        returns, e.g. a filter that never trades).

    Raises
    ------
    ValueError
        No runs, a run that is not a finite series of at least 2 returns,
        or ``n_trials`` below the number of runs.
    """
    if not runs:
        raise ValueError("`runs` must hold at least one run's returns")
    series = {name: check_returns(r, f"runs[{name!r}]") for name, r in runs.items()}
    n_runs = len(series)
    if n_trials is None:
        n_trials = n_runs
    if int(n_trials) != n_trials or n_trials < n_runs:
        raise ValueError(
            f"`trials` must count at least the {n_runs} runs of this backtest "
            f"({', '.join(series)}), got `trials={n_trials}`"
        )
    n_trials = int(n_trials)
    sharpes = {name: sharpe_ratio(r, periods_per_year=1) for name, r in series.items()}
    defined = np.array([s for s in sharpes.values() if s is not None], dtype=np.float64)
    n_days = min(r.size for r in series.values())
    floor = sharpe_variance_floor(defined, n_days)
    from_runs = float(defined.var(ddof=1)) if defined.size >= 2 else None
    use_runs = from_runs is not None and from_runs > floor
    variance = from_runs if use_runs else floor
    sr0 = expected_max_sharpe(n_trials, variance)
    psr, dsr = {}, {}
    for name, r in series.items():
        psr[name] = probabilistic_sharpe(r)
        dsr[name] = None
        if psr[name] is not None:
            value = deflated_sharpe_ratio(r, n_trials, sr_variance=variance)
            dsr[name] = None if math.isnan(value) else float(value)
    return {
        "n_trials": n_trials,
        "n_runs": n_runs,
        "sr_variance": variance,
        "sr_variance_runs": from_runs,
        "sr_variance_floor": floor,
        "sr_variance_source": "runs" if use_runs else "floor",
        "expected_max_sharpe": sr0,
        "expected_max_sharpe_annualised": sr0 * math.sqrt(PERIODS_PER_YEAR),
        "psr": psr,
        "dsr": dsr,
    }


def inference_line(inference: Mapping[str, Any]) -> str:
    """One sentence that says what PSR and DSR are, with ``N`` and ``V``.

    ``inference`` is a :func:`sharpe_inference` result with ``trials``
    added: what the ``N`` trials were (e.g. "the unfiltered and filtered
    runs", "declared").
    """
    source = inference["sr_variance_source"]
    if source == "runs":
        v = f"the variance of the {inference['n_runs']} runs' per-day Sharpe ratios"
    else:
        v = (
            "floored at one run's Sharpe-estimator variance (1 + SR^2/2)/T, as "
            f"{inference['n_runs']} runs estimate it poorly"
        )
    return (
        f"PSR: probability that the true Sharpe ratio is above 0; DSR: above "
        f"{inference['expected_max_sharpe_annualised']:.3f} (annualised), the best of "
        f"N = {inference['n_trials']} skill-less trials ({inference['trials']}), with "
        f"V = {inference['sr_variance']:.3g} ({v})"
    )
