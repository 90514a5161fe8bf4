"""The main job, ``engine pipeline``: bars to an out-of-sample backtest in one command.

Stages, each feeding the next (data flows one way):

1. **data**: the demo universe is stored if the data directory holds no bars;
2. **features** and 3. **targets**: computed once over the full stored
   history, written to ``features.parquet`` and ``targets.parquet``, and
   handed on in memory to training, export and the backtests;
4. **train**: walk-forward LSTM windows, out-of-sample predictions
   (``run/``);
5. **validate**: metrics with bootstrap intervals and a block-permutation
   null (``validation/``);
6. **export**: the latest window's model to ONNX with its parity check
   against Keras on its held-out windows, taken from the training
   sequences (``onnx/model.onnx``);
7. **backtest**: each base strategy, unfiltered and filtered by its head's
   out-of-sample confidence (``backtest/<strategy>/``), all from one load
   of the bars and one read of the predictions; every run's PSR and DSR,
   deflated over every (strategy, unfiltered/filtered) run backtested;

then ``report.html`` (one page with every stage, :mod:`engine.reports.pipeline`)
and ``summary.json``.

The pipeline calls the domain directly (it imports no other job), so each
stage's result is computed once and handed on.

With ``seeds > 1`` the walk-forward model is trained once per seed
(``seed`` to ``seed + seeds - 1``; the first in ``run/``, the others in
``seeds/seed-<s>/run/``), each seed's predictions are backtested
(``seeds/seed-<s>/backtest/<strategy>/``), and the summary shows, per
strategy, the spread across seeds and the filter's verdict, stated only
where every seed agrees (:mod:`engine.backtest.robustness`). Validation and
export use the first seed.

``quick=True`` runs the same stages on a small slice (6 tickers from 2011,
2 epochs per window): a smoke run of the whole product in a few minutes on
2 CPU cores. Its numbers are not meant to show skill.

Every stage computes on the same bars: the price basis (``prices``, adjusted
by default), the market and the sector map of :class:`PipelineSettings`, as
``engine features`` and ``engine train`` do; the backtests therefore trade
total-return prices too. Walk-forward windows with fewer than
``min_train_sequences`` training sequences are skipped and listed (the quick
run keeps every window: it is a smoke run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from engine.backtest.meta_labeling import DEFAULT_THRESHOLD, head_confidence
from engine.backtest.robustness import seed_robustness
from engine.backtest.run import BacktestReport, deflate_together, run_backtest
from engine.backtest.signals import STRATEGIES
from engine.backtest.simulation import DEFAULT_COSTS_BPS, BacktestSettings
from engine.data.importer import import_demo
from engine.data.loading import BarInputs, keep_dates, load_bars, short_histories, synthetic_flags
from engine.data.store import BarStore
from engine.evaluation.validation import validate_predictions
from engine.features.build import bars_fingerprint, build_features
from engine.features.files import write_feature_file
from engine.io import atomic_write_bytes, iso, write_parquet_atomic
from engine.labels.targets import EVENT_COLUMNS, censor_after, compute_targets, target_summary
from engine.model.min_train import DEFAULT_MIN_TRAIN_SEQUENCES
from engine.model.prediction_sources import resolve_prediction_source
from engine.model.run_files import (
    RUN_FILE,
    RUN_PREDICTIONS_FILE,
    check_predictions,
    read_predictions,
)
from engine.model.run_resume import RESUMABLE
from engine.model.runs import RunSettings, prepare_dataset, train_windows
from engine.reports.pipeline import backtest_results, validation_summary, write_pipeline_report
from engine.reports.validation import write_report
from engine.tracking import Tracking, tracked
from kernels.garch import GARCH_MIN_OBS

__all__ = ["FULL", "QUICK", "PipelineReport", "PipelineSettings", "run_pipeline"]

#: ``progress(event)``: ``{"kind": "stage", "index", "total", "name"}`` when a stage
#: starts, ``{"kind": "done", "name", "summary", "seconds"}`` when it ends, and the
#: training job's own events (``"window"``, ``"epoch"``, ``"window_done"``).
PipelineProgress = Callable[[dict[str, Any]], None]
STAGES = ("data", "features", "targets", "train", "validate", "export", "backtest")


@dataclass(frozen=True)
class PipelineSettings:
    """What ``engine pipeline`` runs.

    Attributes
    ----------
    tickers : str
        ``"all"``, a named list or a comma list.
    start, end : date, optional
        Sample dates (earlier bars still warm up the features).
    epochs : int
        Most epochs per walk-forward window.
    seed : int
    deterministic : bool
        Deterministic TensorFlow ops (repeatable weights on CPU; slower).
    strategies : tuple of str
        Base strategies to backtest.
    threshold, costs_bps, fill
        See :class:`engine.backtest.simulation.BacktestSettings`.
    n_boot, n_null : int
        Bootstrap replicates (validation and backtest) and null draws of the backtest filter.
    demo_seed : int
        Seed of the demo universe, when one is generated.
    seeds : int
        Training seeds: the model is trained with ``seed`` to ``seed + seeds -
        1`` (otherwise the same settings), each seed's predictions are
        backtested, and the filter's verdict is stated only where all agree.
    prices, market, sector_map
        The bars' price basis, market benchmark and sector ETF overrides
        (:class:`engine.data.loading.BarInputs`).
    min_train_sequences : int
        Walk-forward windows with fewer training sequences are skipped.
    smoke : bool
        A smoke run (``--quick``): the report says its numbers show that
        every stage runs, not skill.
    """

    tickers: str = "all"
    start: date | None = None
    end: date | None = None
    epochs: int = 25
    seed: int = 0
    deterministic: bool = False
    strategies: tuple[str, ...] = tuple(STRATEGIES)
    threshold: float = DEFAULT_THRESHOLD
    costs_bps: float = DEFAULT_COSTS_BPS
    fill: str = "open"
    n_boot: int = 1000
    n_null: int = 200
    demo_seed: int = 7
    seeds: int = 1
    prices: str = "adjusted"
    market: str = "SPY"
    sector_map: dict[str, str] = field(default_factory=dict)
    min_train_sequences: int = DEFAULT_MIN_TRAIN_SEQUENCES
    smoke: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be >= 1, got `epochs={self.epochs}`")
        if self.seeds < 1:
            raise ValueError(f"`seeds` must be >= 1, got `seeds={self.seeds}`")
        if not self.strategies:
            raise ValueError("`strategies` must name at least one strategy")
        for s in self.strategies:
            if s not in STRATEGIES:
                raise ValueError(f"unknown strategy {s!r}; known: {', '.join(STRATEGIES)}")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")

    def backtest(self, strategy: str) -> BacktestSettings:
        """Backtest settings for one strategy."""
        return BacktestSettings(
            strategy=strategy, threshold=self.threshold, costs_bps=self.costs_bps,
            fill=self.fill, n_boot=self.n_boot, n_null=self.n_null, seed=self.seed,
        )  # fmt: skip

    def inputs(self) -> BarInputs:
        """The bar choices: price basis, market, sector map."""
        return BarInputs(prices=self.prices, market=self.market, sector_map=self.sector_map)

    @property
    def training_seeds(self) -> list[int]:
        """``seed`` to ``seed + seeds - 1``: the first is the pipeline's main run."""
        return list(range(self.seed, self.seed + self.seeds))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        out = asdict(self)
        out["start"] = self.start.isoformat() if self.start else None
        out["end"] = self.end.isoformat() if self.end else None
        out["strategies"] = list(self.strategies)
        return out


