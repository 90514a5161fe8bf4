"""The ``engine validate`` job: out-of-sample metrics, a null test and an overfitting monitor.

Input is one of

* a **run directory** of :mod:`engine.jobs.train` (``run.json``): its
  ``predictions.parquet`` and the ``history.csv`` of every finished window,
  each window's artifact checksums verified first;
* one **model artifact** directory (``metadata.json``,
  :mod:`engine.model.artifacts`): checksums verified, then its
  ``test_predictions.parquet`` and ``history.csv``;
* a bare **predictions file** (no training histories, so no overfitting
  monitor).

Every prediction must be dated after its model's ``embargo_end``
(out-of-sample); a file holding an in-sample row is refused.

The report (:class:`ValidateReport`) holds, per pattern (and per pattern and
ticker, and per pattern and window), the metrics of :mod:`engine.evaluation.metrics`
with their stationary-bootstrap intervals and no-skill p-values; optionally
the same evaluation after the outcomes were permuted in blocks of dates (a
null that must come out not significant); a calibration table; and, from the
training histories, the train/validation loss gap per epoch with a flag for
models whose gap widens (:func:`overfitting_monitor`). With ``report_dir`` it
also writes a self-contained ``report.html`` and its PNG figures.

Examples
--------
>>> import datetime as dt, tempfile
>>> from pathlib import Path
>>> import numpy as np, polars as pl
>>> rng = np.random.default_rng(0)
>>> n = 240
>>> y = (rng.uniform(size=n) < 0.5).astype(np.int8)
>>> p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.15, n), 0, 1)
>>> days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n)]
>>> frame = pl.DataFrame({
...     "ticker": "AAA", "date": days, "t1": days, "model_id": "wf00",
...     "train_end": dt.date(2020, 12, 1), "embargo_end": dt.date(2020, 12, 8),
...     "breakout_p": p.astype(np.float32), "breakout": y,
... })
>>> path = Path(tempfile.mkdtemp()) / "predictions.parquet"
>>> frame.write_parquet(path)
>>> report = run_validate_job(predictions=path, n_boot=50)
>>> report.metrics.select("pattern", "n").rows()
[('breakout', 240)]
>>> bool(report.metrics["auc"][0] > 0.6), report.overfitting is None
(True, True)
"""

from __future__ import annotations

import base64
import html
import math
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.evaluation import METRICS, evaluate_frame
from engine.io import atomic_write_bytes
from engine.labels.permutations import DEFAULT_NULL_BLOCK, permute_outcomes
from engine.model.artifacts import HISTORY_FILE, METADATA_FILE, PREDICTIONS_FILE, read_metadata
from engine.model.run_files import (
    CONFIDENCE_SUFFIX,
    RUN_FILE,
    RUN_PREDICTIONS_FILE,
    check_predictions,
    json_value,
    read_json,
    read_predictions,
)

__all__ = [
    "CALIBRATION_BINS",
    "DEFAULT_OVERFIT_TOLERANCE",
    "DEFAULT_OVERFIT_WINDOW",
    "FIGURE_FILES",
    "REPORT_FILE",
    "SIGNIFICANCE",
    "ValidateReport",
    "calibration_table",
    "null_comparison",
    "overfitting_monitor",
    "read_history",
    "run_validate_job",
    "write_report",
]

