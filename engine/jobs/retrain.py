"""The ``engine retrain`` job: decide, train a challenger, evaluate, promote or keep, record.

1. **Decide** from the champion's drift over the evaluation window and its
   age (days from its last training label to the latest bar), by
   ``--when``: ``drift`` (retrain when any feature or head reaches PSI
   0.25), ``age`` (older than ``--max-age-days``) or ``always``. Both
   figures and the verdict are reported.
2. to 5. :func:`engine.monitoring.retrain.challenge`: the evaluation window
   (most recent ``--eval-months`` of matured labels, never seen by the
   champion), the challenger (champion's configuration, newest walk-forward
   window before it, purged and embargoed, exported with its parity
   check), the paired date-block bootstrap and the promotion rule.
6. **Record**: the challenger is registered (alias ``challenger``, tags
   linking the evidence run); on a win ``champion`` moves to it. The
   decision, its evidence and the challenger's run files are logged to the
   MLflow run of experiment ``pattern-engine/retrain``, and written to
   ``decision.json`` in ``--out``.

``refit_after_promotion``: a copy trained through the latest matured label
is registered as a new version with ``refit_of`` (the evaluated version)
and ``evidence_run`` tags; no alias moves.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from engine.data.loading import benchmark_inputs, synthetic_flags
from engine.data.prices import apply_basis
from engine.data.store import BarStore
from engine.data.universe import VIX3M_TICKER, VIX_TICKER
from engine.features.build import build_features
from engine.io import atomic_write_bytes
from engine.labels.targets import compute_targets
from engine.model.runs import RunSettings, prepare_dataset
from engine.model.sequences import SequenceSet
from engine.monitoring.drift import measure_drift, model_prices
from engine.monitoring.reference import ReferenceError
from engine.monitoring.retrain import (
    challenge,
    challenger_start,
    evaluation_dataset,
    evaluation_rows,
    record_challenge,
    record_refit,
    refit_latest,
)
from engine.tracking import Tracking, track_job
from engine.tracking.registry import Registry, parse_model_uri
from export.held_out import ExportError
from export.scorer import PatternScorer

__all__ = ["RetrainReport", "run_retrain_job"]

When = Literal["drift", "age", "always"]
#: Calendar days of features before the challenger's first sample (its first windows' rows).
_LEAD_DAYS = 60


@dataclass
class RetrainReport:
    """What :func:`run_retrain_job` decided, and its evidence."""

    champion: dict[str, Any]
    when: str
    retrain: bool
    why: list[str]
    outcome: str
    reason: str
    latest_bar: str
    age_days: int | None
    drift: dict[str, Any] | None
    challenge: dict[str, Any] | None = None
    challenger: dict[str, Any] | None = None
    refit: dict[str, Any] | None = None
    out: Path | None = None
    run_id: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "champion": self.champion,
            "when": self.when,
            "retrain": self.retrain,
            "why": self.why,
            "outcome": self.outcome,
            "reason": self.reason,
            "latest_bar": self.latest_bar,
            "age_days": self.age_days,
            "drift": self.drift,
            "challenge": self.challenge,
            "challenger": self.challenger,
            "refit": self.refit,
            "out": str(self.out) if self.out else None,
            "run_id": self.run_id,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


def _drift_summary(result: Any) -> dict[str, Any]:
    rows = sorted(result.rows, key=lambda r: -r.psi)
    return {
        "status": result.status,
        "counts": result.counts(),
        "window": [result.start.isoformat(), result.end.isoformat()],
        "n_windows": result.n_windows,
        "largest": [
            {"kind": r.kind, "name": r.name, "psi": round(r.psi, 4), "status": r.status}
            for r in rows[:5]
        ],
    }


def _decide(
    when: str, drift: dict[str, Any] | None, age: int | None, max_age_days: int
) -> tuple[bool, list[str]]:
    why = []
    if drift is not None:
        why.append(
            f"drift over the evaluation window: {drift['status']} "
            f"({', '.join(f'{k} {v}' for k, v in drift['counts'].items() if v)})"
        )
    if age is not None:
        why.append(
            f"age: {age} days from the champion's last training label to the latest bar "
            f"(limit {max_age_days})"
        )
    if when == "always":
        return True, [*why, "--when always: retrain"]
    if when == "age":
        go = age is not None and age > max_age_days
        return go, [*why, f"--when age: {'retrain' if go else 'no retrain'}"]
    go = drift is not None and drift["status"] == "drift"
    return go, [*why, f"--when drift: {'retrain' if go else 'no retrain'}"]


def _bars(store: BarStore, scorer: Any) -> tuple[list[str], pl.DataFrame]:
    available = store.tickers()
    tickers = sorted(t for t in scorer.metadata.get("tickers", []) if t in available)
    if not tickers:
        raise ValueError(
            f"none of the champion's training tickers {scorer.metadata.get('tickers', [])} is "
            f"stored in {store.data_dir}"
        )
    extra = {scorer.market, *scorer.sector_map.values()}
    if scorer.vix_variant in ("vix_vix3m", "vix_mean60"):
        extra |= {VIX_TICKER, VIX3M_TICKER}
    wanted = sorted(set(benchmark_inputs(tickers, available)) | (extra & set(available)))
    return tickers, store.read_bars(wanted)


def _subset(seqs: SequenceSet, rows: np.ndarray) -> SequenceSet:
    return SequenceSet(
        X=seqs.X[rows],
        y=None if seqs.y is None else seqs.y[rows],
        index=seqs.index[rows],
        feature_names=seqs.feature_names,
        pattern_names=seqs.pattern_names,
        dropped={},
    )


def run_retrain_job(
    store: BarStore,
    model: str = "models:/pattern-lstm@champion",
    *,
    tracking: Tracking,
    when: When = "drift",
    max_age_days: int = 30,
    eval_months: int = 6,
    refit_after_promotion: bool = False,
    out: Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Any = None,
) -> RetrainReport:
    """The champion/challenger loop on stored bars: the ``engine retrain`` job.

    Parameters
    ----------
    store : BarStore
    model : str
        The champion, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
    tracking : Tracking
        The registry and the MLflow run of the decision (must be enabled).
    when : {"drift", "age", "always"}
    max_age_days : int
    eval_months : int
        Months of matured labels in the evaluation window.
    refit_after_promotion : bool
        After a promotion, also register a copy trained through the latest label.
    out : Path, optional
        Working directory (default ``<data-dir>/runs/retrain-<timestamp>``).
    n_boot, seed : int
        The paired bootstrap.
    progress : callable, optional
        Training progress events.

    Raises
    ------
    ValueError
        Tracking off, a model that is not a registry reference, unknown
        model / alias / version, a checksum mismatch, no stored bars, a
        ``--when drift`` champion without reference distributions.
    """
    from engine.model.network import ModelConfig

    began = time.perf_counter()
    if tracking is None or not tracking.enabled:
        raise ValueError(
            "engine retrain registers and promotes models: it needs tracking (drop --no-track)"
        )
    if when not in ("drift", "age", "always"):
        raise ValueError(f"--when must be drift, age or always, got {when!r}")
    if eval_months < 1 or max_age_days < 0:
        raise ValueError("--eval-months must be >= 1 and --max-age-days >= 0")
    if not str(model).startswith("models:"):
        raise ValueError(
            f"--model must be a registry reference (models:/NAME@champion), got {model}"
        )
    ref = parse_model_uri(str(model))
    tracking = tracking.with_data_dir(store.data_dir)
    where = tracking.resolve()
    champion = PatternScorer.load(str(model), tracking_uri=where.uri)
    meta = champion.metadata
    version = champion.registered or {}
    info = {
        "uri": str(model),
        "version": version.get("version"),
        "model_id": champion.model_id,
        "train_end": (meta.get("split") or {}).get("train_end"),
        "embargo_end": (meta.get("split") or {}).get("embargo_end"),
    }
    notes: list[str] = []
    settings_values = meta.get("settings")
    if settings_values:
        known = {f.name for f in fields(RunSettings)}
        settings = RunSettings(
            **{k: v for k, v in settings_values.items() if k in known - {"split"}},
            split="walk-forward",
        )
    else:
        settings = RunSettings()
        notes.append("the champion's file records no run settings; the defaults were used")
    config = ModelConfig.from_dict(meta["config"])

    tickers, stored = _bars(store, champion)
    own = stored.filter(pl.col("ticker").is_in(tickers))
    latest = own.get_column("date").max()
    readers = [*tickers, champion.market, *champion.sector_map.values()]
    bars = apply_basis(stored, model_prices(meta), readers)  # the champion's price basis
    features = build_features(
        bars,
        tickers=tickers,
        market=champion.market,
        sector_map=champion.sector_map or None,
        vix_variant=champion.vix_variant,
    )
    targets = compute_targets(
        bars,
        horizon=int(meta["horizon"]),
        tickers=tickers,
        market=champion.market,
        sector_map=champion.sector_map or None,
        features=features.frame,
    )
    dataset, eval_end = evaluation_dataset(
        bars,
        tickers,
        settings,
        features=features,
        targets=targets,
        latest=latest,
        eval_months=eval_months,
        lead_days=_LEAD_DAYS,
    )
    dataset.info["data_dir"] = str(store.data_dir)
    dataset.info["prices"] = meta.get("prices")
    dataset.info["synthetic_tickers"] = sorted(
        t for t, s in synthetic_flags(store, tickers).items() if s
    )

    rows, bounds = evaluation_rows(dataset, settings, eval_months)
    window = _subset(dataset.score_set, rows)
    drift = None
    try:
        result = measure_drift(
            meta,
            window,
            champion.score(window.X),
            start=bounds[2].astype(date),
            end=eval_end,
            n_boot=200,
            seed=seed,
            source=champion.source,
        )
        drift = _drift_summary(result)
    except ReferenceError:
        if when == "drift":
            raise
        notes.append("the champion stores no reference distributions: no drift figure")
    train_end = info["train_end"]
    age = (latest - date.fromisoformat(train_end)).days if train_end else None
    go, why = _decide(when, drift, age, max_age_days)
    out = (
        Path(out)
        if out is not None
        else (store.data_dir / "runs" / f"retrain-{datetime.now():%Y%m%d-%H%M%S}")
    )
    report = RetrainReport(
        champion=info,
        when=when,
        retrain=go,
        why=why,
        outcome="skipped",
        reason="no retrain: " + why[-1],
        latest_bar=latest.isoformat(),
        age_days=age,
        drift=drift,
        out=out,
        notes=notes,
    )
    params = {
        "model": str(model),
        "when": when,
        "max_age_days": max_age_days,
        "eval_months": eval_months,
        "refit_after_promotion": refit_after_promotion,
        "n_boot": n_boot,
        "seed": seed,
        "data_dir": str(store.data_dir),
    }
    with track_job("retrain", params, tracking) as run:
        report.run_id = run.run_id
        if go and run.run_id is None:  # the evidence run the registry versions link to
            why = "; ".join(run.failures) or "tracking is off"
            raise ValueError(
                f"cannot open the MLflow run that holds a retrain's evidence ({why}); "
                "nothing was trained: check --tracking-uri"
            )
        if go:
            _challenge_and_record(
                report,
                run,
                Registry(where),
                ref.name,
                champion,
                dataset,
                dict(
                    settings=settings,
                    config=config,
                    eval_months=eval_months,
                    n_boot=n_boot,
                    seed=seed,
                    progress=progress,
                ),
            )
            if refit_after_promotion and report.outcome == "promoted":
                later = prepare_dataset(
                    bars,
                    tickers,
                    settings,
                    end=latest,
                    features=features,
                    targets=targets,
                    start=challenger_start(latest, settings, 0) - timedelta(days=2 * _LEAD_DAYS),
                )  # refit_latest places its window as late as these samples allow
                later.info.update(data_dir=str(store.data_dir), prices=meta.get("prices"))
                _refit(report, run, Registry(where), ref.name, later, settings, config, progress)
        report.seconds = time.perf_counter() - began
        out.mkdir(parents=True, exist_ok=True)
        decision = out / "decision.json"
        atomic_write_bytes(decision, json.dumps(report.to_dict(), indent=2, default=str).encode())
        run.set_tags({"engine.decision": report.outcome, "engine.reason": report.reason[:5000]})
        run.log_report({**report.to_dict(), "files": [str(decision)]})
        if report.challenge and report.challenge.get("run"):
            run.log_files(
                [
                    ("challenger", p)
                    for p in Path(report.challenge["run"]).rglob("*")
                    if p.is_file() and p.suffix in (".json", ".csv", ".parquet")
                ]
            )
    return report


def _challenge_and_record(
    report: RetrainReport,
    run: Any,
    registry: Registry,
    name: str,
    champion: Any,
    dataset: Any,
    options: dict[str, Any],
) -> None:
    """Steps 2-6: challenge, register the challenger, move the aliases, fill the report."""
    assert report.out is not None
    result = challenge(champion, dataset, report.out, **options)
    report.challenge = result.to_dict()
    report.reason = result.reason
    report.outcome = result.status
    if result.status == "compared":
        report.challenger = record_challenge(
            result, registry, name, run_id=str(run.run_id), champion_uri=champion.source
        )
        report.outcome = "promoted" if report.challenger["promoted"] else "kept"
        if "not_promoted" in report.challenger:
            report.reason = f"{result.reason}; not promoted: {report.challenger['not_promoted']}"


def _refit(
    report: RetrainReport,
    run: Any,
    registry: Registry,
    name: str,
    dataset: Any,
    settings: Any,
    config: Any,
    progress: Any,
) -> None:
    """Register a copy trained through the latest label, linked to the evaluated version."""
    assert report.out is not None and report.challenger is not None
    try:
        _, onnx_path, exported = refit_latest(
            dataset, report.out, settings=settings, config=config, progress=progress
        )
    except ExportError as exc:
        report.refit = {"status": "parity-failed", "reason": str(exc)}
        return
    report.refit = record_refit(
        onnx_path, exported, registry, name, run_id=str(run.run_id),
        refit_of=report.challenger["uri"],
    )  # fmt: skip
