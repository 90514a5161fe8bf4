"""The ``engine ensemble`` job: two or more runs in, one run directory of their ensemble out.

For every window the members share, the job

1. rebuilds the window's validation samples from the run's bars
   (:func:`engine.model.reload.rebuild_run`, which checks the rebuild is the
   run: same bars, window dates and test rows);
2. scores them with every member's model (any kind,
   :func:`engine.model.kinds.load_predictor`), after checking that the
   reloaded model reproduces its stored test predictions on the rebuilt
   test windows (:func:`engine.model.reload.check_reproduces`);
3. per head, fits the stack on those validation rows (``--method stack``) or
   takes the mean (:mod:`engine.model.ensemble`);
4. combines the members' **stored** out-of-sample test predictions with
   those weights: the ensemble scores exactly the rows its members scored.

The output is a run directory in the training-run format (``run.json``,
``predictions.parquet``, ``models/<model_id>/`` with ``metadata.json``
checksums, ``ensemble.json``, ``history.csv`` and
``test_predictions.parquet``), so ``engine validate``, ``engine backtest``,
``engine compare`` and ``engine explain`` take it. ``history.csv`` holds one
row: the masked log loss on the validation fold the weights were fitted on
(``train_loss``; the same value as ``val_loss``, since an ensemble has no
epochs and no separate selection fold), with each member's beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.features.build import package_versions
from engine.io import write_parquet_atomic
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.artifacts import PREDICTIONS_FILE, read_metadata, write_model_artifact
from engine.model.ensemble import (
    METHODS,
    MIN_STACK_EVENTS,
    MODEL_KIND,
    EnsembleError,
    EnsembleModel,
    check_members,
    fit_stack,
    masked_log_loss,
)
from engine.model.kinds import load_predictor
from engine.model.reload import RunWindow, check_reproduces, read_run, rebuild_run
from engine.model.run_files import (
    MODELS_DIR,
    RUN_PREDICTIONS_FILE,
    check_predictions,
    finish_run_file,
    write_run_file,
)
from engine.model.run_windows import _prepare_out, _test_metrics
from export.held_out import training_bars

__all__ = ["EnsembleReport", "run_ensemble_job"]

_KEYS = ("ticker", "date", "t1")


@dataclass
class EnsembleReport:
    """What :func:`run_ensemble_job` wrote."""

    out: Path
    method: str
    members: list[str]
    windows: list[dict[str, Any]]
    predictions: Path
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "out": str(self.out),
            "method": self.method,
            "members": self.members,
            "windows": self.windows,
            "predictions": str(self.predictions),
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def _member_test(artifact: Path) -> pl.DataFrame:
    return pl.read_parquet(artifact / PREDICTIONS_FILE).sort("ticker", "date")


def _window(
    k: int,
    windows: dict[str, RunWindow],
    names: list[str],
    patterns: list[str],
    method: str,
    dataset: Any,
) -> tuple[EnsembleModel, pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Fit one window's ensemble; return it, its test predictions, history and record."""
    rows = windows[names[0]].validation
    X_val = dataset.train_set.X[rows]
    y_val = dataset.train_set.y[rows]
    test_rows = windows[names[0]].test
    X_test, test_index = dataset.score_set.X[test_rows], dataset.score_set.index[test_rows]
    predictors, val_scores, tests, members = [], [], [], []
    for name in names:
        w = windows[name]
        predict, metadata = load_predictor(w.artifact)
        # the rebuilt samples are the member's: it reproduces its stored test predictions
        check_reproduces(w.artifact, test_index, predict(X_test), patterns)
        predictors.append(predict)
        val_scores.append(predict(X_val))
        tests.append(_member_test(w.artifact))
        members.append({"run": name, "artifact": str(w.artifact.resolve()),
                        "model_kind": metadata.get("model_kind", "lstm"),
                        "files": metadata.get("files", {})})  # fmt: skip
    for name, test in zip(names[1:], tests[1:], strict=True):
        if not test.select(*_KEYS).equals(tests[0].select(*_KEYS)):
            raise EnsembleError(f"{name} window {windows[name].model_id} scored other rows "
                                f"than {names[0]}")  # fmt: skip
    coefficients: dict[str, list[float] | None] = {}
    heads: dict[str, Any] = {}
    for j, pattern in enumerate(patterns):
        labelled = ~np.isnan(y_val[:, j])
        y = y_val[labelled, j]
        info: dict[str, Any] = {"validation_events": int(labelled.sum())}
        coefficients[pattern] = None
        if method == "stack":
            if y.size >= MIN_STACK_EVENTS and 0 < y.sum() < y.size:
                p = np.column_stack([s[labelled, j] for s in val_scores])
                coef = fit_stack(p, y)
                coefficients[pattern] = coef.tolist()
                info["intercept"] = float(coef[0])
                info["weights"] = dict(zip(names, coef[1:].tolist(), strict=True))
            else:
                info["fallback"] = (f"mean: {y.size} labelled validation rows (fewer than "
                                    f"{MIN_STACK_EVENTS} or one outcome)")  # fmt: skip
        heads[pattern] = info
    model = EnsembleModel(predictors, method, coefficients, patterns,
                          {"members": members, "window": k})  # fmt: skip
    ensemble_val = model.combine(val_scores)
    member_conf = [t.select([p + CONFIDENCE_SUFFIX for p in patterns]).to_numpy() for t in tests]
    conf = model.combine(member_conf)
    first = tests[0]
    train_end = max(t.get_column("train_end").max() for t in tests)
    embargo_end = max(t.get_column("embargo_end").max() for t in tests)
    predictions = first.select(*_KEYS).with_columns(
        pl.lit(windows[names[0]].model_id).alias("model_id"),
        pl.lit(train_end).alias("train_end"),
        pl.lit(embargo_end).alias("embargo_end"),
        *(pl.Series(p + CONFIDENCE_SUFFIX, conf[:, j]) for j, p in enumerate(patterns)),
        *(first.get_column(p) for p in patterns),
    )
    loss = masked_log_loss(y_val, ensemble_val)
    history = pl.DataFrame(
        {"epoch": [1], "train_loss": [loss], "val_loss": [loss], "gap": [0.0],
         **{f"{name}_val_loss": [masked_log_loss(y_val, s)]
            for name, s in zip(names, val_scores, strict=True)}}
    )  # fmt: skip
    record = {"heads": heads, "validation_rows": int(rows.size), "validation_loss": loss,
              "train_end": str(train_end), "embargo_end": str(embargo_end)}  # fmt: skip
    return model, predictions, history, record


