"""Diagnostics of out-of-sample predictions: calibration, a null comparison, overfitting.

:func:`calibration_table` bins confidences against observed frequencies;
:func:`null_comparison` puts the real AUC beside its block-permutation null
(:mod:`engine.evaluation.permutation`), with verdicts on Holm-adjusted
p-values; :func:`overfitting_monitor`
flags models whose train/validation loss gap widens while the validation
loss rises (from the training histories,
:func:`engine.model.run_files.read_history`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.evaluation.multiple_testing import holm
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.run_files import HISTORY_COLUMNS

__all__ = [
    "CALIBRATION_BINS",
    "DEFAULT_OVERFIT_TOLERANCE",
    "DEFAULT_OVERFIT_WINDOW",
    "SIGNIFICANCE",
    "calibration_table",
    "null_comparison",
    "overfitting_monitor",
]

#: Level an adjusted p-value is compared with: a family-wise error rate for Holm-adjusted
#: p-values (per-pattern verdicts), a false discovery rate for Benjamini-Hochberg ones.
SIGNIFICANCE = 0.05
#: Epochs looked back over by :func:`overfitting_monitor`.
DEFAULT_OVERFIT_WINDOW = 5
#: Changes in loss (nats) at or below this are treated as noise by the monitor.
DEFAULT_OVERFIT_TOLERANCE = 1e-3
#: Quantile bins of the calibration table.
CALIBRATION_BINS = 10
_CALIBRATION_SCHEMA = {
    "pattern": pl.String,
    "bin": pl.Int64,
    "n": pl.Int64,
    "conf_low": pl.Float64,
    "conf_high": pl.Float64,
    "mean_confidence": pl.Float64,
    "observed_rate": pl.Float64,
}
_MONITOR_SCHEMA = {
    "model_id": pl.String,
    "epochs": pl.Int64,
    "best_epoch": pl.Int64,
    "best_by": pl.String,
    "best_gap": pl.Float64,
    "min_val_loss": pl.Float64,
    "min_val_loss_epoch": pl.Int64,
    "final_train_loss": pl.Float64,
    "final_val_loss": pl.Float64,
    "final_gap": pl.Float64,
    "gap_change": pl.Float64,
    "val_loss_rise": pl.Float64,
    "overfitting": pl.Boolean,
    "reason": pl.String,
}


def calibration_table(
    frame: pl.DataFrame,
    patterns: list[str],
    *,
    bins: int = CALIBRATION_BINS,
    strategy: str = "quantile",
) -> pl.DataFrame:
    """Reliability table per pattern: binned mean confidence against observed frequency.

    Parameters
    ----------
    frame : polars.DataFrame
        Predictions (outcome ``<pattern>`` and confidence ``<pattern>_p``);
        only labelled rows are used.
    patterns : list of str
    bins : int, default 10
        Number of bins.
    strategy : {"quantile", "uniform"}
        ``"quantile"``: edges at the confidence quantiles (equal counts;
        tied edges merge, so there may be fewer bins); ``"uniform"``: equal
        widths on [0, 1]. A confidence equal to an inner edge goes to the
        upper bin.

    Returns
    -------
    polars.DataFrame
        ``pattern``, ``bin`` (0-based), ``n``, ``conf_low``, ``conf_high``
        (bin edges), ``mean_confidence``, ``observed_rate``; empty bins are
        left out.

    Examples
    --------
    >>> import polars as pl
    >>> f = pl.DataFrame({"x": [0, 0, 1, 1], "x_p": [0.1, 0.2, 0.7, 0.9]})
    >>> calibration_table(f, ["x"], bins=2).select("n", "mean_confidence", "observed_rate").rows()
    [(2, 0.15000000000000002, 0.0), (2, 0.8, 1.0)]
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"`bins` must be an integer >= 1, got `bins={bins}`")
    if strategy not in ("quantile", "uniform"):
        raise ValueError(f"`strategy` must be 'quantile' or 'uniform', got {strategy!r}")
    rows: list[dict[str, Any]] = []
    for name in patterns:
        sub = frame.filter(pl.col(name).is_not_null())
        if sub.height == 0:
            continue
        y = sub.get_column(name).cast(pl.Float64).to_numpy()
        p = sub.get_column(name + CONFIDENCE_SUFFIX).cast(pl.Float64).to_numpy()
        if strategy == "quantile":
            edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, bins + 1)))
        else:
            edges = np.linspace(0.0, 1.0, bins + 1)
        if edges.size < 2:  # every confidence equal
            edges = np.array([p[0], p[0]])
        k = edges.size - 1
        idx = np.searchsorted(edges[1:-1], p, side="right")
        counts = np.bincount(idx, minlength=k)
        sum_p = np.bincount(idx, weights=p, minlength=k)
        sum_y = np.bincount(idx, weights=y, minlength=k)
        for b in np.flatnonzero(counts):
            rows.append(
                {
                    "pattern": name,
                    "bin": int(b),
                    "n": int(counts[b]),
                    "conf_low": float(edges[b]),
                    "conf_high": float(edges[b + 1]),
                    "mean_confidence": float(sum_p[b] / counts[b]),
                    "observed_rate": float(sum_y[b] / counts[b]),
                }
            )
    return pl.DataFrame(rows, schema=_CALIBRATION_SCHEMA)


