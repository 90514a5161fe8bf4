"""The executors and the search loop's failure handling, without training.

Real Ray where Ray is what is tested (a two-node local cluster of one CPU
each, started and shut down here); otherwise the in-process executor with
small module-level task functions.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import typer

from engine.cli.output import call_or_exit
from engine.model.network import ModelConfig
from engine.parallel import (
    InProcessExecutor,
    ProcessExecutor,
    RayExecutor,
    WorkerFailure,
    ray_task_cpus,
    threads_per_worker,
    usable_cores,
)
from engine.tuning.search import max_consecutive_failures, run_search
from engine.tuning.selection import select
from engine.tuning.space import default_space
from engine.tuning.study import open_storage, open_study
from tests.worker_crash import die


def _nodes(*cpus, dead=()):
    alive = [{"Alive": True, "Resources": {"CPU": float(c)}} for c in cpus]
    return alive + [{"Alive": False, "Resources": {"CPU": float(c)}} for c in dead]


@pytest.mark.parametrize(
    ("workers", "cpus", "dead", "expected"),
    [
        (1, (1, 1), (), 1),  # 2 CPUs in all, but no node holds 2
        (1, (4, 2), (), 4),
        (2, (8, 8), (), 8),
        (3, (8, 8), (), 5),
        (8, (2, 2), (), 1),
        (1, (2,), (64,), 2),  # a dead node's CPUs are not there
    ],
)
def test_a_ray_task_never_asks_for_more_cpus_than_one_node_has(workers, cpus, dead, expected):
    nodes = _nodes(*cpus, dead=dead)
    got = ray_task_cpus(workers, nodes)
    # brute force: the largest per-task share that fits on some alive node
    total, largest = sum(cpus), max(cpus)
    fits = [k for k in range(1, total + 1) if k <= largest and k * workers <= total] or [1]
    assert got == expected == max(fits)


@pytest.mark.slow
def test_ray_runs_a_fit_on_a_cluster_of_one_cpu_nodes():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # a Ray left by an earlier test: this test needs its own cluster
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        with RayExecutor(divmod, 7, workers=1) as ex:
            assert ex.threads == 1
            # before the cap, the task asked for both nodes' 2 CPUs and was never scheduled
            assert ray.get(ex.submit(15), timeout=60) == divmod(15, 7)
        with RayExecutor(die, 7, workers=1) as ex:
            # a crashed worker is not a task's error: Ray's WorkerCrashedError is wrapped
            with pytest.raises(WorkerFailure, match=r"a Ray worker failed \(WorkerCrashedError"):
                ex.wait([ex.submit(0)])
    finally:
        ray.shutdown()
        cluster.shutdown()


# --- the search loop with fake fits: failed and undefined trials -------------------------

_N_MONTHS, _N_DAYS = 12, 60


def _fake_fit(task, shared):
    """Trial ``shared["raise"]`` raises, trial ``shared["nan"]`` scores NaN; others a value."""
    number, position = task.key
    if number in shared["raise"]:
        raise MemoryError(f"fit of trial {number} ran out of memory")
    value = float("nan") if number in shared["nan"] else 0.01 * (number + 1) + 0.001 * position
    return SimpleNamespace(confidence=value, seconds=0.0, epochs=1)


class _FakeScorer:
    """The scorer's interface: a window's value is the fake confidence itself."""

    def window_value(self, position, confidence):
        return float(confidence)

    def record(self, confidences):
        rng = np.random.default_rng(int(confidences[0] * 1e4))
        returns = rng.normal(0.0, 0.01, _N_DAYS)
        return {
            "window_values": [float(c) for c in confidences],
            "monthly": rng.normal(0.0, 0.01, _N_MONTHS).tolist(),
            "pooled_skill": float(np.mean(confidences)),
            "skill_ci": [float(np.mean(confidences)) - 0.01, float(np.mean(confidences)) + 0.01],
            "strategy_returns": returns.tolist(),
            "strategy_sharpe": float(returns.mean() / returns.std(ddof=1)),
            "take_days": _N_DAYS,
        }


_PLAN = [SimpleNamespace(number=k, model_id=f"wf{k:02d}") for k in range(2)]


def _fake_search(tmp_path, trials, raising=(), nan=()):
    storage, where = open_storage(None, tmp_path)
    handle = open_study(storage, where, "s", resume=False, seed=0, settings={},
                        startup=100, random_trials=2)  # fmt: skip
    shared = {"raise": set(raising), "nan": set(nan)}
    events = []
    with InProcessExecutor(_fake_fit, shared) as ex:
        outcome = run_search(handle, default_space(), ModelConfig(epochs=1), _PLAN, shared,
                             _FakeScorer(), trials=trials, seed=0, executor=ex,
                             progress=events.append)  # fmt: skip
    return handle.study, outcome, events


def test_a_failed_or_undefined_trial_fails_alone_and_the_search_goes_on(tmp_path):
    study, outcome, events = _fake_search(tmp_path, trials=4, raising={1}, nan={2})
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    errors = {t.number: t.user_attrs.get("error") for t in study.get_trials()}
    assert errors[1] == "MemoryError: fit of trial 1 ran out of memory"
    assert "wf00: the objective is undefined (nan)" in errors[2]
    assert errors[0] is errors[3] is None
    assert (outcome.ran, outcome.failed) == (4, 2)
    assert [e["state"] for e in events] == [s.lower().replace("fail", "failed") for s in states]
    # the DSR deflates by the trials tried (complete and pruned), never the failed ones
    selection = select(study, n_features=17, n_patterns=4)
    assert (selection.n_complete, selection.n_failed) == (4, 2)
    assert selection.dsr["n_trials"] == 4


def test_consecutive_failures_stop_the_search_with_a_clear_message(tmp_path):
    limit = max_consecutive_failures(1)
    assert limit == 3 and max_consecutive_failures(4) == 8
    # trials 1 and 2 fail, 3 completes (the streak restarts), then 4, 5, 6 fail
    with pytest.raises(WorkerFailure) as info:
        _fake_search(tmp_path, trials=20, raising={1, 2, 4, 5}, nan={6})
    message = str(info.value)
    assert message.startswith("3 trials failed in a row (trials 4, 5, 6), the search stops")
    assert "wf00: the objective is undefined" in message and "--resume" in message
    storage, where = open_storage(None, tmp_path)
    study = optuna.load_study(study_name="s", storage=storage)
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL", "FAIL"]


def _fail_through_the_cli(failure):
    try:
        call_or_exit(failure)
    except typer.Exit as stop:
        return stop.exit_code
    return None


def test_a_dead_local_worker_is_a_clear_error_without_traceback(capsys):
    with ProcessExecutor(die, None, workers=2) as pool:
        handle = pool.submit(0)
        with pytest.raises(WorkerFailure, match="a local worker process died") as info:
            pool.wait([handle])

    def failure():
        raise info.value

    assert _fail_through_the_cli(failure) == 1
    err = capsys.readouterr().err
    assert "error: a local worker process died (out of memory?); use fewer --workers" in err
    assert "Traceback" not in err


def test_a_stopped_search_is_a_clear_error_without_traceback(tmp_path, capsys):
    def failure():
        _fake_search(tmp_path, trials=5, raising={0, 1, 2})

    assert _fail_through_the_cli(failure) == 1
    err = capsys.readouterr().err
    assert "error: 3 trials failed in a row (trials 0, 1, 2), the search stops" in err
    assert "Traceback" not in err


def test_threads_follow_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert usable_cores() == 3
    assert threads_per_worker(1) == 3 and threads_per_worker(2) == 1
    assert threads_per_worker(2, cores=16) == 8  # an explicit count is used as given
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows: no affinity to ask
    assert usable_cores() == 16 and threads_per_worker(2) == 8
