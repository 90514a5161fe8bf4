"""Training runs: features and targets -> sequences -> splits -> models -> predictions.

Formerly: bars -> features -> targets -> sequences -> splits -> models -> predictions.

A run trains one model per split window and scores each model on its own
test period only::

    OUT/run.json               settings, windows, status (complete / interrupted / failed)
    OUT/predictions.parquet    out-of-sample predictions of every finished window
    OUT/models/<model_id>/     one artifact per window (engine.model.artifacts)

Splits (``split="holdout"`` or ``"walk-forward"``) are cut by calendar date on
the training grid (stride 5) by the splitter of :meth:`RunSettings.splitter`,
which carries ``embargo_days`` and counts it on the dataset's bar calendar:
training labels end before the declared validation start, and every training
or validation label ends at least ``embargo_days`` trading days before the
declared test start. A model's ``train_end`` is the last label end date it
learned from or was selected on (training *and* validation labels);
``embargo_end`` is the date ``embargo_days`` trading days later. Every
prediction is dated after its model's ``embargo_end``; this is checked before
anything is written.

Test periods are scored at stride 1, so the predictions cover every trading
day of every test period (what a backtest needs). Each finished window is
written atomically and the predictions file is rewritten after each window,
so an interrupted run keeps the finished windows; ``resume=True`` continues
it (:mod:`engine.model.run_resume`), training only the windows not finished. The pieces of one
window (its fit on the executor, its predictions and test metrics) are in
:mod:`engine.model.run_windows`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from engine.features.build import (
    FeatureResult,
    bars_fingerprint,
    build_features,
    package_versions,
)
from engine.io import iso, write_parquet_atomic
from engine.labels.permutations import DEFAULT_NULL_BLOCK, permute_outcomes
from engine.labels.targets import (
    DEFAULT_HORIZON,
    EVENT_COLUMNS,
    censor_after,
    compute_targets,
)
from engine.model.artifacts import write_model_artifact
from engine.model.min_train import DEFAULT_MIN_TRAIN_SEQUENCES, windows_below_minimum
from engine.model.run_files import (
    MODELS_DIR,
    RUN_PREDICTIONS_FILE,
    finish_run_file,
    write_run_file,
)
from engine.model.run_resume import finished_windows
from engine.model.run_windows import (
    _days,
    _embargo_end,
    _prediction_frame,
    _prepare_out,
    _submit_windows,
    _test_metrics,
)
from engine.model.sequences import SEQUENCE_LENGTH, TRAIN_STRIDE, SequenceSet, build_sequences
from engine.monitoring.reference import training_reference
from engine.splits import Holdout, WalkForward

__all__ = [
    "DEFAULT_MIN_TRAIN_SEQUENCES",
    "RunSettings",
    "TrainDataset",
    "TrainReport",
    "WindowReport",
    "prepare_dataset",
    "train_windows",
]

_VERSIONED = ("tensorflow", "keras", "numpy", "polars", "numba", "arch")

SplitKind = Literal["holdout", "walk-forward"]
#: ``progress(event)``: ``event["kind"]`` is ``"window"``, ``"epoch"`` or ``"window_done"``.
RunProgress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunSettings:
    """Run-level settings (the model's own settings are :class:`engine.model.network.ModelConfig`).

    Attributes
    ----------
    split : {"holdout", "walk-forward"}
    horizon : int
        Label horizon in trading days.
    sequence_length, train_stride : int
        Window length and training/validation stride (test periods use stride 1).
    embargo_days : int
        Trading days between the last label a model used and its first prediction.
    train_months, validation_months, test_months, step_months : int
        Walk-forward window lengths (SPEC: 36 / 12 / 12, step 12).
    validation_fraction, test_fraction : float
        Holdout shares of the calendar.
    seed : int
        Window ``k`` is trained with seed ``seed + k``.
    deterministic : bool
        Deterministic TensorFlow ops (identical weights on CPU for a seed).
    null_labels : bool
        Train on block-permuted labels (a null run: it should show no skill).
    null_block : int
        Block length in dates for ``null_labels``.
    min_train_sequences : int
        Walk-forward windows whose training fold holds fewer sequences are
        skipped, not trained, and listed in ``run.json`` (``skipped_windows``).
        0 here keeps every window; ``engine train`` and ``engine pipeline``
        default to :data:`DEFAULT_MIN_TRAIN_SEQUENCES` (``--min-train-sequences``).
    """

    split: SplitKind = "walk-forward"
    horizon: int = DEFAULT_HORIZON
    sequence_length: int = SEQUENCE_LENGTH
    train_stride: int = TRAIN_STRIDE
    embargo_days: int = DEFAULT_HORIZON
    train_months: int = 36
    validation_months: int = 12
    test_months: int = 12
    step_months: int = 12
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    deterministic: bool = False
    null_labels: bool = False
    null_block: int = DEFAULT_NULL_BLOCK
    min_train_sequences: int = 0

    def __post_init__(self) -> None:
        if self.split not in ("holdout", "walk-forward"):
            raise ValueError(f"split must be 'holdout' or 'walk-forward', got {self.split!r}")
        if self.embargo_days < 0:
            raise ValueError(f"embargo_days must be >= 0, got {self.embargo_days}")
        if self.min_train_sequences < 0:
            raise ValueError(f"--min-train-sequences must be >= 0, got {self.min_train_sequences}")

    def splitter(self) -> Holdout | WalkForward:
        """The date splitter these settings describe, with their ``embargo_days``."""
        if self.split == "holdout":
            return Holdout(
                self.validation_fraction, self.test_fraction, embargo_days=self.embargo_days
            )
        return WalkForward(
            self.train_months,
            self.validation_months,
            self.test_months,
            self.step_months,
            embargo_days=self.embargo_days,
        )


@dataclass
class TrainDataset:
    """Sequences ready for training and scoring.

    Attributes
    ----------
    train_set : SequenceSet
        Stride ``train_stride``: training and validation samples.
    score_set : SequenceSet
        Stride 1: test samples (every trading day).
    calendar : ndarray of datetime64[D]
        Every date of the feature frame (trading days), for the embargo.
    info : dict
        Provenance for the artifacts (fingerprint, feature manifest, tickers).
    """

    train_set: SequenceSet
    score_set: SequenceSet
    calendar: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class WindowReport:
    """One trained window."""

    model_id: str
    train_start: str
    validation_start: str
    test_start: str
    test_end: str
    train_end: str
    embargo_end: str
    n_train: int
    n_validation: int
    n_test: int
    embargo_dropped: int
    epochs: int
    best_epoch: int
    seconds: float
    test_auc: dict[str, float | None]
    artifact: str


@dataclass
class TrainReport:
    """What :func:`run_train_job` / :func:`train_windows` produced."""

    out: Path
    status: str
    settings: RunSettings
    config: dict[str, Any]
    parameters: dict[str, int]
    windows: list[WindowReport]
    planned_windows: int
    predictions: Path | None
    seconds: float
    data: dict[str, Any]
    skipped_windows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "out": str(self.out),
            "status": self.status,
            "settings": asdict(self.settings),
            "config": self.config,
            "parameters": self.parameters,
            "planned_windows": self.planned_windows,
            "windows": [asdict(w) for w in self.windows],
            "predictions": str(self.predictions) if self.predictions else None,
            "seconds": round(self.seconds, 3),
            "data": self.data,
            "skipped_windows": self.skipped_windows,
        }


def prepare_dataset(
    bars: pl.DataFrame,
    tickers: list[str],
    settings: RunSettings,
    *,
    start: date | None = None,
    end: date | None = None,
    features: FeatureResult | None = None,
    targets: pl.DataFrame | None = None,
) -> TrainDataset:
    """Features, targets and sequences for ``tickers`` (benchmarks read from ``bars``).

    Features and targets are computed on the whole history; ``start`` /
    ``end`` then keep the samples whose window ends in ``[start, end]``, and
    a label whose outcome window reaches past ``end`` is set to null
    (:func:`engine.labels.targets.censor_after`): nothing after ``end`` is
    learned from or scored.

    Parameters
    ----------
    bars : pl.DataFrame
        The tickers' bars and their benchmarks, full history.
    tickers : list of str
    settings : RunSettings
    start, end : date, optional
    features : FeatureResult, optional
        :func:`engine.features.build.build_features` of ``bars`` for
        ``tickers``, when the caller has it already (the pipeline); computed
        here otherwise.
    targets : pl.DataFrame, optional
        :func:`engine.labels.targets.compute_targets` of ``bars`` for
        ``tickers`` with ``settings.horizon`` (event columns allowed, they
        are dropped); computed here otherwise.
    """
    result = features if features is not None else build_features(bars, tickers=tickers)
    if targets is None:
        targets = compute_targets(
            bars, horizon=settings.horizon, tickers=tickers, features=result.frame
        )
    targets = targets.drop([c for c in EVENT_COLUMNS if c in targets.columns])
    features = result.frame
    if start is not None or end is not None:
        lo = start or date.min
        hi = end or date.max
        features = features.filter(pl.col("date").is_between(lo, hi))
        targets = censor_after(targets.filter(pl.col("date").is_between(lo, hi)), end)
    if settings.null_labels:
        patterns = [c for c in targets.columns if c not in ("ticker", "date", "t1")]
        targets = permute_outcomes(targets, patterns, block=settings.null_block, seed=settings.seed)
    if features.height == 0:
        raise ValueError(f"no feature rows for {tickers} between {start} and {end}")
    train_set = build_sequences(
        features, targets, length=settings.sequence_length, stride=settings.train_stride
    )
    score_set = build_sequences(features, targets, length=settings.sequence_length, stride=1)
    calendar = np.unique(features.get_column("date").to_numpy().astype("datetime64[D]"))
    manifest = result.manifest.to_dict() if result.manifest else {}
    info = {
        "tickers": tickers,
        "fingerprint": bars_fingerprint(bars),
        "vix_variant": manifest.get("vix_variant"),
        "market": manifest.get("market"),
        "sector_map": manifest.get("sector_map"),
        "start": iso(start),
        "end": iso(end),
        "sequences_train_grid": len(train_set),
        "sequences_scored": len(score_set),
        "dropped_windows": train_set.n_dropped,
        "null_labels": settings.null_labels,
    }
    return TrainDataset(train_set=train_set, score_set=score_set, calendar=calendar, info=info)


def train_windows(
    dataset: TrainDataset,
    out: str | Path,
    *,
    settings: RunSettings | None = None,
    config: Any = None,
    splitter: Any = None,
    overwrite: bool = False,
    progress: RunProgress | None = None,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    resume: bool = False,
) -> TrainReport:
    """Train one model per split window and write the run directory.

    Parameters
    ----------
    dataset : TrainDataset
        From :func:`prepare_dataset` (or built directly from sequences).
    out : path
        Run directory; must be new or empty (or a previous run with ``overwrite``).
    settings : RunSettings, optional
    config : engine.model.network.ModelConfig or engine.model.gbm.GBMConfig, optional
        The model kind and its settings (:mod:`engine.model.kinds`); default
        the LSTM's ``ModelConfig()``.
    splitter : Holdout or WalkForward, optional
        Default ``settings.splitter()``; its ``embargo_days`` must equal
        ``settings.embargo_days`` (the run records the latter).
    overwrite : bool
        Replace a previous run at ``out``.
    progress : callable, optional
        Receives ``{"kind": "window", ...}``, ``{"kind": "epoch", ...}`` and
        ``{"kind": "window_done", ...}`` events (no epoch events when windows
        run in worker processes).
    backend : {"local", "ray"}
        Where the windows are fitted (:mod:`engine.parallel`). ``"local"``
        with one worker fits them here, one after the other.
    workers : int
        Windows fitted at the same time, each with ``cores / workers``
        TensorFlow threads; every window is a pure task
        (:class:`engine.model.fit_tasks.WindowFitTask`) with the seed it has
        here, so the models and predictions do not depend on the backend.
        Artifacts and predictions are still written window by window, in order.
    address : str, optional
        Ray cluster address (``backend="ray"``).
    resume : bool
        Continue the ``"interrupted"`` or ``"failed"`` run at ``out``: its
        finished windows (artifacts verified by checksum, their prediction
        rows) are kept and only the others are trained. Refused, naming the
        difference, when that run was made with other settings, model
        configuration, splitter or data (:mod:`engine.model.run_resume`).

    Returns
    -------
    TrainReport
        ``status`` is ``"complete"``; on Ctrl-C the run file says
        ``"interrupted"`` and ``KeyboardInterrupt`` propagates after the
        finished windows are safely on disk. Any other error is recorded as
        ``"failed"`` with the error, and propagates.
    """
    from engine.model.kinds import window_fitter
    from engine.model.network import ModelConfig

    settings = settings or RunSettings()
    config = config or ModelConfig()
    splitter = splitter if splitter is not None else settings.splitter()
    out = Path(out)
    began = time.perf_counter()
    train_set, score_set = dataset.train_set, dataset.score_set
    if train_set.y is None or score_set.y is None:
        raise ValueError("the dataset has no targets; build the sequences with targets")
    if getattr(splitter, "embargo_days", None) != settings.embargo_days:
        raise ValueError(
            f"splitter {splitter!r}: embargo_days={getattr(splitter, 'embargo_days', None)} "
            f"differs from settings.embargo_days={settings.embargo_days}; the run records the "
            "settings' embargo, so build the splitter with embargo_days=settings.embargo_days"
        )
    patterns = train_set.pattern_names
    fitter = window_fitter(config, train_set.feature_names, patterns)
    index = train_set.index
    windows = splitter.windows(index)
    # purge and embargo against each window's declared bounds, on the bar calendar
    infos = splitter.split_info(index, calendar=dataset.calendar)
    skip = windows_below_minimum(splitter, infos, windows, settings.min_train_sequences)
    kept = None
    if resume:
        kept = finished_windows(
            out, settings=asdict(settings), config=config.to_dict(), splitter=repr(splitter),
            data=dataset.info, planned_windows=len(windows),
        )  # fmt: skip
    else:
        _prepare_out(out, overwrite, resumable=True)

    t1_all = _days(index.get_column("t1"))
    score_days = _days(score_set.index.get_column("date"))
    versions = package_versions() | package_versions(_VERSIONED)
    run: dict[str, Any] = {
        "status": "running",
        "started": datetime.now().isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "config": config.to_dict(),
        **fitter.metadata,
        "splitter": repr(splitter),
        "data": dataset.info,
        "feature_names": list(train_set.feature_names),
        "pattern_names": list(patterns),
        "planned_windows": len(windows),
        "skipped_windows": list(skip.values()),
        "windows": [],
        "versions": versions,
    }
    reports: list[WindowReport] = []
    frames: list[pl.DataFrame] = []
    predictions_path: Path | None = None
    parameters: dict[str, int] = {}
    done: set[str] = set()
    if kept is not None:
        run["started"] = kept.run.get("started", run["started"])
        now = datetime.now().isoformat(timespec="seconds")
        run["resumed"] = [*kept.run.get("resumed", []), now]
        run["windows"] = kept.windows
        parameters = kept.run.get("parameters", {})
        if "parameters" in kept.run:
            run["parameters"] = parameters
        reports = [WindowReport(**w) for w in kept.windows]
        frames = [kept.predictions] if kept.predictions is not None else []
        done = kept.model_ids
        if frames:
            predictions_path = out / RUN_PREDICTIONS_FILE
    write_run_file(out, run)
    prefix = "holdout" if isinstance(splitter, Holdout) else "wf"
    # windows a resumed run finished already are neither fitted nor written again
    finished = {k: None for k in range(len(windows)) if f"{prefix}{k:02d}" in done}
    fits = None
    try:
        if (backend != "local" or workers > 1) and len(skip | finished) < len(windows):
            fits = _submit_windows(dataset, infos, windows, skip | finished, config, settings,
                                   backend, workers, address)  # fmt: skip
            run["execution"] = {"backend": backend, "workers": workers, "threads": fits.threads}
            write_run_file(out, run)
        for k, (info, bounds) in enumerate(zip(infos, windows, strict=True)):
            train_start, val_start, test_start, test_end = bounds
            model_id = f"{prefix}{k:02d}"
            if k in skip:
                if progress:
                    progress({"kind": "window_skipped", "index": k, "total": len(windows),
                              **skip[k]})  # fmt: skip
                continue
            if k in finished:
                continue
            keep_train, keep_val = info.train, info.validation
            assert keep_val is not None and info.validation_embargoed is not None  # three-way
            # samples that passed the purge but not the embargo
            dropped = info.embargoed.size + info.validation_embargoed.size
            test_rows = np.flatnonzero((score_days >= test_start) & (score_days < test_end))
            if test_rows.size == 0:
                raise ValueError(
                    f"window {model_id} ({test_start} test start) has no test samples to score; "
                    "use more data"
                )
            if progress:
                progress({"kind": "window", "model_id": model_id, "index": k,
                          "total": len(windows), "train_start": str(train_start),
                          "test_start": str(test_start), "test_end": str(test_end),
                          "n_train": int(keep_train.size), "n_validation": int(keep_val.size),
                          "n_test": int(test_rows.size)})  # fmt: skip

            def on_epoch(row: dict[str, Any], model_id: str = model_id) -> None:
                if progress:
                    progress({"kind": "epoch", "model_id": model_id, "epochs": config.epochs,
                              **row})  # fmt: skip

            confidence = None
            if fits is not None:
                fit, confidence = fits.get(k)  # fitted in a worker, scored there too
            else:
                fit = fitter.fit(
                    train_set.X[keep_train], train_set.y[keep_train],
                    train_set.X[keep_val], train_set.y[keep_val],
                    config, seed=settings.seed + k, deterministic=settings.deterministic,
                    progress=on_epoch,
                )  # fmt: skip
            parameters = fitter.parameters(fit)
            used = np.concatenate([keep_train, keep_val])
            train_end = t1_all[used].max()
            embargo_end = _embargo_end(dataset.calendar, train_end, settings.embargo_days)
            if score_days[test_rows].min() <= embargo_end:
                raise AssertionError(  # a bug, never a user error
                    f"window {model_id}: a prediction dated {score_days[test_rows].min()} is "
                    f"not after embargo end {embargo_end}"
                )
            if confidence is None:
                confidence = fitter.predict(fit, score_set.X[test_rows])
            window_predictions = _prediction_frame(
                score_set, test_rows, confidence, model_id, train_end, embargo_end
            )
            metrics = _test_metrics(window_predictions, patterns)
            metadata = {
                "model_id": model_id,
                "feature_names": list(train_set.feature_names),
                "pattern_names": list(patterns),
                "sequence_length": int(train_set.X.shape[1]),
                "horizon": settings.horizon,
                "normalization": {"mean": fit.mean.tolist(), "variance": fit.variance.tolist()},
                "data": dataset.info,
                "split": {
                    "kind": settings.split,
                    "splitter": repr(splitter),
                    "window": k,
                    "train": [str(train_start), str(val_start)],
                    "validation": [str(val_start), str(test_start)],
                    "test": [str(test_start), str(test_end)],
                    "bounds": "half-open [start, end)",
                    "train_end": str(train_end),
                    "embargo_days": settings.embargo_days,
                    "embargo_end": str(embargo_end),
                    "n_train": int(keep_train.size),
                    "n_validation": int(keep_val.size),
                    "n_test": int(test_rows.size),
                    "embargo_dropped": int(dropped),
                },
                "config": config.to_dict(),
                **fitter.metadata,
                "settings": asdict(settings),
                "seed": settings.seed + k,
                "deterministic": settings.deterministic,
                "parameters": parameters,
                "training": {
                    "epochs": fit.history.height,
                    "best_epoch": fit.best_epoch,
                    "stopped_early": fit.stopped_early,
                    "seconds": round(fit.seconds, 3),
                    **fitter.training(fit),
                },
                "metrics": metrics,
                # drift monitoring: training-fold features, validation-fold confidence
                "reference": training_reference(
                    partial(fitter.predict, fit),
                    train_set.X[keep_train],
                    train_set.X[keep_val],
                    train_set.y[keep_val],
                    train_set.feature_names,
                    patterns,
                ),
                "versions": versions,
            }
            artifact = write_model_artifact(
                out / MODELS_DIR / model_id,
                model=fit.model,
                metadata=metadata,
                history=fit.history,
                predictions=window_predictions,
                overwrite=resume,  # an artifact written just before the interruption
            )
            frames.append(window_predictions)
            predictions_path = write_parquet_atomic(pl.concat(frames), out / RUN_PREDICTIONS_FILE)
            report = WindowReport(
                model_id=model_id,
                train_start=str(train_start),
                validation_start=str(val_start),
                test_start=str(test_start),
                test_end=str(test_end),
                train_end=str(train_end),
                embargo_end=str(embargo_end),
                n_train=int(keep_train.size),
                n_validation=int(keep_val.size),
                n_test=int(test_rows.size),
                embargo_dropped=int(dropped),
                epochs=fit.history.height,
                best_epoch=fit.best_epoch,
                seconds=round(fit.seconds, 3),
                test_auc={p: (metrics[p]["auc"] if p in metrics else None) for p in patterns},
                artifact=str(artifact.relative_to(out)),
            )
            reports.append(report)
            run["windows"].append(asdict(report))
            run["parameters"] = parameters
            write_run_file(out, run)
            if progress:
                progress({"kind": "window_done", **asdict(report)})
    except BaseException as exc:
        finish_run_file(out, run, exc)
        raise
    finally:
        if fits is not None:
            fits.close()
    run["seconds"] = round(time.perf_counter() - began, 3)
    finish_run_file(out, run)
    return TrainReport(
        out=out,
        status="complete",
        settings=settings,
        config=config.to_dict(),
        parameters=parameters,
        windows=reports,
        planned_windows=len(windows),
        predictions=predictions_path,
        seconds=time.perf_counter() - began,
        data=dataset.info,
        skipped_windows=list(skip.values()),
    )
