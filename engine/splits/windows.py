"""Splitters into train / validation / test periods: walk-forward windows and one holdout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.splits.base import SplitInfo, _DateSplitter, _idx
from engine.splits.dates import (
    _add_months,
    _check_embargo_days,
    _check_int,
    _fmt,
    _label_cut,
    _Panel,
    _panel,
)
from engine.splits.leakage import _leaks

__all__ = ["Holdout", "WalkForward"]


def _window(panel: _Panel, bounds: tuple[int, int, int, int], embargo_days: int) -> SplitInfo:
    """One train / validation / test split from declared half-open day bounds, checked.

    A training candidate (dated in ``[a, v)``) is purged when its label ends
    on or after ``v``; a validation candidate (``[v, t)``) when its label ends
    on or after ``t``. Either is embargoed, when not purged, if its label ends
    fewer than ``embargo_days`` trading days before ``t``.
    """
    a, v, t, e = bounds
    day, t1, usable = panel.day, panel.t1, panel.usable
    cut = _label_cut(t, embargo_days, panel.bars)
    train_c = _idx(usable & (day >= a) & (day < v))
    val_c = _idx(usable & (day >= v) & (day < t))
    test = _idx(usable & (day >= t) & (day < e))
    train_purged = t1[train_c] >= v
    train_embargoed = ~train_purged & (t1[train_c] >= cut)
    val_purged = t1[val_c] >= t
    val_embargoed = ~val_purged & (t1[val_c] >= cut)
    train = train_c[~train_purged & ~train_embargoed]
    validation = val_c[~val_purged & ~val_embargoed]
    check = (panel.day, panel.t1, panel.calendar)
    _leaks(*check, train, test, "test", embargo_days, panel.bars, t)
    _leaks(*check, train, validation, "validation", 0, None, v)
    _leaks(*check, validation, test, "test", embargo_days, panel.bars, t)
    return SplitInfo(
        train=train,
        test=test,
        purged=train_c[train_purged],
        embargoed=train_c[train_embargoed],
        validation=validation,
        validation_purged=val_c[val_purged],
        validation_embargoed=val_c[val_embargoed],
    )


class _ThreeWaySplitter(_DateSplitter):
    """Splitters that cut the calendar into train / validation / test periods.

    Subclasses give the half-open day boundaries ``(train start, validation
    start, test start, test end)`` of each window in ``_bounds``. The purge
    works against these *declared* bounds, not against the first sample of
    each period (which comes later when days are missing): training labels
    must end before the declared validation start, and training and
    validation labels at least ``embargo_days`` trading days of the bar
    calendar before the declared test start.
    """

    def _bounds(self, panel: _Panel) -> list[tuple[int, int, int, int]]:  # pragma: no cover
        raise NotImplementedError

    def _infos(self, panel: _Panel, embargo_days: int) -> list[SplitInfo]:
        cal = panel.calendar
        infos = []
        for k, b in enumerate(self._bounds(panel)):
            a, v, t, e = (int(x) for x in np.searchsorted(cal, b, side="left"))
            for name, lo, hi in (("train", a, v), ("validation", v, t), ("test", t, e)):
                if lo == hi:
                    raise ValueError(
                        f"{type(self).__name__} window {k} has no dates in its {name} period "
                        f"[{_fmt(cal[lo] if lo < len(cal) else b[3])}, ...)."
                    )
            infos.append(_window(panel, b, embargo_days))
        return infos

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
        self,
        X: Any = None,
        y: Any = None,
        groups: Any = None,
        *,
        dates: Any = None,
        t1: Any = None,
        calendar: Any = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Generate ``(train, validation, test)`` index arrays.

        Parameters
        ----------
        X, y, groups, dates, t1, calendar
            As for :meth:`split`.

        Returns
        -------
        iterator of tuple of numpy.ndarray
            Sorted ``int64`` indices; validated before it is returned.
        """
        return self._triples(self._prepare(X, dates, t1, calendar))

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

    The purge works against these declared bounds: training labels must end
    before the validation start ``B(s + train)``, validation labels before the
    test start ``B(s + train + val)``, even when the first sample of a period
    comes later (days missing at its start). :meth:`split` yields
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
    embargo_days : int, default 0
        Trading days of the bar calendar that must lie strictly between every
        training or validation label end and the declared test start (the
        gap between the last label a model learns from or is selected on and
        its first prediction). Counting them needs the calendar: pass
        ``calendar=`` to :meth:`split` when it is above 0.

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
    >>> cv = WalkForward(2, 1, 1, step_months=1, embargo_days=5)
    >>> train, val, test = next(cv.split_three(d, dates=d, t1=d + 1, calendar=d))
    >>> print(d[val].max(), (d + 1)[val].max())  # 03-27..03-31: 5 days before 04-01
    2020-03-25 2020-03-26
    """

    _params = (
        "train_months",
        "validation_months",
        "test_months",
        "step_months",
        "partial_test",
        "embargo_days",
    )

    def __init__(
        self,
        train_months: int = 36,
        validation_months: int = 12,
        test_months: int = 12,
        step_months: int = 12,
        partial_test: bool = False,
        embargo_days: int = 0,
    ) -> None:
        self.train_months = train_months
        self.validation_months = validation_months
        self.test_months = test_months
        self.step_months = step_months
        self.partial_test = partial_test
        self.embargo_days = embargo_days
        self._validate()

    def _validate(self) -> None:
        for name in ("train_months", "validation_months", "test_months", "step_months"):
            _check_int(getattr(self, name), name, 1)
        if not isinstance(self.partial_test, bool):
            raise TypeError(
                f"`partial_test` must be a bool, got `partial_test={self.partial_test!r}`."
            )
        _check_embargo_days(self.embargo_days)

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
    training period; purging is as for :class:`WalkForward` (training labels
    end before the validation start, validation labels before the test
    start).

    Parameters
    ----------
    validation_fraction, test_fraction : float, default 0.2
        Shares of the calendar dates, each in (0, 1), together below 1.
    embargo_days : int, default 0
        As for :class:`WalkForward`: trading days between every training or
        validation label end and the test start.

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

    _params = ("validation_fraction", "test_fraction", "embargo_days")

    def __init__(
        self, validation_fraction: float = 0.2, test_fraction: float = 0.2, embargo_days: int = 0
    ) -> None:
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.embargo_days = embargo_days
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
        _check_embargo_days(self.embargo_days)

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
