r"""Honest out-of-sample skill: every metric with a block-bootstrap interval and a no-skill p-value.

:func:`evaluate` scores one series of binary outcomes ``y`` against
confidences ``p`` **in time order** (oldest sample first) with the metrics of
:mod:`engine.evaluation.classification`, each with a 95 % stationary-bootstrap
interval (:mod:`engine.evaluation.bootstrap`) and a one-sided p-value
against "no skill". :func:`evaluate_frame` does the same per pattern,
optionally per ticker, from a long prediction frame.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=400)
>>> y = (rng.uniform(size=400) < p).astype(float)   # outcome follows the score
>>> res = evaluate(y, p, n_boot=200, seed=1)
>>> bool(res.metrics["auc"].ci_low > 0.5), bool(res.metrics["auc"].p_value < 0.01)
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.evaluation.bootstrap import (
    block_length,
    check_bootstrap_settings,
    stationary_bootstrap_indices,
)
from engine.evaluation.classification import (
    ACCURACY_THRESHOLD,
    METRICS,
    _check_yp,
    _corr_rows,
    _entropy,
    _log_loss_terms,
    _require_both_classes,
)
from engine.labels.targets import CONFIDENCE_SUFFIX

__all__ = ["Evaluation", "MetricResult", "evaluate", "evaluate_frame"]


def _replicate_stats(
    y: np.ndarray, p: np.ndarray, idx: np.ndarray, codes: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """All statistics (and their no-skill contrasts) for each row of ``idx``."""
    b, n = idx.shape
    yy = y[idx]
    pp = p[idx]
    n1 = yy.sum(axis=1)
    n0 = n - n1
    rate = n1 / n
    # AUC by counting, per replicate, the non-events below each distinct
    # confidence value (dense codes of p are precomputed): O(n + k) per row.
    cc = codes[idx] + (np.arange(b) * k)[:, None]
    neg = np.bincount(cc[yy == 0.0], minlength=b * k).reshape(b, k).astype(np.float64)
    posc = np.bincount(cc[yy == 1.0], minlength=b * k).reshape(b, k).astype(np.float64)
    below = np.cumsum(neg, axis=1) - neg
    u = (posc * (below + 0.5 * neg)).sum(axis=1)
    both = (n1 > 0) & (n0 > 0)
    auc_b = np.full(b, np.nan)
    auc_b[both] = u[both] / (n1[both] * n0[both])
    acc = ((pp >= ACCURACY_THRESHOLD) == (yy == 1.0)).mean(axis=1)
    maj = np.maximum(rate, 1.0 - rate)
    bri = ((pp - yy) ** 2).mean(axis=1)
    ll = _log_loss_terms(yy, pp).mean(axis=1)
    pb = _corr_rows(pp, yy)
    pb[~both] = np.nan
    return {
        "auc": auc_b,
        "accuracy": acc,
        "brier": bri,
        "log_loss": ll,
        "point_biserial": pb,
        # contrasts whose no-skill value is 0 and where larger means more skill
        "skill:auc": auc_b - 0.5,
        "skill:accuracy": acc - maj,
        "skill:brier": rate * (1.0 - rate) - bri,
        "skill:log_loss": _entropy(rate) - ll,
        "skill:point_biserial": pb,
    }


@dataclass(frozen=True)
class MetricResult:
    """One metric with its bootstrap interval and no-skill test.

    Attributes
    ----------
    estimate : float
        Value on the full sample.
    ci_low, ci_high : float
        Percentile interval from the stationary bootstrap.
    p_value : float
        One-sided p-value against the no-skill null ``null``.
    null : str
        The null hypothesis in words.
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    null: str


