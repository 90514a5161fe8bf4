"""The LightGBM baseline's inputs: summaries of the 20-day window, and float32-exact thresholds.

A tree model takes a flat row, so each (20, 17) window becomes 85 numbers:
five summaries of each feature over the window (:data:`SUMMARIES`,
summary-major; :func:`summary_names`):

======== =================================================================
last     the window's last row (the features at the decision date t)
mean     the mean of the 20 rows
min      the smallest of the 20 rows
max      the largest of the 20 rows
change   the last row minus the first (t minus t-19)
======== =================================================================

:func:`window_summaries` computes them in float32 with an order of
operations the exported ONNX graph repeats exactly (the mean: a float64 sum
of the rows in window order, divided by 20, rounded to float32), so the
ONNX model sees bit-identical tree inputs.

LightGBM compares ``double(x) <= t`` with a float64 threshold ``t``;
onnxruntime's tree ensembles store thresholds as float32. Rounding ``t`` to
the nearest float32 can move it above ``t`` and send an input equal to that
float32 to the other branch. :func:`float32_thresholds` rewrites a model
with each threshold replaced by the largest float32 not above it: for a
float32 input ``x``, ``x <= t`` exactly when ``x <=`` that float32, so the
rewritten model is the same function on float32 windows and its thresholds
survive the float32 conversion unchanged.

Examples
--------
>>> import numpy as np
>>> X = np.arange(2 * 20 * 3, dtype=np.float32).reshape(2, 20, 3)
>>> window_summaries(X).shape
(2, 15)
>>> summary_names(["a", "b", "c"])[:4]
['a_last', 'b_last', 'c_last', 'a_mean']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["SUMMARIES", "float32_thresholds", "summary_names", "window_summaries"]

#: The window summaries of every feature, in column order (summary-major).
SUMMARIES = ("last", "mean", "min", "max", "change")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_THRESHOLD_LINE = re.compile(r"^threshold=(.*)$", re.MULTILINE)
_TREE_SIZES_LINE = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)


def summary_names(feature_names: Sequence[str]) -> list[str]:
    """Column names of :func:`window_summaries`: ``<feature>_<summary>``, summary-major."""
    return [f"{f}_{s}" for s in SUMMARIES for f in feature_names]


def window_summaries(X: np.ndarray) -> np.ndarray:
    """Last row, mean, min, max and last-minus-first of every feature, as float32.

    Parameters
    ----------
    X : ndarray, shape (n, length, n_features), float32
        Raw feature windows, oldest row first.

    Returns
    -------
    ndarray, shape (n, 5 * n_features), float32
        Columns in :func:`summary_names` order. The mean is the float64 sum
        of the rows in window order divided by ``length`` and rounded to
        float32, the order of operations of the exported ONNX graph.

    Raises
    ------
    ValueError
        ``X`` is not a 3-D float32 array with at least one row per window.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[[1.0], [4.0], [2.0]]], dtype=np.float32)
    >>> window_summaries(X).tolist()
    [[2.0, 2.3333332538604736, 1.0, 4.0, 1.0]]
    """
    if not isinstance(X, np.ndarray) or X.dtype != np.float32 or X.ndim != 3 or X.shape[1] < 1:
        what = f"{X.dtype} array of shape {X.shape}" if isinstance(X, np.ndarray) else type(X)
        raise ValueError(f"windows must be a float32 array (n, length, n_features), got {what}")
    length = X.shape[1]
    total = X[:, 0, :].astype(np.float64)
    for i in range(1, length):
        total += X[:, i, :]
    mean = (total / np.float64(length)).astype(np.float32)
    last, first = X[:, -1, :], X[:, 0, :]
    return np.concatenate([last, mean, X.min(axis=1), X.max(axis=1), last - first], axis=1)


def float32_thresholds(model_text: str) -> str:
    r"""A LightGBM text model whose every split threshold is the largest float32 not above it.

    For float32 inputs the rewritten model is the same function (``x <= t``
    if and only if ``x <= floor32(t)``), and its thresholds are exact in
    float32, so a float32 tree runtime (onnxruntime) takes the same branches.

    Parameters
    ----------
    model_text : str
        ``Booster.model_to_string()`` of a model with numerical splits only.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        The model has categorical splits (their ``threshold`` lines are
        category indices, not values).

    Examples
    --------
    >>> text = "Tree=0\nthreshold=0.10000000000000001 -1.0000000000000001e-35\n"
    >>> print(float32_thresholds(text).splitlines()[1])
    threshold=0.099999994039535522 -1.0000000180025095e-35
    """
    if re.search(r"^num_cat=[1-9]", model_text, re.MULTILINE):
        raise ValueError("float32_thresholds handles numerical splits only; the model has "
                         "categorical splits")  # fmt: skip

    def floor32(token: str) -> str:
        t = float(token)
        if t >= _FLOAT32_MAX:
            return repr(_FLOAT32_MAX)
        if t < -_FLOAT32_MAX:
            return repr(-_FLOAT32_MAX)
        f = np.float32(t)
        if float(f) > t:
            f = np.nextafter(f, np.float32(-np.inf))
        return f"{float(f):.17g}"

    def line(match: re.Match[str]) -> str:
        return "threshold=" + " ".join(floor32(tok) for tok in match.group(1).split())

    # ``tree_sizes`` gives each tree's length in bytes, which the new numbers change;
    # without it LightGBM parses the trees one after the other.
    return _TREE_SIZES_LINE.sub("", _THRESHOLD_LINE.sub(line, model_text))
