"""Which samples a tuning trial may see: the windows' training and validation parts only.

:func:`plan_windows` splits the training grid exactly as ``engine train``
does (the run's splitter with its purge and embargo, on the bar calendar)
and keeps the ``K`` most recent windows. For each it records

* ``train`` / ``validation``: rows of the training grid (stride 5) that a
  trial fits on and early-stops on;
* ``validation_days``: rows of the stride-1 set dated in the validation
  period, the days a trial scores (objective, monthly matrix, strategy);
  ``scored`` marks those whose label ends at least ``embargo_days`` trading
  days before the declared test start (the others are only traded);
* ``test_days``: rows of the stride-1 set in the test period. They are never
  part of :func:`validation_data`; :func:`clean_test_data` builds them, after the
  search, for the test periods that no tuning validation period overlaps
  (:func:`clean_test_rows`).

:func:`validation_data` and :func:`clean_test_data` return the arrays the fit
tasks share (:class:`engine.model.fit_tasks.FoldData`), restricted to the
rows they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.model.fit_tasks import Fold, FoldData
from engine.model.runs import RunSettings, TrainDataset
from engine.splits import Holdout, check_no_leakage

__all__ = ["TuningWindow", "clean_test_rows", "plan_windows", "clean_test_data", "validation_data"]


@dataclass
class TuningWindow:
    """One walk-forward (or holdout) window as the tuner uses it.

    Attributes
    ----------
    number : int
        Position in the splitter's list of windows: the window is trained
        with seed ``settings.seed + number``, as ``engine train`` trains it.
    model_id : str
        ``wf<number>`` or ``holdout00``, as in a training run.
    bounds : tuple of numpy.datetime64
        Declared ``(train start, validation start, test start, test end)``, half-open.
    train, validation : ndarray of int
        Rows of ``dataset.train_set``.
    validation_days : ndarray of int
        Rows of ``dataset.score_set`` dated in ``[validation start, test start)``.
    scored : ndarray of bool
        Per ``validation_days`` row: a known label that ends at least
        ``embargo_days`` trading days before the test start.
    test_days : ndarray of int
        Rows of ``dataset.score_set`` dated in ``[test start, test end)``.
    """

    number: int
    model_id: str
    bounds: tuple[np.datetime64, np.datetime64, np.datetime64, np.datetime64]
    train: np.ndarray
    validation: np.ndarray
    validation_days: np.ndarray
    scored: np.ndarray
    test_days: np.ndarray


def _days(values) -> np.ndarray:
    return np.asarray(values).astype("datetime64[D]")


def _label_cut(calendar: np.ndarray, start: np.datetime64, embargo_days: int) -> np.datetime64:
    """Labels must end strictly before this day: ``embargo_days`` trading days before ``start``."""
    if embargo_days == 0:
        return start
    pos = int(np.searchsorted(calendar, start, side="left")) - embargo_days
    return calendar[max(pos, 0)]


def plan_windows(
    dataset: TrainDataset, settings: RunSettings, windows: int | None = None
) -> list[TuningWindow]:
    """The ``windows`` most recent windows of ``settings.splitter()`` (all when None).

    Parameters
    ----------
    dataset : TrainDataset
        From :func:`engine.model.runs.prepare_dataset`.
    settings : RunSettings
        Split kind, window lengths, embargo and seed, as for ``engine train``.
    windows : int, optional
        How many of the most recent windows to tune on (at least 1).

    Returns
    -------
    list of TuningWindow
        Oldest first.

    Raises
    ------
    ValueError
        ``windows`` below 1, or a window whose validation period has no
        scored sample with both outcomes for some head.
    """
    if windows is not None and (isinstance(windows, bool) or windows < 1):
        raise ValueError(f"--windows must be at least 1, got {windows}")
    train_set, score_set = dataset.train_set, dataset.score_set
    if train_set.y is None or score_set.y is None:
        raise ValueError("the dataset has no targets; build the sequences with targets")
    splitter = settings.splitter()
    index = train_set.index
    bounds = splitter.windows(index)
    infos = splitter.split_info(index, calendar=dataset.calendar)
    first = 0 if windows is None else max(0, len(bounds) - windows)
    prefix = "holdout" if isinstance(splitter, Holdout) else "wf"
    score_dates = _days(score_set.index.get_column("date").to_numpy())
    t1 = score_set.index.get_column("t1").to_numpy().astype("datetime64[D]")
    known = ~np.isnat(t1)
    plan = []
    for k in range(first, len(bounds)):
        train_start, val_start, test_start, test_end = bounds[k]
        info = infos[k]
        assert info.validation is not None  # three-way splitters
        in_val = (score_dates >= val_start) & (score_dates < test_start)
        rows = np.flatnonzero(in_val)
        cut = _label_cut(dataset.calendar, test_start, settings.embargo_days)
        labelled = ~np.all(np.isnan(score_set.y[rows]), axis=1)
        scored = known[rows] & labelled & (t1[rows] < cut)
        test_rows = np.flatnonzero((score_dates >= test_start) & (score_dates < test_end))
        if scored.any() and test_rows.size:
            # the validation days a trial is scored on never see the test period
            check_no_leakage(
                rows[scored],
                test_rows,
                score_dates,
                t1,
                embargo_days=settings.embargo_days,
                calendar=dataset.calendar,
                test_start=test_start,
            )
        _require_outcomes(score_set.y[rows[scored]], f"{prefix}{k:02d}", val_start, test_start)
        plan.append(
            TuningWindow(
                number=k,
                model_id=f"{prefix}{k:02d}",
                bounds=(train_start, val_start, test_start, test_end),
                train=info.train,
                validation=info.validation,
                validation_days=rows,
                scored=scored,
                test_days=test_rows,
            )
        )
    return plan


def _require_outcomes(y: np.ndarray, model_id: str, start, end) -> None:
    both = [
        j
        for j in range(y.shape[1])
        if np.nanmax(y[:, j], initial=-1) == 1 and np.nanmin(y[:, j], initial=2) == 0
    ]
    if not both:
        raise ValueError(
            f"window {model_id}: no pattern has both outcomes among the validation days "
            f"[{start}, {end}); the objective is undefined there. Use more tickers or a longer "
            "validation period"
        )


def _fold_data(dataset: TrainDataset, plan: list[TuningWindow], scored_rows: list[np.ndarray]):
    grid = np.unique(np.concatenate([np.concatenate([w.train, w.validation]) for w in plan]))
    position = np.full(len(dataset.train_set), -1, dtype=np.int64)
    position[grid] = np.arange(grid.size)
    score = np.concatenate(scored_rows) if scored_rows else np.zeros(0, dtype=np.int64)
    folds, start = [], 0
    for w, rows in zip(plan, scored_rows, strict=True):
        folds.append(
            Fold(
                train=position[w.train],
                validation=position[w.validation],
                score=np.arange(start, start + rows.size),
            )
        )
        start += rows.size
    assert dataset.train_set.y is not None
    return FoldData(
        X=dataset.train_set.X[grid],
        y=dataset.train_set.y[grid],
        score_X=dataset.score_set.X[score],
        folds=folds,
    )


def validation_data(dataset: TrainDataset, plan: list[TuningWindow]) -> FoldData:
    """Arrays for the search: training grid rows and every validation day, no test day.

    Fold ``i`` of the result is ``plan[i]``; its ``score`` rows are
    ``plan[i].validation_days`` in order.
    """
    return _fold_data(dataset, plan, [w.validation_days for w in plan])


def clean_test_rows(dataset: TrainDataset, plan: list[TuningWindow]) -> list[np.ndarray]:
    """Per window, the test rows no tuning validation period has seen.

    A test row is clean when its label interval ``[date, t1]`` lies wholly
    before or wholly after every tuned window's validation period
    ``[validation start, test start)``: its outcome was never part of the
    search. With walk-forward windows that step by the validation length,
    one window's test period is the next one's validation period, so only
    the last window's test period is clean.
    """
    index = dataset.score_set.index
    dates = _days(index.get_column("date").to_numpy())
    t1 = index.get_column("t1").to_numpy().astype("datetime64[D]")
    out = []
    for w in plan:
        rows = w.test_days
        rows = rows[~np.isnat(t1[rows])]
        ok = np.ones(rows.size, dtype=bool)
        for other in plan:
            _, v, t, _ = other.bounds
            ok &= (t1[rows] < v) | (dates[rows] >= t)
        out.append(rows[ok])
    return out


def clean_test_data(
    dataset: TrainDataset, plan: list[TuningWindow], rows: list[np.ndarray]
) -> tuple[FoldData, list[int]]:
    """Arrays to score the selected configurations on clean test rows, after the search.

    Returns
    -------
    FoldData
        One fold per window of ``plan`` that has clean rows.
    list of int
        Positions in ``plan`` of those windows.
    """
    keep = [i for i, r in enumerate(rows) if r.size]
    return _fold_data(dataset, [plan[i] for i in keep], [rows[i] for i in keep]), keep
