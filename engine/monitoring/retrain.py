"""The champion/challenger retrain loop, on a dataset already built.

:func:`challenge` does steps 2 to 6 of ``engine retrain`` (the job does step
1, the decision to retrain, and loads the data):

2. **Evaluation window**: the most recent ``eval_months`` of matured
   labels. It is the test period of one walk-forward window
   (:func:`challenger_splitter`, the champion's train / validation months,
   purge and embargo) whose data end on the last date with a matured label;
   the champion must not have trained on it (its ``embargo_end`` must fall
   before the window), else the loop stops and says so.
3. **Challenger**: the champion's configuration trained on that window's
   training and validation periods (:func:`engine.model.runs.train_windows`),
   exported to ONNX with its parity check; a failed parity stops the loop
   (nothing is promoted whose export parity failed).
4. **Evaluation**: both ONNX models score the evaluation rows;
   :func:`engine.monitoring.challenger.compare_models` gives the paired
   date-block bootstrap of the AUC difference per head.
5. **Decision**: the rule of :mod:`engine.monitoring.challenger`. The
   challenger is registered (alias ``challenger``); when it wins, the
   ``champion`` alias moves to that very version, the one evaluated.
6. **Evidence**: everything goes to the caller's MLflow run.

``refit``: after a promotion, :func:`refit_latest` trains a copy through the
latest matured label and registers it as a new version linked to the
evaluated one, without moving any alias.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.runs import RunSettings, TrainDataset, TrainReport, train_windows
from engine.model.sequences import SequenceSet
from engine.monitoring.challenger import Comparison, compare_models
from engine.monitoring.drift import months_before
from engine.splits import WalkForward

__all__ = [
    "Challenge",
    "FirstWindow",
    "challenge",
    "challenger_splitter",
    "challenger_start",
    "evaluation_rows",
    "matured_end",
    "record_challenge",
    "record_refit",
    "refit_latest",
    "since",
]


class FirstWindow:
    """A three-way splitter reduced to its first window (the one the retrain loop trains).

    Delegates ``windows`` and ``split_info`` to the wrapped splitter and
    keeps the first entry, so the purge, the embargo and the leakage check
    are the splitter's own.
    """

    def __init__(self, splitter: Any) -> None:
        self.splitter = splitter
        self.embargo_days = splitter.embargo_days

    def windows(self, *args: Any, **kwargs: Any) -> list[Any]:
        """The wrapped splitter's first window."""
        return self.splitter.windows(*args, **kwargs)[:1]

    def split_info(self, *args: Any, **kwargs: Any) -> list[Any]:
        """The wrapped splitter's first split."""
        return self.splitter.split_info(*args, **kwargs)[:1]

    def __repr__(self) -> str:
        return f"FirstWindow({self.splitter!r})"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = path.write_bytes(b"abc")
    >>> file_sha256(path)[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def challenger_splitter(settings: RunSettings, eval_months: int) -> FirstWindow:
    """One walk-forward window: the champion's train / validation months, then ``eval_months``.

    Its test period may run past the data (``partial_test``): it ends with
    the last matured label.
    """
    return FirstWindow(
        WalkForward(
            settings.train_months,
            settings.validation_months,
            eval_months,
            eval_months,
            partial_test=True,
            embargo_days=settings.embargo_days,
        )
    )


def matured_end(dates: np.ndarray, t1: np.ndarray, latest_bar: date) -> date:
    """The last sample date whose label has matured (``t1 <= latest_bar``).

    Examples
    --------
    >>> d = np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[D]")
    >>> t1 = np.array(["2020-01-08", "2020-01-09", "NaT"], dtype="datetime64[D]")
    >>> matured_end(d, t1, date(2020, 1, 9))
    datetime.date(2020, 1, 2)
    """
    d = np.asarray(dates).astype("datetime64[D]")
    t = np.asarray(t1).astype("datetime64[D]")
    ok = ~np.isnat(t) & (t <= np.datetime64(latest_bar, "D"))
    if not ok.any():
        raise ValueError(f"no label has matured by {latest_bar}; nothing to evaluate on")
    return d[ok].max().astype(date)


def challenger_start(end: date, settings: RunSettings, eval_months: int) -> date:
    """First sample date of the challenger's window: train + validation + eval months before end.

    Examples
    --------
    >>> challenger_start(date(2018, 12, 21), RunSettings(), 6)
    datetime.date(2014, 6, 22)
    """
    months = settings.train_months + settings.validation_months + eval_months
    return months_before(end, months) + timedelta(days=1)


def _rows_since(seqs: SequenceSet, day: date) -> SequenceSet:
    return _rows(seqs, seqs.index.get_column("date").to_numpy() >= np.datetime64(day, "D"))


def _rows(seqs: SequenceSet, wanted: np.ndarray) -> SequenceSet:
    keep = np.flatnonzero(wanted)
    return SequenceSet(
        X=seqs.X[keep],
        y=None if seqs.y is None else seqs.y[keep],
        index=seqs.index[keep],
        feature_names=seqs.feature_names,
        pattern_names=seqs.pattern_names,
        dropped=seqs.dropped,
    )


def since(dataset: TrainDataset, day: date) -> TrainDataset:
    """The samples dated on or after ``day`` (windows keep their earlier rows).

    Build the dataset from earlier features, then cut here: the first
    sample is then on ``day`` (or the next grid date), not 20 rows later,
    so the walk-forward window starts where it was asked to.
    """
    info = {**dataset.info, "start": day.isoformat()}
    return TrainDataset(
        train_set=_rows_since(dataset.train_set, day),
        score_set=_rows_since(dataset.score_set, day),
        calendar=dataset.calendar,
        info=info,
    )


def until(dataset: TrainDataset, day: date) -> TrainDataset:
    """The samples dated on or before ``day``, their labels as they were built.

    Build the dataset through the latest bar, then cut here at
    :func:`matured_end`: a label is then censored only when its outcome
    reaches past the latest bar, not past ``day`` (which would drop the
    freshest matured labels of the evaluation window).
    """
    last = np.datetime64(day, "D")

    def cut(seqs: SequenceSet) -> SequenceSet:
        return _rows(seqs, seqs.index.get_column("date").to_numpy() <= last)

    calendar = np.asarray(dataset.calendar).astype("datetime64[D]")
    return TrainDataset(
        train_set=cut(dataset.train_set),
        score_set=cut(dataset.score_set),
        calendar=calendar[calendar <= last],
        info={**dataset.info, "end": day.isoformat()},
    )


def evaluation_dataset(
    bars: Any,
    tickers: list[str],
    settings: RunSettings,
    *,
    features: Any,
    targets: Any,
    latest: date,
    eval_months: int,
    lead_days: int = 60,
) -> tuple[TrainDataset, date]:
    """The samples of the challenger's window and evaluation window, and the window's end.

    The end is :func:`matured_end`, the last date with a matured label.
    Labels are censored at ``latest`` (the latest bar), not at that end:
    every label whose outcome is known by the latest bar is evaluated.
    ``lead_days`` of earlier features let the first sample start on time.
    """
    from engine.model.runs import prepare_dataset

    eval_end = matured_end(
        targets.get_column("date").to_numpy(), targets.get_column("t1").to_numpy(), latest
    )
    start = challenger_start(eval_end, settings, eval_months)
    dataset = prepare_dataset(
        bars,
        tickers,
        settings,
        start=start - timedelta(days=lead_days),
        end=latest,
        features=features,
        targets=targets,
    )
    return until(since(dataset, start), eval_end), eval_end


def evaluation_rows(
    dataset: TrainDataset, settings: RunSettings, eval_months: int
) -> tuple[np.ndarray, tuple[np.datetime64, ...]]:
    """Rows of ``dataset.score_set`` in the evaluation window, and the window's bounds.

    Returns
    -------
    rows : ndarray of int
    bounds : tuple of numpy.datetime64
        ``(train start, validation start, test start, test end)`` of the
        challenger's window (:func:`challenger_splitter`).

    Raises
    ------
    ValueError
        The window holds no sample.
    """
    bounds = challenger_splitter(settings, eval_months).windows(dataset.train_set.index)[0]
    days = dataset.score_set.index.get_column("date").to_numpy().astype("datetime64[D]")
    rows = np.flatnonzero((days >= bounds[2]) & (days < bounds[3]))
    if rows.size == 0:
        raise ValueError("the evaluation window holds no sample; use more data or --eval-months")
    return rows, tuple(bounds)


@dataclass
class Challenge:
    """What :func:`challenge` did and found."""

    status: str  # "compared", "stopped" or "parity-failed"
    reason: str
    eval_window: tuple[str, str] | None = None
    train_window: tuple[str, str, str] | None = None
    comparison: Comparison | None = None
    run: TrainReport | None = None
    artifact: Path | None = None
    onnx: Path | None = None
    onnx_sha256: str | None = None  # of the bytes that were evaluated
    export: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def promote(self) -> bool:
        """True when the challenger won."""
        return self.comparison is not None and self.comparison.promote

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "status": self.status,
            "reason": self.reason,
            "eval_window": list(self.eval_window) if self.eval_window else None,
            "train_window": list(self.train_window) if self.train_window else None,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "run": str(self.run.out) if self.run else None,
            "artifact": str(self.artifact) if self.artifact else None,
            "onnx": str(self.onnx) if self.onnx else None,
            "onnx_sha256": self.onnx_sha256,
            "export": self.export,
            **self.info,
        }


