"""One tuning session from a prepared dataset: plan, search, select, test, gate, write.

:func:`tune` is the whole of ``engine tune`` below the data loading:

1. :func:`engine.tuning.windows.plan_windows`: the ``K`` most recent windows;
2. :func:`engine.tuning.study.open_study`: create or resume the study;
3. :func:`engine.tuning.search.run_search`: the trials, validation days only;
4. :func:`engine.tuning.selection.select`: the best trial, its DSR and PBO;
5. :func:`engine.tuning.final_test.score_clean_tests`: the selected and the
   default configuration on the clean test rows, first touched now;
6. :func:`engine.tuning.selection.gate`, then the files
   (:func:`engine.tuning.report.write_files`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.backtest.signals import check_strategy
from engine.backtest.simulation import BacktestSettings
from engine.evaluation import PERIODS_PER_YEAR
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, TrainDataset
from engine.parallel import BACKENDS
from engine.tuning.final_test import score_clean_tests
from engine.tuning.report import TuneReport, trial_table, write_files
from engine.tuning.scoring import OBJECTIVES
from engine.tuning.search import run_search
from engine.tuning.selection import gate, select
from engine.tuning.space import SearchSpace, describe_space
from engine.tuning.strategy import per_day_sharpe
from engine.tuning.study import open_storage, open_study
from engine.tuning.trial_scores import TrialScorer
from engine.tuning.windows import plan_windows, validation_data

__all__ = ["TuneSettings", "tune"]

#: ``progress(event)``: ``{"kind": "plan" | "trial" | "phase", ...}``.
TuneProgress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TuneSettings:
    """How ``engine tune`` searches and decides.

    Attributes
    ----------
    trials : int
        Finished (complete or pruned) trials the study should hold.
    windows : int or None
        Tune on this many of the most recent windows (None: all).
    timeout : float or None
        Seconds after which no new batch of trials starts.
    objective : {"log_loss_skill", "auc"}
    study : str
        Study name in the storage.
    storage : str or None
        Journal path or RDB URL (default: ``study.journal`` in the run directory).
    resume : bool
        Continue an existing study of that name.
    backend : {"local", "ray"}
    workers : int
        Trials (and fits) that run at the same time.
    address : str or None
        Ray cluster address.
    strategy, threshold, costs_bps
        The filtered strategy whose validation Sharpe ratio the DSR deflates.
    dsr_threshold : float
        The gate's DSR level.
    n_boot : int
        Date-block bootstrap replicates of every interval.
    pruner_startup : int
        Completed trials before the pruner may prune.
    """

    trials: int = 20
    windows: int | None = 3
    timeout: float | None = None
    objective: str = "log_loss_skill"
    study: str = "engine-tune"
    storage: str | None = None
    resume: bool = False
    backend: str = "local"
    workers: int = 1
    address: str | None = None
    strategy: str = "momentum"
    threshold: float = 0.6
    costs_bps: float = 5.0
    dsr_threshold: float = 0.95
    n_boot: int = 1000
    pruner_startup: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"--trials must be at least 1, got {self.trials}")
        if self.windows is not None and self.windows < 1:
            raise ValueError(f"--windows must be at least 1, got {self.windows}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.backend not in BACKENDS:
            raise ValueError(
                f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.address is not None and self.backend != "ray":
            raise ValueError(
                f"--ray-address {self.address} needs --backend ray (got --backend {self.backend})"
            )
        if not 0.0 < self.dsr_threshold < 1.0:
            raise ValueError(f"--dsr-threshold must be in (0, 1), got {self.dsr_threshold}")
        if not self.study.strip():
            raise ValueError("--study must not be empty")
        check_strategy(self.strategy)

    def backtest(self, seed: int) -> BacktestSettings:
        """The strategy settings (no bootstrap or null: only the returns are used)."""
        return BacktestSettings(
            strategy=self.strategy,
            threshold=self.threshold,
            costs_bps=self.costs_bps,
            n_null=0,
            seed=seed,
        )


def tune(
    dataset: TrainDataset,
    bars: pl.DataFrame,
    out: str | Path,
    *,
    run_settings: RunSettings,
    base: ModelConfig,
    space: SearchSpace,
    settings: TuneSettings,
    progress: TuneProgress | None = None,
) -> TuneReport:
    """Tune ``space`` on ``dataset``'s validation periods, then select, test and gate.

    Parameters
    ----------
    dataset : TrainDataset
        :func:`engine.model.runs.prepare_dataset` of the tickers.
    bars : polars.DataFrame
        Their bars (for the filtered strategy).
    out : path
        Run directory (created; the default journal storage lives there).
    run_settings : RunSettings
        Split, windows, embargo and seed, as for ``engine train``.
    base : ModelConfig
        The default configuration: settings a trial does not search come
        from it, and it is the first trial and the comparison on test.
    space : SearchSpace
    settings : TuneSettings
    progress : callable, optional

    Returns
    -------
    TuneReport
    """
    began = time.perf_counter()
    say = progress or (lambda event: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backtest = settings.backtest(run_settings.seed)
    plan = plan_windows(dataset, run_settings, settings.windows)
    windows = [_window_row(dataset, w) for w in plan]
    say({"kind": "plan", "windows": windows, "trials": settings.trials})
    scorer = TrialScorer(dataset, plan, bars, settings.objective, backtest,
                         n_boot=settings.n_boot, seed=run_settings.seed)  # fmt: skip
    storage, where = open_storage(settings.storage, out)
    measured = {
        "tickers": list(dataset.info.get("tickers", [])),
        "fingerprint": dataset.info.get("fingerprint"),
        "split": asdict(run_settings),
        "windows": [w.model_id for w in plan],
        "epochs": base.epochs,
        "precision": base.precision,
        "objective": settings.objective,
        "strategy": backtest.to_dict(),
        "space": describe_space(space),
    }
    handle = open_study(storage, where, settings.study, resume=settings.resume,
                        seed=run_settings.seed, settings=measured,
                        startup=settings.pruner_startup,
                        random_trials=min(10, max(2, settings.trials // 3)))  # fmt: skip
    data = validation_data(dataset, plan)
    search = run_search(handle, space, base, plan, data, scorer, trials=settings.trials,
                        seed=run_settings.seed, backend=settings.backend,
                        workers=settings.workers, address=settings.address,
                        timeout=settings.timeout, progress=progress)  # fmt: skip
    del data
    patterns = dataset.train_set.pattern_names
    selection = select(handle.study, n_features=len(dataset.train_set.feature_names),
                       n_patterns=len(patterns))  # fmt: skip
    say({"kind": "phase", "name": "test", "trial": selection.number})
    test, predictions = score_clean_tests(dataset, plan, selection.config, base.to_dict(),
                                          seed=run_settings.seed, objective=settings.objective,
                                          backend=settings.backend, workers=settings.workers,
                                          address=settings.address,
                                          n_boot=settings.n_boot)  # fmt: skip
    decision = gate(selection, test, settings.dsr_threshold)
    report = TuneReport(
        out=out,
        study=settings.study,
        storage=where,
        resumed=handle.resumed,
        settings={
            **asdict(settings),
            "storage": where,  # as shown everywhere else: an RDB URL's password masked
            "epochs": base.epochs,
            "precision": base.precision,
            "split": asdict(run_settings),
        },  # fmt: skip
        space=describe_space(space),
        windows=windows,
        trials=trial_table(handle.study),
        search={**asdict(search), "unfiltered_sharpe": _unfiltered(scorer)},
        selection=selection.to_dict(),
        test=test,
        gate=decision,
        seconds=time.perf_counter() - began,
        notes=list(search.notes),
    )
    if settings.windows is not None and len(plan) < settings.windows:
        report.notes.append(
            f"--windows {settings.windows}: the data hold {len(plan)} window(s), all tuned on"
        )
    if search.stopped_by_timeout:
        report.notes.append(f"--timeout {settings.timeout:g} s reached: no new trials started")
    write_files(report, predictions)
    return report


def _window_row(dataset: TrainDataset, w: Any) -> dict[str, Any]:
    train_start, val_start, test_start, test_end = (str(b) for b in w.bounds)
    return {
        "model_id": w.model_id,
        "train_start": train_start,
        "validation_start": val_start,
        "test_start": test_start,
        "test_end": test_end,
        "n_train": int(w.train.size),
        "n_validation": int(w.validation.size),
        "validation_days": int(w.validation_days.size),
        "validation_scored": int(w.scored.sum()),
    }


def _unfiltered(scorer: TrialScorer) -> float | None:
    """Annualised Sharpe ratio of the base strategy (every signal taken) on validation."""
    value = per_day_sharpe(scorer.unfiltered)
    return None if value is None else value * math.sqrt(PERIODS_PER_YEAR)