#: The full run: every stored ticker, full history, SPEC training settings.
FULL = PipelineSettings()
#: A smoke run of every stage: 6 tickers (3 stocks, 3 ETFs), 2011 on, 2 epochs.
QUICK = PipelineSettings(
    tickers="AAPL,MSFT,NVDA,QQQ,SPY,XLK",
    start=date(2011, 1, 1),
    epochs=2,
    n_boot=200,
    n_null=50,
    min_train_sequences=0,
    smoke=True,
)


@dataclass
class PipelineReport:
    """What each stage produced; :meth:`to_dict` is ``summary.json``."""

    out: Path
    settings: PipelineSettings
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    backtests: dict[str, Any] = field(default_factory=dict)  # strategy -> BacktestReport
    report: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary of every stage."""
        return {
            "out": str(self.out),
            "settings": self.settings.to_dict(),
            "stages": self.stages,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "total_seconds": round(sum(self.seconds.values()), 2),
            "report": str(self.report) if self.report else None,
        }

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """``(stage, result, seconds)`` rows for the final table."""
        return [
            (name, self.stages[name]["summary"], f"{self.seconds[name]:.1f}")
            for name in STAGES
            if name in self.stages
        ]


def _check_out(out: Path, overwrite: bool, resume: bool = False) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if resume:
        if not (out / "features.parquet").exists():
            raise FileNotFoundError(
                f"--resume: {out} holds no pipeline run to continue (no features.parquet); "
                "run without --resume"
            )
        return
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"--out {out} is not empty; pass --overwrite to replace its files")
    out.mkdir(parents=True, exist_ok=True)


def _stage_data(store: BarStore, settings: PipelineSettings) -> dict[str, Any]:
    if store.tickers():
        return {"summary": f"{len(store.tickers())} tickers already in {store.data_dir}",
                "generated": False, "data_dir": str(store.data_dir)}  # fmt: skip
    written = import_demo(store, seed=settings.demo_seed)
    rows = written.to_dict()["rows"]
    return {"summary": f"stored the demo universe (seed {settings.demo_seed}): "
            f"{sum(rows.values()):,} rows, {len(rows)} tickers in {store.data_dir}",
            "generated": True, "data_dir": str(store.data_dir)}  # fmt: skip


@tracked("pipeline")
def run_pipeline(
    store: BarStore,
    out: Path,
    settings: PipelineSettings | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: PipelineProgress | None = None,
    tracking: Tracking | None = None,
) -> PipelineReport:
    """Run every stage; see the module docstring.

    Parameters
    ----------
    store : BarStore
        Data directory (the demo universe is stored there if it is empty).
    out : Path
        Output directory (must be empty unless ``overwrite``).
    settings : PipelineSettings, optional
        Default :data:`FULL`; :data:`QUICK` for a smoke run.
    overwrite : bool
        Replace the files of an earlier pipeline in ``out``.
    resume : bool
        Continue an interrupted pipeline in ``out``: a training run there that
        finished with the same settings, model configuration and bars
        (fingerprint) is reused instead of trained again (with ``seeds == 1``);
        an interrupted or failed one is continued, training only its
        unfinished windows (refused, naming the difference, when it was made
        with other settings or data; :mod:`engine.model.run_resume`);
        the other stages (data, features, targets, validate, export,
        backtest) are recomputed and their files replaced.
    progress : callable, optional
        See :data:`PipelineProgress`.
    tracking : engine.tracking.Tracking, optional
        Log the run to MLflow and register the exported model (``champion``
        when the registered model has none); None: neither.

    Returns
    -------
    PipelineReport
    """
    from engine.model.artifacts import read_metadata
    from engine.model.network import ModelConfig
    from export.held_out import select_held_out
    from export.onnx_export import export_onnx

    settings = settings or FULL
    out = Path(out)
    _check_out(out, overwrite, resume)
    emit = progress or (lambda event: None)
    report = PipelineReport(out=out, settings=settings)
    start, end = settings.start, settings.end
    held: dict[str, Any] = {}  # each stage's result, handed on to the later stages

    def stage(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        emit({"kind": "stage", "index": STAGES.index(name) + 1, "total": len(STAGES),
              "name": name})  # fmt: skip
        began = time.perf_counter()
        result = work()
        report.seconds[name] = time.perf_counter() - began
        report.stages[name] = result
        emit({"kind": "done", "name": name, "summary": result["summary"],
              "seconds": report.seconds[name]})  # fmt: skip
        return result

    stage("data", lambda: _stage_data(store, settings))

    def features() -> dict[str, Any]:
        loaded = load_bars(store, settings.tickers, start, end, settings.inputs())
        tickers, bars = loaded.tickers, loaded.bars
        result = build_features(  # the one full-history feature pass
            bars, tickers=tickers, market=settings.market, sector_map=loaded.sectors
        )
        frame = keep_dates(result.frame, start, end)
        manifest = result.manifest.to_dict() | loaded.info()
        synthetic = synthetic_flags(store, tickers)
        manifest["synthetic_tickers"] = sorted(t for t, s in synthetic.items() if s)
        manifest["start"] = iso(frame.get_column("date").min())
        manifest["end"] = iso(frame.get_column("date").max())
        path, _ = write_feature_file(frame, manifest, out / "features.parquet")
        held.update(tickers=tickers, bars=bars, features=result, synthetic=synthetic,
                    bar_info=loaded.info())  # fmt: skip
        return {"summary": f"{frame.height:,} rows x {len(manifest['feature_names'])} features, "
                f"{len(manifest['tickers'])} tickers", "path": str(path),
                "vix_variant": manifest["vix_variant"]}  # fmt: skip

    stage("features", features)
    run_settings = RunSettings(
        split="walk-forward", seed=settings.seed, deterministic=settings.deterministic,
        min_train_sequences=settings.min_train_sequences,
    )  # fmt: skip

    def targets() -> dict[str, Any]:
        labels = compute_targets(
            held["bars"], horizon=run_settings.horizon, tickers=held["tickers"],
            with_events=True, features=held["features"].frame,
        )  # fmt: skip
        kept = censor_after(keep_dates(labels, start, end), end)
        path = write_parquet_atomic(kept.drop(EVENT_COLUMNS), out / "targets.parquet")
        held["targets"] = labels
        patterns = target_summary(kept).to_dicts()
        events = ", ".join(f"{p['pattern']} {p['labelled']:,}" for p in patterns)
        return {"summary": f"labelled events: {events}", "path": str(path),
                "patterns": patterns}  # fmt: skip

    stage("targets", targets)

    def train() -> dict[str, Any]:
        dataset = prepare_dataset(
            held["bars"], held["tickers"], run_settings, start=start, end=end,
            features=held["features"], targets=held["targets"],
        )  # fmt: skip
        dataset.info["synthetic_tickers"] = sorted(t for t, s in held["synthetic"].items() if s)
        dataset.info["data_dir"] = str(store.data_dir)
        dataset.info.update(held["bar_info"])
        min_bars = GARCH_MIN_OBS + run_settings.sequence_length + run_settings.horizon
        dataset.info["short_history"] = short_histories(held["bars"], held["tickers"], min_bars)
        dataset.info["short_history_min_bars"] = min_bars
        emit({"kind": "data", **dataset.info})
        config = ModelConfig(epochs=settings.epochs)
        reuse = resume and settings.seeds == 1  # other seeds' runs are not checked: train all
        finished = _finished_run(out / "run", run_settings, config, dataset.info) if reuse else None
        held["dataset"] = dataset
        if finished is not None:
            return finished
        continued = reuse and _run_status(out / "run") in RESUMABLE
        r = train_windows(
            dataset, out / "run", settings=run_settings, config=config, overwrite=True,
            progress=emit, resume=continued,
        )  # fmt: skip
        if r.status != "complete" or r.predictions is None or not r.windows:
            raise ValueError(f"training ended with status {r.status!r} and no predictions")
        s = r.to_dict()
        result = {"summary": f"{len(r.windows)} walk-forward windows, "
                  f"{s['parameters'].get('trainable', 0):,} trainable parameters",
                  "run": str(r.out), "predictions": str(r.predictions),
                  "windows": [{"model_id": w.model_id, "test_start": w.test_start,
                               "test_end": w.test_end, "best_epoch": w.best_epoch,
                               "test_auc": w.test_auc} for w in r.windows],
                  "latest_model": str(Path(r.out) / r.windows[-1].artifact),
                  "skipped_windows": r.skipped_windows,
                  "short_history": dataset.info["short_history"]}  # fmt: skip
        if continued:
            result["summary"] += " (interrupted run continued, --resume)"
            result["resumed"] = True
        if r.skipped_windows:
            result["summary"] += (
                f"; {len(r.skipped_windows)} skipped (fewer than "
                f"{run_settings.min_train_sequences:,} training sequences)"
            )
        if settings.seeds > 1:
            result["seeds"] = _train_other_seeds(dataset, out, settings, run_settings, emit)
            result["summary"] += (
                f"; {settings.seeds} seeds ({settings.seed} to {settings.training_seeds[-1]})"
            )
        return result

    trained = stage("train", train)

    def validate() -> dict[str, Any]:
        summary = validation_summary(
            _validate_run(Path(trained["run"]), out / "validation", settings)
        )
        summary["report"] = str(out / "validation" / "report.html")
        return summary

    validated = stage("validate", validate)

    def export() -> dict[str, Any]:
        dataset = held["dataset"]
        metadata = read_metadata(trained["latest_model"])
        windows = select_held_out(
            metadata, dataset.score_set, fingerprint=dataset.info["fingerprint"]
        )
        r = export_onnx(trained["latest_model"], out / "onnx" / "model.onnx", held_out=windows,
                        data_dir=store.data_dir, overwrite=True, tracking=tracking,
                        champion_if_none=True)  # fmt: skip
        worst = max(p.max_abs_diff for p in r.parity)
        ok = all(p.ok for p in r.parity)
        if not ok:
            raise ValueError(f"ONNX parity failed: max abs diff {worst:.3g} (see {r.path})")
        registered = f"; registered {r.registered['uri']}" if r.registered else ""
        return {"summary": f"{r.model_id} -> {r.path.name}, parity max abs diff {worst:.2g} "
                f"(tolerance {r.parity[0].tolerance:g}){registered}", "path": str(r.path),
                "parity": [p.to_dict() for p in r.parity], "model_id": r.model_id,
                "registered": r.registered}  # fmt: skip

    exported = stage("export", export)

    def backtest() -> dict[str, Any]:
        source = trained["predictions"]
        predictions, _ = check_predictions(  # the guard: train_end + embargo on the bar calendar
            read_predictions(Path(source)), source=source,
            calendar=held["dataset"].calendar, embargo_days=run_settings.embargo_days,
        )  # fmt: skip
        bars, tickers = held["bars"], sorted(predictions.get_column("ticker").unique())
        match = bars_fingerprint(bars) == held["dataset"].info["fingerprint"]
        synthetic = sorted(t for t in tickers if held["synthetic"].get(t))
        info = {"data_dir": str(store.data_dir), "synthetic_tickers": synthetic,
                "fingerprint_match": match}  # fmt: skip
        runs = {settings.seed: _backtest_strategies(bars, predictions, source, settings, info)}
        for seed, other in trained.get("seeds", {}).items():
            other_predictions, _ = check_predictions(  # the same guard for every seed
                read_predictions(Path(other["predictions"])), source=other["predictions"],
                calendar=held["dataset"].calendar, embargo_days=run_settings.embargo_days,
            )  # fmt: skip
            runs[int(seed)] = _backtest_strategies(
                bars, other_predictions, other["predictions"], settings, info
            )
        report.backtests = runs[settings.seed]
        seeds = list(runs)
        trials = "every strategy's unfiltered and filtered run"
        if len(seeds) > 1:
            trials += f" of each of {len(seeds)} seeds"
        shared = deflate_together([r for by in runs.values() for r in by.values()], trials)
        inference = {**{k: v for k, v in shared.items() if k not in ("psr", "dsr")},
                     "trials": trials}  # fmt: skip
        across = None
        if len(seeds) > 1:
            across = {
                strategy: seed_robustness([runs[seed][strategy] for seed in seeds],
                                          [str(seed) for seed in seeds], label_name="seed")
                for strategy in settings.strategies
            }  # fmt: skip
        return backtest_results(runs, out, settings.seed, inference, across)

    stage("backtest", backtest)
    report.report = write_pipeline_report(
        report.to_dict(), report.summary_rows(), report.backtests, validated, exported
    )
    atomic_write_bytes(
        out / "summary.json", json.dumps(report.to_dict(), indent=2, default=str).encode()
    )
    return report


def _validate_run(run: Path, report_dir: Path, settings: PipelineSettings) -> dict[str, Any]:
    """Validate the run's out-of-sample predictions with the null and write the report."""
    r = validate_predictions(
        resolve_prediction_source(run), null=True, n_boot=settings.n_boot, seed=settings.seed
    )
    r.report, r.figures = write_report(r, report_dir)
    return r.to_dict()


