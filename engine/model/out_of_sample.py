"""The out-of-sample guard of a predictions file, recomputed, never read from the file.

A row of model ``m`` must be dated after :func:`embargo_guard` of ``m``'s
``train_end``, the ``embargo_days``-th trading day after it on the bar
calendar (the run's stored bars, :func:`bar_calendar`), and the file's
``embargo_end`` must not be earlier than that guard
(:func:`check_out_of_sample`). Without a bar calendar the days are counted
as business days (Monday to Friday): every trading day is a business day, so
this guard is never later than the true one and an honest file always
passes, while a guard that trusted the file could be moved at will.
:func:`embargo_days_of` reads the embargo a record states and
:func:`guard_notes` says what was assumed when something was unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.data.store import BarStore
from engine.labels.targets import DEFAULT_HORIZON
from engine.model.json_values import json_value, row_text

__all__ = [
    "DEFAULT_EMBARGO_DAYS",
    "bar_calendar",
    "check_out_of_sample",
    "embargo_days_of",
    "embargo_guard",
    "guard_notes",
]

#: Embargo (trading days) assumed when the run's settings are unknown: the training default
#: (:class:`engine.model.runs.RunSettings` ``embargo_days``, the label horizon).
DEFAULT_EMBARGO_DAYS = DEFAULT_HORIZON


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
        first = row_text(
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
