r"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, López de Prado and Zhu (2017), "The probability of backtest
overfitting". Given the per-period performance of ``N`` configurations over
``T`` periods (a ``(T, N)`` matrix: daily returns, or monthly skill), CSCV

1. cuts the rows into ``S`` contiguous blocks (``S`` even);
2. for each of the ``C(S, S/2)`` ways to pick half of the blocks as the
   in-sample set ``J`` (the other half ``J'`` out of sample), computes every
   configuration's performance statistic on ``J`` and on ``J'``;
3. takes the in-sample best ``n*``, the relative rank ``w`` of its
   out-of-sample performance among the ``N`` (``rank / (N + 1)``, average
   ranks for ties) and the logit ``lambda = ln(w / (1 - w))``;
4. reports PBO, the share of splits with ``lambda <= 0`` (the in-sample best
   is at or below the out-of-sample median); the probability of
   out-of-sample loss, the share of splits where ``n*`` performs below zero
   out of sample; and the degradation slope, the least-squares slope of the
   out-of-sample on the in-sample performance of ``n*`` across splits.

Conventions on a tie (``lambda = 0``, possible for odd ``N``): esvhd/pypbo
counts it as overfit (``<=``), eslazarev/purged-cross-validation does not
(``<``); ``ties="overfit"`` (the default, the cautious one) and
``ties="not_overfit"`` select them. Ties in the in-sample ranking go to the
first configuration.

Everything is vectorised over the splits: block sums are computed once and
each split's statistics are a matrix product of the split's block indicator
with them (chunks of splits bound the memory).

Examples
--------
>>> import numpy as np
>>> m = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
>>> result = cscv_pbo(m, n_blocks=4)
>>> result.n_splits, result.pbo
(6, 1.0)
>>> cscv_pbo(m, n_blocks=4, ties="not_overfit").pbo   # 4 of the 6 splits are ties
0.3333333333333333
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np

__all__ = ["PBOResult", "cscv_pbo"]

Statistic = Literal["mean", "sharpe"]
Ties = Literal["overfit", "not_overfit"]
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class PBOResult:
    """CSCV of one performance matrix.

    Attributes
    ----------
    pbo : float
        Probability of backtest overfitting: the share of splits whose
        in-sample best ranks at or below the out-of-sample median
        (``lambda <= 0``; ``< 0`` with ``ties="not_overfit"``).
    prob_oos_loss : float
        Share of splits where the in-sample best performs below zero out of
        sample.
    slope, intercept : float
        Least-squares line of the out-of-sample on the in-sample performance
        of the in-sample best across splits (a slope near 0 or below: the
        in-sample edge does not carry over). NaN when the in-sample values
        do not vary.
    n_splits, n_blocks, n_configurations, n_periods : int
    statistic : str
        ``"mean"`` or ``"sharpe"`` (per period, ``ddof = 1``).
    ties : str
    logits : ndarray
        ``lambda`` of every split.
    in_sample, out_of_sample : ndarray
        Performance of the in-sample best of every split, in and out of sample.
    """

    pbo: float
    prob_oos_loss: float
    slope: float
    intercept: float
    n_splits: int
    n_blocks: int
    n_configurations: int
    n_periods: int
    statistic: str
    ties: str
    logits: np.ndarray = field(repr=False)
    in_sample: np.ndarray = field(repr=False)
    out_of_sample: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-split arrays)."""

        def plain(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "pbo": float(self.pbo),
            "prob_oos_loss": float(self.prob_oos_loss),
            "degradation_slope": plain(self.slope),
            "degradation_intercept": plain(self.intercept),
            "n_splits": self.n_splits,
            "n_blocks": self.n_blocks,
            "n_configurations": self.n_configurations,
            "n_periods": self.n_periods,
            "statistic": self.statistic,
            "ties": self.ties,
        }


def _check(performance, n_blocks: int, statistic: str, ties: str) -> np.ndarray:
    m = np.asarray(performance, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"`performance` must be a (periods, configurations) matrix, got {m.shape}")
    t, n = m.shape
    if n < 2:
        raise ValueError(f"CSCV compares configurations: need at least 2 columns, got {n}")
    bad = np.argwhere(~np.isfinite(m))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise ValueError(f"`performance` must be finite, got `performance[{i}, {j}]={m[i, j]}`")
    if isinstance(n_blocks, bool) or int(n_blocks) != n_blocks or n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"`n_blocks` must be an even integer >= 2, got `n_blocks={n_blocks}`")
    min_rows = n_blocks * (2 if statistic == "sharpe" else 1)
    if t < min_rows:
        raise ValueError(
            f"{t} periods are too few for {n_blocks} blocks of the {statistic!r} statistic "
            f"(need at least {min_rows})"
        )
    if statistic not in ("mean", "sharpe"):
        raise ValueError(f"`statistic` must be 'mean' or 'sharpe', got {statistic!r}")
    if ties not in ("overfit", "not_overfit"):
        raise ValueError(f"`ties` must be 'overfit' or 'not_overfit', got {ties!r}")
    return m


def _statistic(s1: np.ndarray, s2: np.ndarray, count: np.ndarray, statistic: str) -> np.ndarray:
    """Mean or Sharpe ratio per (split, configuration) from sums, sums of squares and counts."""
    count = count[:, None]
    mean = s1 / count
    if statistic == "mean":
        return mean
    mean_square = s2 / count
    var = np.maximum(s2 - count * mean * mean, 0.0) / (count - 1.0)
    # constant rows: the variance is rounding noise next to the mean square
    flat = var <= 1e-12 * mean_square
    out = np.zeros_like(mean)
    live = ~flat
    out[live] = mean[live] / np.sqrt(var[live])
    # a constant series has no Sharpe ratio; rank it by the sign of its mean (0 stays 0)
    out[flat & (mean > 0)] = np.inf
    out[flat & (mean < 0)] = -np.inf
    return out


def cscv_pbo(
    performance,
    n_blocks: int = 16,
    *,
    statistic: Statistic = "mean",
    ties: Ties = "overfit",
) -> PBOResult:
    """Probability of backtest overfitting of the best of several configurations (CSCV).

    Parameters
    ----------
    performance : array_like, shape (T, N)
        Per-period performance of each configuration, rows in time order
        (e.g. daily returns, or the monthly log-loss skill of each trial).
        Finite, at least 2 columns.
    n_blocks : int, default 16
        ``S``, the number of contiguous row blocks; even, at most ``T`` (at
        most ``T / 2`` for ``"sharpe"``). When ``S`` does not divide ``T``
        the first ``T mod S`` blocks get one row more
        (``numpy.array_split``); the statistics pool the rows of the chosen
        blocks, so blocks of unequal size weigh by their rows.
    statistic : {"mean", "sharpe"}, default "mean"
        Performance of a configuration on a set of rows: the mean, or the
        Sharpe ratio ``mean / sd`` (``ddof = 1``; a constant series ranks by
        the sign of its mean) for returns.
    ties : {"overfit", "not_overfit"}, default "overfit"
        Whether ``lambda = 0`` (the in-sample best exactly at the
        out-of-sample median) counts as overfit.

    Returns
    -------
    PBOResult

    Raises
    ------
    ValueError
        A matrix that is not 2-D, has fewer than 2 columns or a non-finite
        value (named by position), an odd or too large ``n_blocks``, or an
        unknown ``statistic`` / ``ties``.

    Notes
    -----
    PBO is a diagnostic of the *ranking*, not of skill: when every
    configuration is equally good, the in-sample best is a coin flip out of
    sample and PBO sits near 0.5 although any configuration would do.
    """
    m = _check(performance, n_blocks, statistic, ties)
    t, n = m.shape
    blocks = np.array_split(np.arange(t), n_blocks)
    b1 = np.stack([m[b].sum(axis=0) for b in blocks])  # (S, N)
    b2 = np.stack([(m[b] ** 2).sum(axis=0) for b in blocks])
    bc = np.array([b.size for b in blocks], dtype=np.float64)
    total1, total2, total_c = b1.sum(axis=0), b2.sum(axis=0), bc.sum()

    picks = np.array(list(combinations(range(n_blocks), n_blocks // 2)), dtype=np.int64)
    indicator = np.zeros((picks.shape[0], n_blocks))
    indicator[np.arange(picks.shape[0])[:, None], picks] = 1.0

    logits, best_is, best_oos = [], [], []
    rows = max(1, _CHUNK_CELLS // n)
    for lo in range(0, indicator.shape[0], rows):
        g = indicator[lo : lo + rows]
        s1, s2, c = g @ b1, g @ b2, g @ bc
        in_sample = _statistic(s1, s2, c, statistic)
        out = _statistic(total1 - s1, total2 - s2, total_c - c, statistic)
        star = np.argmax(in_sample, axis=1)
        r = np.arange(g.shape[0])
        value = out[r, star]
        below = (out < value[:, None]).sum(axis=1)
        equal = (out == value[:, None]).sum(axis=1)  # includes n* itself
        rank = below + (equal + 1) / 2.0
        w = rank / (n + 1.0)
        logits.append(np.log(w / (1.0 - w)))
        best_is.append(in_sample[r, star])
        best_oos.append(value)
    lam = np.concatenate(logits)
    is_best = np.concatenate(best_is)
    oos_best = np.concatenate(best_oos)
    overfit = lam <= 0.0 if ties == "overfit" else lam < 0.0
    slope, intercept = _line(is_best, oos_best)
    return PBOResult(
        pbo=float(overfit.mean()),
        prob_oos_loss=float((oos_best < 0.0).mean()),
        slope=slope,
        intercept=intercept,
        n_splits=int(lam.size),
        n_blocks=int(n_blocks),
        n_configurations=int(n),
        n_periods=int(t),
        statistic=statistic,
        ties=ties,
        logits=lam,
        in_sample=is_best,
        out_of_sample=oos_best,
    )


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = intercept + slope * x`` over the finite pairs; NaN if x is constant."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0.0:
        return math.nan, math.nan
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return slope, float(y.mean() - slope * x.mean())