def _train_other_seeds(
    dataset: Any,
    out: Path,
    settings: PipelineSettings,
    run_settings: RunSettings,
    emit: PipelineProgress,
) -> dict[str, dict[str, str]]:
    """Train the same walk-forward model with each further seed; seed -> run and predictions."""
    from engine.model.network import ModelConfig

    trained = {}
    for seed in settings.training_seeds[1:]:
        r = train_windows(
            dataset, out / "seeds" / f"seed-{seed}" / "run",
            settings=replace(run_settings, seed=seed), config=ModelConfig(epochs=settings.epochs),
            overwrite=True, progress=emit,
        )  # fmt: skip
        if r.status != "complete" or r.predictions is None or not r.windows:
            raise ValueError(
                f"training with seed {seed} ended with status {r.status!r} and no predictions"
            )
        trained[str(seed)] = {"run": str(r.out), "predictions": str(r.predictions)}
    return trained


def _backtest_strategies(
    bars: Any, predictions: Any, source: str, settings: PipelineSettings, info: dict[str, Any]
) -> dict[str, BacktestReport]:
    """Each strategy backtested on one predictions frame (reports not written yet)."""
    out = {}
    for strategy in settings.strategies:
        bt_settings = settings.backtest(strategy)
        confidence = head_confidence(predictions, bt_settings.pattern_head, source=source)
        r = run_backtest(bars, confidence, bt_settings, source=source)
        r.info.update(info)
        out[strategy] = r
    return out


