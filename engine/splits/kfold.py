"""Splitters over contiguous date blocks: gapped time series, purged k-fold, combinatorial."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from engine.splits.base import _DateSplitter, _FixedSplits, _Fold
from engine.splits.dates import _check_embargo_days, _check_int, _Panel, _panel

__all__ = ["CombinatorialPurgedCV", "GappedTimeSeriesCV", "PurgedKFold"]


def _blocks(n_dates: int, n_blocks: int) -> list[tuple[int, int]]:
    """``n_blocks`` contiguous ranges; the first ``n_dates % n_blocks`` get one extra date."""
    size, extra = divmod(n_dates, n_blocks)
    out, a = [], 0
    for i in range(n_blocks):
        b = a + size + (1 if i < extra else 0)
        out.append((a, b))
        a = b
    return out


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
    set once; the training set is every other date minus the purged samples
    (label interval overlapping the test block's label span, on either side of
    the block) and the embargoed ones.

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds, at least 2.
    embargo_days : int, default 0
        Trading days of the bar calendar after each test block's label span
        in which no training sample may be dated. Counting them needs the
        calendar: pass ``calendar=`` to :meth:`split` when it is above 0.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.arange("2020-01-01", "2020-01-07", dtype="datetime64[D]")
    >>> cv = PurgedKFold(n_splits=3, embargo_days=1)
    >>> for train, test in cv.split(d, dates=d, t1=d + 1, calendar=d):
    ...     print(train, test)
    [4 5] [0 1]
    [0] [2 3]
    [0 1 2] [4 5]
    """

    _params = ("n_splits", "embargo_days")

    def __init__(self, n_splits: int = 5, embargo_days: int = 0) -> None:
        self.n_splits = n_splits
        self.embargo_days = embargo_days
        self._validate()

    def _validate(self) -> None:
        _check_int(self.n_splits, "n_splits", 2)
        _check_embargo_days(self.embargo_days)

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
    (lexicographic order), trained on the other groups minus purge (against the
    label span of every run of adjacent test groups) and embargo after each.

    Parameters
    ----------
    n_groups : int, default 6
        Number of date groups, at least 2.
    n_test_groups : int, default 2
        Test groups per split, in ``[1, n_groups - 1]``.
    embargo_days : int, default 0
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
    >>> train, test  # the test labels end on 01-05: 4 is purged
    (array([5, 6, 7]), array([0, 1, 2, 3]))
    """

    _params = ("n_groups", "n_test_groups", "embargo_days")

    def __init__(self, n_groups: int = 6, n_test_groups: int = 2, embargo_days: int = 0) -> None:
        self.n_groups = n_groups
        self.n_test_groups = n_test_groups
        self.embargo_days = embargo_days
        self._validate()

    def _validate(self) -> None:
        _check_int(self.n_groups, "n_groups", 2)
        _check_int(self.n_test_groups, "n_test_groups", 1)
        if self.n_test_groups >= self.n_groups:
            raise ValueError(
                f"`n_test_groups` must be smaller than `n_groups={self.n_groups}`, "
                f"got `n_test_groups={self.n_test_groups}`."
            )
        _check_embargo_days(self.embargo_days)

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
