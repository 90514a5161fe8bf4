"""Leakage-free, date-based cross-validation splitters for pooled multi-ticker panels.

A pooled panel holds several tickers, so several samples share a date. Every
sample ``i`` has a *prediction date* ``dates[i]`` (the ``t`` of its feature
window) and a *label end date* ``t1[i]``: its label uses the bars in
``(dates[i], t1[i]]``. Splitting rows by position, or counting a gap in
samples, leaks across tickers; every splitter here therefore cuts by
**calendar date**, the same cut for every ticker.

Semantics shared by all splitters
---------------------------------
* **Calendar.** The splitters work on the sorted unique dates of the *usable*
  samples (those with a known ``t1``). Samples whose ``t1`` is null (their
  label is not known yet) are never in a train, validation or test set.
* **Evaluation periods.** A test (or validation) set is every usable sample on
  a contiguous run of calendar dates; the period is the closed calendar
  interval ``[first date, last date]`` of the run.
* **Purge.** A training sample is removed when its label window
  ``[dates[i] + 1 day, t1[i]]`` overlaps an evaluation period.
* **Embargo.** A training sample that survives the purge is removed when its
  date falls in ``(period end, period end + embargo]``. ``embargo`` is an
  ``int`` number of *calendar days*, a :class:`datetime.timedelta` /
  :class:`numpy.timedelta64` of whole days, or :class:`TradingDays` ``(n)``:
  the next ``n`` dates of the calendar after the period end.
* Every split a splitter yields passes :func:`check_no_leakage`; a violation
  is a bug and raises :class:`LeakageError`.

The splitters follow the scikit-learn protocol (``split`` yields sorted
``int64`` ``(train, test)`` index arrays, ``get_n_splits``), without depending
on scikit-learn. Unlike scikit-learn, ``split`` validates its input and its
parameters when it is called and only then returns a private generator, so a
bad argument raises at the call, not at the first ``next()``.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as _dt
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "CombinatorialPurgedCV",
    "GappedTimeSeriesCV",
    "Holdout",
    "LeakageError",
    "PurgedKFold",
    "SplitInfo",
    "TradingDays",
    "WalkForward",
    "check_no_leakage",
]

_EPOCH = _dt.date(1970, 1, 1)
_NULL = np.iinfo(np.int64).min  # sentinel day for a null t1
_FAR = np.iinfo(np.int64).max
_MAX_LISTED = 20  # offending samples listed in a LeakageError message


class LeakageError(ValueError):
    """A training sample's label window reaches into an evaluation period.

    Attributes
    ----------
    samples : numpy.ndarray
        Sorted ``int64`` indices of the offending training samples.
    reasons : list of str
        One line per offending sample (index, date, t1, what it broke).
    """

    def __init__(self, message: str, samples: np.ndarray, reasons: list[str]) -> None:
        super().__init__(message)
        self.samples = samples
        self.reasons = reasons


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


@dataclass(frozen=True)
class SplitInfo:
    """One split with the samples the purge and the embargo removed.

    Attributes
    ----------
    train, test : numpy.ndarray
        Sorted ``int64`` sample indices.
    purged : numpy.ndarray
        Training candidates removed because their label window overlaps an
        evaluation period (the validation period counts for
        :class:`WalkForward`).
    embargoed : numpy.ndarray
        Training candidates (not purged) removed by the embargo.
    validation : numpy.ndarray or None
        Validation indices (:class:`WalkForward` only).
    validation_purged : numpy.ndarray
        Validation candidates removed because their label window overlaps the
        test period (empty except for :class:`WalkForward`).
    """

    train: np.ndarray
    test: np.ndarray
    purged: np.ndarray
    embargoed: np.ndarray
    validation: np.ndarray | None = None
    validation_purged: np.ndarray | None = None


# ---------------------------------------------------------------------------
# argument checks and date conversion


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an integer, got `{name}={value!r}`.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got `{name}={value}`.")
    return int(value)


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


# ---------------------------------------------------------------------------
# purge, embargo and the leakage check


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


def _purge_embargo(
    day: np.ndarray,
    t1: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    spec: tuple[str, int],
    cal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks ``(inside, purged, embargoed)`` for samples against sorted disjoint periods.

    ``inside``: the sample's date lies in a period. ``purged``: its label
    window ``[day + 1, t1]`` overlaps a period. ``embargoed``: not purged and
    its date is in ``(end, embargo end]`` of the latest period ending before it.
    """
    m = len(ends)
    false = np.zeros(len(day), dtype=bool)
    if m == 0:
        return false, false.copy(), false.copy()
    k = np.searchsorted(starts, day, side="right") - 1
    inside = (k >= 0) & (day <= ends[np.maximum(k, 0)])
    j = np.searchsorted(ends, day + 1, side="left")  # first period ending on/after day + 1
    purged = (j < m) & (starts[np.minimum(j, m - 1)] <= t1) & (t1 >= day + 1)
    last = np.searchsorted(ends, day, side="left") - 1  # latest period ending before day
    emb_end = _embargo_ends(ends, spec, cal)
    embargoed = ~purged & (last >= 0) & (day <= emb_end[np.maximum(last, 0)])
    return inside, purged, embargoed


