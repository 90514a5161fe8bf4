"""The run-directory format: one home for its file names and the predictions contract.

A training run directory holds::

    run.json               settings, windows, status (complete / interrupted / failed)
    predictions.parquet    out-of-sample predictions of every finished window
    models/<model_id>/     one artifact per window (:mod:`engine.model.artifacts`)

A predictions file has the key columns :data:`PREDICTION_KEYS`, then for each
pattern ``<pattern>_p`` (the confidence) and ``<pattern>`` (the outcome, 0/1
or null). :func:`check_predictions` enforces that contract, out-of-sample
rows included.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.io import atomic_write_json
from engine.labels.targets import CONFIDENCE_SUFFIX

__all__ = [
    "CONFIDENCE_SUFFIX",
    "MODELS_DIR",
    "PREDICTION_KEYS",
    "RUN_FILE",
    "RUN_PREDICTIONS_FILE",
    "check_predictions",
    "json_value",
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


def write_run_file(out: Path, payload: dict[str, Any]) -> None:
    """Write ``out/run.json`` atomically."""
    atomic_write_json(Path(out) / RUN_FILE, payload)


def json_value(value: Any) -> Any:
    """A JSON-ready scalar: floats rounded to 6 digits (non-finite -> None), dates as ISO."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float | np.floating):
        v = float(value)
        return round(v, 6) if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


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


def _row_text(row: dict[str, Any]) -> str:
    return ", ".join(f"{k} {json_value(row[k])}" for k in row)


def check_predictions(
    frame: pl.DataFrame, patterns: list[str] | None = None, *, source: str = "predictions"
) -> tuple[pl.DataFrame, list[str]]:
    """Check a predictions frame and normalise its types.

    Rules: the key columns of :data:`PREDICTION_KEYS` are
    present, dates are dates and keys are not null; each pattern has an
    outcome column (0/1 or null) and a confidence column ``<pattern>_p``
    that lies in [0, 1] wherever the outcome is not null; a
    ``(ticker, date, model_id)`` appears once; and every row is
    out-of-sample, ``date > embargo_end``.

    Parameters
    ----------
    frame : polars.DataFrame
    patterns : list of str, optional
        Expected patterns; default every column ``c`` that has a ``c + "_p"``
        beside it.
    source : str
        Named in error messages (usually the file).

    Returns
    -------
    frame : polars.DataFrame
        Dates as ``pl.Date``, outcomes as ``Int8``, confidences as ``Float64``.
    patterns : list of str

    Raises
    ------
    ValueError
        Naming the file, the column and the broken rule (for in-sample rows:
        the first offending ticker, date and model_id).

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

    for col in ("ticker", "date", "model_id", "embargo_end"):
        nulls = frame.get_column(col).null_count()
        if nulls:
            raise ValueError(f"{source}: column {col!r} has {nulls} null values")
    keys = ["ticker", "date", "model_id"]
    for p in patterns:
        conf = p + CONFIDENCE_SUFFIX
        bad = frame.filter(pl.col(p).is_not_null() & ~pl.col(p).is_in([0, 1]))
        if bad.height:
            value = bad.get_column(p)[0]
            first = _row_text(bad.select(keys).row(0, named=True))
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
            first = _row_text(bad.select(keys).row(0, named=True))
            raise ValueError(
                f"{source}: confidence column {conf!r} must lie in [0, 1] where {p!r} has an "
                f"outcome; {bad.height} rows do not, first: {first}, value {value}"
            )
    frame = frame.with_columns(pl.col(p).cast(pl.Int8) for p in patterns)

    dup = frame.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        first = _row_text(dup.select(keys).row(0, named=True))
        raise ValueError(
            f"{source}: {dup.height} rows repeat a (ticker, date, model_id); first: {first}"
        )
    leak = frame.filter(pl.col("date") <= pl.col("embargo_end")).sort("date", "ticker")
    if leak.height:
        first = _row_text(leak.select(*keys, "embargo_end").row(0, named=True))
        raise ValueError(
            f"{source}: {leak.height} in-sample rows (date <= embargo_end); first: {first}"
        )
    return frame, list(patterns)