def challenge(
    champion: Any,
    dataset: TrainDataset,
    out: Path,
    *,
    settings: RunSettings,
    config: Any,
    eval_months: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    progress: Any = None,
) -> Challenge:
    """Train a challenger on the newest window before the evaluation window and compare.

    Parameters
    ----------
    champion : export.scorer.PatternScorer
        The champion, as served.
    dataset : TrainDataset
        Samples from :func:`challenger_start` to the last matured label (the
        champion's pinned features).
    out : Path
        Directory for the challenger's run (``run/``) and ONNX file.
    settings : RunSettings
        The champion's run settings (train / validation months, embargo).
    config : engine.model.network.ModelConfig
        The champion's configuration.
    eval_months : int
    n_boot, seed, level
        The paired bootstrap.
    progress : callable, optional
        Passed to :func:`engine.model.runs.train_windows`.

    Returns
    -------
    Challenge
        ``status`` ``"compared"`` (see ``comparison``), ``"stopped"`` (the
        champion trained on the evaluation window) or ``"parity-failed"``.
    """
    from export.held_out import select_held_out
    from export.onnx_export import ExportError, export_onnx
    from export.scorer import PatternScorer

    splitter = challenger_splitter(settings, eval_months)
    rows, (train_start, val_start, test_start, _) = evaluation_rows(dataset, settings, eval_months)
    score_days = dataset.score_set.index.get_column("date").to_numpy().astype("datetime64[D]")
    window = (str(score_days[rows].min()), str(score_days[rows].max()))
    training = (str(train_start), str(val_start), str(test_start))
    embargo_end = (champion.metadata.get("split") or {}).get("embargo_end")
    if embargo_end and np.datetime64(embargo_end, "D") >= test_start:
        return Challenge(
            status="stopped",
            reason=(
                f"the champion {champion.source} trained on data up to its embargo end "
                f"{embargo_end}, inside the evaluation window {window[0]} to {window[1]}: it "
                "cannot be evaluated there; wait for more data or shorten --eval-months"
            ),
            eval_window=window,
            train_window=training,
        )
    run = train_windows(
        dataset, out / "run", settings=settings, config=config, splitter=splitter, progress=progress
    )
    artifact = run.out / run.windows[0].artifact
    from engine.model.artifacts import read_metadata

    metadata = read_metadata(artifact)
    held_out = select_held_out(
        metadata, dataset.score_set, fingerprint=str(dataset.info.get("fingerprint"))
    )
    onnx_path = out / "challenger.onnx"
    try:
        exported = export_onnx(artifact, onnx_path, held_out=held_out, overwrite=True)
    except ExportError as exc:
        return Challenge(
            status="parity-failed",
            reason=f"the challenger's ONNX export failed its parity check ({exc}); "
            "nothing is promoted whose export parity failed; champion kept",
            eval_window=window,
            train_window=training,
            run=run,
            artifact=artifact,
        )
    evaluated_sha256 = file_sha256(onnx_path)
    challenger = PatternScorer.load(onnx_path)
    if file_sha256(onnx_path) != evaluated_sha256:
        raise ValueError(f"{onnx_path} changed while it was loaded; run the retrain again")
    X = dataset.score_set.X[rows]
    y = dataset.score_set.y[rows] if dataset.score_set.y is not None else None
    if y is None:
        raise ValueError("the dataset has no labels to evaluate on")
    if list(champion.pattern_names) != list(challenger.pattern_names):
        raise ValueError(
            f"the champion's heads {list(champion.pattern_names)} differ from the data's "
            f"{list(challenger.pattern_names)}"
        )
    comparison = compare_models(
        score_days[rows],
        y,
        champion.score(X),
        challenger.score(X),
        list(challenger.pattern_names),
        n_boot=n_boot,
        seed=seed,
        level=level,
    )
    return Challenge(
        status="compared",
        reason=comparison.reason,
        eval_window=window,
        train_window=training,
        comparison=comparison,
        run=run,
        artifact=artifact,
        onnx=onnx_path,
        onnx_sha256=evaluated_sha256,
        export=exported.to_dict(),
        info={"eval_rows": int(rows.size)},
    )


