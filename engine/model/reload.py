"""Rebuild a finished run's windows from its bars: the samples each model was fitted and tested on.

Ensembles fit their weights on the members' validation folds, and
permutation importance scores each model on its own test period; both need
the exact samples :func:`engine.model.runs.train_windows` used. They are
not stored (a run keeps its out-of-sample predictions, not its inputs), so
:func:`rebuild_run` recomputes them from the bars with the run's recorded
choices (tickers, dates, ``vix_variant``, market, sector map, settings):

1. features and targets as :func:`engine.model.runs.prepare_dataset` makes them;
2. the run's splitter, purge and embargo on the bar calendar, window by window;
3. checks that this *is* the run: the bars' fingerprint equals the one in
   ``run.json``, every window's dates equal its artifact's, and its test
   rows are exactly the ``(ticker, date)`` rows of its stored predictions.

:func:`read_run` reads and checks a ``run.json`` without touching the bars.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.data.prices import PriceBasis, apply_basis
from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import bars_fingerprint, build_features
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.artifacts import PREDICTIONS_FILE, read_metadata
from engine.model.run_files import MODELS_DIR, RUN_FILE, read_json
from engine.model.runs import RunSettings, TrainDataset, prepare_dataset

__all__ = [
    "REPRODUCE_TOLERANCE",
    "RebuiltRun",
    "RunWindow",
    "check_reproduces",
    "read_run",
    "rebuild_run",
    "run_settings",
]

#: Largest difference allowed between a reloaded model on the rebuilt test windows and
#: the predictions its run stored (fp32 round-off only).
REPRODUCE_TOLERANCE = 1e-5


@dataclass
class RunWindow:
    """One window of a rebuilt run.

    Attributes
    ----------
    model_id : str
    artifact : Path
        The window's model artifact directory.
    metadata : dict
        Its verified ``metadata.json``.
    train, validation : ndarray of int
        Rows of :attr:`RebuiltRun.dataset` ``train_set`` (training grid)
        the model was fitted and early-stopped on.
    test : ndarray of int
        Rows of ``score_set`` (stride 1) in its test period.
    """

    model_id: str
    artifact: Path
    metadata: dict[str, Any]
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


@dataclass
class RebuiltRun:
    """A run's ``run.json``, its rebuilt dataset and its windows."""

    directory: Path
    run: dict[str, Any]
    settings: RunSettings
    dataset: TrainDataset
    windows: list[RunWindow]


def read_run(directory: str | Path) -> dict[str, Any]:
    """A run's ``run.json``, checked to list finished windows whose artifacts verify.

    Raises
    ------
    FileNotFoundError
        No such directory or no ``run.json`` in it.
    ValueError
        Malformed ``run.json`` or no finished window; an artifact whose
        checksums fail (:class:`engine.model.artifacts.ArtifactError`).
    """
    directory = Path(directory)
    path = directory / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a training run directory: no {RUN_FILE}")
    run = read_json(path)
    if not isinstance(run, dict) or not isinstance(run.get("windows"), list):
        raise ValueError(f"{path} is not a training run file: it has no 'windows' list")
    if not run["windows"]:
        raise ValueError(f"{path} lists no finished window (status {run.get('status')!r})")
    for key in ("feature_names", "pattern_names"):
        if not isinstance(run.get(key), list):
            raise ValueError(f"{path} has no {key!r} list")
    for window in run["windows"]:
        artifact = directory / str(window.get("artifact") or f"{MODELS_DIR}/{window['model_id']}")
        read_metadata(artifact)  # every checksum
    return run


def run_settings(run: dict[str, Any], source: str = RUN_FILE) -> RunSettings:
    """The :class:`RunSettings` a ``run.json`` records (unknown keys are an error)."""
    values = run.get("settings")
    known = {f.name for f in fields(RunSettings)}
    if not isinstance(values, dict) or set(values) - known:
        unknown = sorted(set(values or {}) - known)
        raise ValueError(f"{source}: settings {unknown or values!r} are not this engine's")
    return RunSettings(**values)