def null_comparison(
    real: pl.DataFrame, permutation: pl.DataFrame, *, alpha: float = SIGNIFICANCE
) -> pl.DataFrame:
    """Real AUC beside its block-permutation null, per pattern, with Holm-adjusted verdicts.

    The patterns are one family: the bootstrap p-value of each AUC and its
    permutation p-value are each Holm-adjusted over the patterns
    (:func:`engine.evaluation.multiple_testing.holm`), and the verdicts
    compare the adjusted values with ``alpha`` (a family-wise error rate).

    Parameters
    ----------
    real : polars.DataFrame
        Per-pattern :func:`engine.evaluation.evaluate_frame` output on the
        real outcomes (``auc``, its interval and ``auc_p_value``).
    permutation : polars.DataFrame
        :func:`engine.evaluation.permutation.permutation_auc_test` of the
        same predictions (``n_null`` draws of block-permuted outcomes).
    alpha : float, default 0.05
        Family-wise level of the one-sided tests.

    Returns
    -------
    polars.DataFrame
        ``pattern``, ``auc``, ``auc_ci_low``, ``auc_ci_high``,
        ``auc_p_value``, ``auc_p_value_holm``, ``n_null``,
        ``null_auc_mean``, ``null_auc_low``, ``null_auc_high`` (the null
        AUCs' mean and 95 % range), ``permutation_p_value``,
        ``permutation_p_value_se`` (its Monte Carlo error),
        ``permutation_p_value_holm``, then ``real_significant``
        (``auc_p_value_holm < alpha``), ``permutation_significant``
        (``permutation_p_value_holm < alpha``) and ``confirmed`` (both).
        Booleans are null where a p-value is missing.

    Examples
    --------
    >>> import polars as pl
    >>> real = pl.DataFrame({"pattern": ["a", "b"], "auc": [0.6, 0.52], "auc_ci_low": [0.55, 0.5],
    ...                      "auc_ci_high": [0.65, 0.54], "auc_p_value": [0.001, 0.03]})
    >>> perm = pl.DataFrame({"pattern": ["a", "b"], "auc": [0.6, 0.52], "n_null": [200, 200],
    ...                      "null_auc_mean": [0.5, 0.5], "null_auc_low": [0.47, 0.47],
    ...                      "null_auc_high": [0.53, 0.53], "permutation_p_value": [0.005, 0.2],
    ...                      "permutation_p_value_se": [0.005, 0.028]})
    >>> null_comparison(real, perm).select("pattern", "confirmed").rows()
    [('a', True), ('b', False)]
    """  # noqa: E501
    cols = ["auc", "auc_ci_low", "auc_ci_high", "auc_p_value", "auc_p_value_holm"]
    null_cols = [
        "n_null",
        "null_auc_mean",
        "null_auc_low",
        "null_auc_high",
        "permutation_p_value",
        "permutation_p_value_se",
        "permutation_p_value_holm",
    ]
    joined = (
        _with_holm(real, "auc_p_value")
        .select("pattern", *cols)
        .join(
            _with_holm(permutation, "permutation_p_value").select("pattern", *null_cols),
            on="pattern",
            how="left",
            maintain_order="left",
        )
    )
    real_sig = pl.col("auc_p_value_holm") < alpha
    null_sig = pl.col("permutation_p_value_holm") < alpha
    return joined.with_columns(
        real_sig.alias("real_significant"),
        null_sig.alias("permutation_significant"),
        (real_sig & null_sig).alias("confirmed"),
    )


