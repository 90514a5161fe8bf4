"""Leakage-free, date-based cross-validation splitters for pooled multi-ticker panels.

Import the public names from here (``from engine.splits import WalkForward``);
the modules inside are an implementation detail:

* ``dates``: dates as day numbers, the sample and bar calendars, and the
  embargo;
* ``leakage``: purge and embargo masks, :func:`check_no_leakage` and
  :class:`LeakageError`;
* ``base``: :class:`SplitInfo` and the plumbing every splitter shares;
* ``kfold``: :class:`GappedTimeSeriesCV`, :class:`PurgedKFold` and
  :class:`CombinatorialPurgedCV`, over contiguous date blocks;
* ``windows``: :class:`WalkForward` and :class:`Holdout`, into train /
  validation / test periods.

A pooled panel holds several tickers, so several samples share a date. Every
sample ``i`` has a *prediction date* ``dates[i]`` (the ``t`` of its feature
window) and a *label end date* ``t1[i]``: its label uses the bars in
``(dates[i], t1[i]]``. Splitting rows by position, or counting a gap in
samples, leaks across tickers; every splitter here therefore cuts by
**calendar date**, the same cut for every ticker.

Semantics shared by all splitters
---------------------------------
* **Calendar.** The splitters cut the *sample calendar*: the sorted unique
  dates of the *usable* samples (those with a known ``t1``). Samples whose
  ``t1`` is null (their label is not known yet) are never in a train,
  validation or test set.
* **Evaluation periods.** A test (or validation) set is every usable sample on
  a contiguous run of calendar dates; the period is the closed calendar
  interval ``[first date, last date]`` of the run.
* **Label span.** An evaluation period's labels reach past its last date: its
  *label span* runs from its first date to the latest ``t1`` of its samples.
* **Purge.** A training sample is removed when its label interval
  ``[dates[i], t1[i]]`` overlaps the label span of an evaluation period
  (López de Prado): before the period, its label reaches into the period;
  after it, it shares bars with the period's last labels.
* **Declared periods.** :class:`WalkForward` and :class:`Holdout` declare
  their periods' bounds; the purge works against them, not against the first
  sample of a period: training labels end before the declared validation
  start, validation labels before the declared test start (the first test
  sample can come later when days are missing, on a stride-5 grid for
  instance).
* **Embargo.** ``embargo_days`` is counted in one unit everywhere: trading
  days of the *bar calendar*, the ``calendar=`` given to ``split`` (every
  trading day of the bars; the sample dates cannot stand in for it, since a
  stride-5 training grid holds every 5th trading day only). A training sample
  that survives the purge is removed when its date falls within
  ``embargo_days`` trading days after a label span's end. Without
  ``calendar=`` only ``embargo_days=0`` is accepted.
* Every split a splitter yields passes :func:`check_no_leakage`; a violation
  is a bug and raises :class:`LeakageError`.

The splitters follow the scikit-learn protocol (``split`` yields sorted
``int64`` ``(train, test)`` index arrays, ``get_n_splits``), without depending
on scikit-learn. Unlike scikit-learn, ``split`` validates its input and its
parameters when it is called and only then returns a private generator, so a
bad argument raises at the call, not at the first ``next()``.
"""

from engine.splits.base import SplitInfo
from engine.splits.kfold import CombinatorialPurgedCV, GappedTimeSeriesCV, PurgedKFold
from engine.splits.leakage import LeakageError, check_no_leakage
from engine.splits.windows import Holdout, WalkForward

__all__ = [
    "CombinatorialPurgedCV",
    "GappedTimeSeriesCV",
    "Holdout",
    "LeakageError",
    "PurgedKFold",
    "SplitInfo",
    "WalkForward",
    "check_no_leakage",
]