def _iso(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def rebuild_run(directory: str | Path, bars: pl.DataFrame) -> RebuiltRun:
    """Recompute a run's samples and windows from ``bars`` and check they are the run's.

    Parameters
    ----------
    directory : path
        A training run directory.
    bars : polars.DataFrame
        The run's tickers and their benchmarks, full history, as stored
        (:func:`export.held_out.training_bars` of any window's metadata); the
        run's price basis is applied here, as training applied it.

    Returns
    -------
    RebuiltRun

    Raises
    ------
    ValueError
        The bars' fingerprint differs from the run's; a window's dates differ
        from its artifact's; a window's test rows differ from its stored
        predictions (the rebuild would score other samples than the run did).
    """
    directory = Path(directory)
    run = read_run(directory)
    settings = run_settings(run, str(directory / RUN_FILE))
    data = run.get("data") or {}
    tickers = list(data.get("tickers") or [])
    # training fingerprinted (and computed on) the bars on its price basis
    basis = PriceBasis.from_dict(data.get("prices"))
    bars = apply_basis(bars, basis, bars.get_column("ticker").unique().sort().to_list())
    fingerprint = bars_fingerprint(bars)
    if fingerprint != data.get("fingerprint"):
        raise ValueError(
            f"the bars differ from the data {directory} was trained on (fingerprint "
            f"{fingerprint[:12]}... vs {str(data.get('fingerprint'))[:12]}...); pass --data-dir "
            "with the run's bars"
        )
    features = build_features(
        bars,
        tickers=tickers,
        market=data.get("market") or MARKET_BENCHMARK,
        sector_map=data.get("sector_map") or None,
        vix_variant=data.get("vix_variant") or "auto",
    )
    dataset = prepare_dataset(
        bars, tickers, settings, start=_iso(data.get("start")), end=_iso(data.get("end")),
        features=features,
    )  # fmt: skip
    splitter = settings.splitter()
    index = dataset.train_set.index
    bounds = splitter.windows(index)
    infos = splitter.split_info(index, calendar=dataset.calendar)
    score_days = dataset.score_set.index.get_column("date").to_numpy().astype("datetime64[D]")
    windows = []
    for k, record in enumerate(run["windows"]):
        model_id = str(record["model_id"])
        artifact = directory / str(record.get("artifact") or f"{MODELS_DIR}/{model_id}")
        metadata = read_metadata(artifact)
        k = int((metadata.get("split") or {}).get("window", k))
        if k >= len(bounds):
            raise ValueError(f"{artifact}: window {k} is not among the {len(bounds)} rebuilt")
        train_start, val_start, test_start, test_end = (str(b) for b in bounds[k])
        split = metadata.get("split") or {}
        if (split.get("train"), split.get("test")) != ([train_start, val_start],
                                                       [test_start, test_end]):  # fmt: skip
            raise ValueError(
                f"{artifact}: trained on {split.get('train')} / tested on {split.get('test')}, "
                f"but the rebuilt window {k} is [{train_start}, {val_start}) / "
                f"[{test_start}, {test_end})"
            )
        lo, hi = np.datetime64(test_start), np.datetime64(test_end)
        test = np.flatnonzero((score_days >= lo) & (score_days < hi))
        _check_test_rows(artifact, dataset.score_set.index[test])
        info = infos[k]
        assert info.validation is not None
        windows.append(RunWindow(model_id, artifact, metadata, info.train, info.validation, test))
    return RebuiltRun(directory, run, settings, dataset, windows)


def _check_test_rows(artifact: Path, index: pl.DataFrame) -> None:
    stored = pl.read_parquet(artifact / PREDICTIONS_FILE, columns=["ticker", "date"])
    rebuilt = index.select("ticker", "date")
    if stored.height != rebuilt.height or not stored.sort("ticker", "date").equals(
        rebuilt.sort("ticker", "date")
    ):
        raise ValueError(
            f"{artifact}: the rebuilt test period has {rebuilt.height} windows but the model "
            f"stored {stored.height} predictions for other (ticker, date) rows; the bars or the "
            "engine's features changed since training"
        )


def check_reproduces(
    artifact: Path, index: pl.DataFrame, scores: np.ndarray, patterns: list[str]
) -> float:
    """Max abs difference between ``scores`` of the rebuilt test rows and the stored predictions.

    Parameters
    ----------
    artifact : Path
        The window's artifact (its ``test_predictions.parquet``).
    index : polars.DataFrame
        ``ticker, date`` of the rebuilt test windows, in the order of ``scores``.
    scores : ndarray, shape (n, n_patterns)
        The reloaded model's confidences on them.
    patterns : list of str

    Raises
    ------
    ValueError
        Above :data:`REPRODUCE_TOLERANCE`: the bars or the engine changed since
        training, so the reloaded model no longer scores what the run scored.
    """
    columns = [p + CONFIDENCE_SUFFIX for p in patterns]
    stored = pl.read_parquet(artifact / PREDICTIONS_FILE, columns=["ticker", "date", *columns])
    joined = (
        index.select("ticker", "date")
        .with_row_index("row")
        .join(stored, on=["ticker", "date"], how="left")
    )
    diff = float(np.abs(joined.sort("row").select(columns).to_numpy() - scores).max())
    if not diff <= REPRODUCE_TOLERANCE:
        raise ValueError(
            f"{artifact}: the reloaded model scores the rebuilt test windows {diff:.3g} away "
            f"from the stored predictions (> {REPRODUCE_TOLERANCE:g}); the bars or the engine "
            "changed since training"
        )
    return diff
