"""The run-directory format: one home for its file names and the predictions contract.

A training run directory holds::

    run.json               settings, windows, status (complete / interrupted / failed)
    predictions.parquet    out-of-sample predictions of every finished window
    models/<model_id>/     one artifact per window (:mod:`engine.model.artifacts`)

A predictions file has the key columns :data:`PREDICTION_KEYS`, then for each
pattern ``<pattern>_p`` (the confidence) and ``<pattern>`` (the outcome, 0/1
or null). :func:`check_predictions` enforces that contract, out-of-sample
rows included.

The out-of-sample guard is recomputed, never read from the file: a row of
model ``m`` must be dated after :func:`embargo_guard` of ``m``'s
``train_end``, the ``embargo_days``-th trading day after it on the bar
calendar (the run's stored bars, :func:`bar_calendar`), and the file's
``embargo_end`` must not be earlier than that guard. Without a bar calendar
the days are counted as business days (Monday to Friday): every trading day
is a business day, so this guard is never later than the true one and an
honest file always passes, while a guard that trusted the file could be
moved at will.

:func:`resolve_prediction_source` reads what a run directory, one model
artifact directory or a bare predictions file offers for validation (a
:class:`PredictionSource`: the predictions file, the patterns, the training
histories), and :func:`read_history` reads one ``history.csv``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.data.store import BarStore
from engine.io import atomic_write_json
from engine.labels.targets import CONFIDENCE_SUFFIX, DEFAULT_HORIZON
from engine.model.artifacts import HISTORY_FILE, METADATA_FILE, PREDICTIONS_FILE, read_metadata

__all__ = [
    "CONFIDENCE_SUFFIX",
    "DEFAULT_EMBARGO_DAYS",
    "HISTORY_COLUMNS",
    "HISTORY_SCHEMA",
    "MODELS_DIR",
    "PREDICTION_KEYS",
    "RUN_FILE",
    "RUN_PREDICTIONS_FILE",
    "PredictionSource",
    "bar_calendar",
    "check_out_of_sample",
    "check_predictions",
    "embargo_days_of",
    "embargo_guard",
    "guard_notes",
    "json_value",
    "read_history",
    "read_json",
    "read_predictions",
    "resolve_prediction_source",
    "write_run_file",
]

RUN_FILE = "run.json"
RUN_PREDICTIONS_FILE = "predictions.parquet"
MODELS_DIR = "models"
#: Leading columns of a predictions file; then ``<pattern>_p`` and ``<pattern>`` per pattern.
PREDICTION_KEYS = ("ticker", "date", "t1", "model_id", "train_end", "embargo_end")
_DATE_KEYS = ("date", "t1", "train_end", "embargo_end")
#: Embargo (trading days) assumed when the run's settings are unknown: the training default
#: (:class:`engine.model.runs.RunSettings` ``embargo_days``, the label horizon).
DEFAULT_EMBARGO_DAYS = DEFAULT_HORIZON
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
    ``train_end`` (:func:`check_out_of_sample`), with an ``embargo_end`` not
    earlier than that guard, and ``date > embargo_end``.

    Parameters
    ----------
    frame : polars.DataFrame
    patterns : list of str, optional
        Expected patterns; default every column ``c`` that has a ``c + "_p"``
        beside it.
    source : str
        Named in error messages (usually the file).
    calendar : ndarray of datetime64[D], optional
        The bar calendar (sorted trading days, :func:`bar_calendar`); None:
        count business days.
    embargo_days : int, optional
        The run's embargo in trading days; None: :data:`DEFAULT_EMBARGO_DAYS`.

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
    check_out_of_sample(frame, calendar=calendar, embargo_days=embargo_days, source=source)
    leak = frame.filter(pl.col("date") <= pl.col("embargo_end")).sort("date", "ticker")
    if leak.height:
        first = _row_text(leak.select(*keys, "embargo_end").row(0, named=True))
        raise ValueError(
            f"{source}: {leak.height} in-sample rows (date <= embargo_end); first: {first}"
        )
    return frame, list(patterns)


# --------------------------------------------------------------------------- out-of-sample guard


def embargo_guard(
    train_end: np.ndarray, embargo_days: int, calendar: np.ndarray | None = None
) -> np.ndarray:
    """The last in-sample date of each model: ``embargo_days`` trading days after ``train_end``.

    A prediction is out of sample when it is dated strictly after this guard
    (the rule :func:`engine.model.runs.train_windows` applies when it writes
    ``embargo_end``).

    Parameters
    ----------
    train_end : array of datetime64[D]
        Each model's last label end date.
    embargo_days : int
        Trading days of embargo, at least 0 (0: the guard is ``train_end``).
    calendar : ndarray of datetime64[D], optional
        Sorted unique trading days (the bar calendar). The guard is the
        ``embargo_days``-th calendar day strictly after ``train_end``; past the
        calendar's last day the remaining days are counted as business days,
        and a ``train_end`` before its first day is counted in business days
        alone. None: business days (Monday to Friday) throughout, never later
        than the trading-day guard.

    Returns
    -------
    ndarray of datetime64[D]

    Examples
    --------
    >>> import numpy as np
    >>> friday = np.array(["2021-09-03"], "datetime64[D]")
    >>> embargo_guard(friday, 5)                      # Mon 6 .. Fri 10
    array(['2021-09-10'], dtype='datetime64[D]')
    >>> days = np.array(["2021-09-03", "2021-09-08", "2021-09-09", "2021-09-10",
    ...                  "2021-09-13", "2021-09-14", "2021-09-15"], "datetime64[D]")
    >>> embargo_guard(friday, 5, days)                # Mon 6 and Tue 7 closed
    array(['2021-09-14'], dtype='datetime64[D]')
    """
    if int(embargo_days) != embargo_days or embargo_days < 0:
        raise ValueError(
            f"`embargo_days` must be an integer >= 0, got `embargo_days={embargo_days}`"
        )
    k = int(embargo_days)
    train_end = np.asarray(train_end, dtype="datetime64[D]")
    guard = np.maximum(train_end, np.busday_offset(train_end, k, roll="backward"))
    if calendar is None or k == 0 or len(calendar) == 0:
        return guard
    cal = np.asarray(calendar, dtype="datetime64[D]")
    last = cal.size - 1
    pos = np.searchsorted(cal, train_end, side="right") - 1 + k
    covered = train_end >= cal[0]
    inside = covered & (pos <= last)
    guard[inside] = cal[pos[inside]]
    beyond = covered & (pos > last)
    guard[beyond] = np.busday_offset(cal[last], pos[beyond] - last, roll="backward")
    return guard


def _guard_rule(embargo_days: int, calendar: np.ndarray | None) -> str:
    unit = "trading days of the bar calendar" if calendar is not None else "business days"
    return f"train_end + {embargo_days} {unit}"


def check_out_of_sample(
    frame: pl.DataFrame,
    *,
    calendar: np.ndarray | None = None,
    embargo_days: int | None = None,
    source: str = "predictions",
) -> None:
    """Refuse rows on or before the recomputed guard, and an understated ``embargo_end``.

    Parameters
    ----------
    frame : polars.DataFrame
        ``ticker``, ``date``, ``model_id``, ``train_end``, ``embargo_end`` as
        dates, none null.
    calendar : ndarray of datetime64[D], optional
        See :func:`embargo_guard`.
    embargo_days : int, optional
        Default :data:`DEFAULT_EMBARGO_DAYS`.
    source : str
        Named in error messages.

    Raises
    ------
    ValueError
        A row dated on or before :func:`embargo_guard` of its ``train_end``
        (the first by date, naming ticker, date, model_id, train_end and the
        guard), or a model whose ``embargo_end`` is earlier than its guard.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> frame = pl.DataFrame({
    ...     "ticker": ["A"], "date": [dt.date(2021, 6, 1)], "model_id": ["wf00"],
    ...     "train_end": [dt.date(2021, 6, 30)], "embargo_end": [dt.date(2021, 5, 31)]})
    >>> check_out_of_sample(frame)
    Traceback (most recent call last):
    ...
    ValueError: predictions: 1 in-sample rows (date <= train_end + 5 business days); first: ticker A, date 2021-06-01, model_id wf00, train_end 2021-06-30, guard 2021-07-07
    """  # noqa: E501
    k = DEFAULT_EMBARGO_DAYS if embargo_days is None else int(embargo_days)
    ends = frame.get_column("train_end").unique().sort()
    guards = embargo_guard(ends.to_numpy().astype("datetime64[D]"), k, calendar)
    table = pl.DataFrame({"train_end": ends, "guard": pl.Series(guards.astype("datetime64[ms]"))})
    table = table.with_columns(pl.col("guard").cast(pl.Date))
    checked = frame.select("ticker", "date", "model_id", "train_end", "embargo_end").join(
        table, on="train_end", how="left"
    )
    rule = _guard_rule(k, calendar)
    leak = checked.filter(pl.col("date") <= pl.col("guard")).sort("date", "ticker", "model_id")
    if leak.height:
        first = _row_text(
            leak.select("ticker", "date", "model_id", "train_end", "guard").row(0, named=True)
        )
        raise ValueError(f"{source}: {leak.height} in-sample rows (date <= {rule}); first: {first}")
    short = (
        checked.filter(pl.col("embargo_end") < pl.col("guard"))
        .unique(subset=["model_id", "train_end", "embargo_end"])
        .sort("model_id", "embargo_end")
    )
    if short.height:
        row = short.row(0, named=True)
        raise ValueError(
            f"{source}: model_id {row['model_id']} states embargo_end "
            f"{json_value(row['embargo_end'])}, earlier than {rule} = "
            f"{json_value(row['guard'])} (train_end {json_value(row['train_end'])}): the file "
            f"understates its embargo ({short.height} model/embargo_end pairs do)"
        )


def bar_calendar(data_dir: str | Path | None, tickers: list[str] | None) -> np.ndarray | None:
    """The trading days of the stored bars of ``tickers`` (their union of dates).

    Parameters
    ----------
    data_dir : path, optional
        A data directory (:class:`engine.data.store.BarStore`).
    tickers : list of str, optional
        The run's tickers; None: every stored ticker.

    Returns
    -------
    ndarray of datetime64[D] or None
        Sorted unique dates; None when ``data_dir`` is None, holds no bars,
        has unreadable metadata or lacks one of ``tickers`` (a calendar with
        fewer days than the run's could refuse an honest file).

    Examples
    --------
    >>> bar_calendar(None, ["AAA"]) is None
    True
    """
    if data_dir is None or not Path(data_dir).is_dir():
        return None
    store = BarStore(data_dir)
    try:
        stored = store.tickers()
    except ValueError:
        return None
    wanted = list(stored) if tickers is None else list(tickers)
    if not wanted or any(t not in stored for t in wanted):
        return None
    try:
        dates = (
            pl.concat([pl.scan_parquet(store.bars_path(t)).select("date") for t in wanted])
            .unique()
            .collect()
        )
    except (pl.exceptions.PolarsError, OSError):
        return None
    if dates.height == 0:
        return None
    return np.sort(dates.get_column("date").to_numpy().astype("datetime64[D]"))


def guard_notes(calendar: np.ndarray | None, embargo_days: int | None) -> list[str]:
    """Notes saying how the out-of-sample guard was recomputed when something was unknown.

    Examples
    --------
    >>> guard_notes(None, None)
    ['out-of-sample guard: no embargo_days recorded, the engine default 5 trading days assumed; no bar calendar, days counted as business days (never later than trading days, so an honest file passes)']
    """  # noqa: E501
    parts = []
    if embargo_days is None:
        parts.append(
            f"no embargo_days recorded, the engine default {DEFAULT_EMBARGO_DAYS} trading days "
            "assumed"
        )
    if calendar is None:
        parts.append(
            "no bar calendar, days counted as business days (never later than trading days, "
            "so an honest file passes)"
        )
    return [f"out-of-sample guard: {'; '.join(parts)}"] if parts else []


def embargo_days_of(record: dict[str, Any]) -> int | None:
    """``embargo_days`` a ``run.json`` or a model's ``metadata.json`` records (None if absent).

    Examples
    --------
    >>> embargo_days_of({"settings": {"embargo_days": 5}}), embargo_days_of({})
    (5, None)
    >>> embargo_days_of({"split": {"embargo_days": 3}, "settings": {"embargo_days": 5}})
    3
    """
    for block in ("split", "settings"):
        value = (record.get(block) or {}).get("embargo_days")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


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


# --------------------------------------------------------------------------- prediction sources


@dataclass
class PredictionSource:
    """What a run directory, model artifact or predictions file offers for validation.

    Attributes
    ----------
    kind : {"run", "model", "predictions"}
        What ``path`` is.
    path : Path
        The run directory, model artifact directory or predictions file given.
    predictions : Path
        The predictions file to read.
    patterns : list of str or None
        The patterns the run or artifact names; None: every pattern the file holds.
    histories : dict of str to Path
        ``model_id`` -> its ``history.csv`` (empty for a predictions file).
    model_ids : list of str or None
        The windows the run or artifact has (None for a predictions file).
    run_status : str or None
        ``run.json`` status of a run directory.
    notes : list of str
        Caveats found while resolving (an interrupted run, no histories, how
        the out-of-sample guard is recomputed when something is unknown, ...).
    embargo_days : int or None
        The embargo the run or artifact records (None: unknown, the default
        :data:`DEFAULT_EMBARGO_DAYS` applies).
    calendar : ndarray of datetime64[D] or None
        The bar calendar of the run's stored bars (:func:`bar_calendar`);
        None: unknown, business days apply.
    """

    kind: str
    path: Path
    predictions: Path
    patterns: list[str] | None
    histories: dict[str, Path]
    model_ids: list[str] | None = None
    run_status: str | None = None
    notes: list[str] = field(default_factory=list)
    embargo_days: int | None = None
    calendar: np.ndarray | None = None


def _guard_inputs(record: dict[str, Any]) -> tuple[int | None, np.ndarray | None, list[str]]:
    """Embargo, bar calendar and notes from a run.json or metadata.json record."""
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    tickers = data.get("tickers")
    tickers = [str(t) for t in tickers] if isinstance(tickers, list) and tickers else None
    embargo_days = embargo_days_of(record)
    calendar = bar_calendar(data.get("data_dir"), tickers)
    return embargo_days, calendar, guard_notes(calendar, embargo_days)


def _run_source(directory: Path) -> PredictionSource:
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
        artifact = directory / str(window.get("artifact") or f"{MODELS_DIR}/{model_id}")
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
    embargo_days, calendar, guard = _guard_inputs(run)
    return PredictionSource(
        kind="run",
        path=directory,
        predictions=predictions,
        patterns=list(patterns) if patterns else None,
        histories=histories,
        model_ids=list(histories),
        run_status=status,
        notes=notes + guard,
        embargo_days=embargo_days,
        calendar=calendar,
    )


def _artifact_source(directory: Path) -> PredictionSource:
    metadata = read_metadata(directory)  # verifies every checksum
    model_id = str(metadata.get("model_id"))
    predictions = directory / PREDICTIONS_FILE
    if PREDICTIONS_FILE not in metadata.get("files", {}) or not predictions.is_file():
        raise FileNotFoundError(
            f"model artifact {directory} has no {PREDICTIONS_FILE}: nothing out-of-sample to "
            "validate"
        )
    patterns = metadata.get("pattern_names")
    embargo_days, calendar, guard = _guard_inputs(metadata)
    return PredictionSource(
        kind="model",
        path=directory,
        predictions=predictions,
        patterns=list(patterns) if patterns else None,
        histories={model_id: directory / HISTORY_FILE},
        model_ids=[model_id],
        notes=guard,
        embargo_days=embargo_days,
        calendar=calendar,
    )


def _file_source(path: Path) -> PredictionSource:
    """A bare predictions file; a ``run.json`` beside it gives the guard's embargo and bars."""
    notes = ["a predictions file has no training histories: overfitting monitor absent"]
    run_file = path.parent / RUN_FILE
    record: dict[str, Any] = {}
    if run_file.is_file():
        try:
            found = read_json(run_file)
        except ValueError:
            found = None
        if isinstance(found, dict):
            record = found
    embargo_days, calendar, guard = _guard_inputs(record)
    return PredictionSource(
        kind="predictions",
        path=path,
        predictions=path,
        patterns=None,
        histories={},
        notes=notes + guard,
        embargo_days=embargo_days,
        calendar=calendar,
    )


def resolve_prediction_source(
    model: Path | None = None, predictions: Path | None = None
) -> PredictionSource:
    """Find the predictions, patterns and training histories to validate.

    Parameters
    ----------
    model : Path, optional
        A training run directory (``run.json``: its ``predictions.parquet``
        and every listed window's ``history.csv``, each window's artifact
        checksum-verified first) or one model artifact directory
        (``metadata.json``: verified, then its ``test_predictions.parquet``
        and ``history.csv``).
    predictions : Path, optional
        A predictions Parquet file (no histories; a ``run.json`` beside it
        gives the embargo and data directory). Give exactly one of ``model``
        and ``predictions``.

    Returns
    -------
    PredictionSource
        With the embargo and bar calendar of the out-of-sample guard (the
        ``embargo_days`` and ``data`` recorded in ``run.json`` or the
        artifact's metadata; the calendar is the dates of the run's stored
        bars) and a note for whatever is unknown. Nothing else is read
        beyond ``run.json`` and the artifacts' metadata; the predictions
        file is not opened yet.

    Raises
    ------
    ValueError
        Both or neither given; ``model`` is a file, or a directory that is
        neither a run nor an artifact; a malformed ``run.json``; a checksum
        mismatch (:class:`engine.model.artifacts.ArtifactError`).
    FileNotFoundError
        A missing path, run predictions file, window artifact or artifact
        predictions file.

    Examples
    --------
    >>> source = resolve_prediction_source(predictions=Path("predictions.parquet"))
    >>> source.kind, source.histories, source.embargo_days, source.calendar
    ('predictions', {}, None, None)
    >>> source.notes[0]
    'a predictions file has no training histories: overfitting monitor absent'
    """  # noqa: E501
    if (model is None) == (predictions is None):
        given = "both" if model is not None else "neither"
        raise ValueError(
            "give exactly one of --model (a run directory or a model artifact directory) and "
            f"--predictions (a predictions Parquet file); got {given}"
        )
    if predictions is not None:
        return _file_source(Path(predictions))
    path = Path(model)  # type: ignore[arg-type]
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if not path.is_dir():
        raise ValueError(
            f"model path {path} is a file, not a run or model artifact directory; "
            "pass a predictions file as `predictions`"
        )
    if (path / RUN_FILE).is_file():
        return _run_source(path)
    if (path / METADATA_FILE).is_file():
        return _artifact_source(path)
    raise ValueError(
        f"{path} is neither a training run directory (no {RUN_FILE}) nor a model artifact "
        f"directory (no {METADATA_FILE})"
    )
