"""Champion against challenger: a paired date-block bootstrap of the AUC difference per head.

Both models score the same evaluation rows. Each bootstrap replicate draws
whole dates (every ticker of a date together, so a market-wide day stays
one observation) in stationary blocks of consecutive dates
(:func:`engine.evaluation.stationary_bootstrap_indices`), and both models'
AUCs are computed on that same replicate: the difference is paired, so the
interval reflects how much the *difference* varies, not each AUC alone.

The rule (:func:`compare_models`): promote the challenger only when

1. it is **no worse on any head by its interval**: no head's interval of
   ``AUC(challenger) - AUC(champion)`` lies entirely below 0; and
2. it is **better pooled**: the mean difference over the heads is above 0
   *and so is its interval's lower bound*.

The second half of 2 is stricter than "better on the pooled point
estimate". On pure noise the point estimate is above 0 half of the time,
so a point-estimate rule would replace the champion with a coin flip; with
the interval the rate is about ``(1 - level) / 2`` (tested on simulated
noise).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = (rng.uniform(size=(600, 1)) < 0.5).astype(float)
>>> days = np.repeat(np.arange(120), 5).astype("datetime64[D]")
>>> old = rng.uniform(size=(600, 1))                     # no skill
>>> new = np.clip(0.5 * y + 0.5 * rng.uniform(size=(600, 1)), 0, 1)   # skill
>>> result = compare_models(days, y, old, new, ["head"], n_boot=200)
>>> result.promote, round(result.heads[0].challenger_auc, 2) > 0.7
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.evaluation import block_length, stationary_bootstrap_indices

__all__ = ["Comparison", "HeadComparison", "compare_models", "weighted_auc"]

#: Cells per chunk of replicate weight matrices (~16 MB of float64).
_CHUNK_CELLS = 2_000_000


@dataclass
class HeadComparison:
    """One head's AUCs and the interval of their difference."""

    pattern: str
    labelled: int
    base_rate: float | None
    champion_auc: float | None
    challenger_auc: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def evaluable(self) -> bool:
        """Both classes present: the AUCs exist."""
        return self.difference is not None

    @property
    def worse(self) -> bool:
        """The challenger is worse by the interval (its upper bound below 0)."""
        return self.ci_high is not None and self.ci_high < 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``worse``."""
        return {**asdict(self), "worse": self.worse}


@dataclass
class Comparison:
    """Per-head and pooled differences, and the decision."""

    heads: list[HeadComparison]
    pooled: float | None
    pooled_low: float | None
    pooled_high: float | None
    promote: bool
    reason: str
    n_rows: int
    n_dates: int
    block: float
    n_boot: int
    level: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "heads": [h.to_dict() for h in self.heads],
            "pooled": {
                "difference": self.pooled,
                "ci_low": self.pooled_low,
                "ci_high": self.pooled_high,
            },
            "promote": self.promote,
            "reason": self.reason,
            "n_rows": self.n_rows,
            "n_dates": self.n_dates,
            "block": self.block,
            "n_boot": self.n_boot,
            "level": self.level,
        }


def weighted_auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of ``p`` for 0/1 ``y`` with row weights, one value per row of ``weights``.

    A row weight ``w`` counts the row ``w`` times (ties count one half), so
    integer weights give the AUC of the resample that repeats each row that
    often.

    Parameters
    ----------
    y : ndarray, shape (n,)
        0/1 outcomes.
    p : ndarray, shape (n,)
        Scores.
    weights : ndarray, shape (B, n)
        Non-negative row weights, one replicate per row.

    Returns
    -------
    ndarray, shape (B,)
        NaN where a replicate holds only one class.

    Examples
    --------
    >>> y = np.array([0.0, 0.0, 1.0, 1.0])
    >>> p = np.array([0.1, 0.4, 0.35, 0.8])
    >>> weighted_auc(y, p, np.ones((1, 4)))                  # 3 of 4 pairs ordered
    array([0.75])
    >>> weighted_auc(y, p, np.array([[1.0, 0.0, 1.0, 1.0]]))  # the 0.4 row left out
    array([1.])
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    values, codes = np.unique(np.asarray(p, dtype=np.float64), return_inverse=True)
    k = values.size
    b = w.shape[0]
    offset = (np.arange(b) * k)[:, None]
    tallies = []
    for cls in (y == 0.0, y == 1.0):
        cc = codes[cls][None, :] + offset
        tally = np.bincount(cc.ravel(), weights=w[:, cls].ravel(), minlength=b * k)
        tallies.append(tally.reshape(b, k))
    neg, pos = tallies
    below = np.cumsum(neg, axis=1) - neg
    u = (pos * (below + 0.5 * neg)).sum(axis=1)
    n0, n1 = neg.sum(axis=1), pos.sum(axis=1)
    out = np.full(b, np.nan)
    ok = (n0 > 0) & (n1 > 0)
    out[ok] = u[ok] / (n0[ok] * n1[ok])
    return out


def _date_codes(dates: np.ndarray) -> tuple[np.ndarray, int]:
    days = np.asarray(dates).astype("datetime64[D]")
    unique, codes = np.unique(days, return_inverse=True)
    return codes, unique.size


def compare_models(
    dates,
    y,
    champion,
    challenger,
    patterns: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    block: float | None = None,
    min_block: float = 5.0,
) -> Comparison:
    """Paired date-block bootstrap of ``AUC(challenger) - AUC(champion)`` per head, and the rule.

    Parameters
    ----------
    dates : array_like, shape (n,)
        Date of each evaluation row (any order; rows of one date are drawn together).
    y : ndarray, shape (n, n_patterns)
        Labels: 1, 0, NaN (no event).
    champion, challenger : ndarray, shape (n, n_patterns)
        Each model's confidence on the same rows.
    patterns : sequence of str
    n_boot : int
        Replicates.
    seed : int
    level : float
        Two-sided level of the percentile intervals.
    block : float, optional
        Mean block length in dates. Default: the larger of ``min_block`` and
        :func:`engine.evaluation.block_length` of the per-date totals of
        ``(2y - 1) * (challenger - champion)`` (each head's rows), the
        dependence of the score difference over time.
    min_block : float
        Floor of the default block (5: labels span 5 trading days).

    Returns
    -------
    Comparison
    """
    y = np.asarray(y, dtype=np.float64)
    a = np.asarray(champion, dtype=np.float64)
    c = np.asarray(challenger, dtype=np.float64)
    n, k = y.shape
    if a.shape != y.shape or c.shape != y.shape or len(patterns) != k:
        raise ValueError(
            f"labels {y.shape}, champion {a.shape} and challenger {c.shape} must have one column "
            f"per pattern ({len(patterns)})"
        )
    codes, n_dates = _date_codes(np.asarray(dates))
    if block is None:
        signed = np.where(np.isnan(y), 0.0, (2.0 * np.nan_to_num(y) - 1.0) * (c - a))
        per_date = np.zeros((n_dates, k))
        np.add.at(per_date, codes, signed)
        block = max(min_block, block_length(*per_date.T)) if n_dates >= 10 else min_block
    block = float(min(block, max(n_dates / 2.0, 1.0)))
    heads = [(j, ~np.isnan(y[:, j])) for j in range(k)]
    point = []
    for j, rows in heads:
        one = np.ones((1, int(rows.sum())))
        point.append(
            (
                weighted_auc(y[rows, j], a[rows, j], one)[0] if rows.any() else np.nan,
                weighted_auc(y[rows, j], c[rows, j], one)[0] if rows.any() else np.nan,
            )
        )
    diffs: list[list[np.ndarray]] = [[] for _ in range(k)]
    per_chunk = max(1, _CHUNK_CELLS // max(n_dates, n))
    drawn = 0
    for idx in stationary_bootstrap_indices(n_dates, block, n_boot, seed):
        for part in range(0, idx.shape[0], per_chunk):
            chunk = idx[part : part + per_chunk]
            r = chunk.shape[0]
            flat = (chunk + (np.arange(r) * n_dates)[:, None]).ravel()
            counts = np.bincount(flat, minlength=r * n_dates).reshape(r, n_dates).astype(float)
            for j, rows in heads:
                if not rows.any():
                    continue
                w = counts[:, codes[rows]]
                diffs[j].append(
                    weighted_auc(y[rows, j], c[rows, j], w)
                    - weighted_auc(y[rows, j], a[rows, j], w)
                )
            drawn += r
    alpha = (1.0 - level) / 2.0
    results = []
    replicate_means = []
    for (j, rows), (auc_a, auc_c) in zip(heads, point, strict=True):
        labelled = int(rows.sum())
        rate = float(y[rows, j].mean()) if labelled else None
        if not (np.isfinite(auc_a) and np.isfinite(auc_c)):
            results.append(
                HeadComparison(patterns[j], labelled, rate, None, None, None, None, None)
            )
            continue
        reps = np.concatenate(diffs[j])
        good = reps[np.isfinite(reps)]
        lo, hi = (float(q) for q in np.quantile(good, [alpha, 1.0 - alpha]))
        results.append(
            HeadComparison(
                patterns[j],
                labelled,
                rate,
                float(auc_a),
                float(auc_c),
                float(auc_c - auc_a),
                lo,
                hi,
            )
        )
        replicate_means.append(reps)
    return _decide(results, replicate_means, alpha, n, n_dates, block, drawn, level)


def _decide(
    heads: list[HeadComparison],
    replicates: list[np.ndarray],
    alpha: float,
    n: int,
    n_dates: int,
    block: float,
    n_boot: int,
    level: float,
) -> Comparison:
    evaluable = [h for h in heads if h.evaluable]
    if not evaluable:
        return Comparison(
            heads,
            None,
            None,
            None,
            False,
            "no head has both outcomes in the evaluation window; champion kept",
            n,
            n_dates,
            block,
            n_boot,
            level,
        )
    pooled = float(np.mean([h.difference for h in evaluable]))
    stacked = np.vstack(replicates)
    per_rep = np.nanmean(stacked, axis=0)  # a head with one class in a replicate is left out
    per_rep = per_rep[np.isfinite(per_rep)]
    lo, hi = (float(q) for q in np.quantile(per_rep, [alpha, 1.0 - alpha]))
    worse = [h.pattern for h in evaluable if h.worse]
    pct = f"{level:.0%}"
    if worse:
        reason = (
            f"challenger worse on {', '.join(worse)} by its {pct} interval "
            "(upper bound below 0); champion kept"
        )
        promote = False
    elif pooled <= 0.0:
        reason = f"pooled AUC difference {pooled:+.4f} is not above 0; champion kept"
        promote = False
    elif lo <= 0.0:
        reason = (
            f"pooled AUC difference {pooled:+.4f} but its {pct} interval "
            f"[{lo:+.4f}, {hi:+.4f}] includes 0: not better than noise; champion kept"
        )
        promote = False
    else:
        reason = (
            f"no head worse by its {pct} interval and pooled AUC difference "
            f"{pooled:+.4f} [{lo:+.4f}, {hi:+.4f}] above 0; challenger promoted"
        )
        promote = True
    return Comparison(heads, pooled, lo, hi, promote, reason, n, n_dates, block, n_boot, level)
