"""Prediction sources: what a run directory, model artifact or predictions file offers.

:func:`resolve_prediction_source` reads what a run directory, one model
artifact directory or a bare predictions file offers for validation (a
:class:`PredictionSource`: the predictions file, the patterns, the training
histories, and the inputs of the out-of-sample guard,
:mod:`engine.model.out_of_sample`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.artifacts import HISTORY_FILE, METADATA_FILE, PREDICTIONS_FILE, read_metadata
from engine.model.out_of_sample import bar_calendar, embargo_days_of, guard_notes
from engine.model.run_files import MODELS_DIR, RUN_FILE, RUN_PREDICTIONS_FILE, read_json

__all__ = ["PredictionSource", "resolve_prediction_source"]


@dataclass
class PredictionSource:
    """What a run directory, model artifact or predictions file offers for validation.

    Attributes
    ----------
    kind : {"run", "model", "predictions"}
        What ``path`` is.
    path : Path
        The run directory, model artifact directory or predictions file given.
    predictions : Path
        The predictions file to read.
    patterns : list of str or None
        The patterns the run or artifact names; None: every pattern the file holds.
    histories : dict of str to Path
        ``model_id`` -> its ``history.csv`` (empty for a predictions file).
    model_ids : list of str or None
        The windows the run or artifact has (None for a predictions file).
    run_status : str or None
        ``run.json`` status of a run directory.
    notes : list of str
        Caveats found while resolving (an interrupted run, no histories, how
        the out-of-sample guard is recomputed when something is unknown, ...).
    embargo_days : int or None
        The embargo the run or artifact records (None: unknown, the default
        :data:`engine.model.out_of_sample.DEFAULT_EMBARGO_DAYS` applies).
    calendar : ndarray of datetime64[D] or None
        The bar calendar of the run's stored bars (:func:`engine.model.out_of_sample.bar_calendar`);
        None: unknown, business days apply.
    """

    kind: str
    path: Path
    predictions: Path
    patterns: list[str] | None
    histories: dict[str, Path]
    model_ids: list[str] | None = None
    run_status: str | None = None
    notes: list[str] = field(default_factory=list)
    embargo_days: int | None = None
    calendar: np.ndarray | None = None


def _guard_inputs(record: dict[str, Any]) -> tuple[int | None, np.ndarray | None, list[str]]:
    """Embargo, bar calendar and notes from a run.json or metadata.json record."""
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    tickers = data.get("tickers")
    tickers = [str(t) for t in tickers] if isinstance(tickers, list) and tickers else None
    embargo_days = embargo_days_of(record)
    calendar = bar_calendar(data.get("data_dir"), tickers)
    return embargo_days, calendar, guard_notes(calendar, embargo_days)


def _run_source(directory: Path) -> PredictionSource:
    run_file = directory / RUN_FILE
    run = read_json(run_file)
    if not isinstance(run, dict) or not isinstance(run.get("windows"), list):
        raise ValueError(f"{run_file} is not a training run file: it has no 'windows' list")
    status = run.get("status")
    predictions = directory / RUN_PREDICTIONS_FILE
    if not predictions.is_file():
        raise FileNotFoundError(
            f"{predictions} is missing: the run {directory} (status {status!r}) has no "
            "predictions; it wrote none before it stopped"
        )
    histories: dict[str, Path] = {}
    for k, window in enumerate(run["windows"]):
        if not isinstance(window, dict) or "model_id" not in window:
            raise ValueError(f"{run_file}: windows[{k}] has no 'model_id'")
        model_id = str(window["model_id"])
        artifact = directory / str(window.get("artifact") or f"{MODELS_DIR}/{model_id}")
        if not artifact.is_dir():
            raise FileNotFoundError(f"model artifact {artifact} of window {model_id} is missing")
        read_metadata(artifact)  # verifies every checksum; raises ArtifactError naming the file
        histories[model_id] = artifact / HISTORY_FILE
    notes = []
    if status != "complete":
        notes.append(
            f"run status is {status!r}: only its {len(histories)} finished windows are validated"
        )
    if not histories:
        notes.append("run.json lists no finished windows: overfitting monitor absent")
    patterns = run.get("pattern_names")
    embargo_days, calendar, guard = _guard_inputs(run)
    return PredictionSource(
        kind="run",
        path=directory,
        predictions=predictions,
        patterns=list(patterns) if patterns else None,
        histories=histories,
        model_ids=list(histories),
        run_status=status,
        notes=notes + guard,
        embargo_days=embargo_days,
        calendar=calendar,
    )


def _artifact_source(directory: Path) -> PredictionSource:
    metadata = read_metadata(directory)  # verifies every checksum
    model_id = str(metadata.get("model_id"))
    predictions = directory / PREDICTIONS_FILE
    if PREDICTIONS_FILE not in metadata.get("files", {}) or not predictions.is_file():
        raise FileNotFoundError(
            f"model artifact {directory} has no {PREDICTIONS_FILE}: nothing out-of-sample to "
            "validate"
        )
    patterns = metadata.get("pattern_names")
    embargo_days, calendar, guard = _guard_inputs(metadata)
    return PredictionSource(
        kind="model",
        path=directory,
        predictions=predictions,
        patterns=list(patterns) if patterns else None,
        histories={model_id: directory / HISTORY_FILE},
        model_ids=[model_id],
        notes=guard,
        embargo_days=embargo_days,
        calendar=calendar,
    )


def _file_source(path: Path) -> PredictionSource:
    """A bare predictions file; a ``run.json`` beside it gives the guard's embargo and bars."""
    notes = ["a predictions file has no training histories: overfitting monitor absent"]
    run_file = path.parent / RUN_FILE
    record: dict[str, Any] = {}
    if run_file.is_file():
        try:
            found = read_json(run_file)
        except ValueError:
            found = None
        if isinstance(found, dict):
            record = found
    embargo_days, calendar, guard = _guard_inputs(record)
    return PredictionSource(
        kind="predictions",
        path=path,
        predictions=path,
        patterns=None,
        histories={},
        notes=notes + guard,
        embargo_days=embargo_days,
        calendar=calendar,
    )


