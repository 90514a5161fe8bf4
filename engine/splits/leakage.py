"""The leakage check: purge and embargo masks, and the error they raise.

A training sample leaks when its label interval ``[date, t1]`` overlaps the
label span of an evaluation period (from its first date to the latest ``t1`` of
its samples), when its date lies inside a period or within the embargo after
a label span, when it is also an evaluation sample, or when its ``t1`` is
unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.splits.dates import (
    _NULL,
    _as_days,
    _bar_calendar,
    _check_embargo_days,
    _embargo_ends,
    _fmt,
    _label_cut,
)

__all__ = ["LeakageError", "check_no_leakage"]

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


def _runs(cal: np.ndarray, test_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split sorted unique test days into runs of consecutive calendar dates."""
    p = np.searchsorted(cal, test_days)
    breaks = np.flatnonzero(np.diff(p) != 1) + 1
    first = np.r_[0, breaks]
    last = np.r_[breaks - 1, len(test_days) - 1]
    return test_days[first], test_days[last]


@dataclass(frozen=True)
class _Spans:
    """The evaluation blocks of a split and their label spans, sorted by start.

    ``starts`` / ``lasts``: first and last date of each block (a run of
    consecutive calendar dates among the evaluation dates). ``ends``: the end
    of its label span, the latest ``t1`` of its samples (never before
    ``lasts``).
    """

    starts: np.ndarray
    lasts: np.ndarray
    ends: np.ndarray


def _spans(day: np.ndarray, t1: np.ndarray, cal: np.ndarray, test: np.ndarray) -> _Spans:
    """Blocks and label spans of the evaluation samples ``test``."""
    if test.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Spans(empty, empty, empty)
    test_days = np.unique(day[test])
    starts, lasts = _runs(np.union1d(cal, test_days), test_days)
    block = np.searchsorted(starts, day[test], side="right") - 1
    ends = lasts.copy()
    np.maximum.at(ends, block, t1[test])  # a null t1 (the minimum int64) never wins
    return _Spans(starts, lasts, ends)


