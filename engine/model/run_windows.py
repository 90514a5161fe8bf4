"""The pieces of one window of a training run (:func:`engine.model.runs.train_windows`).

Where its fit runs (:func:`_submit_windows`: every window's fit started on
the executor of :mod:`engine.parallel`), what its test rows become (the
predictions frame with the window's ``train_end`` and ``embargo_end``,
:func:`_prediction_frame` and :func:`_embargo_end`, and its test metrics,
:func:`_test_metrics`), and how a run directory is made ready
(:func:`_prepare_out`). Private to the engine: the training loop and the
ensemble job use them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine.evaluation import evaluate_frame
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.run_files import RUN_FILE
from engine.model.run_resume import RESUMABLE
from engine.model.sequences import SequenceSet

if TYPE_CHECKING:
    from engine.model.runs import RunSettings, TrainDataset

__all__: list[str] = []


def _days(series: pl.Series) -> np.ndarray:
    return series.to_numpy().astype("datetime64[D]")


def _embargo_end(
    calendar: np.ndarray, train_end: np.datetime64, embargo_days: int
) -> np.datetime64:
    """The ``embargo_days``-th trading day after ``train_end`` (``train_end`` itself for 0)."""
    if embargo_days == 0:
        return train_end
    pos = int(np.searchsorted(calendar, train_end, side="right")) - 1 + embargo_days
    return calendar[min(pos, len(calendar) - 1)]


def _prediction_frame(
    score_set: SequenceSet,
    rows: np.ndarray,
    confidence: np.ndarray,
    model_id: str,
    train_end: np.datetime64,
    embargo_end: np.datetime64,
) -> pl.DataFrame:
    index = score_set.index[rows]
    patterns = score_set.pattern_names
    assert score_set.y is not None
    return index.with_columns(
        pl.lit(model_id).alias("model_id"),
        pl.lit(train_end.astype(date)).alias("train_end"),
        pl.lit(embargo_end.astype(date)).alias("embargo_end"),
        *(pl.Series(p + CONFIDENCE_SUFFIX, confidence[:, j]) for j, p in enumerate(patterns)),
        *(
            pl.Series(p, score_set.y[rows, j]).fill_nan(None).cast(pl.Int8)
            for j, p in enumerate(patterns)
        ),
    )


def _test_metrics(predictions: pl.DataFrame, patterns: tuple[str, ...]) -> dict[str, Any]:
    usable = [p for p in patterns if predictions.get_column(p).drop_nulls().n_unique() == 2]
    if not usable:
        return {}
    frame = evaluate_frame(predictions, usable, n_boot=500, seed=0)
    return {row.pop("pattern"): row for row in frame.to_dicts()}


def _prepare_out(out: Path, overwrite: bool, *, resumable: bool = False) -> None:
    """Make ``out`` ready for a new run (``resumable``: one that ``--resume`` can continue)."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} already exists and is not empty; pass --overwrite or choose another "
                f"--out{_resume_hint(out) if resumable else ''}"
            )
        if not (out / RUN_FILE).is_file():
            raise FileExistsError(
                f"{out} is not a training run (no {RUN_FILE}); refusing to overwrite it"
            )
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _resume_hint(out: Path) -> str:
    """A pointer to ``--resume`` when ``out`` holds an interrupted or failed training run."""
    try:
        status = json.loads((out / RUN_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return ""
    if status in RESUMABLE:
        return f" (it holds an {status} run: `engine train --resume --out {out}` continues it)"
    return ""


def _submit_windows(
    dataset: TrainDataset,
    infos: list[Any],
    windows: list[Any],
    skip: dict[int, Any],
    config: Any,
    settings: RunSettings,
    backend: str,
    workers: int,
    address: str | None,
) -> Any:
    """Start every window's fit on the executor; the test rows are scored in the workers."""
    from engine.model.fit_tasks import Fold, FoldData, ParallelWindowFits, WindowFitTask

    train_set, score_set = dataset.train_set, dataset.score_set
    assert train_set.y is not None
    score_days = _days(score_set.index.get_column("date"))
    folds, tasks, rows, start = [], [], [], 0
    for k, (info, (_, _, test_start, test_end)) in enumerate(zip(infos, windows, strict=True)):
        if k in skip:
            continue
        test_rows = np.flatnonzero((score_days >= test_start) & (score_days < test_end))
        folds.append(Fold(info.train, info.validation, np.arange(start, start + test_rows.size)))
        rows.append(test_rows)
        start += test_rows.size
        tasks.append(
            WindowFitTask(window=k, fold=len(folds) - 1, config=config,
                          feature_names=tuple(train_set.feature_names),
                          pattern_names=tuple(train_set.pattern_names),
                          seed=settings.seed + k, deterministic=settings.deterministic)
        )  # fmt: skip
    data = FoldData(train_set.X, train_set.y, score_set.X[np.concatenate(rows)], folds)
    return ParallelWindowFits(backend, workers, address, data, tasks)