def _runs(cal: np.ndarray, test_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split sorted unique test days into runs of consecutive calendar dates."""
    p = np.searchsorted(cal, test_days)
    breaks = np.flatnonzero(np.diff(p) != 1) + 1
    first = np.r_[0, breaks]
    last = np.r_[breaks - 1, len(test_days) - 1]
    return test_days[first], test_days[last]


def _leaks(
    day: np.ndarray,
    t1: np.ndarray,
    cal: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    spec: tuple[str, int],
    what: str,
) -> None:
    n = len(day)
    for name, idx in (("train", train), (what, test)):
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(
                f"`{name}` indices must lie in [0, {n}), got {idx.min()}..{idx.max()}."
            )
    reasons: dict[int, str] = {}
    in_test = np.zeros(n, dtype=bool)
    in_test[test] = True
    for i in train[in_test[train]]:
        reasons[int(i)] = f"is in both train and {what}"
    for i in train[t1[train] == _NULL]:
        reasons.setdefault(int(i), "has an unknown label end date (null t1)")
    if test.size:
        test_days = np.unique(day[test])
        starts, ends = _runs(np.union1d(cal, test_days), test_days)
        inside, purged, embargoed = _purge_embargo(day[train], t1[train], starts, ends, spec, cal)
        for flag, text in (
            (inside, f"shares a date with the {what} period"),
            (purged, f"has a label window reaching into a {what} period"),
            (embargoed, f"sits in the embargo after a {what} period"),
        ):
            for i in train[flag]:
                reasons.setdefault(int(i), text)
    if not reasons:
        return
    samples = np.array(sorted(reasons), dtype=np.int64)
    lines = [f"sample {i} (date {_fmt(day[i])}, t1 {_fmt(t1[i])}) {reasons[i]}" for i in samples]
    shown = "\n  ".join(lines[:_MAX_LISTED])
    more = f"\n  ... and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
    periods = ""
    if test.size:
        periods = (
            " ("
            + ", ".join(f"{_fmt(a)}..{_fmt(b)}" for a, b in zip(starts, ends, strict=True))
            + ")"
        )
    raise LeakageError(
        f"{len(lines)} training sample(s) leak into the {what} period{periods}:\n  {shown}{more}",
        samples,
        lines,
    )


def check_no_leakage(
    train_idx: Any, test_idx: Any, dates: Any, t1: Any, *, embargo: Any = 0
) -> None:
    """Raise if any training sample can see the evaluation period.

    The evaluation periods are the runs of consecutive calendar dates among the
    test samples' dates (the calendar is the unique dates of the samples with a
    known ``t1``, plus the test dates). A training sample leaks when it

    * is also a test sample, or has a null ``t1`` (its window is unknown);
    * has its date inside an evaluation period (the cut is not by date);
    * has a label window ``[date + 1 day, t1]`` overlapping a period;
    * has its date within ``embargo`` after a period's end.

    Parameters
    ----------
    train_idx, test_idx : array-like of int
        Sample indices into ``dates`` / ``t1``.
    dates, t1 : array-like of dates
        Prediction date and label end date of every sample (datetime64,
        :class:`datetime.date` or a Polars Date series; ``t1`` may be null).
    embargo : int, timedelta or TradingDays, default 0
        Calendar days (``int`` or whole-day timedelta) or ``TradingDays(n)``.

    Raises
    ------
    LeakageError
        Listing every offending sample as ``(index, date, t1, reason)``.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[D]")
    >>> t1 = d + 1
    >>> check_no_leakage([0], [2], d, t1)  # 2020-01-01's label ends 01-02: fine
    >>> try:
    ...     check_no_leakage([1], [2], d, t1)
    ... except LeakageError as err:
    ...     print(err.samples, err.reasons)
    [1] ['sample 1 (date 2020-01-02, t1 2020-01-03) has a label window reaching into a test period']
    """
    spec = _embargo_spec(embargo)
    day, day_null = _as_days(dates, "dates")
    end, t1_null = _as_days(t1, "t1")
    if len(day) != len(end):
        raise ValueError(
            f"`dates` and `t1` must have the same length, got {len(day)} and {len(end)}."
        )
    if day_null.any():
        raise ValueError("`dates` must not be null.")
    end = np.where(t1_null, _NULL, end)
    train = np.asarray(train_idx, dtype=np.int64).ravel()
    test = np.asarray(test_idx, dtype=np.int64).ravel()
    _leaks(day, end, np.unique(day[~t1_null]), train, test, spec, "test")


# ---------------------------------------------------------------------------
# the splitters


@dataclass(frozen=True)
class _Fold:
    train: np.ndarray  # bool mask over calendar positions: training candidate dates
    test: tuple[tuple[int, int], ...]  # half-open calendar position ranges
    validation: tuple[int, int] | None = None


def _periods(cal: np.ndarray, blocks: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    merged: list[list[int]] = []
    for a, b in sorted(blk for blk in blocks if blk[1] > blk[0]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    starts = np.array([cal[a] for a, _ in merged], dtype=np.int64)
    ends = np.array([cal[b - 1] for _, b in merged], dtype=np.int64)
    return starts, ends


def _idx(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64, copy=False)


def _remove(
    panel: _Panel, cand: np.ndarray, fold_blocks: list[tuple[int, int]], spec: tuple[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split candidate indices into ``(kept, purged, embargoed)`` against the blocks."""
    ci = _idx(cand)
    starts, ends = _periods(panel.calendar, fold_blocks)
    _, purged, embargoed = _purge_embargo(
        panel.day[ci], panel.t1[ci], starts, ends, spec, panel.calendar
    )
    return ci[~purged & ~embargoed], ci[purged], ci[embargoed]


