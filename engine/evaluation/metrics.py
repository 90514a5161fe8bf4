r"""Honest out-of-sample metrics: point scores, block-bootstrap intervals, no-skill p-values.

Everything here works on a **binary outcome** ``y`` (0/1) and a **confidence**
``p`` in [0, 1] (the sigmoid output of one pattern head), given **in time
order** (oldest sample first). Samples that sit close in time are dependent
(overlapping 5-day label windows, smooth model outputs, volatility clusters),
so an i.i.d. bootstrap would give intervals that are too narrow. Intervals and
p-values here come from the stationary bootstrap of Politis & Romano (1994) as
implemented in :class:`arch.bootstrap.StationaryBootstrap`, with a data-driven
mean block length from :func:`arch.bootstrap.optimal_block_length` (Politis &
White 2004, with the Patton, Politis & White 2009 correction).

Point metrics
    :func:`auc`, :func:`accuracy` (with :func:`majority_rate` beside it),
    :func:`brier`, :func:`log_loss`, :func:`point_biserial`.
Inference
    :func:`evaluate` (one series, every metric with a 95 % interval and a
    one-sided p-value against "no skill"), :func:`evaluate_frame` (per pattern,
    optionally per ticker, from a long prediction frame),
    :func:`bootstrap_interval` (the same resampling machinery for any
    statistic of one series), :func:`block_length`.
Strategy returns
    :func:`sharpe_ratio`, :func:`probabilistic_sharpe_ratio`,
    :func:`expected_max_sharpe`, :func:`deflated_sharpe_ratio` (Bailey &
    Lopez de Prado 2012, 2014).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from arch.bootstrap import StationaryBootstrap, optimal_block_length
from scipy.special import ndtr, ndtri
from scipy.stats import kurtosis, rankdata, skew

from engine.labels.targets import CONFIDENCE_SUFFIX

__all__ = [
    "LOG_LOSS_EPS",
    "METRICS",
    "Evaluation",
    "MetricResult",
    "accuracy",
    "auc",
    "block_length",
    "bootstrap_interval",
    "brier",
    "deflated_sharpe_ratio",
    "evaluate",
    "evaluate_frame",
    "expected_max_sharpe",
    "log_loss",
    "majority_rate",
    "point_biserial",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
]

#: Metrics reported by :func:`evaluate`, in report order.
METRICS: tuple[str, ...] = ("auc", "accuracy", "brier", "log_loss", "point_biserial")
#: :func:`log_loss` clips confidences to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]``.
LOG_LOSS_EPS = 1e-15
#: Threshold of :func:`accuracy`: predict 1 when ``p >= ACCURACY_THRESHOLD``.
ACCURACY_THRESHOLD = 0.5
_EULER_GAMMA = 0.5772156649015329
# Replicate matrices are built in chunks of at most this many cells (~16 MB float64).
_CHUNK_CELLS = 2_000_000


# --------------------------------------------------------------------------- validation


def _check_yp(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(f"`y` and `p` must be 1-D, got shapes {y.shape} and {p.shape}")
    if y.shape != p.shape:
        raise ValueError(f"`y` and `p` must have the same length, got {y.size} and {p.size}")
    if y.size == 0:
        raise ValueError("`y` and `p` are empty")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("`y` must hold only 0 and 1 (no NaN)")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("`p` must lie in [0, 1] (no NaN)")
    return y, p


def _require_both_classes(y: np.ndarray, what: str) -> None:
    events = int(y.sum())
    if events == 0 or events == y.size:
        raise ValueError(
            f"{what} needs both outcome classes, got {events} events out of n={y.size}"
        )


# --------------------------------------------------------------------------- point metrics


def auc(y, p) -> float:
    r"""Area under the ROC curve by the Mann-Whitney rank formula.

    .. math::

        \mathrm{AUC} = \frac{\sum_{i: y_i = 1} R_i - n_1 (n_1 + 1) / 2}{n_1 n_0}

    where ``R_i`` is the rank of ``p_i`` among all ``n`` confidences, tied
    values taking their average rank. This equals the share of
    (event, non-event) pairs ranked the right way, a tie counting 1/2.

    Parameters
    ----------
    y : array_like of {0, 1}
        Outcomes.
    p : array_like of float in [0, 1]
        Confidences (any score works: only the order matters).

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 is no skill.

    Raises
    ------
    ValueError
        If ``y`` holds only one class (AUC is undefined), or on bad input.

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auc([0, 1], [0.5, 0.5])
    0.5
    """
    y, p = _check_yp(y, p)
    _require_both_classes(y, "auc")
    pos = y == 1.0
    n1 = float(pos.sum())
    n0 = y.size - n1
    ranks = rankdata(p, method="average")
    u = ranks[pos].sum() - n1 * (n1 + 1.0) / 2.0
    return float(u / (n1 * n0))


def accuracy(y, p, threshold: float = ACCURACY_THRESHOLD) -> float:
    """Share of correct calls when predicting 1 for ``p >= threshold``.

    Report it next to :func:`majority_rate`: on a base rate of 0.7 an accuracy
    of 0.7 is no skill.

    Parameters
    ----------
    y : array_like of {0, 1}
        Outcomes.
    p : array_like of float in [0, 1]
        Confidences.
    threshold : float, default 0.5
        ``p`` at or above it predicts 1.

    Returns
    -------
    float

    Examples
    --------
    >>> accuracy([0, 1, 1, 0], [0.2, 0.5, 0.9, 0.7])
    0.75
    """
    y, p = _check_yp(y, p)
    return float(np.mean((p >= threshold) == (y == 1.0)))


def majority_rate(y) -> float:
    """Accuracy of always predicting the more frequent class, ``max(pi, 1 - pi)``.

    Examples
    --------
    >>> majority_rate([1, 0, 1, 1])
    0.75
    """
    y, _ = _check_yp(y, np.zeros(np.shape(y)))
    rate = float(y.mean())
    return max(rate, 1.0 - rate)


def brier(y, p) -> float:
    """Brier score ``mean((p - y)**2)``; lower is better.

    The no-skill reference is the base-rate forecast ``p = pi`` with score
    ``pi * (1 - pi)`` (see :func:`evaluate`).

    Examples
    --------
    >>> round(brier([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    y, p = _check_yp(y, p)
    return float(np.mean((p - y) ** 2))


def _log_loss_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return -(y * np.log(q) + (1.0 - y) * np.log1p(-q))


def log_loss(y, p) -> float:
    """Mean negative log-likelihood (binary cross-entropy, natural log); lower is better.

    ``p`` is first clipped to ``[1e-15, 1 - 1e-15]`` (:data:`LOG_LOSS_EPS`),
    so a confident miss costs at most ``-ln(1e-15) = 34.5`` nats instead of
    infinity. The no-skill reference is the entropy of the base rate,
    ``-(pi ln pi + (1 - pi) ln(1 - pi))``.

    Examples
    --------
    >>> round(log_loss([1, 0], [0.5, 0.5]), 6)
    0.693147
    >>> round(log_loss([1], [0.0]), 2)   # clipped, not infinite
    34.54
    """
    y, p = _check_yp(y, p)
    return float(np.mean(_log_loss_terms(y, p)))


def point_biserial(y, p) -> float:
    """Point-biserial correlation: Pearson correlation of ``p`` with the 0/1 ``y``.

    Returns
    -------
    float
        In [-1, 1]; NaN when ``p`` is constant (the correlation is undefined).

    Raises
    ------
    ValueError
        If ``y`` holds only one class.

    Examples
    --------
    >>> round(point_biserial([0, 0, 1, 1], [0.1, 0.3, 0.2, 0.8]), 4)
    0.5571
    """
    y, p = _check_yp(y, p)
    _require_both_classes(y, "point_biserial")
    return float(_corr_rows(p[None, :], y[None, :])[0])


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation; NaN for a constant row."""
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    sab = (da * db).sum(axis=1)
    saa = (da * da).sum(axis=1)
    sbb = (db * db).sum(axis=1)
    den = np.sqrt(saa * sbb)
    # exact constancy test: mean-centring a constant row leaves rounding noise
    ok = (np.ptp(a, axis=1) > 0.0) & (np.ptp(b, axis=1) > 0.0) & (den > 0.0)
    out = np.full(a.shape[0], np.nan)
    out[ok] = np.clip(sab[ok] / den[ok], -1.0, 1.0)
    return out


def _entropy(rate: np.ndarray) -> np.ndarray:
    r = np.asarray(rate, dtype=np.float64)
    out = np.zeros_like(r)
    inner = (r > 0.0) & (r < 1.0)
    ri = r[inner]
    out[inner] = -(ri * np.log(ri) + (1.0 - ri) * np.log1p(-ri))
    return out


# --------------------------------------------------------------------------- bootstrap


def block_length(*series, max_length: float | None = None) -> float:
    """Data-driven mean block length for the stationary bootstrap.

    Runs :func:`arch.bootstrap.optimal_block_length` on each non-constant
    series and returns the largest ``"stationary"`` estimate, clipped to
    ``[1, max_length]`` (default ``n / 2``). Taking the maximum is the
    conservative choice: a block that is too short under-states the variance
    (intervals too narrow, p-values too small); one that is too long only
    costs some efficiency.

    Parameters
    ----------
    *series : array_like
        1-D series of equal length ``n``, in time order.
    max_length : float, optional
        Upper clip; default ``n / 2``.

    Returns
    -------
    float
        Mean block length (1.0 when every series is constant or ``n < 10``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> iid = rng.standard_normal(1000)
    >>> ar = np.zeros(1000)
    >>> for t in range(1, 1000):
    ...     ar[t] = 0.9 * ar[t - 1] + iid[t]
    >>> block_length(iid) < block_length(ar)
    True
    """
    cols = [np.asarray(s, dtype=np.float64) for s in series]
    if not cols:
        raise ValueError("`block_length` needs at least one series")
    n = cols[0].size
    if any(c.shape != (n,) for c in cols):
        raise ValueError("`series` must be 1-D and of equal length")
    cap = n / 2.0 if max_length is None else float(max_length)
    cols = [c for c in cols if np.ptp(c) > 0.0]
    if n < 10 or not cols:
        return 1.0
    est = optimal_block_length(np.column_stack(cols))["stationary"].to_numpy()
    est = est[np.isfinite(est)]
    if est.size == 0:
        return 1.0
    return float(min(max(1.0, est.max()), max(1.0, cap)))


def _index_chunks(n: int, block: float, n_boot: int, seed):
    """Yield (chunk, n) index matrices of stationary-bootstrap draws from arch."""
    rng = np.random.default_rng(seed)
    bs = StationaryBootstrap(block, np.arange(n), seed=rng)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    buf: list[np.ndarray] = []
    for pos, _ in bs.bootstrap(n_boot):
        buf.append(pos[0])
        if len(buf) == rows:
            yield np.vstack(buf)
            buf = []
    if buf:
        yield np.vstack(buf)


def bootstrap_interval(
    x,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    n_boot: int = 1000,
    seed=0,
    level: float = 0.95,
    block: float | None = None,
) -> tuple[float, float, float]:
    """Stationary-bootstrap percentile interval of a statistic of one time series.

    The same machinery as :func:`evaluate`, exposed for single series (e.g.
    daily strategy returns, or its coverage check on a known process).

    Parameters
    ----------
    x : array_like
        1-D series in time order.
    statistic : callable, optional
        Maps a ``(B, n)`` matrix of resampled series to ``B`` values (row-wise);
        default the mean, ``lambda m: m.mean(axis=1)``.
    n_boot : int, default 1000
        Bootstrap replicates.
    seed : int or numpy.random.Generator, default 0
        Passed through ``np.random.default_rng`` to arch.
    level : float, default 0.95
        Two-sided coverage of the percentile interval.
    block : float, optional
        Mean block length; default :func:`block_length` of ``x``.

    Returns
    -------
    (estimate, low, high) : tuple of float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(3).standard_normal(300) + 1.0
    >>> est, lo, hi = bootstrap_interval(x, n_boot=200, seed=0)
    >>> bool(lo < 1.0 < hi)
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError("`x` must be a finite 1-D series with at least 2 values")
    _check_boot(n_boot, level)
    stat = statistic if statistic is not None else (lambda m: m.mean(axis=1))
    blk = block_length(x) if block is None else float(block)
    est = float(stat(x[None, :])[0])
    reps = np.concatenate([stat(x[idx]) for idx in _index_chunks(x.size, blk, n_boot, seed)])
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return est, float(lo), float(hi)


def _check_boot(n_boot: int, level: float) -> None:
    if int(n_boot) != n_boot or n_boot < 10:
        raise ValueError(f"`n_boot` must be an integer >= 10, got `n_boot={n_boot}`")
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must lie in (0, 1), got `level={level}`")


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
    _check_boot(n_boot, level)
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
    parts = [_replicate_stats(y, p, idx, codes, k) for idx in _index_chunks(n, blk, n_boot, seed)]
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
    _check_boot(n_boot, level)

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


# --------------------------------------------------------------------------- Sharpe ratios


def _check_returns(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 3 or not np.all(np.isfinite(r)):
        raise ValueError("`returns` must be a finite 1-D series with at least 3 values")
    if np.ptp(r) == 0.0:
        raise ValueError("`returns` is constant: the Sharpe ratio is undefined")
    return r


def sharpe_ratio(returns) -> float:
    """Per-period Sharpe ratio ``mean / std`` (``ddof=1``), not annualised.

    Returns are per period (e.g. daily) and in excess of the risk-free rate.
    Multiply by ``sqrt(periods per year)`` to annualise for display only:
    the PSR/DSR formulas below need the per-period value.

    Examples
    --------
    >>> sharpe_ratio([0.01, -0.01, 0.02, 0.0])
    0.3872983346207417
    """
    r = _check_returns(returns)
    return float(r.mean() / r.std(ddof=1))


def probabilistic_sharpe_ratio(returns, sr_benchmark: float = 0.0) -> float:
    r"""Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (Bailey & Lopez de Prado).

    .. math::

        \mathrm{PSR}(SR^*) = \Phi\left(
            \frac{(\widehat{SR} - SR^*)\sqrt{n - 1}}
                 {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}
        \right)

    with ``SR`` the per-period Sharpe ratio (:func:`sharpe_ratio`),
    ``gamma_3`` the sample skewness and ``gamma_4`` the sample (non-excess,
    normal = 3) kurtosis, both the biased moment estimators
    (``scipy.stats.skew``, ``scipy.stats.kurtosis(fisher=False)``).

    Parameters
    ----------
    returns : array_like
        Per-period excess returns in time order (at least 3, not constant).
    sr_benchmark : float, default 0.0
        Benchmark Sharpe ratio **per period** (same units as the returns).

    Returns
    -------
    float
        In [0, 1]. (The formula assumes i.i.d. returns.)

    Examples
    --------
    >>> import numpy as np
    >>> r = np.random.default_rng(0).normal(0.001, 0.01, 1000)
    >>> round(probabilistic_sharpe_ratio(r), 4)
    0.9532
    """
    r = _check_returns(returns)
    return _psr(
        sharpe_ratio(r),
        r.size,
        float(skew(r)),
        float(kurtosis(r, fisher=False)),
        float(sr_benchmark),
    )


def _psr(sr: float, n: int, g3: float, g4: float, sr_star: float) -> float:
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
        The trials' per-period Sharpe ratios; ``V`` is their ``ddof=1``
        variance. Give exactly one of ``sr_variance`` and ``trial_sharpes``.

    Returns
    -------
    float
        In [0, 1]; falls as ``n_trials`` or ``V`` grows.

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
    return probabilistic_sharpe_ratio(returns, sr_benchmark=sr0)
