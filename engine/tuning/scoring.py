"""The tuning objective and its intervals: skill against the base rate, out of sample only.

Two objectives, each a *skill* (0 = no skill, higher is better):

* ``"log_loss_skill"`` (default): ``1 - LL_model / LL_reference`` with the
  masked cross-entropy pooled over every labelled (sample, head) pair, and
  the reference the base-rate forecast of each head on the same rows (its
  log loss is the entropy of the base rate). It is a proper scoring rule:
  it rewards calibrated confidences, which the meta-labeling threshold
  needs (a 0.6 threshold means something only for calibrated
  probabilities); it pools heads the way the training loss does; and it is
  stable on few events, where AUC per head is noisy.
* ``"auc"``: the mean over heads with both outcomes of ``AUC - 0.5``. It
  ignores calibration, so it favours focal loss and class weights, which
  move probabilities away from the base rate.

The reference rates are fixed from the rows being scored (per window for
validation and test), so a model must beat a base rate it could only have
known in hindsight. Intervals are date-block bootstraps: whole dates (every
ticker of a day together) resampled in stationary blocks of data-driven
mean length (:func:`engine.evaluation.block_length`), so cross-sectional
and serial dependence are kept.

Examples
--------
>>> import numpy as np
>>> y = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
>>> rates = base_rates(y)
>>> rates
array([0.5       , 0.33333333])
>>> round(skill(y, np.where(np.isnan(y), 0.5, np.nan_to_num(y) * 0.6 + 0.2), rates), 4)
0.6664
>>> skill(y, np.tile(rates, (4, 1)), rates)   # the base rate itself has no skill
0.0
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from engine.evaluation import block_length, stationary_bootstrap_indices

__all__ = [
    "OBJECTIVES",
    "base_rates",
    "loss_terms",
    "monthly_skill",
    "paired_interval",
    "skill",
    "skill_interval",
]

#: The objectives ``engine tune --objective`` accepts.
OBJECTIVES = ("log_loss_skill", "auc")
_EPS = 1e-7


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def base_rates(y: np.ndarray) -> np.ndarray:
    """Share of positives per head among its labelled rows (NaN for a head without labels)."""
    y = np.asarray(y, dtype=np.float64)
    n = (~np.isnan(y)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.nansum(y, axis=0) / np.maximum(n, 1), np.nan)


def loss_terms(y: np.ndarray, p: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-entry cross-entropy of the model and of the base-rate forecast; 0 where unlabelled.

    Confidences and rates are clipped to ``[1e-7, 1 - 1e-7]``, as in training.
    """
    y = np.asarray(y, dtype=np.float64)
    mask = ~np.isnan(y)
    t = np.where(mask, y, 0.0)
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    r = np.clip(np.nan_to_num(np.asarray(rates, dtype=np.float64), nan=0.5), _EPS, 1 - _EPS)
    model = -(t * np.log(q) + (1 - t) * np.log1p(-q))
    ref = -(t * np.log(r) + (1 - t) * np.log1p(-r))
    return np.where(mask, model, 0.0), np.where(mask, ref, 0.0)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUC (average ranks for ties); NaN without both outcomes."""
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _mean_auc_skill(y: np.ndarray, p: np.ndarray) -> float:
    values = []
    for j in range(y.shape[1]):
        labelled = ~np.isnan(y[:, j])
        a = _auc(y[labelled, j], p[labelled, j])
        if not math.isnan(a):
            values.append(a - 0.5)
    return float(np.mean(values)) if values else math.nan


def skill(y: np.ndarray, p: np.ndarray, rates: np.ndarray, objective: str = "log_loss_skill"):
    """Skill of confidences ``p`` on labels ``y`` (see the module docstring).

    Parameters
    ----------
    y : ndarray, shape (n, n_patterns)
        1, 0 or NaN (no event).
    p : ndarray, shape (n, n_patterns)
    rates : ndarray, shape (n_patterns,)
        Reference base rates (:func:`base_rates` of the rows' window).
    objective : {"log_loss_skill", "auc"}

    Returns
    -------
    float
        NaN when undefined (no labelled entry, or no head with both outcomes).
    """
    _check_objective(objective)
    y = np.asarray(y, dtype=np.float64)
    if objective == "auc":
        return _mean_auc_skill(y, np.asarray(p, dtype=np.float64))
    model, ref = loss_terms(y, p, rates)
    total = ref.sum()
    return float(1.0 - model.sum() / total) if total > 0 else math.nan


def monthly_skill(
    months: np.ndarray, y: np.ndarray, p: np.ndarray, rates: np.ndarray, objective: str
) -> tuple[np.ndarray, np.ndarray]:
    """Skill per calendar month: the rows of the PBO matrix.

    Parameters
    ----------
    months : ndarray of datetime64[M]
        Month of each row.
    y, p, rates, objective
        As for :func:`skill`; ``rates`` may be per row, shape ``(n, n_patterns)``.

    Returns
    -------
    months : ndarray of datetime64[M]
        Sorted months that hold at least one labelled entry.
    values : ndarray of float
        Skill of each month (NaN where a month's skill is undefined).
    """
    _check_objective(objective)
    rates = np.broadcast_to(np.asarray(rates, dtype=np.float64), np.shape(y))
    keys = np.unique(months)
    out_m, out_v = [], []
    for m in keys:
        rows = months == m
        if not (~np.isnan(y[rows])).any():
            continue
        if objective == "auc":
            value = _mean_auc_skill(y[rows], p[rows])
        else:
            model, ref = loss_terms(y[rows], p[rows], rates[rows])
            value = 1.0 - model.sum() / ref.sum() if ref.sum() > 0 else math.nan
        out_m.append(m)
        out_v.append(value)
    return np.array(out_m, dtype="datetime64[M]"), np.array(out_v, dtype=np.float64)


def _by_date(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by date: ``codes`` per row, the row order and each date's start offset."""
    _, codes = np.unique(dates, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(codes.max() + 2))
    return codes, order, starts


def _replicates(per_date: np.ndarray, n_boot: int, seed: int):
    block = block_length(per_date)
    return stationary_bootstrap_indices(per_date.size, block, n_boot, seed)


def _percentiles(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    low, high = np.quantile(values, [a, 1.0 - a])
    return float(low), float(high)


def _gather(order: np.ndarray, starts: np.ndarray, draw: np.ndarray) -> np.ndarray:
    return np.concatenate([order[starts[d] : starts[d + 1]] for d in draw])


def skill_interval(
    dates: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    rates: np.ndarray,
    objective: str = "log_loss_skill",
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Skill with its 95 % date-block bootstrap interval.

    Parameters
    ----------
    dates : ndarray
        Date of each row (any order; rows of one date are resampled together).
    y, p, objective
        As for :func:`skill`.
    rates : ndarray, shape (n_patterns,) or (n, n_patterns)
        Reference base rates, fixed (per row when the rows span several windows).
    n_boot, seed : int

    Returns
    -------
    (skill, low, high)
    """
    return paired_interval(dates, y, p, None, rates, objective, n_boot=n_boot, seed=seed)


def paired_interval(
    dates: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    p_other: np.ndarray | None,
    rates: np.ndarray,
    objective: str = "log_loss_skill",
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Skill of ``p`` minus skill of ``p_other`` on the same rows, with a paired interval.

    Both skills are computed on every bootstrap replicate from the same
    resampled dates, so what the two have in common (the rows' difficulty)
    cancels. ``p_other=None`` gives the skill of ``p`` and its interval.

    Returns
    -------
    (difference, low, high)
    """
    _check_objective(objective)
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    rates = np.broadcast_to(np.asarray(rates, dtype=np.float64), y.shape)
    codes, order, starts = _by_date(np.asarray(dates))
    n_dates = int(codes.max()) + 1
    if objective == "log_loss_skill":
        model, ref = loss_terms(y, p, rates)
        if p_other is not None:
            other, _ = loss_terms(y, p_other, rates)
        else:
            other = ref
        # skill(p) - skill(other) = (sum other - sum model) / sum ref, per replicate
        gain_d = np.bincount(codes, (other - model).sum(axis=1), minlength=n_dates)
        ref_d = np.bincount(codes, ref.sum(axis=1), minlength=n_dates)
        point = gain_d.sum() / ref_d.sum() if ref_d.sum() > 0 else math.nan
        per_date = np.divide(gain_d, ref_d, out=np.zeros_like(gain_d), where=ref_d > 0)
        draws = []
        for idx in _replicates(per_date, n_boot, seed):
            den = ref_d[idx].sum(axis=1)
            draws.append(
                np.where(den > 0, gain_d[idx].sum(axis=1) / np.maximum(den, 1e-300), np.nan)
            )
        low, high = _percentiles(np.concatenate(draws))
        return float(point), low, high

    def stat(rows: np.ndarray) -> float:
        value = _mean_auc_skill(y[rows], p[rows])
        if p_other is not None:
            value -= _mean_auc_skill(y[rows], np.asarray(p_other, dtype=np.float64)[rows])
        return value

    point = stat(np.arange(y.shape[0]))
    model, ref = loss_terms(y, p, rates)  # the block length follows the loss gain per date
    per_date = np.bincount(codes, (ref - model).sum(axis=1), minlength=n_dates)
    values = [stat(_gather(order, starts, draw)) for idx in _replicates(per_date, n_boot, seed)
              for draw in idx]  # fmt: skip
    low, high = _percentiles(np.array(values))
    return float(point), low, high
