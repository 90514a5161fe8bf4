r"""Figures of the ``engine validate`` report: frames in, PNG bytes out.

Every function takes the tables :func:`engine.evaluation.validation.validate_predictions`
builds and returns the PNG of one figure; nothing here reads or writes
files. Figures are made with matplotlib's object API on the Agg backend
(no pyplot figure manager, so nothing is left open between calls).

Examples
--------
>>> import polars as pl
>>> history = pl.DataFrame({
...     "model_id": ["wf00"] * 3, "epoch": [1, 2, 3],
...     "train_loss": [0.70, 0.66, 0.62], "val_loss": [0.70, 0.69, 0.71],
... })
>>> learning_curves_png(history)[:8] == b"\x89PNG\r\n\x1a\n"
True
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: never open a window

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)

__all__ = [
    "auc_by_window_png",
    "calibration_png",
    "drawdown_png",
    "equity_png",
    "figure_png",
    "learning_curves_png",
    "null_comparison_png",
]

_DPI = 100
_REAL_COLOR = "#1f77b4"
_NULL_COLOR = "#7f7f7f"
_TRAIN_COLOR = "#1f77b4"
_VAL_COLOR = "#d62728"
#: Colours of the backtest curves: the filtered strategy, the unfiltered one, the market.
_CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c", "#9467bd")


def figure_png(fig: Figure) -> bytes:
    r"""Render ``fig`` to PNG bytes.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_png(Figure(figsize=(1, 1)))[:4] == b"\x89PNG"
    True
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.0)):
    """A figure with ``n`` axes on a grid of at most ``ncols`` columns (extras hidden)."""
    n = max(n, 1)
    cols = min(n, ncols)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _empty(message: str) -> bytes:
    fig = Figure(figsize=(5, 1.5), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return figure_png(fig)


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the frame lacks columns {missing}")


def learning_curves_png(history: pl.DataFrame, overfitting: pl.DataFrame | None = None) -> bytes:
    """Training and validation loss per epoch, one panel per model.

    Parameters
    ----------
    history : polars.DataFrame
        Columns ``model_id``, ``epoch``, ``train_loss``, ``val_loss`` (one
        row per model and epoch).
    overfitting : polars.DataFrame, optional
        Columns ``model_id``, ``best_epoch`` and ``overfitting`` (the
        monitor of :func:`engine.evaluation.diagnostics.overfitting_monitor`): the best
        epoch is marked and a flagged model's title says so.

    Returns
    -------
    bytes
        PNG.
    """
    _require(history, ("model_id", "epoch", "train_loss", "val_loss"), "learning curves")
    if history.height == 0:
        return _empty("no training history")
    flags: dict[str, tuple[int | None, bool | None]] = {}
    if overfitting is not None:
        for row in overfitting.iter_rows(named=True):
            flags[row["model_id"]] = (row.get("best_epoch"), row.get("overfitting"))
    models = history.get_column("model_id").unique(maintain_order=True).to_list()
    fig, axes = _grid(len(models))
    for ax, model_id in zip(axes, models, strict=True):
        h = history.filter(pl.col("model_id") == model_id).sort("epoch")
        epoch = h.get_column("epoch").to_numpy()
        ax.plot(
            epoch,
            h.get_column("train_loss").to_numpy(),
            color=_TRAIN_COLOR,
            marker=".",
            label="train loss",
        )
        ax.plot(
            epoch,
            h.get_column("val_loss").to_numpy(),
            color=_VAL_COLOR,
            marker=".",
            linestyle="--",
            label="validation loss",
        )
        best, flagged = flags.get(model_id, (None, None))
        if best is not None:
            ax.axvline(best, color="black", linestyle=":", linewidth=1, label=f"best epoch {best}")
        title = str(model_id)
        if flagged:
            title += "  (gap widening)"
        ax.set_title(title, color="#b00000" if flagged else "black", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("masked loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Learning curves (inference-mode masked loss)", fontsize=11)
    return figure_png(fig)


def calibration_png(calibration: pl.DataFrame) -> bytes:
    """Reliability diagram per pattern: binned mean confidence against observed frequency.

    Parameters
    ----------
    calibration : polars.DataFrame
        Columns ``pattern``, ``bin``, ``n``, ``mean_confidence`` and
        ``observed_rate`` (:func:`engine.evaluation.diagnostics.calibration_table`).

    Returns
    -------
    bytes
        PNG. Each bin is a point labelled with its count; the dotted
        diagonal is perfect calibration. The axes span the confidences
        actually used (a model rarely spreads over all of [0, 1]).
    """
    _require(
        calibration, ("pattern", "bin", "n", "mean_confidence", "observed_rate"), "calibration plot"
    )
    if calibration.height == 0:
        return _empty("no labelled outcomes: no calibration curve")
    patterns = calibration.get_column("pattern").unique(maintain_order=True).to_list()
    fig, axes = _grid(len(patterns), ncols=2, size=(4.6, 4.0))
    for ax, pattern in zip(axes, patterns, strict=True):
        c = calibration.filter(pl.col("pattern") == pattern).sort("bin")
        x = c.get_column("mean_confidence").to_numpy()
        y = c.get_column("observed_rate").to_numpy()
        n = c.get_column("n").to_numpy()
        lo = float(min(x.min(), y.min()))
        hi = float(max(x.max(), y.max()))
        pad = max(0.05 * (hi - lo), 0.02)
        lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
        ax.plot(
            [lo, hi],
            [lo, hi],
            color="black",
            linestyle=":",
            linewidth=1,
            label="perfect calibration",
        )
        ax.plot(x, y, color=_REAL_COLOR, marker="o", label="observed")
        for xi, yi, ni in zip(x, y, n, strict=True):
            ax.annotate(
                str(int(ni)),
                (xi, yi),
                textcoords="offset points",
                xytext=(3, 4),
                fontsize=7,
                color="#444444",
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"{pattern} (n={int(n.sum())})", fontsize=10)
        ax.set_xlabel("mean confidence in bin")
        ax.set_ylabel("observed frequency")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Calibration (point labels: labelled rows per bin)", fontsize=11)
    return figure_png(fig)


def _interval_points(ax, x, est, low, high, color, label) -> None:
    """Points with vertical interval bars; rows with a missing estimate are skipped."""
    x = np.asarray(x, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    ok = np.isfinite(est)
    bars = ok & np.isfinite(low) & np.isfinite(high)
    ax.vlines(x[bars], low[bars], high[bars], color=color, linewidth=2, alpha=0.6)
    ax.plot(x[ok], est[ok], "o", color=color, label=label)


def _float_column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()


def auc_by_window_png(by_model: pl.DataFrame) -> bytes:
    """AUC with its 95 % bootstrap interval per model (window), one panel per pattern.

    Parameters
    ----------
    by_model : polars.DataFrame
        Columns ``pattern``, ``model_id``, ``auc``, ``auc_ci_low``,
        ``auc_ci_high`` (``evaluate_frame(..., by=("pattern", "model_id"))``).

    Returns
    -------
    bytes
        PNG; the dotted line is AUC 0.5 (no skill).
    """
    _require(
        by_model, ("pattern", "model_id", "auc", "auc_ci_low", "auc_ci_high"), "AUC per window plot"
    )
    if by_model.height == 0:
        return _empty("no windows with labelled outcomes")
    patterns = by_model.get_column("pattern").unique(maintain_order=True).to_list()
    models = sorted(by_model.get_column("model_id").unique().to_list())
    position = {m: i for i, m in enumerate(models)}
    width = max(4.2, 0.45 * len(models) + 1.5)
    fig, axes = _grid(len(patterns), ncols=2, size=(width, 3.2))
    for ax, pattern in zip(axes, patterns, strict=True):
        rows = by_model.filter(pl.col("pattern") == pattern)
        x = [position[m] for m in rows.get_column("model_id").to_list()]
        _interval_points(
            ax,
            x,
            _float_column(rows, "auc"),
            _float_column(rows, "auc_ci_low"),
            _float_column(rows, "auc_ci_high"),
            _REAL_COLOR,
            "AUC, 95 % interval",
        )
        ax.axhline(0.5, color="black", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=45 if len(models) > 6 else 0, fontsize=8)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_title(pattern, fontsize=10)
        ax.set_ylabel("AUC")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Out-of-sample AUC per window (0.5 = no skill)", fontsize=11)
    return figure_png(fig)


def null_comparison_png(real: pl.DataFrame, null: pl.DataFrame) -> bytes:
    """Real AUC beside the AUC on block-permuted outcomes, per pattern.

    Parameters
    ----------
    real, null : polars.DataFrame
        Per-pattern evaluations (columns ``pattern``, ``auc``,
        ``auc_ci_low``, ``auc_ci_high``) of the real and the permuted
        outcomes.

    Returns
    -------
    bytes
        PNG; the dotted line is AUC 0.5.
    """
    for frame, what in ((real, "real"), (null, "null")):
        _require(
            frame, ("pattern", "auc", "auc_ci_low", "auc_ci_high"), f"null comparison plot ({what})"
        )
    patterns = real.get_column("pattern").to_list()
    if not patterns:
        return _empty("no patterns to compare")
    fig = Figure(figsize=(max(5.0, 1.3 * len(patterns) + 2.0), 3.6), layout="constrained")
    ax = fig.subplots()
    base = np.arange(len(patterns), dtype=np.float64)
    series = (
        (real, -0.12, _REAL_COLOR, "real outcomes"),
        (null, 0.12, _NULL_COLOR, "block-permuted (null)"),
    )
    for frame, offset, color, label in series:
        rows = pl.DataFrame({"pattern": patterns}).join(
            frame, on="pattern", how="left", maintain_order="left"
        )
        _interval_points(
            ax,
            base + offset,
            _float_column(rows, "auc"),
            _float_column(rows, "auc_ci_low"),
            _float_column(rows, "auc_ci_high"),
            color,
            label,
        )
    ax.axhline(0.5, color="black", linestyle=":", linewidth=1)
    ax.set_xticks(base)
    ax.set_xticklabels(patterns, rotation=20 if len(patterns) > 3 else 0, fontsize=8)
    ax.set_ylabel("AUC (95 % interval)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("Real vs null (outcomes permuted in date blocks)", fontsize=11)
    return figure_png(fig)


def _cumulative_percent(growth: float, _position: float) -> str:
    """Tick label of a growth-of-1 value as the cumulative return in percent.

    Examples
    --------
    >>> _cumulative_percent(1.25, 0), _cumulative_percent(0.8, 0), _cumulative_percent(1.0, 0)
    ('+25 %', '-20 %', '0 %')
    """
    change = 100.0 * (growth - 1.0)
    return "0 %" if abs(change) < 0.5 else f"{change:+.0f} %"


def _curves(dates: np.ndarray, curves: dict[str, np.ndarray], ylabel: str, title: str,
            *, log: bool = False, fill: bool = False, percent: bool = False) -> bytes:  # fmt: skip
    if not curves:
        return _empty("no curves")
    x = np.asarray(dates).astype("datetime64[D]")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    for (name, y), color in zip(curves.items(), _CURVE_COLORS, strict=False):
        y = np.asarray(y, dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"curve {name!r} has {y.shape[0]} values for {x.shape[0]} dates")
        ax.plot(x, y, color=color, linewidth=1.1, label=name)
        if fill:
            ax.fill_between(x, y, 0.0, color=color, alpha=0.12, linewidth=0)
    if log:  # growth of 1 on a log axis, its ticks labelled as the cumulative return
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.yaxis.set_major_formatter(FuncFormatter(_cumulative_percent))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif percent:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure_png(fig)


def equity_png(dates: np.ndarray, returns: dict[str, np.ndarray]) -> bytes:
    r"""Growth of 1 (log scale) for each named daily return series.

    Examples
    --------
    >>> import numpy as np
    >>> days = np.arange("2020-01-01", "2020-01-11", dtype="datetime64[D]")
    >>> equity_png(days, {"a": np.full(10, 0.01)})[:4] == b"\x89PNG"
    True
    """
    curves = {k: np.cumprod(1.0 + np.asarray(v, dtype=np.float64)) for k, v in returns.items()}
    return _curves(dates, curves, "cumulative return (log scale)", "Equity", log=True)


def drawdown_png(dates: np.ndarray, returns: dict[str, np.ndarray]) -> bytes:
    """Drawdown from the running peak (starting value 1) for each named return series."""
    curves = {}
    for name, r in returns.items():
        equity = np.cumprod(1.0 + np.asarray(r, dtype=np.float64))
        curves[name] = equity / np.maximum.accumulate(np.maximum(equity, 1.0)) - 1.0
    return _curves(dates, curves, "drawdown from the peak", "Drawdown", fill=True, percent=True)
