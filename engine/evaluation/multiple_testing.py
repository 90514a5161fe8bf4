r"""Multiple-testing corrections: Holm's step-down and Benjamini-Hochberg's step-up.

A table of p-values is a family of tests: bolding every ``p < 0.05`` among
136 per-ticker rows flags about 7 rows when nothing has skill. The adjusted
p-values here are compared with the same level instead:

* :func:`holm` controls the family-wise error rate (the chance of any false
  flag) under any dependence between the tests. For sorted p-values
  :math:`p_{(1)} \le \dots \le p_{(m)}`,
  :math:`\tilde p_{(i)} = \max_{j \le i} \min(1, (m - j + 1)\, p_{(j)})`.
  The engine uses it for the per-pattern (per-head) verdicts, a handful of
  tests of which each is read as a claim.
* :func:`benjamini_hochberg` controls the false discovery rate (the expected
  share of false flags among the flagged rows) for independent or positively
  dependent tests:
  :math:`\tilde p_{(i)} = \min_{j \ge i} \min(1, m\, p_{(j)} / j)`. The
  engine uses it for the per-ticker and per-window tables, many tests read
  as a screen.

Missing (NaN or null) p-values are left missing and do not count in ``m``.

Examples
--------
>>> import numpy as np
>>> p = np.array([0.01, 0.04, 0.03, 0.005])
>>> holm(p)
array([0.03, 0.06, 0.06, 0.02])
>>> benjamini_hochberg(p)
array([0.02, 0.04, 0.04, 0.02])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

__all__ = [
    "CORRECTIONS",
    "adjust_p_values",
    "adjusted_columns",
    "benjamini_hochberg",
    "correction_line",
    "holm",
]

#: Column suffix -> (name in words, what it controls).
CORRECTIONS = {
    "holm": ("Holm", "family-wise error rate"),
    "bh": ("Benjamini-Hochberg", "false discovery rate"),
}


def _finite(p_values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be one-dimensional, got shape {p.shape}")
    keep = np.isfinite(p)
    bad = p[keep & ((p < 0.0) | (p > 1.0))]
    if bad.size:
        raise ValueError(f"p-values must lie in [0, 1], got {bad[0]!r}")
    return p, keep


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate).

    Parameters
    ----------
    p_values : array-like of float, shape (m,)
        Raw p-values in [0, 1]; NaN for a missing one.

    Returns
    -------
    ndarray of float64, shape (m,)
        Adjusted p-values in the input order; NaN where the input is NaN.

    Raises
    ------
    ValueError
        Not one-dimensional, or a p-value outside [0, 1].

    Examples
    --------
    >>> holm([0.01, float("nan"), 0.04])
    array([0.02,  nan, 0.04])
    """
    p, keep = _finite(p_values)
    out = np.full(p.shape, np.nan)
    q = p[keep]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * q[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    out[keep] = adjusted
    return out


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate).

    Parameters
    ----------
    p_values : array-like of float, shape (m,)
        Raw p-values in [0, 1]; NaN for a missing one.

    Returns
    -------
    ndarray of float64, shape (m,)
        Adjusted p-values (sometimes called q-values) in the input order;
        NaN where the input is NaN.

    Raises
    ------
    ValueError
        Not one-dimensional, or a p-value outside [0, 1].

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.02, 0.9])
    array([0.03, 0.03, 0.9 ])
    """
    p, keep = _finite(p_values)
    out = np.full(p.shape, np.nan)
    q = p[keep]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    scaled = np.minimum(1.0, q[order] * m / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    out[keep] = adjusted
    return out


_METHODS = {"holm": holm, "bh": benjamini_hochberg}


def adjusted_columns(frame: pl.DataFrame, method: str) -> list[str]:
    """The ``<metric>_p_value`` columns of ``frame`` that :func:`adjust_p_values` adjusts.

    Examples
    --------
    >>> adjusted_columns(pl.DataFrame({"auc_p_value": [0.1], "n": [3]}), "holm")
    ['auc_p_value']
    """
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {sorted(_METHODS)}, got {method!r}")
    return [c for c in frame.columns if c.endswith("_p_value")]


def adjust_p_values(frame: pl.DataFrame, method: str) -> pl.DataFrame:
    """Add ``<metric>_p_value_<method>`` beside every ``<metric>_p_value`` column.

    Every row of ``frame`` is one test of the family: each column is adjusted
    over all its rows (nulls stay null and do not count).

    Parameters
    ----------
    frame : polars.DataFrame
        Rows of :func:`engine.evaluation.evaluate_frame`, or any frame with
        ``*_p_value`` columns.
    method : {"holm", "bh"}
        :func:`holm` or :func:`benjamini_hochberg`.

    Returns
    -------
    polars.DataFrame
        ``frame`` with each adjusted column right after its raw one.

    Examples
    --------
    >>> f = pl.DataFrame({"pattern": ["a", "b"], "auc_p_value": [0.01, 0.04]})
    >>> adjust_p_values(f, "holm").rows()
    [('a', 0.01, 0.02), ('b', 0.04, 0.04)]
    """
    columns = adjusted_columns(frame, method)
    adjust = _METHODS[method]
    order: list[str] = []
    added = []
    for c in frame.columns:
        order.append(c)
        if c in columns:
            raw = frame.get_column(c).cast(pl.Float64).fill_null(np.nan).to_numpy()
            name = f"{c}_{method}"
            added.append(pl.Series(name, adjust(raw)).fill_nan(None))
            order.append(name)
    return frame.with_columns(added).select(order)


def correction_line(method: str, m: int, family: str, alpha: float = 0.05) -> str:
    """The one line a table carries to say which correction its ``adj. p`` applies.

    Examples
    --------
    >>> correction_line("holm", 4, "patterns")
    'adj. p: Holm over the 4 patterns (controls the family-wise error rate; flagged: adj. p < 0.05)'
    """  # noqa: E501
    name, controls = CORRECTIONS[method]
    return (
        f"adj. p: {name} over the {m} {family} (controls the {controls}; "
        f"flagged: adj. p < {alpha:g})"
    )
