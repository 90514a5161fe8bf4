"""Trials and windows scale out: the same seeds give the same results on every backend.

One module-scoped local Ray (``num_cpus=2``, no dashboard), started once.

* ``engine tune``: the search runs twice with two workers, on a spawn
  process pool and on Ray, over three walk-forward windows. Four trials
  make two batches: the second batch meets the pruner (one of its trials
  is stopped) and TPE with two completed trials behind it. Parameters,
  states, per-window values and objectives must be identical.
* ``engine train --workers``: the windows of a run fitted one after the
  other here, on two local processes and on Ray give the same predictions.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import polars as pl
import pytest

from engine.backtest.simulation import BacktestSettings
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, prepare_dataset, train_windows
from engine.parallel import (
    BackendUnavailable,
    InProcessExecutor,
    ProcessExecutor,
    make_executor,
    threads_per_worker,
)
from engine.tuning.search import run_search
from engine.tuning.space import Choice, Fixed, default_space
from engine.tuning.study import open_storage, open_study
from engine.tuning.trial_scores import TrialScorer
from engine.tuning.windows import plan_windows, validation_data
from tests.tuning_universe import planted_bars

ray = pytest.importorskip("ray")  # the dev extra installs it; CI runs these tests


def _collect(ex):
    handles = {ex.submit(n): n for n in (17, 5, "x")}
    out = {}
    while handles:
        done, _ = ex.wait(list(handles))
        for handle, result, error in done:
            n = handles.pop(handle)
            out[n] = result if error is None else type(error).__name__
    return out


def test_executors_return_results_and_task_errors():
    expected = {17: (8, 1), 5: (2, 1), "x": "TypeError"}
    assert _collect(InProcessExecutor(divmod, 2)) == expected
    with ProcessExecutor(divmod, 2, workers=2) as pool:
        assert pool.threads == threads_per_worker(2)
        assert _collect(pool) == expected


def test_ray_backend_without_ray_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is absent
    with pytest.raises(BackendUnavailable, match=r"pip install -e '\.\[distributed\]'"):
        make_executor("ray", divmod, 2, workers=2)


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def search_inputs():
    bars = planted_bars(1, n_days=1000, n_stocks=3, drift=0.01)
    settings = RunSettings(split="walk-forward", train_months=12, validation_months=4,
                           test_months=4, step_months=4, seed=3)  # fmt: skip
    dataset = prepare_dataset(bars, ["S0", "S1", "S2"], settings)
    plan = plan_windows(dataset, settings, 3)  # the pruner may stop a trial after window 2
    scorer = TrialScorer(dataset, plan, bars, "log_loss_skill",
                         BacktestSettings(threshold=0.5, n_null=0), n_boot=50)  # fmt: skip
    space = {
        **default_space(),
        "learning_rate": Choice((1e-2, 3e-3, 1e-6)),
        "lstm_units": Choice((4, 8)),
        "batch_size": Choice((64, 128)),
        "imbalance": Fixed("none"),
        "output_bias": Choice(("prior", "zero")),
    }
    base = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, epochs=1, output_bias="prior")
    return settings, plan, validation_data(dataset, plan), scorer, space, base


# Trials 0 and 1 start at the base rates and learn; trial 2 cannot learn (learning rate
# 1e-6) and starts at 0.5 on every head, far from the base rates, so its running mean after
# window 2 lies below the median of trials 0 and 1 and the pruner stops it. Trial 3 is TPE's.
ENQUEUED = [
    {"learning_rate": 1e-2, "lstm_units": 8, "output_bias": "prior"},
    {"learning_rate": 3e-3, "lstm_units": 4, "output_bias": "prior"},
    {"learning_rate": 1e-6, "lstm_units": 4, "output_bias": "zero"},
]


def _search(tmp_path, inputs, backend):
    settings, plan, data, scorer, space, base = inputs
    storage, where = open_storage(None, tmp_path / backend)
    handle = open_study(storage, where, "s", resume=False, seed=settings.seed, settings={},
                        startup=2, random_trials=2)  # fmt: skip
    fixed = {"lstm_dropout": 0.3, "lstm_recurrent_dropout": 0.1, "l2": 1e-3, "batch_size": 128}
    for params in ENQUEUED:
        handle.study.enqueue_trial({**fixed, **params})
    events = []
    outcome = run_search(handle, space, base, plan, data, scorer, trials=4, seed=settings.seed,
                         backend=backend, workers=2, progress=events.append)  # fmt: skip
    trials = [
        (t.number, t.state.name, t.params, t.value, t.user_attrs.get("window_values"))
        for t in handle.study.get_trials()
    ]
    return outcome, trials, events


@pytest.mark.slow
def test_same_seeds_same_trials_on_local_processes_and_ray(tmp_path, search_inputs, local_ray):
    local, local_trials, local_events = _search(tmp_path, search_inputs, "local")
    remote, ray_trials, _ = _search(tmp_path, search_inputs, "ray")
    assert (local.workers, local.threads) == (2, threads_per_worker(2))  # this machine's cores
    assert remote.threads == 1  # the local Ray's 2 CPUs shared by 2 concurrent tasks
    assert local_trials == ray_trials
    states = [t[1] for t in local_trials]
    assert states[:3] == ["COMPLETE", "COMPLETE", "PRUNED"] and len(states) == 4
    for _, state, _, value, windows in local_trials:
        if state == "COMPLETE":  # the objective is the mean of the window values
            assert value == pytest.approx(sum(windows) / len(windows), rel=1e-12)
            assert len(windows) == 3
        else:
            assert len(windows) == 2  # stopped after the first prunable window
    reported = {e["number"]: e["state"] for e in local_events}
    assert reported == {n: s.lower() for n, s, *_ in local_trials}


@pytest.mark.slow
def test_train_windows_give_the_same_predictions_on_every_backend(tmp_path, local_ray):
    # two windows (12-month steps), fitted three ways
    settings = RunSettings(split="walk-forward", train_months=12, validation_months=4,
                           test_months=4, step_months=12, seed=3)  # fmt: skip
    bars = planted_bars(1, n_days=1000, n_stocks=3, drift=0.01)
    dataset = prepare_dataset(bars, ["S0", "S1", "S2"], settings)
    config = ModelConfig(lstm_units=4, lstm2_units=2, dense_units=2, epochs=1)
    frames = {}
    for backend, workers in (("local", 1), ("local", 2), ("ray", 2)):
        out = tmp_path / f"{backend}{workers}"
        report = train_windows(dataset, out, settings=settings, config=config,
                               backend=backend, workers=workers)  # fmt: skip
        assert report.status == "complete" and len(report.windows) == 2
        frames[(backend, workers)] = pl.read_parquet(out / "predictions.parquet")
        run = json.loads((out / "run.json").read_text())
        if workers > 1:
            threads = threads_per_worker(2) if backend == "local" else 1  # Ray: 2 CPUs / 2
            assert run["execution"] == {"backend": backend, "workers": 2, "threads": threads}
    reference = frames[("local", 1)]
    columns = [c for c in reference.columns if c.endswith("_p")]
    for key, frame in frames.items():
        assert frame.select("ticker", "date", "model_id").equals(
            reference.select("ticker", "date", "model_id")
        ), key
        np.testing.assert_array_equal(frame.select(columns).to_numpy(),
                                      reference.select(columns).to_numpy())  # fmt: skip
