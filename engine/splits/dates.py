"""Dates as day numbers, the calendars of a panel, and the embargo.

Every date is handled as an ``int64`` number of days since 1970-01-01.
:func:`_panel` reads the prediction dates and label end dates (``t1``) of a
pooled panel into day numbers and builds two calendars:

* the *sample calendar*, the sorted unique dates of the samples whose ``t1``
  is known: the splitters cut it into blocks and periods;
* the *bar calendar*, every trading day of the bars, given by the caller
  (``calendar=``): the embargo counts ``embargo_days`` of its days. On a
  stride-5 training grid the two differ by a factor of 5.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

__all__: list[str] = []

_EPOCH = _dt.date(1970, 1, 1)
_NULL = np.iinfo(np.int64).min  # sentinel day for a null t1
_FAR = np.iinfo(np.int64).max


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an integer, got `{name}={value!r}`.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got `{name}={value}`.")
    return int(value)


def _check_embargo_days(value: Any) -> int:
    return _check_int(value, "embargo_days", 0)


def _embargo_ends(ends: np.ndarray, embargo_days: int, bars: np.ndarray | None) -> np.ndarray:
    """Last embargoed day (inclusive) after each label span end.

    It is the ``embargo_days``-th trading day of ``bars`` strictly after the
    end (the end itself for no embargo); past the calendar's last day,
    everything is embargoed.
    """
    if embargo_days == 0:
        return ends.copy()
    assert bars is not None  # _bar_calendar refused the call otherwise
    idx = np.searchsorted(bars, ends, side="right") + embargo_days - 1
    out = np.full(len(ends), _FAR, dtype=np.int64)
    inside = idx < len(bars)
    out[inside] = bars[idx[inside]]
    return out


def _label_cut(start: int, embargo_days: int, bars: np.ndarray | None) -> int:
    """Labels must end strictly before this day to respect a declared start and the embargo.

    A label ending on trading day ``c`` passes when at least ``embargo_days``
    trading days of ``bars`` lie strictly between ``c`` and ``start``; with
    no embargo the cut is ``start`` itself.
    """
    if embargo_days == 0:
        return int(start)
    assert bars is not None  # _bar_calendar refused the call otherwise
    pos = int(np.searchsorted(bars, start, side="left")) - embargo_days
    return int(bars[max(pos, 0)])  # bars[0]: too few trading days before start, nothing passes


def _bar_calendar(calendar: Any, embargo_days: int, day: np.ndarray) -> np.ndarray | None:
    """The trading days of ``calendar`` as sorted unique day numbers, or None.

    Every sample date must be one of them. Without a calendar only
    ``embargo_days=0`` is accepted: the samples' own dates cannot stand in for
    the bar calendar (a stride-5 training grid holds every 5th trading day).
    """
    if calendar is None:
        if embargo_days > 0:
            raise ValueError(
                f"`embargo_days={embargo_days}` counts trading days of the bar calendar; pass "
                "`calendar=` (the sorted trading days of the bars, e.g. the unique dates of the "
                "feature frame). The sample dates cannot stand in for it: a stride-5 training "
                "grid holds every 5th trading day only."
            )
        return None
    bars, null = _as_days(calendar, "calendar")
    if null.any():
        raise ValueError(
            f"`calendar` must not hold null dates; position {int(np.flatnonzero(null)[0])} is null."
        )
    bars = np.unique(bars)
    missing = ~np.isin(day, bars)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"sample {i} is dated {_fmt(day[i])}, not a day of `calendar` "
            f"({_fmt(bars[0])}..{_fmt(bars[-1])}, {len(bars)} days); `calendar` must hold every "
            f"trading day of the bars ({int(missing.sum())} sample(s) off it)."
        )
    return bars


def _is_null_scalar(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(x != x)  # NaN, pandas.NaT
    except (TypeError, ValueError):  # pragma: no cover - exotic scalars
        return False


def _as_days(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert dates to ``(int64 days since 1970-01-01, null mask)``."""
    if isinstance(values, pl.Series):
        s = values
        if isinstance(s.dtype, pl.Datetime):
            s = s.dt.date()
        if s.dtype != pl.Date:
            raise TypeError(f"`{name}` must hold dates, got a Polars {s.dtype} series.")
        null = s.is_null().to_numpy()
        days = s.to_physical().cast(pl.Int64).fill_null(0).to_numpy()
        return np.ascontiguousarray(days, dtype=np.int64), np.asarray(null, dtype=bool)
    if not isinstance(values, np.ndarray) and hasattr(values, "to_numpy"):
        values = values.to_numpy()  # pandas Series / Index
    arr = np.asarray(values) if isinstance(values, np.ndarray) else np.array(values, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}.")
    if arr.dtype.kind == "O" or arr.dtype.kind in "US":
        items = arr.tolist()
        out = np.empty(len(items), dtype="datetime64[D]")
        for i, x in enumerate(items):
            if _is_null_scalar(x):
                out[i] = np.datetime64("NaT")
            elif isinstance(x, _dt.date | str | np.datetime64):
                try:
                    out[i] = np.datetime64(x, "D")
                except ValueError as err:
                    raise ValueError(f"`{name}[{i}]` is not a date: {x!r}.") from err
            else:
                raise TypeError(
                    f"`{name}` must hold dates (datetime64, datetime.date or a Polars Date "
                    f"series), got {type(x).__name__} at position {i}: {x!r}."
                )
        arr = out
    if arr.dtype.kind != "M":
        raise TypeError(
            f"`{name}` must hold dates (datetime64, datetime.date or a Polars Date series), "
            f"got dtype {arr.dtype}."
        )
    null = np.isnat(arr)
    days = arr.astype("datetime64[D]").astype(np.int64)
    days[null] = 0
    return days, null