def refit_latest(
    dataset: TrainDataset,
    out: Path,
    *,
    settings: RunSettings,
    config: Any,
    progress: Any = None,
) -> tuple[TrainReport, Path, dict[str, Any]]:
    """Train a copy of the promoted configuration through the latest labels, and export it.

    The window is the champion's training and validation months, placed as
    late as the data allow: its (short, unlabelled) test period starts a
    few days before the latest bar, so the training and validation labels
    run up to it (less the purge and the embargo). The export's parity check
    scores that test period.

    Parameters
    ----------
    dataset : TrainDataset
        Samples up to the latest bar, from at least ``train + validation``
        months (plus the windows' 20 rows) before it.

    Returns
    -------
    (TrainReport, Path, dict)
        The run, the ONNX file and the export report.

    Raises
    ------
    ValueError
        Too little data for the window.
    export.held_out.ExportError
        The refit's export failed its parity check (nothing is registered).
    """
    from engine.model.artifacts import read_metadata
    from export.held_out import select_held_out
    from export.onnx_export import export_onnx

    splitter = FirstWindow(
        WalkForward(settings.train_months, settings.validation_months, 1, 1, partial_test=True,
                    embargo_days=settings.embargo_days)
    )  # fmt: skip
    last = dataset.train_set.index.get_column("date").max()
    months = settings.train_months + settings.validation_months
    for back in range(45):  # the latest start whose window still begins a test period
        part = since(dataset, months_before(last, months) + timedelta(days=1 - back))
        try:
            test_start = splitter.windows(part.train_set.index)[0][2]
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"too little data for a {months}-month refit window before {last}")
    # the few days after the window are scored for the export's parity check only: a refit
    # has no honest test, so their labels are dropped rather than reported as one
    scored = part.score_set
    y = None if scored.y is None else scored.y.copy()
    if y is not None:
        days = scored.index.get_column("date").to_numpy().astype("datetime64[D]")
        y[days >= test_start] = np.nan
    part.score_set = SequenceSet(
        X=scored.X, y=y, index=scored.index, feature_names=scored.feature_names,
        pattern_names=scored.pattern_names, dropped=scored.dropped,
    )  # fmt: skip
    run = train_windows(part, out / "refit", settings=settings, config=config,
                        splitter=splitter, progress=progress)  # fmt: skip
    artifact = run.out / run.windows[0].artifact
    held_out = select_held_out(read_metadata(artifact), part.score_set,
                               fingerprint=str(part.info.get("fingerprint")))  # fmt: skip
    onnx_path = out / "refit.onnx"
    exported = export_onnx(artifact, onnx_path, held_out=held_out, overwrite=True)
    return run, onnx_path, exported.to_dict()