def _purge_embargo(
    day: np.ndarray, t1: np.ndarray, spans: _Spans, embargo_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks ``(inside, purged, embargoed)`` of samples against the evaluation spans.

    ``inside``: the sample's date lies in a block. ``purged``: its label
    interval ``[day, t1]`` overlaps a block's label span ``[start, end]``.
    ``embargoed``: not purged, and its date is in ``(end, embargo end]`` of a
    span (``embargo_ends[k]`` is the last embargoed day after span ``k``).
    """
    m = len(spans.starts)
    false = np.zeros(len(day), dtype=bool)
    if m == 0:
        return false, false.copy(), false.copy()
    k = np.searchsorted(spans.starts, day, side="right") - 1
    inside = (k >= 0) & (day <= spans.lasts[np.maximum(k, 0)])
    # spans starting on or before t1: a prefix (starts are sorted); the latest
    # span end among them decides whether one of them reaches back to day
    reach = np.maximum.accumulate(spans.ends)
    j = np.searchsorted(spans.starts, t1, side="right") - 1
    purged = (j >= 0) & (reach[np.maximum(j, 0)] >= day)
    # spans ending before day: a prefix once sorted by end; their embargo ends
    # grow with the span end, so the latest of them decides
    order = np.argsort(spans.ends, kind="stable")
    ends, emb = spans.ends[order], np.maximum.accumulate(embargo_ends[order])
    e = np.searchsorted(ends, day, side="left") - 1
    embargoed = ~purged & (e >= 0) & (day <= emb[np.maximum(e, 0)])
    return inside, purged, embargoed


def _leaks(
    day: np.ndarray,
    t1: np.ndarray,
    cal: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    what: str,
    embargo_days: int = 0,
    bars: np.ndarray | None = None,
    start: int | None = None,
) -> None:
    """Raise :class:`LeakageError` listing every training sample that leaks into ``test``.

    ``start``: the declared start of the evaluation period, when there is one;
    training labels dated before it must end at least ``embargo_days`` trading
    days before it.
    """
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
    spans = _spans(day, t1, cal, test)
    inside, purged, embargoed = _purge_embargo(
        day[train], t1[train], spans, _embargo_ends(spans.ends, embargo_days, bars)
    )
    if start is not None:
        cut = _label_cut(start, embargo_days, bars)
        before = day[train] < start
        into = before & (t1[train] >= start)
        close = before & ~into & (t1[train] >= cut)
        for i in train[into]:
            reasons.setdefault(
                int(i), f"has a label ending inside the declared {what} period (from {_fmt(start)})"
            )
        for i in train[close]:
            reasons.setdefault(
                int(i),
                f"has a label ending fewer than {embargo_days} trading days before the declared "
                f"{what} start {_fmt(start)}",
            )
    for flag, text in (
        (inside, f"shares a date with the {what} period"),
        (purged, f"has a label interval overlapping a {what} label span"),
        (embargoed, f"sits in the {embargo_days}-trading-day embargo after a {what} label span"),
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
        blocks = zip(spans.starts, spans.lasts, spans.ends, strict=True)
        periods = (
            " ("
            + "; ".join(f"{_fmt(a)}..{_fmt(b)}, labels to {_fmt(c)}" for a, b, c in blocks)
            + ")"
        )
    raise LeakageError(
        f"{len(lines)} training sample(s) leak into the {what} period{periods}:\n  {shown}{more}",
        samples,
        lines,
    )


def check_no_leakage(
    train_idx: Any,
    test_idx: Any,
    dates: Any,
    t1: Any,
    *,
    embargo_days: int = 0,
    calendar: Any = None,
    test_start: Any = None,
) -> None:
    """Raise if any training sample can see the evaluation period.

    The evaluation periods are the runs of consecutive calendar dates among the
    test samples' dates (the calendar is the unique dates of the samples with a
    known ``t1``, plus the test dates). A period's label span runs from its
    first date to the latest ``t1`` of its test samples. A training sample
    leaks when it

    * is also a test sample, or has a null ``t1`` (its window is unknown);
    * has its date inside an evaluation period (the cut is not by date);
    * has a label interval ``[date, t1]`` overlapping a period's label span
      (López de Prado's purge: a training label that reaches into the period,
      or one that starts before the period's last label ends);
    * is dated within ``embargo_days`` trading days after the end of a label
      span;
    * with a declared ``test_start``: is dated before it and has a label
      ending on or after it, or fewer than ``embargo_days`` trading days
      before it (the test period starts at its declared start, even when its
      first sample comes later because days are missing).

    Parameters
    ----------
    train_idx, test_idx : array-like of int
        Sample indices into ``dates`` / ``t1``.
    dates, t1 : array-like of dates
        Prediction date and label end date of every sample (datetime64,
        :class:`datetime.date` or a Polars Date series; ``t1`` may be null).
    embargo_days : int, default 0
        Trading days of ``calendar`` after each label span in which no
        training sample may be dated.
    calendar : array-like of dates, optional
        Every trading day of the bars (it must hold every sample date).
        Required when ``embargo_days > 0``; without it nothing is counted.
    test_start : date, optional
        Declared start of the test period (the bounds of
        :class:`WalkForward` / :class:`Holdout`), at or before the first test
        date.

    Raises
    ------
    LeakageError
        Listing every offending sample as ``(index, date, t1, reason)``.
    ValueError
        ``embargo_days > 0`` without ``calendar``, or a sample dated off it.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[D]")
    >>> t1 = d + 1
    >>> check_no_leakage([0], [2], d, t1)  # 2020-01-01's label ends 01-02: fine
    >>> try:
    ...     check_no_leakage([1], [2], d, t1)
    ... except LeakageError as err:
    ...     print(err.samples, *err.reasons)
    [1] sample 1 (date 2020-01-02, t1 2020-01-03) has a label interval overlapping a test label span
    """
    embargo_days = _check_embargo_days(embargo_days)
    day, day_null = _as_days(dates, "dates")
    end, t1_null = _as_days(t1, "t1")
    if len(day) != len(end):
        raise ValueError(
            f"`dates` and `t1` must have the same length, got {len(day)} and {len(end)}."
        )
    if day_null.any():
        raise ValueError("`dates` must not be null.")
    bars = _bar_calendar(calendar, embargo_days, day)
    end = np.where(t1_null, _NULL, end)
    train = np.asarray(train_idx, dtype=np.int64).ravel()
    test = np.asarray(test_idx, dtype=np.int64).ravel()
    start = None
    if test_start is not None:
        (start,), start_null = _as_days([test_start], "test_start")
        if start_null.any():
            raise ValueError("`test_start` must be a date, got a null.")
        start = int(start)
        if test.size and day[test].min() < start:
            i = int(test[np.argmin(day[test])])
            raise ValueError(
                f"`test_start` {_fmt(start)} must not follow the first test date; "
                f"test sample {i} is dated {_fmt(day[i])}."
            )
    cal = np.unique(day[~t1_null])
    _leaks(day, end, cal, train, test, "test", embargo_days, bars, start)