def _run_status(run: Path) -> str | None:
    """The ``status`` in ``run/run.json``, or None without a readable one."""
    try:
        return json.loads((run / RUN_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _finished_run(
    run: Path, run_settings: RunSettings, config: Any, data: dict[str, Any]
) -> dict[str, Any] | None:
    """The train stage's result from a complete run at ``run`` made with these inputs, or None.

    Reused only when ``run.json`` says ``complete`` and records the same run
    settings, model configuration and bars fingerprint; otherwise the stage
    trains again (an interrupted run is continued by ``train_windows(resume=True)``).
    """
    path = run / RUN_FILE
    if not path.exists():
        return None
    recorded = json.loads(path.read_text())
    same = (
        recorded.get("status") == "complete"
        and recorded.get("settings") == json.loads(json.dumps(asdict(run_settings), default=str))
        and recorded.get("config") == json.loads(json.dumps(config.to_dict(), default=str))
        and recorded.get("data", {}).get("fingerprint") == data.get("fingerprint")
        and (run / RUN_PREDICTIONS_FILE).exists()
        and recorded.get("windows")
    )
    if not same:
        return None
    windows = recorded["windows"]
    result = {
        "summary": f"{len(windows)} walk-forward windows reused from {run} (--resume), "
        f"{recorded['parameters'].get('trainable', 0):,} trainable parameters",
        "run": str(run),
        "predictions": str(run / RUN_PREDICTIONS_FILE),
        "windows": [
            {k: w[k] for k in ("model_id", "test_start", "test_end", "best_epoch", "test_auc")}
            for w in windows
        ],  # fmt: skip
        "latest_model": str(run / windows[-1]["artifact"]),
        "skipped_windows": recorded.get("skipped_windows", []),
        "short_history": data.get("short_history"),
        "resumed": True,
    }
    return result