def resolve_prediction_source(
    model: Path | None = None, predictions: Path | None = None
) -> PredictionSource:
    """Find the predictions, patterns and training histories to validate.

    Parameters
    ----------
    model : Path, optional
        A training run directory (``run.json``: its ``predictions.parquet``
        and every listed window's ``history.csv``, each window's artifact
        checksum-verified first) or one model artifact directory
        (``metadata.json``: verified, then its ``test_predictions.parquet``
        and ``history.csv``).
    predictions : Path, optional
        A predictions Parquet file (no histories; a ``run.json`` beside it
        gives the embargo and data directory). Give exactly one of ``model``
        and ``predictions``.

    Returns
    -------
    PredictionSource
        With the embargo and bar calendar of the out-of-sample guard (the
        ``embargo_days`` and ``data`` recorded in ``run.json`` or the
        artifact's metadata; the calendar is the dates of the run's stored
        bars) and a note for whatever is unknown. Nothing else is read
        beyond ``run.json`` and the artifacts' metadata; the predictions
        file is not opened yet.

    Raises
    ------
    ValueError
        Both or neither given; ``model`` is a file, or a directory that is
        neither a run nor an artifact; a malformed ``run.json``; a checksum
        mismatch (:class:`engine.model.artifacts.ArtifactError`).
    FileNotFoundError
        A missing path, run predictions file, window artifact or artifact
        predictions file.

    Examples
    --------
    >>> source = resolve_prediction_source(predictions=Path("predictions.parquet"))
    >>> source.kind, source.histories, source.embargo_days, source.calendar
    ('predictions', {}, None, None)
    >>> source.notes[0]
    'a predictions file has no training histories: overfitting monitor absent'
    """  # noqa: E501
    if (model is None) == (predictions is None):
        given = "both" if model is not None else "neither"
        raise ValueError(
            "give exactly one of --model (a run directory or a model artifact directory) and "
            f"--predictions (a predictions Parquet file); got {given}"
        )
    if predictions is not None:
        return _file_source(Path(predictions))
    path = Path(model)  # type: ignore[arg-type]
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if not path.is_dir():
        raise ValueError(
            f"model path {path} is a file, not a run or model artifact directory; "
            "pass a predictions file as `predictions`"
        )
    if (path / RUN_FILE).is_file():
        return _run_source(path)
    if (path / METADATA_FILE).is_file():
        return _artifact_source(path)
    raise ValueError(
        f"{path} is neither a training run directory (no {RUN_FILE}) nor a model artifact "
        f"directory (no {METADATA_FILE})"
    )
