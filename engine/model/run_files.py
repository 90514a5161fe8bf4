"""The run-directory format: one home for its file names and the predictions contract.

A training run directory holds::

    run.json               settings, windows, status (complete / interrupted / failed)
    predictions.parquet    out-of-sample predictions of every finished window
    models/<model_id>/     one artifact per window (:mod:`engine.model.artifacts`)

A predictions file has the key columns :data:`PREDICTION_KEYS`, then for each
pattern ``<pattern>_p`` (the confidence) and ``<pattern>`` (the outcome, 0/1
or null). :func:`check_predictions` enforces that contract, out-of-sample
rows included (the guard is recomputed by
:func:`engine.model.out_of_sample.check_out_of_sample`, never read from the
file).

:func:`read_history` reads one ``history.csv``. What a run directory, model
artifact or predictions file offers for validation is resolved in
:mod:`engine.model.prediction_sources`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.io import atomic_write_json
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.json_values import row_text
from engine.model.out_of_sample import check_out_of_sample

__all__ = [
    "finish_run_file",
    "CONFIDENCE_SUFFIX",
    "HISTORY_COLUMNS",
    "HISTORY_SCHEMA",
    "MODELS_DIR",
    "PREDICTION_KEYS",
    "RUN_FILE",
    "RUN_PREDICTIONS_FILE",
    "check_predictions",
    "read_history",
    "read_json",
    "read_predictions",
    "write_run_file",
]


RUN_FILE = "run.json"
RUN_PREDICTIONS_FILE = "predictions.parquet"
MODELS_DIR = "models"
#: Leading columns of a predictions file; then ``<pattern>_p`` and ``<pattern>`` per pattern.
PREDICTION_KEYS = ("ticker", "date", "t1", "model_id", "train_end", "embargo_end")
_DATE_KEYS = ("date", "t1", "train_end", "embargo_end")
#: Columns a ``history.csv`` must have.
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss")
#: Schema of :func:`read_history`: one row per model and epoch.
HISTORY_SCHEMA = {
    "model_id": pl.String,
    "epoch": pl.Int64,
    "train_loss": pl.Float64,
    "val_loss": pl.Float64,
    "gap": pl.Float64,
    "val_objective": pl.Float64,
}


def write_run_file(out: Path, payload: dict[str, Any]) -> None:
    """Write ``out/run.json`` atomically."""
    atomic_write_json(Path(out) / RUN_FILE, payload)


def finish_run_file(out: Path, run: dict[str, Any], error: BaseException | None = None) -> None:
    """Record how a run ended in its ``run.json`` and write it.

    ``complete`` without ``error``; ``interrupted`` on Ctrl-C; else
    ``failed`` with the error. A run file must not say ``"running"`` once
    nothing runs any more.
    """
    if error is None:
        run["status"] = "complete"
    elif isinstance(error, KeyboardInterrupt):
        run["status"] = "interrupted"
    else:
        run["status"] = "failed"
        run["error"] = f"{type(error).__name__}: {error}"
    run["finished"] = datetime.now().isoformat(timespec="seconds")
    write_run_file(out, run)


def read_json(path: Path) -> Any:
    """Parse a JSON file; an unreadable or invalid file is a ``ValueError`` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def read_predictions(path: Path) -> pl.DataFrame:
    """Read a predictions Parquet file; a missing or unreadable file is a clear error."""
    if not path.exists():
        raise FileNotFoundError(f"predictions file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"predictions path {path} is not a file")
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(
            f"{path} is not a predictions file (not readable as Parquet: {first})"
        ) from None


def check_predictions(
    frame: pl.DataFrame,
    patterns: list[str] | None = None,
    *,
    source: str = "predictions",
    calendar: np.ndarray | None = None,
    embargo_days: int | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Check a predictions frame and normalise its types.

    Rules: the key columns of :data:`PREDICTION_KEYS` are
    present, dates are dates and keys are not null; each pattern has an
    outcome column (0/1 or null) and a confidence column ``<pattern>_p``
    that lies in [0, 1] wherever the outcome is not null; a
    ``(ticker, date, model_id)`` appears once; and every row is
    out-of-sample: dated after the guard recomputed from its model's
    ``train_end`` (:func:`engine.model.out_of_sample.check_out_of_sample`),
    with an ``embargo_end`` not earlier than that guard, and
    ``date > embargo_end``.

    Parameters
    ----------
    frame : polars.DataFrame
    patterns : list of str, optional
        Expected patterns; default every column ``c`` that has a ``c + "_p"``
        beside it.
    source : str
        Named in error messages (usually the file).
    calendar : ndarray of datetime64[D], optional
        The bar calendar (sorted trading days,
        :func:`engine.model.out_of_sample.bar_calendar`); None: count
        business days.
    embargo_days : int, optional
        The run's embargo in trading days; None:
        :data:`engine.model.out_of_sample.DEFAULT_EMBARGO_DAYS`.

    Returns
    -------
    frame : polars.DataFrame
        Dates as ``pl.Date``, outcomes as ``Int8``, confidences as ``Float64``.
    patterns : list of str

    Raises
    ------
    ValueError
        Naming the file, the column and the broken rule (for in-sample rows:
        the first offending ticker, date and model_id; for an understated
        ``embargo_end``: the model, its ``embargo_end`` and the guard).

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> frame = pl.DataFrame({
    ...     "ticker": ["A"], "date": [dt.date(2020, 1, 2)], "t1": [dt.date(2020, 1, 9)],
    ...     "model_id": ["wf00"], "train_end": [dt.date(2019, 12, 1)],
    ...     "embargo_end": [dt.date(2020, 1, 2)], "x_p": [0.4], "x": [1],
    ... })
    >>> check_predictions(frame)
    Traceback (most recent call last):
    ...
    ValueError: predictions: 1 in-sample rows (date <= embargo_end); first: ticker A, date 2020-01-02, model_id wf00, embargo_end 2020-01-02
    """  # noqa: E501
    missing = [c for c in PREDICTION_KEYS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source} is not a predictions file: it lacks key columns {missing} "
            f"(has {frame.columns})"
        )
    if patterns is None:
        patterns = [
            c
            for c in frame.columns
            if c not in PREDICTION_KEYS
            and not c.endswith(CONFIDENCE_SUFFIX)
            and c + CONFIDENCE_SUFFIX in frame.columns
        ]
        if not patterns:
            raise ValueError(
                f"{source} is not a predictions file: no pattern columns (an outcome column "
                f"<pattern> beside its confidence <pattern>{CONFIDENCE_SUFFIX}); columns are "
                f"{frame.columns}"
            )
    else:
        lacking = [
            c for p in patterns for c in (p, p + CONFIDENCE_SUFFIX) if c not in frame.columns
        ]
        if lacking:
            raise ValueError(f"{source} lacks pattern columns {lacking}")
    if frame.height == 0:
        raise ValueError(f"{source} holds no predictions")

    casts: list[pl.Expr] = []
    for col in _DATE_KEYS:
        dtype = frame.schema[col]
        if dtype == pl.Date:
            continue
        if isinstance(dtype, pl.Datetime):
            casts.append(pl.col(col).cast(pl.Date))
        else:
            raise ValueError(f"{source}: column {col!r} must hold dates, got {dtype}")
    for col in ("ticker", "model_id"):
        if frame.schema[col] != pl.String:
            casts.append(pl.col(col).cast(pl.String))
    for p in patterns:
        for col in (p, p + CONFIDENCE_SUFFIX):
            if not frame.schema[col].is_numeric():
                raise ValueError(
                    f"{source}: column {col!r} must be numeric, got {frame.schema[col]}"
                )
        outcome = pl.col(p)
        if frame.schema[p].is_float():
            outcome = outcome.fill_nan(None)
        casts.append(outcome.alias(p))
        casts.append(pl.col(p + CONFIDENCE_SUFFIX).cast(pl.Float64))
    frame = frame.with_columns(casts)

    for col in ("ticker", "date", "model_id", "train_end", "embargo_end"):
        nulls = frame.get_column(col).null_count()
        if nulls:
            raise ValueError(f"{source}: column {col!r} has {nulls} null values")
    keys = ["ticker", "date", "model_id"]
    for p in patterns:
        conf = p + CONFIDENCE_SUFFIX
        bad = frame.filter(pl.col(p).is_not_null() & ~pl.col(p).is_in([0, 1]))
        if bad.height:
            value = bad.get_column(p)[0]
            first = row_text(bad.select(keys).row(0, named=True))
            raise ValueError(
                f"{source}: outcome column {p!r} must hold 0, 1 or null; {bad.height} rows "
                f"differ, first: {first}, value {value}"
            )
        c = pl.col(conf)
        bad = frame.filter(
            pl.col(p).is_not_null() & (c.is_null() | c.is_nan() | (c < 0.0) | (c > 1.0))
        )
        if bad.height:
            value = bad.get_column(conf)[0]
            first = row_text(bad.select(keys).row(0, named=True))
            raise ValueError(
                f"{source}: confidence column {conf!r} must lie in [0, 1] where {p!r} has an "
                f"outcome; {bad.height} rows do not, first: {first}, value {value}"
            )
    frame = frame.with_columns(pl.col(p).cast(pl.Int8) for p in patterns)

    dup = frame.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        first = row_text(dup.select(keys).row(0, named=True))
        raise ValueError(
            f"{source}: {dup.height} rows repeat a (ticker, date, model_id); first: {first}"
        )
    check_out_of_sample(frame, calendar=calendar, embargo_days=embargo_days, source=source)
    leak = frame.filter(pl.col("date") <= pl.col("embargo_end")).sort("date", "ticker")
    if leak.height:
        first = row_text(leak.select(*keys, "embargo_end").row(0, named=True))
        raise ValueError(
            f"{source}: {leak.height} in-sample rows (date <= embargo_end); first: {first}"
        )
    return frame, list(patterns)


# --------------------------------------------------------------------------- histories


def read_history(path: Path, model_id: str) -> pl.DataFrame:
    r"""Read one ``history.csv`` into the long history schema.

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
        ``model_id, epoch, train_loss, val_loss, gap, val_objective``
        (:data:`HISTORY_SCHEMA`), sorted by epoch.

    Raises
    ------
    FileNotFoundError
        The file is missing.
    ValueError
        Unreadable, without the required columns, or without epochs.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "history.csv"
    >>> _ = path.write_text("epoch,train_loss,val_loss\n2,0.5,0.75\n1,0.5,0.625\n")
    >>> read_history(path, "wf00").select("model_id", "epoch", "gap", "val_objective").rows()
    [('wf00', 1, 0.125, None), ('wf00', 2, 0.25, None)]
    """
    if not path.is_file():
        raise FileNotFoundError(f"training history {path} is missing (model {model_id})")
    try:
        raw = pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValueError(f"{path} is not a readable history CSV: {exc}") from None
    missing = [c for c in HISTORY_COLUMNS if c not in raw.columns]
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
            .cast(HISTORY_SCHEMA)
            .sort("epoch")
        )
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"{path}: history columns are not numeric: {exc}") from None
