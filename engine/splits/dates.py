"""Dates as day numbers, the sample calendar of a panel, and the embargo.

Every date is handled as an ``int64`` number of days since 1970-01-01.
:func:`_panel` reads the prediction dates and label end dates (``t1``) of a
pooled panel into day numbers and builds its calendar: the sorted unique
dates of the samples whose ``t1`` is known. An embargo is an ``int`` number of
calendar days, a whole-day timedelta, or :class:`TradingDays` ``(n)`` dates of
that calendar.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

__all__ = ["TradingDays"]

_EPOCH = _dt.date(1970, 1, 1)
_NULL = np.iinfo(np.int64).min  # sentinel day for a null t1
_FAR = np.iinfo(np.int64).max


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an integer, got `{name}={value!r}`.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got `{name}={value}`.")
    return int(value)


@dataclass(frozen=True)
class TradingDays:
    """An embargo counted in dates of the sample calendar rather than calendar days.

    Parameters
    ----------
    n : int
        Number of calendar dates (sorted unique sample dates with a known
        ``t1``) after an evaluation period's end that are embargoed.

    Examples
    --------
    >>> TradingDays(3)
    TradingDays(n=3)
    """

    n: int

    def __post_init__(self) -> None:
        _check_int(self.n, "n", 0)


def _embargo_spec(embargo: Any) -> tuple[str, int]:
    """Return ``("calendar", days)`` or ``("trading", dates)``."""
    if isinstance(embargo, TradingDays):
        return "trading", embargo.n
    if isinstance(embargo, _dt.timedelta):
        if embargo < _dt.timedelta(0) or embargo != _dt.timedelta(days=embargo.days):
            raise ValueError(
                f"`embargo` must be a non-negative whole number of days, got `embargo={embargo!r}`."
            )
        return "calendar", embargo.days
    if isinstance(embargo, np.timedelta64):
        days = embargo.astype("timedelta64[D]")
        if np.isnat(embargo) or days != embargo or days < np.timedelta64(0, "D"):
            raise ValueError(
                f"`embargo` must be a non-negative whole number of days, got `embargo={embargo!r}`."
            )
        return "calendar", int(days.astype(np.int64))
    if isinstance(embargo, bool) or not isinstance(embargo, int | np.integer):
        raise TypeError(
            "`embargo` must be an int (calendar days), a timedelta or TradingDays(n), "
            f"got `embargo={embargo!r}`."
        )
    return "calendar", _check_int(embargo, "embargo", 0)


def _embargo_ends(ends: np.ndarray, spec: tuple[str, int], cal: np.ndarray) -> np.ndarray:
    """Last embargoed day (inclusive) after each period end."""
    kind, n = spec
    if kind == "calendar" or n == 0:
        return ends + n
    idx = np.searchsorted(cal, ends, side="right") + n - 1
    out = np.full(len(ends), _FAR, dtype=np.int64)
    inside = idx < len(cal)
    out[inside] = cal[idx[inside]]
    return out


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


def _panel(X: Any, dates: Any, t1: Any) -> _Panel:
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
    return _Panel(day=day, t1=end, usable=usable, calendar=cal, pos=pos)