def record_challenge(
    result: Challenge, registry: Any, name: str, *, run_id: str, champion_uri: str
) -> dict[str, Any]:
    """Register the evaluated challenger (alias ``challenger``); move ``champion`` when it won.

    The version registered is the ONNX file that was evaluated, byte for
    byte; its tags link the evidence run and the champion it challenged.
    ``champion`` moves only if it still points at the version the
    challenger was compared with: resolved again here, so a retrain of an
    older version, or a promotion made while the retrain ran, never
    replaces a champion the challenger never met. It then stays
    ``challenger`` and ``not_promoted`` says why.

    Parameters
    ----------
    result : Challenge
        A ``"compared"`` challenge.
    registry : engine.tracking.registry.Registry
    name : str
        Registered model name.
    run_id : str
        The MLflow run holding the evidence.
    champion_uri : str
        The version the challenger was compared with, ``models:/NAME/VERSION``
        (recorded in the tags).

    Returns
    -------
    dict
        ``uri``, ``version``, ``sha256``, ``promoted`` and, when the
        challenger won but ``champion`` had moved, ``not_promoted`` (why).

    Raises
    ------
    ValueError
        A challenge that was not compared, a ``champion_uri`` naming an
        alias instead of a version, or an ONNX file whose bytes are no longer
        the ones evaluated (nothing is registered).
    """
    from engine.tracking.registry import CHALLENGER, CHAMPION, ModelRef, parse_model_uri
    from export.registration import registry_tags
    from export.scorer import PatternScorer

    if result.status != "compared" or result.onnx is None or result.export is None:
        raise ValueError(f"only a compared challenger is registered, not one {result.status!r}")
    evaluated = parse_model_uri(champion_uri).version
    if evaluated is None:
        raise ValueError(
            f"champion_uri must name the evaluated version (models:/NAME/VERSION), "
            f"got {champion_uri!r}"
        )
    if result.onnx_sha256 is not None and file_sha256(result.onnx) != result.onnx_sha256:
        raise ValueError(
            f"{result.onnx} is not the file that was evaluated (SHA-256 "
            f"{file_sha256(result.onnx)[:12]}... vs {result.onnx_sha256[:12]}... evaluated); "
            "nothing was registered: run the retrain again"
        )
    scorer = PatternScorer.load(result.onnx)
    tags = registry_tags(scorer.metadata, result.export["parity"], result.onnx.name)
    tags.update({"retrain_of": champion_uri, "evidence_run": run_id})
    version = registry.register_onnx(
        result.onnx,
        name=name,
        run_id=run_id,
        tags=tags,
        description=f"challenger of {champion_uri}",
    )
    registry.set_alias(name, version.version, CHALLENGER, reason="retrain challenger")
    record = {
        "uri": version.uri,
        "version": version.version,
        "sha256": version.tags.get("sha256"),
        "promoted": False,
    }
    if result.promote:
        current = registry.get(ModelRef(name, alias=CHAMPION)).version  # again, now
        if current == evaluated:
            registry.set_alias(
                name, version.version, CHAMPION, reason=result.reason, evidence=run_id
            )
            record["promoted"] = True
        else:
            record["not_promoted"] = (
                f"the challenger beat v{evaluated}, but {name}@champion is v{current}, which "
                f"it was never compared with; it stays {name}@challenger (retrain "
                f"models:/{name}@champion to compare them)"
            )
    return record


def record_refit(
    onnx: Path, export: dict[str, Any], registry: Any, name: str, *, run_id: str, refit_of: str
) -> dict[str, Any]:
    """Register a refit (:func:`refit_latest`) as a new version linked to the evaluated one.

    No alias moves: the refit was not evaluated on held-out data, so making
    it champion is the user's call (``engine models promote``).

    Returns
    -------
    dict
        ``status``, ``uri``, ``version`` and a ``note``.
    """
    from export.registration import registry_tags
    from export.scorer import PatternScorer

    tags = registry_tags(PatternScorer.load(onnx).metadata, export["parity"], onnx.name)
    tags.update({"refit_of": refit_of, "evidence_run": run_id})
    version = registry.register_onnx(
        onnx, name=name, run_id=run_id, tags=tags, description=f"refit of {refit_of}"
    )
    return {
        "status": "registered",
        "uri": version.uri,
        "version": version.version,
        "note": "no alias moved: promote it with `engine models promote` after reviewing it",
    }