def _materialise(panel: _Panel, fold: _Fold, spec: tuple[str, int]) -> SplitInfo:
    cal = panel.calendar
    p = np.maximum(panel.pos, 0)
    usable = panel.usable
    on_test = np.zeros(len(cal), dtype=bool)
    for a, b in fold.test:
        on_test[a:b] = True
    test = _idx(usable & on_test[p])
    blocks = list(fold.test) + ([fold.validation] if fold.validation is not None else [])
    train, purged, embargoed = _remove(panel, usable & fold.train[p], blocks, spec)
    _leaks(panel.day, panel.t1, cal, train, test, spec, "test")
    validation = None
    validation_purged = purged[:0]
    if fold.validation is not None:
        a, b = fold.validation
        on_val = np.zeros(len(cal), dtype=bool)
        on_val[a:b] = True
        no_embargo = ("calendar", 0)
        validation, validation_purged, _ = _remove(
            panel, usable & on_val[p], list(fold.test), no_embargo
        )
        _leaks(panel.day, panel.t1, cal, train, validation, spec, "validation")
        _leaks(panel.day, panel.t1, cal, validation, test, no_embargo, "test")
    return SplitInfo(
        train=train,
        test=test,
        purged=purged,
        embargoed=embargoed,
        validation=validation,
        validation_purged=validation_purged,
    )


def _blocks(n_dates: int, n_blocks: int) -> list[tuple[int, int]]:
    """``n_blocks`` contiguous ranges; the first ``n_dates % n_blocks`` get one extra date."""
    size, extra = divmod(n_dates, n_blocks)
    out, a = [], 0
    for i in range(n_blocks):
        b = a + size + (1 if i < extra else 0)
        out.append((a, b))
        a = b
    return out