def _write_window(
    k: int,
    window: RunWindow,
    records: dict[str, dict[str, Any]],
    patterns: list[str],
    method: str,
    base: Any,
    out: Path,
    versions: dict[str, Any],
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Fit window ``k``'s ensemble, write its artifact; return its predictions and summary."""
    names = list(records)
    member_windows = {names[0]: window}
    for name in names[1:]:
        record = records[name]["windows"][k]
        artifact = Path(name) / str(record.get("artifact") or f"{MODELS_DIR}/{window.model_id}")
        member_windows[name] = RunWindow(window.model_id, artifact, {}, window.train,
                                         window.validation, window.test)  # fmt: skip
    model, predictions, history, record = _window(
        k, member_windows, names, patterns, method, base.dataset
    )
    metrics = _test_metrics(predictions, tuple(patterns))
    keep = ("feature_names", "sequence_length", "horizon", "data", "split", "settings")
    metadata = {
        **{key: window.metadata[key] for key in keep},
        "model_id": window.model_id,
        "model_kind": MODEL_KIND,
        "pattern_names": patterns,
        "ensemble": {"method": method, "members": names},
        "training": record,
        "metrics": metrics,
        "versions": versions,
    }
    metadata["split"] = {**metadata["split"], "train_end": record["train_end"],
                         "embargo_end": record["embargo_end"]}  # fmt: skip
    artifact = write_model_artifact(out / MODELS_DIR / window.model_id, model=model,
                                    metadata=metadata, history=history,
                                    predictions=predictions)  # fmt: skip
    split = window.metadata["split"]
    summary = {"model_id": window.model_id, "test_start": split["test"][0],
               "test_end": split["test"][1], "train_end": record["train_end"],
               "embargo_end": record["embargo_end"], "n_test": predictions.height,
               "validation_loss": record["validation_loss"], "heads": record["heads"],
               "test_auc": {p: metrics.get(p, {}).get("auc") for p in patterns},
               "artifact": str(artifact.relative_to(out))}  # fmt: skip
    return predictions, summary


def _check_out_apart(out: Path, names: list[str]) -> None:
    """Refuse an ``out`` that is a member's directory, inside one or above one.

    ``--overwrite`` empties ``out`` before the members' models are read: a
    member there would be deleted. Compared on resolved paths, so no
    spelling (relative, absolute, ``..``, a link) gets past.
    """
    target = out.resolve()
    for name in names:
        member = Path(name).resolve()
        if target == member:
            where = "is"
        elif member in target.parents:
            where = "lies inside"
        elif target in member.parents:
            where = "contains"
        else:
            continue
        raise EnsembleError(
            f"--out {out} {where} the member run {name}; writing the ensemble there would "
            "overwrite it: choose an --out apart from every member"
        )


def run_ensemble_job(
    runs: list[Path],
    out: Path,
    *,
    method: str = "mean",
    data_dir: Path | None = None,
    overwrite: bool = False,
    progress: Any = None,
) -> EnsembleReport:
    """Combine runs trained on the same windows into one ensemble run.

    Parameters
    ----------
    runs : list of Path
        Two or more training run directories (any model kinds).
    out : Path
        The ensemble's run directory (new, empty, or an earlier run with ``overwrite``).
    method : {"mean", "stack"}
    data_dir : Path, optional
        The runs' bars (default: the data directory recorded by the first run).
    overwrite : bool
    progress : callable, optional
        Receives ``{"kind": "window", "model_id": ..., "index": k, "total": n}``.

    Returns
    -------
    EnsembleReport

    Raises
    ------
    ValueError
        An unknown method; runs that cannot be combined
        (:class:`engine.model.ensemble.EnsembleError`); bars that are not the
        runs' (checked by fingerprint, window dates and test rows).
        ``out`` is a member's directory, inside one or above one.
    FileNotFoundError, FileExistsError
        A missing run; ``out`` exists and ``overwrite`` is false.
    """
    began = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown ensemble method {method!r}; choose one of {', '.join(METHODS)}")
    names = [str(Path(r)) for r in runs]
    if len(names) < 2:
        raise EnsembleError(f"an ensemble needs two or more different runs, got {names}")
    seen: dict[Path, str] = {}
    for name in names:
        # the same directory under two spellings (relative, absolute, `..`, a link) is one run
        resolved = Path(name).resolve()
        if resolved in seen:
            raise EnsembleError(f"an ensemble needs two or more different runs: {seen[resolved]} "
                                f"and {name} are the same run")  # fmt: skip
        seen[resolved] = name
    out = Path(out)
    _check_out_apart(out, names)
    records = {name: read_run(Path(name)) for name in names}
    patterns = check_members(records)
    first = records[names[0]]
    first_artifact = Path(names[0]) / first["windows"][0]["artifact"]
    bars = training_bars(read_metadata(first_artifact), data_dir)
    # the members share bars, settings and windows (check_members), so one rebuild serves all
    base = rebuild_run(Path(names[0]), bars)
    _prepare_out(out, overwrite)
    run: dict[str, Any] = {
        "status": "running",
        "started": datetime.now().isoformat(timespec="seconds"),
        "model_kind": MODEL_KIND,
        "ensemble": {"method": method, "members": names},
        "settings": first.get("settings"),
        "data": first.get("data"),
        "feature_names": first["feature_names"],
        "pattern_names": patterns,
        "planned_windows": len(base.windows),
        "windows": [],
        "versions": package_versions(),
    }
    write_run_file(out, run)
    frames, reports = [], []
    try:
        for k, window in enumerate(base.windows):
            if progress:
                progress({"kind": "window", "model_id": window.model_id, "index": k,
                          "total": len(base.windows)})  # fmt: skip
            predictions, summary = _write_window(k, window, records, patterns, method, base,
                                                 out, run["versions"])  # fmt: skip
            frames.append(predictions)
            path = write_parquet_atomic(pl.concat(frames), out / RUN_PREDICTIONS_FILE)
            reports.append(summary)
            run["windows"].append(summary)
            write_run_file(out, run)
        check_predictions(pl.read_parquet(path), patterns, source=str(path))
    except BaseException as exc:  # the predictions written so far are a partial run's
        finish_run_file(out, run, exc)
        raise
    finish_run_file(out, run)
    return EnsembleReport(out, method, names, reports, path, time.perf_counter() - began)