def _fmt(day: int) -> str:
    if day == _NULL:
        return "null"
    return str(np.datetime64(int(day), "D"))


def _add_months(day: int, months: int) -> int:
    """Add calendar months; the day of month is clipped to the target month's length."""
    d = _EPOCH + _dt.timedelta(days=int(day))
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    dd = min(d.day, _calendar.monthrange(y, m + 1)[1])
    return (_dt.date(y, m + 1, dd) - _EPOCH).days


def _n_samples(X: Any) -> int | None:
    if X is None:
        return None
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(X)


@dataclass(frozen=True)
class _Panel:
    day: np.ndarray  # int64 days of every sample
    t1: np.ndarray  # int64 days, _NULL where unknown
    usable: np.ndarray  # bool: t1 known
    calendar: np.ndarray  # sorted unique days of the usable samples
    pos: np.ndarray  # position of each sample's date in calendar, -1 if unusable
    bars: np.ndarray | None  # trading days of the bar calendar (None: not given)


def _column(X: Any, column: str, argument: str) -> Any:
    columns = getattr(X, "columns", None)
    if columns is None:
        raise TypeError(
            f"pass `{argument}=` explicitly, or give X as a Polars or pandas DataFrame with a "
            f"`{column}` column; got X of type {type(X).__name__}."
        )
    if column not in list(columns):
        raise ValueError(
            f"X has no `{column}` column; pass `{argument}=` explicitly "
            f"(columns: {list(columns)[:10]})."
        )
    return X[column]


def _panel(X: Any, dates: Any, t1: Any, calendar: Any = None, embargo_days: int = 0) -> _Panel:
    if dates is None:
        dates = _column(X, "date", "dates")
    if t1 is None:
        t1 = _column(X, "t1", "t1")
    day, day_null = _as_days(dates, "dates")
    end, t1_null = _as_days(t1, "t1")
    if len(day) != len(end):
        raise ValueError(
            f"`dates` and `t1` must have the same length, got {len(day)} and {len(end)}."
        )
    n = _n_samples(X)
    if n is not None and n != len(day):
        raise ValueError(f"X has {n} samples but `dates` has {len(day)}.")
    if day_null.any():
        i = int(np.flatnonzero(day_null)[0])
        raise ValueError(f"`dates` must not be null; sample {i} has a null date.")
    end = np.where(t1_null, _NULL, end)
    usable = ~t1_null
    bad = usable & (end < day)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"`t1` must not precede `dates`; sample {i} has date {_fmt(day[i])} "
            f"and t1 {_fmt(end[i])}."
        )
    cal = np.unique(day[usable])
    if len(cal) == 0:
        raise ValueError("no sample has a known label end date `t1`; nothing to split.")
    pos = np.full(len(day), -1, dtype=np.int64)
    pos[usable] = np.searchsorted(cal, day[usable])
    bars = _bar_calendar(calendar, embargo_days, day)
    return _Panel(day=day, t1=end, usable=usable, calendar=cal, pos=pos, bars=bars)