def _with_holm(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``<column>_holm``: ``column`` Holm-adjusted over the rows (the patterns)."""
    raw = frame.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
    return frame.with_columns(pl.Series(f"{column}_holm", holm(raw)).fill_nan(None))


def overfitting_monitor(
    history: pl.DataFrame,
    *,
    window: int = DEFAULT_OVERFIT_WINDOW,
    tolerance: float = DEFAULT_OVERFIT_TOLERANCE,
) -> pl.DataFrame:
    r"""Flag models whose train/validation gap widens while validation loss rises.

    For a model with epochs ``1..E``, ``train_loss`` and ``val_loss`` (the
    masked loss in inference mode) and ``gap = val_loss - train_loss``, with
    ``k = window`` and ``tol = tolerance``, the model is flagged
    (``overfitting = True``) when both hold:

    1. the gap widened over the last ``k`` epochs:
       ``gap_change = gap[E] - gap[E - k] > tol``;
    2. the validation loss has risen above its minimum:
       ``val_loss_rise = val_loss[E] - min(val_loss[1..E]) > tol``.

    ``overfitting`` is False when either fails, and null (undetermined) when
    the model has fewer than ``k + 1`` epochs or a loss in those epochs is
    not finite. The best epoch is the first epoch with the lowest
    ``val_loss``, the loss the trainer early-stops on and whose best weights
    it keeps; histories of older artifacts that carry ``val_objective``
    (Keras's validation loss with the L2 term, which those trainers
    monitored) use that instead (``best_by`` says which). A saved model holds
    the best epoch's weights, so a flag says training ran on past the point
    where it generalised best; ``best_gap`` is the gap of the weights kept.

    Parameters
    ----------
    history : polars.DataFrame
        Columns ``model_id``, ``epoch``, ``train_loss``, ``val_loss``, and
        optionally ``gap`` and ``val_objective``
        (:func:`engine.model.run_files.read_history`).
    window : int, default 5
        ``k`` above, at least 1.
    tolerance : float, default 1e-3
        ``tol`` above, in loss units (nats), at least 0.

    Returns
    -------
    polars.DataFrame
        One row per model (in order of appearance): ``model_id``, ``epochs``,
        ``best_epoch``, ``best_by``, ``best_gap``,
        ``min_val_loss``, ``min_val_loss_epoch``, ``final_train_loss``,
        ``final_val_loss``, ``final_gap``, ``gap_change``,
        ``val_loss_rise``, ``overfitting``, ``reason``.

    Examples
    --------
    >>> import polars as pl
    >>> epochs = list(range(1, 11))
    >>> train = [0.70 - 0.02 * e for e in epochs]                 # keeps falling
    >>> val = [0.70 - 0.01 * e if e <= 4 else 0.66 + 0.01 * (e - 4) for e in epochs]
    >>> h = pl.DataFrame({"model_id": "wf00", "epoch": epochs, "train_loss": train,
    ...                   "val_loss": val})
    >>> overfitting_monitor(h).select("best_epoch", "overfitting").row(0)
    (4, True)
    """
    if int(window) != window or window < 1:
        raise ValueError(f"`window` must be an integer >= 1, got `window={window}`")
    if not tolerance >= 0.0:
        raise ValueError(f"`tolerance` must be >= 0, got `tolerance={tolerance}`")
    missing = [c for c in ("model_id", *HISTORY_COLUMNS) if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks columns {missing}")
    if "gap" not in history.columns:
        history = history.with_columns((pl.col("val_loss") - pl.col("train_loss")).alias("gap"))
    if "val_objective" not in history.columns:
        history = history.with_columns(pl.lit(None, pl.Float64).alias("val_objective"))
    rows: list[dict[str, Any]] = []
    for model_id in history.get_column("model_id").unique(maintain_order=True).to_list():
        h = history.filter(pl.col("model_id") == model_id).sort("epoch")
        rows.append(_monitor_one(model_id, h, int(window), float(tolerance)))
    return pl.DataFrame(rows, schema=_MONITOR_SCHEMA)


def _floats(h: pl.DataFrame, name: str) -> np.ndarray:
    return h.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()


def _argmin_finite(x: np.ndarray) -> int | None:
    finite = np.isfinite(x)
    if not finite.any():
        return None
    return int(np.flatnonzero(finite)[np.argmin(x[finite])])


def _monitor_one(model_id: str, h: pl.DataFrame, k: int, tol: float) -> dict[str, Any]:
    epochs = h.get_column("epoch").to_numpy()
    train = _floats(h, "train_loss")
    val = _floats(h, "val_loss")
    gap = _floats(h, "gap")
    objective = _floats(h, "val_objective")
    best_by = "val_objective"
    if not np.isfinite(objective).any():
        objective, best_by = val, "val_loss"
    n = epochs.size
    best = _argmin_finite(objective)
    low = _argmin_finite(val)
    row: dict[str, Any] = {
        "model_id": model_id,
        "epochs": n,
        "best_epoch": int(epochs[best]) if best is not None else None,
        "best_by": best_by,
        "best_gap": float(gap[best]) if best is not None else None,
        "min_val_loss": float(val[low]) if low is not None else None,
        "min_val_loss_epoch": int(epochs[low]) if low is not None else None,
        "final_train_loss": float(train[-1]),
        "final_val_loss": float(val[-1]),
        "final_gap": float(gap[-1]),
        "gap_change": None,
        "val_loss_rise": None,
        "overfitting": None,
    }
    if n < k + 1:
        row["reason"] = f"only {n} epochs; the monitor needs at least {k + 1}"
        return row
    tail = slice(n - k - 1, n)
    if low is None or not (np.isfinite(gap[tail]).all() and np.isfinite(val[tail]).all()):
        row["reason"] = f"non-finite losses in the last {k + 1} epochs"
        return row
    change = float(gap[-1] - gap[-1 - k])
    rise = float(val[-1] - val[low])
    widened = change > tol
    risen = rise > tol
    row.update(gap_change=change, val_loss_rise=rise, overfitting=widened and risen)
    gap_text = f"gap {'+' if change >= 0 else ''}{change:.4f} over the last {k} epochs"
    rise_text = f"val_loss {rise:.4f} above its minimum (epoch {int(epochs[low])})"
    if widened and risen:
        row["reason"] = f"{gap_text} while {rise_text}"
    elif not widened:
        row["reason"] = f"{gap_text}: not widening"
    else:
        row["reason"] = f"{gap_text}, but val_loss within {tol:g} of its minimum"
    return row
