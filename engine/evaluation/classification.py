r"""Point metrics of a binary outcome against a confidence: AUC, accuracy, Brier, log loss.

Every function takes a **binary outcome** ``y`` (0/1) and a **confidence**
``p`` in [0, 1] (the sigmoid output of one pattern head), aligned sample by
sample. They score one sample as a whole; :mod:`engine.evaluation.evaluate`
adds intervals and no-skill p-values.

:func:`auc`, :func:`accuracy` (with :func:`majority_rate` beside it),
:func:`brier`, :func:`log_loss`, :func:`point_biserial`.

Examples
--------
>>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), accuracy([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
(0.75, 0.75)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "ACCURACY_THRESHOLD",
    "LOG_LOSS_EPS",
    "METRICS",
    "accuracy",
    "auc",
    "brier",
    "log_loss",
    "majority_rate",
    "point_biserial",
]

#: Metrics reported by :func:`engine.evaluation.evaluate`, in report order.
METRICS: tuple[str, ...] = ("auc", "accuracy", "brier", "log_loss", "point_biserial")
#: :func:`log_loss` clips confidences to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]``.
LOG_LOSS_EPS = 1e-15
#: Threshold of :func:`accuracy`: predict 1 when ``p >= ACCURACY_THRESHOLD``.
ACCURACY_THRESHOLD = 0.5


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
