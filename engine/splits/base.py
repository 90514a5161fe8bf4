"""What every date splitter shares: eager validation and checked splits.

A k-fold splitter describes each split as a :class:`_Fold` (training
candidate dates and test ranges, as calendar positions); :func:`_materialise`
turns a fold into sample indices, purges and embargoes the training
candidates and checks the result with the leakage check. The train /
validation / test splitters build their splits from declared bounds instead
(``windows``). :class:`_DateSplitter` validates eagerly and hands back a
private generator, so a bad argument raises at the ``split`` call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.splits.dates import _embargo_ends, _Panel, _panel
from engine.splits.leakage import _leaks, _purge_embargo, _spans

__all__ = ["SplitInfo"]


@dataclass(frozen=True)
class SplitInfo:
    """One split with the samples the purge and the embargo removed.

    Attributes
    ----------
    train, test : numpy.ndarray
        Sorted ``int64`` sample indices.
    purged : numpy.ndarray
        Training candidates removed because their label interval overlaps the
        label span of a test block; for :class:`WalkForward` and
        :class:`Holdout`, because their label ends on or after the declared
        validation start.
    embargoed : numpy.ndarray
        Training candidates (not purged) removed by the embargo: dated within
        ``embargo_days`` after a test label span; for :class:`WalkForward`
        and :class:`Holdout`, with a label ending fewer than ``embargo_days``
        trading days before the declared test start.
    validation : numpy.ndarray or None
        Validation indices (:class:`WalkForward` and :class:`Holdout` only).
    validation_purged : numpy.ndarray
        Validation candidates removed because their label ends on or after
        the declared test start (empty for the k-fold splitters).
    validation_embargoed : numpy.ndarray
        Validation candidates (not purged) removed because their label ends
        fewer than ``embargo_days`` trading days before the declared test
        start (empty for the k-fold splitters).
    """

    train: np.ndarray
    test: np.ndarray
    purged: np.ndarray
    embargoed: np.ndarray
    validation: np.ndarray | None = None
    validation_purged: np.ndarray | None = None
    validation_embargoed: np.ndarray | None = None


@dataclass(frozen=True)
class _Fold:
    train: np.ndarray  # bool mask over calendar positions: training candidate dates
    test: tuple[tuple[int, int], ...]  # half-open calendar position ranges


def _idx(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64, copy=False)


def _on(panel: _Panel, blocks: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Usable samples on the calendar positions ``[a, b)`` of the blocks."""
    on = np.zeros(len(panel.calendar), dtype=bool)
    for a, b in blocks:
        on[a:b] = True
    return panel.usable & on[np.maximum(panel.pos, 0)]


def _materialise(panel: _Panel, fold: _Fold, embargo_days: int) -> SplitInfo:
    """Purge and embargo a fold's training candidates against its test blocks, then check.

    A candidate is purged when its label interval overlaps the label span of
    a block of test samples, embargoed when it is dated within
    ``embargo_days`` trading days of the bar calendar after a span.
    """
    test = _idx(_on(panel, fold.test))
    cand = _idx(panel.usable & fold.train[np.maximum(panel.pos, 0)])
    spans = _spans(panel.day, panel.t1, panel.calendar, test)
    _, purged, embargoed = _purge_embargo(
        panel.day[cand],
        panel.t1[cand],
        spans,
        _embargo_ends(spans.ends, embargo_days, panel.bars),
    )
    train = cand[~purged & ~embargoed]
    _leaks(panel.day, panel.t1, panel.calendar, train, test, "test", embargo_days, panel.bars)
    empty = train[:0]
    return SplitInfo(
        train=train,
        test=test,
        purged=cand[purged],
        embargoed=cand[embargoed],
        validation_purged=empty,
        validation_embargoed=empty,
    )


class _DateSplitter:
    """Shared plumbing: eager validation, then a private generator."""

    _params: tuple[str, ...] = ()

    def _validate(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _folds(self, panel: _Panel) -> list[_Fold]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _infos(self, panel: _Panel, embargo_days: int) -> list[SplitInfo]:
        """Every split, purged, embargoed and checked."""
        return [_materialise(panel, fold, embargo_days) for fold in self._folds(panel)]

    def _embargo_days(self) -> int:
        return int(getattr(self, "embargo_days", 0))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params)
        return f"{type(self).__name__}({args})"

    def _prepare(self, X: Any, dates: Any, t1: Any, calendar: Any) -> list[SplitInfo]:
        """Validate, then build every split eagerly so that any error raises at the call."""
        self._validate()
        embargo_days = self._embargo_days()
        panel = _panel(X, dates, t1, calendar, embargo_days)
        infos = self._infos(panel, embargo_days)
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
        self,
        X: Any = None,
        y: Any = None,
        groups: Any = None,
        *,
        dates: Any = None,
        t1: Any = None,
        calendar: Any = None,
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
        calendar : array-like of dates, optional
            Every trading day of the bars (the bar calendar; it must hold
            every sample date): the embargo counts ``embargo_days`` of its
            days. Required when ``embargo_days > 0``; not needed otherwise,
            since the purge compares dates and counts nothing.

        Returns
        -------
        iterator of (numpy.ndarray, numpy.ndarray)
            Sorted ``int64`` train and test indices. Every split is built and
            checked (:func:`check_no_leakage`) before the iterator is returned.

        Raises
        ------
        ValueError
            Bad parameters or dates, too few dates for the requested splits,
            a split whose train or test set is empty after the purge, an
            embargo without ``calendar``, or a sample dated off ``calendar``.
        """
        return self._pairs(self._prepare(X, dates, t1, calendar))

    @staticmethod
    def _pairs(infos: list[SplitInfo]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for info in infos:
            yield info.train, info.test

    def split_info(
        self,
        X: Any = None,
        y: Any = None,
        groups: Any = None,
        *,
        dates: Any = None,
        t1: Any = None,
        calendar: Any = None,
    ) -> list[SplitInfo]:
        """Every split with the purged and embargoed samples, as :class:`SplitInfo`.

        Parameters
        ----------
        X, y, groups, dates, t1, calendar
            As for :meth:`split`.

        Returns
        -------
        list of SplitInfo
        """
        return self._prepare(X, dates, t1, calendar)


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
