"""Tuning: trial throughput with 1 and 2 local workers, and the tuner's overhead per trial.

Data: six demo stocks on a holdout split (one window). Trials search the
default space with 8 or 16 LSTM units and 2 epochs; with ``BENCH_FULL=1``
they search the default space itself (32 to 96 units, the SPEC model's
size) for 3 epochs, which is closer to a real study (a fit of tens of
seconds, against a few seconds of worker start-up).

* ``tune|trials``: four trials of a new study, run by
  :func:`engine.tuning.search.run_search` with one worker (in this process,
  two TensorFlow threads) and with two spawned worker processes (one thread
  each), on executors started and warmed up (TensorFlow imported, graphs of
  a first search traced) before the timing: the steady state of a long
  study. ``1-worker / 2-workers`` is the throughput gained by the second
  worker on this machine (2 cores: at most 2x). ``warmup_s`` in the
  benchmark's extra info is what starting and warming the executor took.
* ``tune|per-trial``: ``fit`` is the training inside a trial (one
  :func:`engine.model.fit_tasks.run_fit_task`: fit plus scoring the
  validation days); ``tuner`` is everything else the driver does for that
  trial on the real code path: ask Optuna, draw the parameters, report the
  window, ask the pruner, score the trial (objective, monthly skill,
  bootstrap interval, filtered-strategy backtest) and tell the journal
  storage. ``fit / tuner`` says how many times the training outweighs the
  tuner's own work.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backtest.simulation import BacktestSettings
from engine.data.universe import STOCKS
from engine.model.fit_tasks import FitTask, run_fit_task
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, prepare_dataset
from engine.parallel import make_executor
from engine.tuning.search import SearchOutcome, _advance, _Running, run_search
from engine.tuning.space import Choice, default_space, suggest, to_config
from engine.tuning.study import open_storage, open_study
from engine.tuning.trial_scores import TrialScorer
from engine.tuning.windows import plan_windows, validation_data

FULL = os.environ.get("BENCH_FULL") == "1"
BASE = ModelConfig(epochs=3) if FULL else ModelConfig(lstm_units=16, lstm2_units=8, epochs=2)
TRIALS = 4


@pytest.fixture(scope="module")
def tuning_inputs(demo_bars):
    tickers = list(STOCKS[:6])
    settings = RunSettings(split="holdout", seed=0)
    dataset = prepare_dataset(demo_bars, tickers, settings)
    plan = plan_windows(dataset, settings, None)
    scorer = TrialScorer(dataset, plan, demo_bars, "log_loss_skill",
                         BacktestSettings(n_null=0), n_boot=1000)  # fmt: skip
    space = default_space() if FULL else {**default_space(), "lstm_units": Choice((8, 16))}
    return settings, plan, validation_data(dataset, plan), scorer, space


def _study(tmp: Path, seed: int = 0):
    storage, where = open_storage(None, tmp)
    return open_study(storage, where, "bench", resume=False, seed=seed, settings={},
                      random_trials=TRIALS)  # fmt: skip


def _search(inputs, executor, trials: int = TRIALS) -> SearchOutcome:
    settings, plan, data, scorer, space = inputs
    with tempfile.TemporaryDirectory() as tmp:
        handle = _study(Path(tmp))
        outcome = run_search(handle, space, BASE, plan, data, scorer, trials=trials,
                             seed=settings.seed, executor=executor)  # fmt: skip
        assert outcome.ran == trials
    return outcome


@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_trial_throughput(benchmark, tuning_inputs, workers):
    data = tuning_inputs[2]
    began = time.perf_counter()
    # the smoke run (timing off) runs one batch, unwarmed, to check the path only
    trials = workers if benchmark.disabled else TRIALS
    with make_executor("local", run_fit_task, data, workers=workers) as executor:
        if not benchmark.disabled:
            _search(tuning_inputs, executor, trials=workers)  # start and warm every worker
        warmup = time.perf_counter() - began
        benchmark.group = "tune|trials"
        outcome = benchmark.pedantic(_search, args=(tuning_inputs, executor, trials), rounds=2,
                                     iterations=1)  # fmt: skip
    benchmark.extra_info.update(
        role="ours" if workers == 2 else "baseline",
        label=f"{workers}-worker{'s' if workers > 1 else ''}",
        trials=trials,
        fit_seconds=round(outcome.fit_seconds, 2),
        warmup_s=round(warmup, 2),
    )


def test_per_trial_fit(benchmark, tuning_inputs):
    settings, plan, data, scorer, space = tuning_inputs
    task = FitTask(key=(0, 0), fold=0, config=BASE.to_dict(), seed=settings.seed,
                   deterministic=True)  # fmt: skip
    run_fit_task(task, data)  # import and warm TensorFlow before timing
    benchmark.group = "tune|per-trial"
    outcome = benchmark.pedantic(run_fit_task, args=(task, data), rounds=3, iterations=1)
    benchmark.extra_info.update(role="baseline", label="fit")
    assert np.isfinite(outcome.confidence).all()


def test_per_trial_tuner(benchmark, tuning_inputs, tmp_path):
    settings, plan, data, scorer, space = tuning_inputs
    task = FitTask(key=(0, 0), fold=0, config=BASE.to_dict(), seed=settings.seed,
                   deterministic=True)  # fmt: skip
    fitted = run_fit_task(task, data)  # a real window outcome, reused by every round
    handle = _study(tmp_path)
    rounds = iter(range(1000))

    def one_trial():
        study = handle.study
        trial = study.ask()
        params = suggest(trial, space)
        config = to_config(params, BASE).to_dict()
        trial.set_user_attr("config", config)
        state = _Running(trial, params, config)
        kind = _advance(state, fitted, 0, scorer, plan, SearchOutcome())
        assert kind == "complete"
        study.tell(trial, state.values[0])
        return next(rounds)

    one_trial()
    benchmark.group = "tune|per-trial"
    benchmark.pedantic(one_trial, rounds=10, iterations=1)
    benchmark.extra_info.update(role="ours", label="tuner")