_NULLS = {
    "auc": "AUC <= 0.5",
    "accuracy": "accuracy <= majority-class rate",
    "brier": "Brier >= base-rate forecast's pi(1-pi)",
    "log_loss": "log loss >= base-rate entropy",
    "point_biserial": "correlation <= 0",
}


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    n, events : int
        Sample size and number of outcomes equal to 1.
    base_rate, majority_rate : float
        ``events / n`` and ``max(base_rate, 1 - base_rate)``.
    brier_reference, log_loss_reference : float
        Scores of the constant base-rate forecast (the no-skill references).
    block_length : float
        Mean block length of the stationary bootstrap.
    n_boot : int
        Bootstrap replicates.
    level : float
        Interval coverage.
    metrics : dict of str to MetricResult
        Keyed by :data:`METRICS`.
    """

    n: int
    events: int
    base_rate: float
    majority_rate: float
    brier_reference: float
    log_loss_reference: float
    block_length: float
    n_boot: int
    level: float
    metrics: dict[str, MetricResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float | int]:
        """Flat dict: ``n, events, ..., auc, auc_ci_low, auc_ci_high, auc_p_value, ...``."""
        out: dict[str, float | int] = {
            "n": self.n,
            "events": self.events,
            "base_rate": self.base_rate,
            "majority_rate": self.majority_rate,
            "brier_reference": self.brier_reference,
            "log_loss_reference": self.log_loss_reference,
            "block_length": self.block_length,
            "n_boot": self.n_boot,
        }
        for name in METRICS:
            m = self.metrics[name]
            out[name] = m.estimate
            out[f"{name}_ci_low"] = m.ci_low
            out[f"{name}_ci_high"] = m.ci_high
            out[f"{name}_p_value"] = m.p_value
        return out


def evaluate(
    y,
    p,
    *,
    n_boot: int = 1000,
    seed=0,
    level: float = 0.95,
    block: float | None = None,
) -> Evaluation:
    r"""Every metric with a stationary-bootstrap interval and a one-sided no-skill p-value.

    Parameters
    ----------
    y : array_like of {0, 1}
        Outcomes **in time order** (oldest first).
    p : array_like of float in [0, 1]
        Confidences, aligned with ``y``.
    n_boot : int, default 1000
        Bootstrap replicates (all metrics share the same replicates).
    seed : int or numpy.random.Generator, default 0
        ``np.random.default_rng(seed)`` is passed as ``seed=`` to arch.
    level : float, default 0.95
        Two-sided coverage of the intervals.
    block : float, optional
        Mean block length; default :func:`block_length` (see Notes).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        If ``y`` holds one class only (AUC and correlation are undefined and
        "skill" cannot be tested), or on bad input.

    Notes
    -----
    **Resampling.** ``(y_t, p_t)`` pairs are resampled jointly by the
    stationary bootstrap (random blocks of consecutive samples, geometric
    lengths with mean ``block``), which keeps the serial dependence within
    each series and between them. The default mean block length is the
    largest :func:`arch.bootstrap.optimal_block_length` estimate over four
    series in time order: ``y``, ``p``, the per-sample Brier contributions
    ``(p - y)^2`` and the per-sample covariance contributions
    ``(p - mean p)(y - mean y)``. The metrics' sampling variances are driven
    by the autocovariances of these series (the last one is the influence
    series of the point-biserial numerator and tracks that of AUC); the
    maximum errs on the side of wider intervals.

    **Intervals** are percentile intervals of the ``n_boot`` replicates of
    each metric. Replicates in which a class is absent (AUC, correlation
    undefined) are dropped from that metric.

    **p-values.** Each metric is turned into a contrast ``d`` that is 0 under
    no skill and grows with skill: ``AUC - 0.5``, ``accuracy - majority
    rate``, ``pi(1-pi) - Brier``, ``H(pi) - log loss`` (with ``pi`` and the
    entropy ``H`` recomputed in each replicate) and the correlation. The
    bootstrap distribution of the centred contrast ``d* - d_hat``
    approximates that of ``d_hat - d`` under the truth; the one-sided p-value
    is the share of replicates at least as far above ``d_hat`` as ``d_hat``
    is above 0,

    .. math:: p = \frac{1 + \#\{b : d^*_b - \hat d \ge \hat d - 0\}}{1 + B}.

    The references for Brier and log loss use the evaluated sample's own base
    rate, which no real forecaster knows in advance, so those two tests are
    conservative; likewise a threshold rule independent of ``y`` has expected
    accuracy at most the majority rate.

    **Calibration, measured** (nulls with persistent outcomes and scores, both
    from independent AR(1) latents, 5 % level): AUC test rejects in 3.5 % of
    200 sets at ``phi = 0.8, n = 500`` (the interval covers 0.5 in 95.0 %),
    in 7.9 % of 800 sets at ``phi = 0.5, n = 300`` and in 6.0 % of 800 i.i.d.
    sets at ``n = 300``; an i.i.d. bootstrap (``block=1``) rejects in 17 % at
    ``phi = 0.8``. A circular-shift permutation null for AUC gave 5.75 % and
    6.5 % on the first two designs: not enough better to justify a second
    construction that cannot test Brier or log loss against the base rate.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> y = (rng.uniform(size=300) < 0.4).astype(float)
    >>> p = rng.uniform(size=300)              # no skill
    >>> res = evaluate(y, p, n_boot=200, seed=0)
    >>> res.n, res.events
    (300, 125)
    >>> bool(res.metrics["auc"].ci_low < 0.5 < res.metrics["auc"].ci_high)
    True
    """
    y, p = _check_yp(y, p)
    _require_both_classes(y, "evaluate")
    check_bootstrap_settings(n_boot, level)
    n = y.size
    events = int(y.sum())
    rate = events / n
    if block is None:
        blk = block_length(y, p, (p - y) ** 2, (p - p.mean()) * (y - rate))
    else:
        if not block >= 1.0:
            raise ValueError(f"`block` must be >= 1, got `block={block}`")
        blk = float(block)

    _, codes = np.unique(p, return_inverse=True)
    k = int(codes.max()) + 1
    full = _replicate_stats(y, p, np.arange(n)[None, :], codes, k)
    chunks = stationary_bootstrap_indices(n, blk, n_boot, seed)
    parts = [_replicate_stats(y, p, idx, codes, k) for idx in chunks]
    reps = {key: np.concatenate([part[key] for part in parts]) for key in full}

    alpha = (1.0 - level) / 2.0
    metrics: dict[str, MetricResult] = {}
    for name in METRICS:
        est = float(full[name][0])
        r = reps[name][np.isfinite(reps[name])]
        d_hat = float(full[f"skill:{name}"][0])
        d = reps[f"skill:{name}"]
        d = d[np.isfinite(d)]
        if r.size == 0 or not math.isfinite(est):
            lo = hi = pv = math.nan
        else:
            lo, hi = (float(v) for v in np.quantile(r, [alpha, 1.0 - alpha]))
            pv = float((1.0 + np.sum(d - d_hat >= d_hat)) / (1.0 + d.size))
        metrics[name] = MetricResult(est, lo, hi, pv, _NULLS[name])
    return Evaluation(
        n=n,
        events=events,
        base_rate=rate,
        majority_rate=max(rate, 1.0 - rate),
        brier_reference=rate * (1.0 - rate),
        log_loss_reference=float(_entropy(np.array([rate]))[0]),
        block_length=blk,
        n_boot=int(n_boot),
        level=level,
        metrics=metrics,
    )


def _result_schema(by: Sequence[str], frame_schema) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    for col in by:
        schema[col] = pl.String if col == "pattern" else frame_schema[col]
    schema.update({"n": pl.Int64, "events": pl.Int64})
    for col in (
        "base_rate",
        "majority_rate",
        "brier_reference",
        "log_loss_reference",
        "block_length",
    ):
        schema[col] = pl.Float64
    schema["n_boot"] = pl.Int64
    for name in METRICS:
        for suffix in ("", "_ci_low", "_ci_high", "_p_value"):
            schema[f"{name}{suffix}"] = pl.Float64
    return schema


def evaluate_frame(
    predictions: pl.DataFrame,
    patterns: Sequence[str],
    *,
    by: Sequence[str] = ("pattern",),
    n_boot: int = 1000,
    seed=0,
    level: float = 0.95,
) -> pl.DataFrame:
    """Evaluate each pattern (optionally each pattern and ticker) from a long prediction frame.

    Parameters
    ----------
    predictions : polars.DataFrame
        Long frame with columns ``ticker``, ``date`` and, for each pattern
        ``name``, the outcome column ``name`` (nullable 0/1: null where the
        pattern has no event) and the confidence column ``name + "_p"``
        (:data:`CONFIDENCE_SUFFIX`).
    patterns : sequence of str
        Pattern names to evaluate.
    by : sequence of str, default ("pattern",)
        ``("pattern",)`` pools all tickers; ``("pattern", "ticker")`` gives
        one row per pattern and ticker. Must start with ``"pattern"``; other
        entries are columns of ``predictions``.
    n_boot, seed, level
        As in :func:`evaluate`; every group uses the same ``seed``.

    Returns
    -------
    polars.DataFrame
        One row per group, sorted by ``by``: the group keys, ``n``,
        ``events``, ``base_rate``, ``majority_rate``, ``brier_reference``,
        ``log_loss_reference``, ``block_length``, ``n_boot``, then for each
        metric ``m`` in :data:`METRICS` the columns ``m``, ``m_ci_low``,
        ``m_ci_high`` and ``m_p_value``. A group whose outcomes are all one
        class keeps its counts and base rate, with null metrics.

    Raises
    ------
    ValueError
        On missing columns, a ``by`` not starting with ``"pattern"``, or a
        null/out-of-range confidence on a row whose outcome is not null.

    Notes
    -----
    Only rows with a non-null outcome are used. Within a group the rows are
    sorted by ``date`` (then by ``ticker``), so the stationary bootstrap
    resamples blocks of consecutive dates; in a pooled group a block spans
    the tickers that share those dates, which keeps cross-sectional
    dependence on a day together with the serial dependence.

    Examples
    --------
    >>> import datetime as dt
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> n = 200
    >>> p = rng.uniform(size=n)
    >>> y = (rng.uniform(size=n) < p).astype(float)
    >>> y[::4] = np.nan                                   # no event on these days
    >>> frame = pl.DataFrame({
    ...     "ticker": ["AAA", "BBB"] * (n // 2),
    ...     "date": [dt.date(2020, 1, 1) + dt.timedelta(days=i // 2) for i in range(n)],
    ...     "momentum_persistence": y,
    ...     "momentum_persistence_p": p,
    ... }).with_columns(pl.col("momentum_persistence").fill_nan(None))
    >>> out = evaluate_frame(frame, ["momentum_persistence"], by=("pattern", "ticker"), n_boot=100)
    >>> out.select("pattern", "ticker", "n").rows()
    [('momentum_persistence', 'AAA', 50), ('momentum_persistence', 'BBB', 100)]
    """
    by = tuple(by)
    if not by or by[0] != "pattern":
        raise ValueError(f"`by` must start with 'pattern', got `by={by}`")
    keys = by[1:]
    needed = ["ticker", "date", *keys]
    for name in patterns:
        needed += [name, name + CONFIDENCE_SUFFIX]
    missing = [c for c in dict.fromkeys(needed) if c not in predictions.columns]
    if missing:
        raise ValueError(f"`predictions` lacks columns {missing}")
    check_bootstrap_settings(n_boot, level)

    schema = _result_schema(by, predictions.schema)
    rows: list[dict] = []
    for name in patterns:
        conf = name + CONFIDENCE_SUFFIX
        sub = predictions.filter(pl.col(name).is_not_null()).select(
            *dict.fromkeys(["ticker", "date", *keys]),
            pl.col(name).cast(pl.Float64).alias("_y"),
            pl.col(conf).cast(pl.Float64).alias("_p"),
        )
        bad = sub.filter(pl.col("_p").is_null() | pl.col("_p").is_nan())
        if bad.height:
            raise ValueError(
                f"pattern {name!r}: {bad.height} rows have an outcome but no confidence in {conf!r}"
            )
        if sub.height == 0:
            if not keys:  # the pooled row still says that the pattern has no labelled row
                rows.append({"pattern": name, "n": 0, "events": 0, "n_boot": int(n_boot)})
            continue
        groups = sub.partition_by(list(keys), as_dict=True) if keys else {(): sub}
        for key, g in groups.items():
            g = g.sort(["date", "ticker"])
            y = g["_y"].to_numpy()
            p = g["_p"].to_numpy()
            row: dict = {"pattern": name, **dict(zip(keys, key, strict=True))}
            events = int(y.sum())
            if events in (0, y.size):
                _check_yp(y, p)
                rate = events / y.size
                row.update(
                    n=y.size,
                    events=events,
                    base_rate=rate,
                    majority_rate=max(rate, 1.0 - rate),
                    brier_reference=0.0,
                    log_loss_reference=0.0,
                    n_boot=int(n_boot),
                )
            else:
                res = evaluate(y, p, n_boot=n_boot, seed=seed, level=level)
                row.update(res.to_dict())
            rows.append(row)
    return pl.DataFrame(rows, schema=schema).sort(list(by))