#: One-sided level at which a p-value counts as significant in the null comparison.
SIGNIFICANCE = 0.05
#: Epochs looked back over by :func:`overfitting_monitor`.
DEFAULT_OVERFIT_WINDOW = 5
#: Changes in loss (nats) at or below this are treated as noise by the monitor.
DEFAULT_OVERFIT_TOLERANCE = 1e-3
#: Quantile bins of the calibration table.
CALIBRATION_BINS = 10
REPORT_FILE = "report.html"
#: Figure name -> file written by :func:`write_report` (when the figure applies).
FIGURE_FILES = {
    "learning_curves": "learning_curves.png",
    "calibration": "calibration.png",
    "auc_by_window": "auc_by_window.png",
    "null_comparison": "null_comparison.png",
}
_HISTORY_REQUIRED = ("epoch", "train_loss", "val_loss")
_HISTORY_SCHEMA = {
    "model_id": pl.String,
    "epoch": pl.Int64,
    "train_loss": pl.Float64,
    "val_loss": pl.Float64,
    "gap": pl.Float64,
    "val_objective": pl.Float64,
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


# --------------------------------------------------------------------------- report


@dataclass
class ValidateReport:
    """What :func:`run_validate_job` found.

    Attributes
    ----------
    source : {"run", "model", "predictions"}
        What was validated.
    path : Path
        The run directory, model artifact directory or predictions file given.
    predictions_path : Path
        The predictions file that was read.
    patterns : list of str
    rows : int
        Prediction rows (labelled or not).
    tickers : list of str
    windows : polars.DataFrame
        Per ``model_id``: ``train_end``, ``embargo_end``, ``first_date``,
        ``last_date``, ``rows``, ``tickers`` (from the predictions).
    metrics : polars.DataFrame
        Per pattern: :func:`engine.evaluation.metrics.evaluate_frame` output. A pattern
        with no labelled row has ``n = 0`` and null metrics.
    by_model : polars.DataFrame
        Per pattern and ``model_id`` (the AUC per window and every other metric).
    by_ticker : polars.DataFrame or None
        Per pattern and ticker, when asked for.
    null_metrics : polars.DataFrame or None
        ``metrics`` recomputed on block-permuted outcomes (same schema).
    null_comparison : polars.DataFrame or None
        See :func:`null_comparison`.
    calibration : polars.DataFrame
        See :func:`calibration_table`.
    history : polars.DataFrame or None
        Per model and epoch: ``train_loss``, ``val_loss``, ``gap``,
        ``val_objective`` (None without histories).
    overfitting : polars.DataFrame or None
        See :func:`overfitting_monitor` (None without histories).
    settings : dict
        The job's settings.
    notes : list of str
        Caveats found on the way (missing histories, an interrupted run, ...).
    run_status : str or None
        ``run.json`` status for a run directory.
    report : Path or None
        ``report.html`` when written.
    figures : list of Path
        The PNG files written beside it.
    seconds : float
        Wall time of the job.
    """

    source: str
    path: Path
    predictions_path: Path
    patterns: list[str]
    rows: int
    tickers: list[str]
    windows: pl.DataFrame
    metrics: pl.DataFrame
    by_model: pl.DataFrame
    by_ticker: pl.DataFrame | None
    null_metrics: pl.DataFrame | None
    null_comparison: pl.DataFrame | None
    calibration: pl.DataFrame
    history: pl.DataFrame | None
    overfitting: pl.DataFrame | None
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    run_status: str | None = None
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def start(self) -> date | None:
        """First prediction date."""
        return self.windows.get_column("first_date").min() if self.windows.height else None

    @property
    def end(self) -> date | None:
        """Last prediction date."""
        return self.windows.get_column("last_date").max() if self.windows.height else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: frames as lists of row dicts, floats rounded, NaN as None.

        Floats are rounded to 6 decimals (``seconds`` to 3), dates are ISO
        strings and a missing or non-finite value is ``None``, so the result
        passes ``json.dumps(..., allow_nan=False)``.
        """
        null = None
        if self.null_metrics is not None and self.null_comparison is not None:
            null = {
                "block": self.settings["null_block"],
                "seed": self.settings["seed"],
                "significance": SIGNIFICANCE,
                "metrics": _rows(self.null_metrics),
                "comparison": _rows(self.null_comparison),
            }
        overfitting = None
        if self.overfitting is not None and self.history is not None:
            overfitting = {
                "window": self.settings["overfit_window"],
                "tolerance": self.settings["overfit_tolerance"],
                "models": _rows(self.overfitting),
                "history": _rows(self.history),
            }
        return {
            "source": {
                "kind": self.source,
                "path": str(self.path),
                "predictions": str(self.predictions_path),
                "run_status": self.run_status,
            },
            "patterns": list(self.patterns),
            "rows": self.rows,
            "tickers": list(self.tickers),
            "start": json_value(self.start),
            "end": json_value(self.end),
            "settings": {k: json_value(v) for k, v in self.settings.items()},
            "windows": _rows(self.windows),
            "metrics": _rows(self.metrics),
            "by_model": _rows(self.by_model),
            "by_ticker": _rows(self.by_ticker) if self.by_ticker is not None else None,
            "null": null,
            "calibration": _rows(self.calibration),
            "overfitting": overfitting,
            "notes": list(self.notes),
            "report": str(self.report) if self.report else None,
            "figures": [str(p) for p in self.figures],
            "seconds": round(self.seconds, 3),
        }

    def summary_lines(self) -> list[str]:
        """Short human-readable lines: what was read, one line per pattern, flags and notes."""
        models = self.windows.height
        lines = [
            f"validated {self.source} {self.path}: {self.rows} predictions, "
            f"{len(self.tickers)} tickers, {models} model{'s' if models != 1 else ''}, "
            f"{json_value(self.start)} to {json_value(self.end)}",
        ]
        for row in self.metrics.iter_rows(named=True):
            if not row["n"]:
                lines.append(f"{row['pattern']}: no labelled outcomes")
                continue
            text = (
                f"{row['pattern']}: n={row['n']} events={row['events']} "
                f"base rate {_f(row['base_rate'], 3)}; AUC {_metric_text(row, 'auc')}; "
                f"accuracy {_f(row['accuracy'], 3)} vs majority {_f(row['majority_rate'], 3)}; "
                f"Brier {_f(row['brier'], 4)} vs {_f(row['brier_reference'], 4)}"
            )
            lines.append(text)
        if self.null_comparison is not None:
            for row in self.null_comparison.iter_rows(named=True):
                verdict = {True: "skill survives the null", False: "not confirmed"}.get(
                    row["confirmed"], "undetermined"
                )
                lines.append(
                    f"null {row['pattern']}: real AUC {_f(row['auc'], 3)} "
                    f"(p={_f(row['auc_p_value'], 4)}), permuted AUC {_f(row['null_auc'], 3)} "
                    f"(p={_f(row['null_auc_p_value'], 4)}): {verdict}"
                )
        if self.overfitting is not None:
            for row in self.overfitting.iter_rows(named=True):
                flag = {True: "OVERFITTING", False: "ok"}.get(row["overfitting"], "n/a")
                lines.append(
                    f"{row['model_id']}: {row['epochs']} epochs, best {row['best_epoch']}, "
                    f"{flag} ({row['reason']})"
                )
        lines += [f"note: {n}" for n in self.notes]
        if self.report is not None:
            lines.append(f"wrote {self.report}")
        return lines


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _f(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _metric_text(row: dict[str, Any], name: str, digits: int = 3) -> str:
    est = row.get(name)
    if est is None or not math.isfinite(est):
        return "-"
    return (
        f"{est:.{digits}f} [{_f(row[name + '_ci_low'], digits)}, "
        f"{_f(row[name + '_ci_high'], digits)}] p={_f(row[name + '_p_value'], 4)}"
    )


# --------------------------------------------------------------------------- inputs


def read_history(path: Path, model_id: str) -> pl.DataFrame:
    """Read one ``history.csv`` into the long history schema.

    Parameters
    ----------
    path : Path
        A ``history.csv`` of :mod:`engine.model.artifacts` (columns ``epoch``,
        ``train_loss``, ``val_loss`` required; ``gap`` is recomputed as
        ``val_loss - train_loss`` when absent; ``val_objective``, written by
        older trainers, is null when absent).
    model_id : str

    Returns
    -------
    polars.DataFrame
        ``model_id, epoch, train_loss, val_loss, gap, val_objective``, sorted by epoch.

    Raises
    ------
    FileNotFoundError
        The file is missing.
    ValueError
        Unreadable, without the required columns, or without epochs.
    """
    if not path.is_file():
        raise FileNotFoundError(f"training history {path} is missing (model {model_id})")
    try:
        raw = pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValueError(f"{path} is not a readable history CSV: {exc}") from None
    missing = [c for c in _HISTORY_REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(f"{path} lacks history columns {missing} (has {raw.columns})")
    if raw.height == 0:
        raise ValueError(f"{path} holds no epochs")
    gap = pl.col("gap") if "gap" in raw.columns else pl.col("val_loss") - pl.col("train_loss")
    objective = pl.col("val_objective") if "val_objective" in raw.columns else pl.lit(None)
    try:
        return (
            raw.select(
                pl.lit(model_id).alias("model_id"),
                pl.col("epoch"),
                pl.col("train_loss"),
                pl.col("val_loss"),
                gap.alias("gap"),
                objective.alias("val_objective"),
            )
            .cast(_HISTORY_SCHEMA)
            .sort("epoch")
        )
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"{path}: history columns are not numeric: {exc}") from None


@dataclass
class _Source:
    kind: str
    path: Path
    predictions: Path
    patterns: list[str] | None
    histories: dict[str, Path]
    model_ids: list[str] | None = None
    run_status: str | None = None
    notes: list[str] = field(default_factory=list)


def _from_run(directory: Path) -> _Source:
    run_file = directory / RUN_FILE
    run = read_json(run_file)
    if not isinstance(run, dict) or not isinstance(run.get("windows"), list):
        raise ValueError(f"{run_file} is not a training run file: it has no 'windows' list")
    status = run.get("status")
    predictions = directory / RUN_PREDICTIONS_FILE
    if not predictions.is_file():
        raise FileNotFoundError(
            f"{predictions} is missing: the run {directory} (status {status!r}) has no "
            "predictions; it wrote none before it stopped"
        )
    histories: dict[str, Path] = {}
    for k, window in enumerate(run["windows"]):
        if not isinstance(window, dict) or "model_id" not in window:
            raise ValueError(f"{run_file}: windows[{k}] has no 'model_id'")
        model_id = str(window["model_id"])
        artifact = directory / str(window.get("artifact") or f"models/{model_id}")
        if not artifact.is_dir():
            raise FileNotFoundError(f"model artifact {artifact} of window {model_id} is missing")
        read_metadata(artifact)  # verifies every checksum; raises ArtifactError naming the file
        histories[model_id] = artifact / HISTORY_FILE
    notes = []
    if status != "complete":
        notes.append(
            f"run status is {status!r}: only its {len(histories)} finished windows are validated"
        )
    if not histories:
        notes.append("run.json lists no finished windows: overfitting monitor absent")
    patterns = run.get("pattern_names")
    return _Source(
        kind="run",
        path=directory,
        predictions=predictions,
        patterns=list(patterns) if patterns else None,
        histories=histories,
        model_ids=list(histories),
        run_status=status,
        notes=notes,
    )


def _from_artifact(directory: Path) -> _Source:
    metadata = read_metadata(directory)  # verifies every checksum
    model_id = str(metadata.get("model_id"))
    predictions = directory / PREDICTIONS_FILE
    if PREDICTIONS_FILE not in metadata.get("files", {}) or not predictions.is_file():
        raise FileNotFoundError(
            f"model artifact {directory} has no {PREDICTIONS_FILE}: nothing out-of-sample to "
            "validate"
        )
    patterns = metadata.get("pattern_names")
    return _Source(
        kind="model",
        path=directory,
        predictions=predictions,
        patterns=list(patterns) if patterns else None,
        histories={model_id: directory / HISTORY_FILE},
        model_ids=[model_id],
    )


def _resolve(model: Path | None, predictions: Path | None) -> _Source:
    if (model is None) == (predictions is None):
        raise ValueError(
            "give exactly one of `model` (a run directory or a model artifact directory) and "
            f"`predictions` (a predictions Parquet file), got model={model}, "
            f"predictions={predictions}"
        )
    if predictions is not None:
        path = Path(predictions)
        return _Source(
            kind="predictions",
            path=path,
            predictions=path,
            patterns=None,
            histories={},
            notes=["a predictions file has no training histories: overfitting monitor absent"],
        )
    path = Path(model)  # type: ignore[arg-type]
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if not path.is_dir():
        raise ValueError(
            f"model path {path} is a file, not a run or model artifact directory; "
            "pass a predictions file as `predictions`"
        )
    if (path / RUN_FILE).is_file():
        return _from_run(path)
    if (path / METADATA_FILE).is_file():
        return _from_artifact(path)
    raise ValueError(
        f"{path} is neither a training run directory (no {RUN_FILE}) nor a model artifact "
        f"directory (no {METADATA_FILE})"
    )


# --------------------------------------------------------------------------- checks


# --------------------------------------------------------------------------- evaluation


def _evaluate(
    frame: pl.DataFrame, patterns: list[str], by: tuple[str, ...], n_boot: int, seed: int
) -> pl.DataFrame:
    """``evaluate_frame`` on the patterns with labels; pooled rows ``n = 0`` for the others."""
    labelled = [p for p in patterns if frame.get_column(p).null_count() < frame.height]
    result = evaluate_frame(frame, labelled, by=by, n_boot=n_boot, seed=seed)
    empty = [p for p in patterns if p not in labelled]
    if empty and by == ("pattern",):
        filler = pl.DataFrame(
            [{"pattern": p, "n": 0, "events": 0, "n_boot": int(n_boot)} for p in empty],
            schema=result.schema,
        )
        result = pl.concat([result, filler]).sort("pattern")
    return result


def _by_model(
    frame: pl.DataFrame, patterns: list[str], pooled: pl.DataFrame, n_boot: int, seed: int
) -> pl.DataFrame:
    ids = frame.get_column("model_id").unique()
    if ids.len() == 1:
        # one window: its group is the pooled sample, rows in the same order -> same numbers
        rest = [c for c in pooled.columns if c != "pattern"]
        return (
            pooled.filter(pl.col("n") > 0)
            .with_columns(pl.lit(ids[0], pl.String).alias("model_id"))
            .select("pattern", "model_id", *rest)
        )
    return _evaluate(frame, patterns, ("pattern", "model_id"), n_boot, seed)


def _permuted(frame: pl.DataFrame, patterns: list[str], block: int, seed: int) -> pl.DataFrame:
    """Outcomes block-permuted by date (one permutation for all tickers and models).

    The permutation runs on the ``(ticker, date)`` outcome table, then joins
    back, so a date scored by two models keeps one outcome per ticker. When
    ``(ticker, date)`` is unique this equals
    ``permute_outcomes(frame, patterns, block=block, seed=seed)``; every block
    of dates moves (:func:`engine.labels.permutations.block_permutation`).
    """
    outcomes = frame.select("ticker", "date", *patterns).unique(
        subset=["ticker", "date"], keep="first", maintain_order=True
    )
    n_dates = outcomes.get_column("date").n_unique()
    if n_dates <= block:
        raise ValueError(
            f"the null test needs at least two blocks: the predictions span {n_dates} dates, "
            f"null_block is {block}"
        )
    shuffled = permute_outcomes(outcomes, patterns, block=block, seed=seed)
    return (
        frame.drop(patterns)
        .join(shuffled, on=["ticker", "date"], how="left", maintain_order="left")
        .select(frame.columns)
    )


def null_comparison(
    real: pl.DataFrame, null: pl.DataFrame, *, alpha: float = SIGNIFICANCE
) -> pl.DataFrame:
    """Real AUC beside the permuted-outcome AUC, per pattern.

    Parameters
    ----------
    real, null : polars.DataFrame
        Per-pattern :func:`engine.evaluation.metrics.evaluate_frame` output on the real
        and on the block-permuted outcomes.
    alpha : float, default 0.05
        Level of the one-sided AUC test.

    Returns
    -------
    polars.DataFrame
        ``pattern``, ``auc``, ``auc_ci_low``, ``auc_ci_high``,
        ``auc_p_value``, the same four prefixed ``null_``, then
        ``real_significant`` (``auc_p_value < alpha``), ``null_significant``
        (``null_auc_p_value < alpha``) and ``confirmed`` (real significant
        and null not). Booleans are null where a p-value is missing.

    Examples
    --------
    >>> import polars as pl
    >>> real = pl.DataFrame({"pattern": ["a"], "auc": [0.6], "auc_ci_low": [0.55],
    ...                      "auc_ci_high": [0.65], "auc_p_value": [0.001]})
    >>> null = real.with_columns(auc=pl.lit(0.5), auc_p_value=pl.lit(0.48))
    >>> null_comparison(real, null)["confirmed"].to_list()
    [True]
    """
    cols = ["auc", "auc_ci_low", "auc_ci_high", "auc_p_value"]
    joined = real.select("pattern", *cols).join(
        null.select("pattern", *(pl.col(c).alias("null_" + c) for c in cols)),
        on="pattern",
        how="left",
        maintain_order="left",
    )
    real_sig = pl.col("auc_p_value") < alpha
    null_sig = pl.col("null_auc_p_value") < alpha
    return joined.with_columns(
        real_sig.alias("real_significant"),
        null_sig.alias("null_significant"),
        (real_sig & ~null_sig).alias("confirmed"),
    )


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
    schema = {
        "pattern": pl.String,
        "bin": pl.Int64,
        "n": pl.Int64,
        "conf_low": pl.Float64,
        "conf_high": pl.Float64,
        "mean_confidence": pl.Float64,
        "observed_rate": pl.Float64,
    }
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
    return pl.DataFrame(rows, schema=schema)


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
        optionally ``gap`` and ``val_objective`` (:func:`read_history`).
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
    missing = [c for c in ("model_id", *_HISTORY_REQUIRED) if c not in history.columns]
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


def _windows(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("model_id")
        .agg(
            pl.col("train_end").max(),
            pl.col("embargo_end").max(),
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("ticker").n_unique().cast(pl.Int64).alias("tickers"),
        )
        .sort("first_date", "model_id")
    )


# --------------------------------------------------------------------------- HTML report


_METRIC_LABELS = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "brier": "Brier",
    "log_loss": "log loss",
    "point_biserial": "point-biserial r",
}
_REFERENCES = {
    "accuracy": "majority_rate",
    "brier": "brier_reference",
    "log_loss": "log_loss_reference",
}
_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em;
       color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
.flag { color: #b00000; font-weight: bold; } .ok { color: #176617; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
p.note { color: #7a4d00; }
"""


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _f(value, digits)
    return html.escape(str(json_value(value)))


def _metric_cell(row: dict[str, Any], name: str) -> str:
    text = html.escape(_metric_text(row, name))
    ref = _REFERENCES.get(name)
    if ref is not None and row.get(ref) is not None and row.get(name) is not None:
        text += f" <small>(ref {_f(row[ref], 3)})</small>"
    p = row.get(f"{name}_p_value")
    if p is not None and math.isfinite(p) and p < SIGNIFICANCE:
        text = f"<b>{text}</b>"
    return text


def _table(frame: pl.DataFrame, keys: list[str], *, metrics: bool) -> str:
    head = "".join(f'<th class="l">{html.escape(k)}</th>' for k in keys)
    if metrics:
        head += "<th>n</th><th>events</th><th>base rate</th>"
        head += "".join(f"<th>{html.escape(_METRIC_LABELS[m])}</th>" for m in METRICS)
    body = []
    for row in frame.iter_rows(named=True):
        cells = "".join(f'<td class="l">{_cell(row[k])}</td>' for k in keys)
        if metrics:
            cells += f"<td>{row['n']}</td><td>{row['events']}</td>"
            cells += f"<td>{_cell(row['base_rate'], 3)}</td>"
            cells += "".join(f"<td>{_metric_cell(row, m)}</td>" for m in METRICS)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _plain_table(frame: pl.DataFrame, flag: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = []
        for c, v in row.items():
            cls = ""
            if c == flag and v is not None:
                cls = ' class="flag"' if v else ' class="ok"'
            elif isinstance(v, str):
                cls = ' class="l"'
            cells.append(f"<td{cls}>{_cell(v)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _html(report: ValidateReport, figures: dict[str, tuple[str, bytes]]) -> str:
    esc = html.escape
    s = report.settings
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>engine validate: {esc(str(report.path))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Out-of-sample validation</h1>",
        f"<p>Source: {esc(report.source)} <code>{esc(str(report.path))}</code>"
        + (f" (run status {esc(str(report.run_status))})" if report.run_status else "")
        + f"<br>Predictions: <code>{esc(str(report.predictions_path))}</code>, "
        f"{report.rows} rows, {len(report.tickers)} tickers, "
        f"{report.windows.height} model{'' if report.windows.height == 1 else 's'}, "
        f"{_cell(report.start)} to {_cell(report.end)}<br>"
        f"Stationary bootstrap: {s['n_boot']} replicates, seed {s['seed']}; 95 % percentile "
        "intervals; one-sided p-values against no skill (bold: p &lt; 0.05). "
        "Brier and log loss are compared with the base-rate forecast (ref), accuracy with "
        "the majority-class rate.</p>",
    ]
    parts += [f'<p class="note">Note: {esc(n)}</p>' for n in report.notes]
    parts += ["<h2>Per pattern</h2>", _table(report.metrics, ["pattern"], metrics=True)]
    if report.null_comparison is not None and report.null_metrics is not None:
        parts += [
            "<h2>Null test: outcomes permuted in blocks of dates</h2>",
            f"<p>Block {s['null_block']} dates, seed {s['seed']}. A pattern is confirmed when "
            f"its real AUC p-value is below {SIGNIFICANCE} and the permuted one is not.</p>",
            _plain_table(report.null_comparison, flag="null_significant"),
            "<h3>Every metric on permuted outcomes</h3>",
            _table(report.null_metrics, ["pattern"], metrics=True),
        ]
    parts += [
        "<h2>Per window (model)</h2>",
        _table(report.by_model, ["pattern", "model_id"], metrics=True),
    ]
    parts += ["<h3>Windows</h3>", _plain_table(report.windows)]
    if report.by_ticker is not None:
        parts += [
            "<h2>Per pattern and ticker</h2>",
            _table(report.by_ticker, ["pattern", "ticker"], metrics=True),
        ]
    if report.overfitting is not None:
        parts += [
            "<h2>Overfitting monitor</h2>",
            f"<p>Flagged when the gap (val_loss - train_loss) grew by more than "
            f"{s['overfit_tolerance']:g} over the last {s['overfit_window']} epochs while "
            f"val_loss is more than {s['overfit_tolerance']:g} above its minimum. Best epoch: "
            "lowest val_loss (val_objective in older histories); its weights are the ones "
            "saved.</p>",
            _plain_table(report.overfitting, flag="overfitting"),
        ]
    else:
        parts.append("<h2>Overfitting monitor</h2><p>Absent: no training histories.</p>")
    captions = {
        "learning_curves": "Learning curves: train and validation loss per epoch.",
        "calibration": "Calibration: mean confidence against observed frequency per bin.",
        "auc_by_window": "AUC per window with 95 % bootstrap intervals.",
        "null_comparison": "Real against block-permuted outcomes.",
    }
    parts.append("<h2>Figures</h2>")
    for name, (file, data) in figures.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{encoded}" alt="{esc(file)}">'
            f"<figcaption>{esc(captions[name])} "
            f'(<a href="{esc(file)}">{esc(file)}</a>)</figcaption></figure>'
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: ValidateReport, report_dir: Path) -> tuple[Path, list[Path]]:
    """Write ``report.html`` (figures embedded as base64) and the PNG figures.

    Parameters
    ----------
    report : ValidateReport
    report_dir : Path
        Created if needed; files of the same name are replaced atomically.

    Returns
    -------
    html : Path
    figures : list of Path
        ``learning_curves.png`` (with histories), ``calibration.png``,
        ``auc_by_window.png`` and ``null_comparison.png`` (with the null test).
    """
    from engine.reports import plots as report_plots

    report_dir = Path(report_dir)
    if report_dir.exists() and not report_dir.is_dir():
        raise ValueError(f"report directory {report_dir} exists and is not a directory")
    report_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, tuple[str, bytes]] = {}
    if report.history is not None:
        figures["learning_curves"] = (
            FIGURE_FILES["learning_curves"],
            report_plots.learning_curves_png(report.history, report.overfitting),
        )
    figures["calibration"] = (
        FIGURE_FILES["calibration"],
        report_plots.calibration_png(report.calibration),
    )
    figures["auc_by_window"] = (
        FIGURE_FILES["auc_by_window"],
        report_plots.auc_by_window_png(report.by_model),
    )
    if report.null_metrics is not None:
        figures["null_comparison"] = (
            FIGURE_FILES["null_comparison"],
            report_plots.null_comparison_png(report.metrics, report.null_metrics),
        )
    paths = []
    for file, data in figures.values():
        atomic_write_bytes(report_dir / file, data)
        paths.append(report_dir / file)
    page = report_dir / REPORT_FILE
    atomic_write_bytes(page, _html(report, figures).encode("utf-8"))
    return page, paths


# --------------------------------------------------------------------------- the job


def run_validate_job(
    model: Path | None = None,
    predictions: Path | None = None,
    *,
    by_ticker: bool = False,
    null: bool = False,
    null_block: int = DEFAULT_NULL_BLOCK,
    n_boot: int = 1000,
    seed: int = 0,
    report_dir: Path | None = None,
    overfit_window: int = DEFAULT_OVERFIT_WINDOW,
    overfit_tolerance: float = DEFAULT_OVERFIT_TOLERANCE,
) -> ValidateReport:
    """Validate out-of-sample predictions: the ``engine validate`` job.

    Parameters
    ----------
    model : Path, optional
        A training run directory (``run.json``; every window's artifact is
        checksum-verified and its ``history.csv`` read) or one model artifact
        directory (``metadata.json``; verified, then its
        ``test_predictions.parquet`` and ``history.csv``).
    predictions : Path, optional
        A predictions Parquet file (format of
        :data:`engine.model.run_files.PREDICTION_KEYS` then ``<pattern>_p`` and
        ``<pattern>`` per pattern). Has no histories: no overfitting monitor.
        Give exactly one of ``model`` and ``predictions``.
    by_ticker : bool
        Also evaluate each pattern per ticker.
    null : bool
        Also evaluate after permuting the outcomes in blocks of
        ``null_block`` dates (one permutation for all tickers,
        :func:`engine.labels.permutations.permute_outcomes` with ``seed``; every block
        moves), per pattern.
    null_block : int, default 20
    n_boot : int, default 1000
        Stationary-bootstrap replicates of every evaluation.
    seed : int, default 0
        Bootstrap seed (every group) and permutation seed.
    report_dir : Path, optional
        Write ``report.html`` and the PNG figures there (:func:`write_report`).
    overfit_window, overfit_tolerance
        See :func:`overfitting_monitor`.

    Returns
    -------
    ValidateReport

    Raises
    ------
    ValueError
        Both or neither of ``model`` / ``predictions``; a file that is not a
        predictions file; missing or malformed columns; in-sample rows
        (``date <= embargo_end``); a checksum mismatch
        (:class:`engine.model.artifacts.ArtifactError`).
    FileNotFoundError
        A missing path, predictions file or history.

    Notes
    -----
    Metrics come from :func:`engine.evaluation.metrics.evaluate_frame` (rows in date
    order, stationary bootstrap, one-sided no-skill p-values). The by-window
    rows of a single-window source are the pooled rows (same sample, same
    order, same seed). Nothing here corrects for testing several patterns;
    with four patterns a Bonferroni level is 0.0125.
    """
    began = time.perf_counter()
    if int(null_block) != null_block or null_block < 1:
        raise ValueError(f"`null_block` must be an integer >= 1, got `null_block={null_block}`")
    if int(n_boot) != n_boot or n_boot < 10:
        raise ValueError(f"`n_boot` must be an integer >= 10, got `n_boot={n_boot}`")
    if int(overfit_window) != overfit_window or overfit_window < 1:
        raise ValueError(
            f"`overfit_window` must be an integer >= 1, got `overfit_window={overfit_window}`"
        )
    if not overfit_tolerance >= 0.0:
        raise ValueError(f"`overfit_tolerance` must be >= 0, got {overfit_tolerance}")
    source = _resolve(model, predictions)
    raw = read_predictions(source.predictions)
    frame, patterns = check_predictions(raw, source.patterns, source=str(source.predictions))
    notes = list(source.notes)

    found = sorted(frame.get_column("model_id").unique().to_list())
    if source.model_ids is not None:
        extra = [m for m in found if m not in source.model_ids]
        if source.kind == "model" and extra:
            raise ValueError(
                f"{source.predictions} holds model_ids {found}, but the artifact is "
                f"{source.model_ids[0]!r}"
            )
        if extra:
            notes.append(f"predictions of model_ids {extra} have no window in {RUN_FILE}")
        absent = [m for m in source.model_ids if m not in found]
        if absent:
            notes.append(f"windows {absent} have no predictions")
    shared = frame.select("ticker", "date").is_duplicated().sum()
    if shared:
        notes.append(
            f"{shared} rows share a (ticker, date) with another model's prediction; pooled "
            "metrics count each prediction"
        )
    unlabelled = [p for p in patterns if frame.get_column(p).null_count() == frame.height]
    if unlabelled:
        notes.append(f"patterns {unlabelled} have no labelled outcome: no metrics")

    metrics = _evaluate(frame, patterns, ("pattern",), n_boot, seed)
    by_model = _by_model(frame, patterns, metrics, n_boot, seed)
    per_ticker = (
        _evaluate(frame, patterns, ("pattern", "ticker"), n_boot, seed) if by_ticker else None
    )
    null_metrics = comparison = None
    if null:
        shuffled = _permuted(frame, patterns, int(null_block), seed)
        null_metrics = _evaluate(shuffled, patterns, ("pattern",), n_boot, seed)
        comparison = null_comparison(metrics, null_metrics)

    history = monitor = None
    if source.histories:
        history = pl.concat([read_history(path, m) for m, path in source.histories.items()])
        monitor = overfitting_monitor(history, window=overfit_window, tolerance=overfit_tolerance)

    report = ValidateReport(
        source=source.kind,
        path=source.path,
        predictions_path=source.predictions,
        patterns=patterns,
        rows=frame.height,
        tickers=sorted(frame.get_column("ticker").unique().to_list()),
        windows=_windows(frame),
        metrics=metrics,
        by_model=by_model,
        by_ticker=per_ticker,
        null_metrics=null_metrics,
        null_comparison=comparison,
        calibration=calibration_table(frame, patterns),
        history=history,
        overfitting=monitor,
        settings={
            "by_ticker": by_ticker,
            "null": null,
            "null_block": int(null_block),
            "n_boot": int(n_boot),
            "seed": seed,
            "overfit_window": int(overfit_window),
            "overfit_tolerance": float(overfit_tolerance),
            "calibration_bins": CALIBRATION_BINS,
            "significance": SIGNIFICANCE,
        },
        notes=notes,
        run_status=source.run_status,
    )
    if report_dir is not None:
        report.report, report.figures = write_report(report, Path(report_dir))
    report.seconds = time.perf_counter() - began
    return report