class _DateSplitter:
    """Shared plumbing: eager validation, then a private generator."""

    _params: tuple[str, ...] = ()

    def _validate(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _folds(self, panel: _Panel) -> list[_Fold]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _spec(self) -> tuple[str, int]:
        return _embargo_spec(getattr(self, "embargo", 0))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params)
        return f"{type(self).__name__}({args})"

    def _prepare(self, X: Any, dates: Any, t1: Any) -> list[SplitInfo]:
        """Validate, then build every split eagerly so that any error raises at the call."""
        self._validate()
        panel = _panel(X, dates, t1)
        spec = self._spec()
        infos = [_materialise(panel, fold, spec) for fold in self._folds(panel)]
        for k, info in enumerate(infos):
            for name in ("train", "validation", "test"):
                part = getattr(info, name)
                if part is not None and part.size == 0:
                    raise ValueError(
                        f"split {k} of {type(self).__name__} has an empty {name} set after "
                        "purging and embargo; use fewer splits, a smaller gap or embargo, "
                        "or more dates."
                    )
        return infos

    def split(
        self, X: Any = None, y: Any = None, groups: Any = None, *, dates: Any = None, t1: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate ``(train, test)`` index arrays, cut by calendar date.

        Parameters
        ----------
        X : DataFrame, array-like or None
            The samples. When ``dates`` / ``t1`` are not given they are read
            from X's ``date`` / ``t1`` columns (Polars or pandas DataFrame).
        y, groups : ignored
            Present for scikit-learn compatibility.
        dates, t1 : array-like of dates, optional
            Prediction date and label end date per sample (datetime64,
            :class:`datetime.date`, Polars Date). A null ``t1`` excludes the
            sample from every set.

        Returns
        -------
        iterator of (numpy.ndarray, numpy.ndarray)
            Sorted ``int64`` train and test indices. Every split is built and
            checked (:func:`check_no_leakage`) before the iterator is returned.

        Raises
        ------
        ValueError
            Bad parameters or dates, too few dates for the requested splits,
            or a split whose train or test set is empty after the purge.
        """
        return self._pairs(self._prepare(X, dates, t1))

    @staticmethod
    def _pairs(infos: list[SplitInfo]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for info in infos:
            yield info.train, info.test

    def split_info(
        self, X: Any = None, y: Any = None, groups: Any = None, *, dates: Any = None, t1: Any = None
    ) -> list[SplitInfo]:
        """Every split with the purged and embargoed samples, as :class:`SplitInfo`.

        Parameters
        ----------
        X, y, groups, dates, t1
            As for :meth:`split`.

        Returns
        -------
        list of SplitInfo
        """
        return self._prepare(X, dates, t1)


class _FixedSplits(_DateSplitter):
    """A splitter whose number of splits is its ``n_splits`` parameter."""

    n_splits: int

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return ``n_splits``.

        Parameters
        ----------
        X, y, groups : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        int
        """
        return self.n_splits


class GappedTimeSeriesCV(_FixedSplits):
    """Expanding-window time-series split over dates, with a gap and a purge.

    The sorted unique dates (the calendar) end with ``n_splits`` consecutive
    test blocks of ``test_size`` dates. Split ``k`` trains on every date before
    its test block except the last ``gap`` dates, then purges any training
    sample whose label window still reaches the test block (only labels longer
    than ``gap`` dates can).

    Parameters
    ----------
    n_splits : int, default 5
        Number of splits, at least 2.
    test_size : int or None, default None
        Dates per test block; ``None`` means ``n_dates // (n_splits + 1)``.
    gap : int, default 5
        Calendar dates left out between the last training date and the first
        test date. Must be at least the label horizon, measured as the median
        over the samples of the number of calendar dates in ``(date, t1]``
        (``h`` for ``h``-bar labels). Labels that span more dates (a ticker
        that misses days) are purged.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.repeat(np.arange("2020-01-01", "2020-01-13", dtype="datetime64[D]"), 2)
    >>> cv = GappedTimeSeriesCV(n_splits=2, test_size=3, gap=1)
    >>> for train, test in cv.split(d, dates=d, t1=d + 1):
    ...     print(train.max(), test)
    9 [12 13 14 15 16 17]
    15 [18 19 20 21 22 23]
    """

    _params = ("n_splits", "test_size", "gap")

    def __init__(self, n_splits: int = 5, test_size: int | None = None, gap: int = 5) -> None:
        self.n_splits = n_splits
        self.test_size = test_size
        self.gap = gap
        self._validate()

    def _validate(self) -> None:
        _check_int(self.n_splits, "n_splits", 2)
        if self.test_size is not None:
            _check_int(self.test_size, "test_size", 1)
        _check_int(self.gap, "gap", 0)

    def _folds(self, panel: _Panel) -> list[_Fold]:
        cal = panel.calendar
        n = len(cal)
        size = self.test_size if self.test_size is not None else n // (self.n_splits + 1)
        first = n - self.n_splits * size
        if size < 1 or first - self.gap < 1:
            raise ValueError(
                f"not enough dates: {n} unique dates cannot hold `n_splits={self.n_splits}` "
                f"test blocks of {size} dates after a `gap={self.gap}` and at least one "
                "training date."
            )
        u = panel.usable
        ahead = np.searchsorted(cal, panel.t1[u], side="right") - panel.pos[u] - 1
        horizon = int(np.ceil(np.median(ahead)))
        if horizon > self.gap:
            raise ValueError(
                f"`gap` must be at least the label horizon ({horizon} dates: the median number "
                f"of calendar dates in (date, t1]), got `gap={self.gap}`."
            )
        folds = []
        for start in range(first, n, size):
            train = np.zeros(n, dtype=bool)
            train[: start - self.gap] = True
            folds.append(_Fold(train=train, test=((start, start + size),)))
        return folds


class PurgedKFold(_FixedSplits):
    """K-fold over contiguous date blocks, with purge and embargo.

    The calendar is cut into ``n_splits`` contiguous blocks (the first
    ``n_dates % n_splits`` blocks get one extra date). Each block is the test
    set once; the training set is every other date minus the purged and the
    embargoed samples.

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds, at least 2.
    embargo : int, timedelta or TradingDays, default 0
        Calendar days (``int`` or whole-day timedelta), or ``TradingDays(n)``
        calendar dates, after each test block that are removed from training.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.arange("2020-01-01", "2020-01-07", dtype="datetime64[D]")
    >>> cv = PurgedKFold(n_splits=3, embargo=1)
    >>> for train, test in cv.split(d, dates=d, t1=d + 1):
    ...     print(train, test)
    [3 4 5] [0 1]
    [0 5] [2 3]
    [0 1 2] [4 5]
    """

    _params = ("n_splits", "embargo")

    def __init__(self, n_splits: int = 5, embargo: Any = 0) -> None:
        self.n_splits = n_splits
        self.embargo = embargo
        self._validate()

    def _validate(self) -> None:
        _check_int(self.n_splits, "n_splits", 2)
        _embargo_spec(self.embargo)

    def _folds(self, panel: _Panel) -> list[_Fold]:
        n = len(panel.calendar)
        if n < self.n_splits:
            raise ValueError(
                f"`n_splits` must be at most the number of unique dates ({n}), "
                f"got `n_splits={self.n_splits}`."
            )
        folds = []
        for a, b in _blocks(n, self.n_splits):
            train = np.ones(n, dtype=bool)
            train[a:b] = False
            folds.append(_Fold(train=train, test=((a, b),)))
        return folds


class CombinatorialPurgedCV(_DateSplitter):
    """Combinatorial purged cross-validation (de Prado), over date groups.

    The calendar is cut into ``n_groups`` contiguous date groups; each of the
    ``C(n_groups, n_test_groups)`` combinations of test groups is one split
    (lexicographic order), trained on the other groups minus purge and
    embargo around every test group.

    Parameters
    ----------
    n_groups : int, default 6
        Number of date groups, at least 2.
    n_test_groups : int, default 2
        Test groups per split, in ``[1, n_groups - 1]``.
    embargo : int, timedelta or TradingDays, default 0
        As for :class:`PurgedKFold`.

    Examples
    --------
    >>> import numpy as np
    >>> cv = CombinatorialPurgedCV(n_groups=4, n_test_groups=2)
    >>> cv.get_n_splits(), cv.n_paths
    (6, 3)
    >>> cv.paths()
    array([[0, 0, 1, 2],
           [1, 3, 3, 4],
           [2, 4, 5, 5]])
    >>> d = np.arange("2020-01-01", "2020-01-09", dtype="datetime64[D]")
    >>> train, test = next(cv.split(d, dates=d, t1=d + 1))
    >>> train, test
    (array([4, 5, 6, 7]), array([0, 1, 2, 3]))
    """

    _params = ("n_groups", "n_test_groups", "embargo")

    def __init__(self, n_groups: int = 6, n_test_groups: int = 2, embargo: Any = 0) -> None:
        self.n_groups = n_groups
        self.n_test_groups = n_test_groups
        self.embargo = embargo
        self._validate()

    def _validate(self) -> None:
        _check_int(self.n_groups, "n_groups", 2)
        _check_int(self.n_test_groups, "n_test_groups", 1)
        if self.n_test_groups >= self.n_groups:
            raise ValueError(
                f"`n_test_groups` must be smaller than `n_groups={self.n_groups}`, "
                f"got `n_test_groups={self.n_test_groups}`."
            )
        _embargo_spec(self.embargo)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return ``C(n_groups, n_test_groups)``.

        Parameters
        ----------
        X, y, groups : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        int
        """
        self._validate()
        return math.comb(self.n_groups, self.n_test_groups)

    @property
    def n_paths(self) -> int:
        """Number of backtest paths, ``C(N, k) * k / N == C(N - 1, k - 1)``."""
        self._validate()
        return math.comb(self.n_groups - 1, self.n_test_groups - 1)

    def test_groups(self) -> list[tuple[int, ...]]:
        """Return the test groups of each split, in split order.

        Returns
        -------
        list of tuple of int
        """
        self._validate()
        return list(itertools.combinations(range(self.n_groups), self.n_test_groups))

    def paths(self) -> np.ndarray:
        """Backtest paths: which split predicts each group on each path.

        Every group is a test group in ``n_paths`` splits; path ``p`` takes the
        ``p``-th of them (in split order), so each path covers every group
        exactly once and each (split, test group) pair is used by exactly one
        path.

        Returns
        -------
        numpy.ndarray
            ``int64`` array of shape ``(n_paths, n_groups)``; entry ``[p, g]``
            is the split index whose test predictions for group ``g`` form
            that part of path ``p``.
        """
        combos = self.test_groups()
        out = np.empty((self.n_paths, self.n_groups), dtype=np.int64)
        for g in range(self.n_groups):
            out[:, g] = [s for s, c in enumerate(combos) if g in c]
        return out

    def group_ids(self, X: Any = None, *, dates: Any = None, t1: Any = None) -> np.ndarray:
        """Date group of every sample (``-1`` for samples with a null ``t1``).

        Parameters
        ----------
        X, dates, t1
            As for :meth:`split`.

        Returns
        -------
        numpy.ndarray
            ``int64`` group index per sample.
        """
        self._validate()
        panel = _panel(X, dates, t1)
        self._folds(panel)  # raises when there are too few dates
        group = np.empty(len(panel.calendar), dtype=np.int64)
        for g, (a, b) in enumerate(_blocks(len(panel.calendar), self.n_groups)):
            group[a:b] = g
        return np.where(panel.usable, group[np.maximum(panel.pos, 0)], -1)

    def _folds(self, panel: _Panel) -> list[_Fold]:
        n = len(panel.calendar)
        if n < self.n_groups:
            raise ValueError(
                f"`n_groups` must be at most the number of unique dates ({n}), "
                f"got `n_groups={self.n_groups}`."
            )
        blocks = _blocks(n, self.n_groups)
        folds = []
        for combo in itertools.combinations(range(self.n_groups), self.n_test_groups):
            train = np.ones(n, dtype=bool)
            for g in combo:
                train[blocks[g][0] : blocks[g][1]] = False
            folds.append(_Fold(train=train, test=tuple(blocks[g] for g in combo)))
        return folds


def _add_months(day: int, months: int) -> int:
    """Add calendar months; the day of month is clipped to the target month's length."""
    d = _EPOCH + _dt.timedelta(days=int(day))
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    dd = min(d.day, _calendar.monthrange(y, m + 1)[1])
    return (_dt.date(y, m + 1, dd) - _EPOCH).days


class _ThreeWaySplitter(_DateSplitter):
    """Splitters that cut the calendar into train / validation / test periods.

    Subclasses give the half-open day boundaries ``(train start, validation
    start, test start, test end)`` of each window in ``_bounds``.
    """

    def _bounds(self, panel: _Panel) -> list[tuple[int, int, int, int]]:  # pragma: no cover
        raise NotImplementedError

    def _folds(self, panel: _Panel) -> list[_Fold]:
        cal = panel.calendar
        folds = []
        for k, b in enumerate(self._bounds(panel)):
            a, v, t, e = (int(x) for x in np.searchsorted(cal, b, side="left"))
            for name, lo, hi in (("train", a, v), ("validation", v, t), ("test", t, e)):
                if lo == hi:
                    raise ValueError(
                        f"{type(self).__name__} window {k} has no dates in its {name} period "
                        f"[{_fmt(cal[lo] if lo < len(cal) else b[3])}, ...)."
                    )
            train = np.zeros(len(cal), dtype=bool)
            train[a:v] = True
            folds.append(_Fold(train=train, test=((t, e),), validation=(v, t)))
        return folds

    def windows(
        self, X: Any = None, y: Any = None, groups: Any = None, *, dates: Any = None, t1: Any = None
    ) -> list[tuple[np.datetime64, np.datetime64, np.datetime64, np.datetime64]]:
        """Window boundaries ``(train start, validation start, test start, test end)``.

        Parameters
        ----------
        X, y, groups, dates, t1
            As for :meth:`split`.

        Returns
        -------
        list of tuple of numpy.datetime64
            Half-open boundaries, one tuple per window.
        """
        self._validate()
        panel = _panel(X, dates, t1)
        return [tuple(np.datetime64(int(x), "D") for x in b) for b in self._bounds(panel)]

    def split_three(
        self, X: Any = None, y: Any = None, groups: Any = None, *, dates: Any = None, t1: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Generate ``(train, validation, test)`` index arrays.

        Parameters
        ----------
        X, y, groups, dates, t1
            As for :meth:`split`.

        Returns
        -------
        iterator of tuple of numpy.ndarray
            Sorted ``int64`` indices; validated before it is returned.
        """
        return self._triples(self._prepare(X, dates, t1))

    @staticmethod
    def _triples(infos: list[SplitInfo]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for info in infos:
            assert info.validation is not None
            yield info.train, info.validation, info.test


class WalkForward(_ThreeWaySplitter):
    """Rolling train / validation / test windows measured in calendar months.

    Window ``k`` starts ``k * step_months`` months after the first calendar
    date ``d0``. With ``B(m) = d0 + m months`` (same day of month, clipped to
    the month's last day, always computed from ``d0``) and
    ``s = k * step_months``, the half-open windows are::

        train      [B(s), B(s + train))
        validation [B(s + train), B(s + train + val))
        test       [B(s + train + val), B(s + train + val + test))

    e.g. ``d0 = 1999-01-04``: train ``[1999-01-04, 2002-01-04)``, validation
    ``[2002-01-04, 2003-01-04)``, test ``[2003-01-04, 2004-01-04)``. A window
    is produced only when the data reach its end (last date ``>=`` test end
    minus one day); ``partial_test=True`` also yields the first window whose
    test period the data cut short.

    Training samples are purged against the validation *and* the test period,
    validation samples against the test period. :meth:`split` yields
    ``(train, test)``, the same arrays as :meth:`split_three` without the
    validation set (the model evaluated on ``test`` is fitted on ``train``,
    the validation set serving early stopping / selection only).

    Parameters
    ----------
    train_months, validation_months, test_months : int, default 36, 12, 12
        Window lengths in calendar months, each at least 1.
    step_months : int, default 12
        Shift between consecutive windows, at least 1 (``1`` gives test
        windows that overlap, shifted by one month).
    partial_test : bool, default False
        Also yield the first window whose test period extends past the data.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.arange("2020-01-01", "2020-07-01", dtype="datetime64[D]")
    >>> cv = WalkForward(train_months=2, validation_months=1, test_months=1, step_months=1)
    >>> cv.get_n_splits(d, dates=d, t1=d + 1)
    3
    >>> for w in cv.windows(d, dates=d, t1=d + 1):
    ...     print(*w)
    2020-01-01 2020-03-01 2020-04-01 2020-05-01
    2020-02-01 2020-04-01 2020-05-01 2020-06-01
    2020-03-01 2020-05-01 2020-06-01 2020-07-01
    >>> train, val, test = next(cv.split_three(d, dates=d, t1=d + 1))
    >>> len(train), len(val), len(test)  # 2020-02-29's label ends on 03-01
    (59, 30, 30)
    """

    _params = ("train_months", "validation_months", "test_months", "step_months", "partial_test")

    def __init__(
        self,
        train_months: int = 36,
        validation_months: int = 12,
        test_months: int = 12,
        step_months: int = 12,
        partial_test: bool = False,
    ) -> None:
        self.train_months = train_months
        self.validation_months = validation_months
        self.test_months = test_months
        self.step_months = step_months
        self.partial_test = partial_test
        self._validate()

    def _validate(self) -> None:
        for name in ("train_months", "validation_months", "test_months", "step_months"):
            _check_int(getattr(self, name), name, 1)
        if not isinstance(self.partial_test, bool):
            raise TypeError(
                f"`partial_test` must be a bool, got `partial_test={self.partial_test!r}`."
            )

    def _bounds(self, panel: _Panel) -> list[tuple[int, int, int, int]]:
        cal = panel.calendar
        d0, last = int(cal[0]), int(cal[-1])
        tv = self.train_months + self.validation_months
        total = tv + self.test_months
        out = []
        k = 0
        while True:
            s = k * self.step_months
            b = tuple(_add_months(d0, s + m) for m in (0, self.train_months, tv, total))
            complete = b[3] <= last + 1
            if not complete and not (self.partial_test and b[2] <= last):
                break
            out.append(b)
            if not complete:
                break
            k += 1
        if not out:
            raise ValueError(
                f"not enough data for one walk-forward window: it needs {total} months from "
                f"{_fmt(d0)} to {_fmt(_add_months(d0, total))}, but the dates end on {_fmt(last)}."
            )
        return out

    def get_n_splits(
        self, X: Any = None, y: Any = None, groups: Any = None, *, dates: Any = None, t1: Any = None
    ) -> int:
        """Number of windows the data hold.

        Parameters
        ----------
        X, y, groups, dates, t1
            As for :meth:`split`; the count depends on the date range, so the
            data are required.

        Returns
        -------
        int
        """
        if X is None and dates is None:
            raise ValueError("WalkForward.get_n_splits needs the data (X or `dates=`/`t1=`).")
        self._validate()
        return len(self._bounds(_panel(X, dates, t1)))


class Holdout(_ThreeWaySplitter):
    """One train / validation / test split of the calendar, oldest dates first.

    The last ``test_fraction`` of the calendar dates is the test period, the
    ``validation_fraction`` before it the validation period, the rest the
    training period; purging is as for :class:`WalkForward` (training samples
    against the validation and test periods, validation samples against the
    test period).

    Parameters
    ----------
    validation_fraction, test_fraction : float, default 0.2
        Shares of the calendar dates, each in (0, 1), together below 1.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.arange("2020-01-01", "2020-04-10", dtype="datetime64[D]")
    >>> cv = Holdout(validation_fraction=0.2, test_fraction=0.2)
    >>> print(*cv.windows(d, dates=d, t1=d + 1)[0])
    2020-01-01 2020-03-01 2020-03-21 2020-04-10
    >>> train, val, test = next(cv.split_three(d, dates=d, t1=d + 1))
    >>> len(train), len(val), len(test)  # 02-29 and 03-20 are purged
    (59, 19, 20)
    """

    _params = ("validation_fraction", "test_fraction")

    def __init__(self, validation_fraction: float = 0.2, test_fraction: float = 0.2) -> None:
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self._validate()

    def _validate(self) -> None:
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ValueError(f"`{name}` must be a number in (0, 1), got `{name}={value!r}`")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                "`validation_fraction + test_fraction` must be below 1, got "
                f"{self.validation_fraction} + {self.test_fraction}"
            )

    def _bounds(self, panel: _Panel) -> list[tuple[int, int, int, int]]:
        cal = panel.calendar
        n = len(cal)
        n_test = round(n * self.test_fraction)
        n_val = round(n * self.validation_fraction)
        if n_test < 1 or n_val < 1 or n - n_test - n_val < 1:
            raise ValueError(
                f"{n} dates are too few for a holdout split with validation_fraction="
                f"{self.validation_fraction} and test_fraction={self.test_fraction}"
            )
        t = n - n_test
        v = t - n_val
        return [(int(cal[0]), int(cal[v]), int(cal[t]), int(cal[-1]) + 1)]

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1."""
        return 1
