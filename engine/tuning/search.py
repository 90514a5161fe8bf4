"""The search loop: Optuna asks, fit tasks run on the executor, the pruner stops the weak.

Trials run in **batches** of ``workers``: the driver asks Optuna for
``workers`` trials, runs their windows (each window a
:class:`engine.model.fit_tasks.FitTask`; a trial's next window is submitted
as soon as its previous one returns, so a fast trial does not wait for a
slow one), and tells Optuna the completed trials only when the whole batch
is done. The pruner (median of *completed* trials) and the sampler (TPE on
completed and pruned trials) therefore see the same history whatever order
the tasks finish in, and the same seeds give the same trials on one worker
process, on several, or on Ray, for the same ``workers``.

A trial whose fit raises, or whose objective is undefined (NaN), is told
Optuna as FAIL with its error in the trial's user attributes (``error``)
and the search goes on: a failed trial does not count towards ``trials``
and is not one of the N trials the DSR deflates by. Only
:func:`max_consecutive_failures` failed trials in a row (in trial order)
stop the search, with an error that quotes the last one.

Every window of every trial uses the window's own seed (``seed + window``):
two configurations differ only by their settings (common random numbers),
and the selected configuration retrained by ``engine train`` with the same
seed gives the same models.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from engine.model.fit_tasks import FitOutcome, FitTask, FoldData, run_fit_task
from engine.model.network import ModelConfig
from engine.parallel import Executor, WorkerFailure, make_executor
from engine.tuning.space import SearchSpace, contains, default_params, suggest, to_config
from engine.tuning.study import StudyHandle
from engine.tuning.trial_scores import TrialScorer
from engine.tuning.windows import TuningWindow

__all__ = ["SearchOutcome", "TrialProgress", "max_consecutive_failures", "run_search"]

#: ``progress(event)`` after each finished trial (``event["kind"] == "trial"``).
TrialProgress = Callable[[dict[str, Any]], None]


def max_consecutive_failures(workers: int) -> int:
    """Failed trials in a row that stop the search: ``max(3, 2 * workers)``.

    Examples
    --------
    >>> max_consecutive_failures(1), max_consecutive_failures(4)
    (3, 8)
    """
    return max(3, 2 * workers)


class _UndefinedObjective(ValueError):
    """A window's objective is not a finite number: the trial fails, the search goes on."""


@dataclass
class SearchOutcome:
    """What the search did in this session.

    Attributes
    ----------
    ran : int
        Trials finished (complete or pruned) in this session.
    failed : int
        Trials failed in this session.
    seconds : float
        Wall time of the search.
    fit_seconds : float
        Time the fit tasks took, summed over tasks.
    stopped_by_timeout : bool
    workers, threads : int
    backend : str
    notes : list of str
    """

    ran: int = 0
    failed: int = 0
    seconds: float = 0.0
    fit_seconds: float = 0.0
    stopped_by_timeout: bool = False
    workers: int = 1
    threads: int = 1
    backend: str = "local"
    notes: list[str] = field(default_factory=list)


@dataclass
class _Running:
    trial: optuna.Trial
    params: dict[str, Any]
    config: dict[str, Any]
    confidences: list[Any] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    seconds: float = 0.0
    epochs: list[int] = field(default_factory=list)


def _finished(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _fail_stale(study: optuna.Study) -> int:
    """Mark trials left running by an interrupted session as failed."""
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return len(stale)


def _best(study: optuna.Study, extra: dict[int, float]) -> tuple[int | None, float | None]:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    pairs = [(t.value, -t.number) for t in done if t.value is not None]
    pairs += [(v, -n) for n, v in extra.items()]
    if not pairs:
        return None, None
    value, neg = max(pairs)
    return -neg, value


def run_search(
    handle: StudyHandle,
    space: SearchSpace,
    base: ModelConfig,
    plan: list[TuningWindow],
    data: FoldData,
    scorer: TrialScorer,
    *,
    trials: int,
    seed: int,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    timeout: float | None = None,
    progress: TrialProgress | None = None,
    executor: Executor | None = None,
) -> SearchOutcome:
    """Run trials until the study holds ``trials`` finished ones (or ``timeout`` passes).

    Parameters
    ----------
    handle : StudyHandle
        The open study (:func:`engine.tuning.study.open_study`).
    space : SearchSpace
    base : ModelConfig
        Settings a trial does not search (epochs, precision, ...), and the
        default configuration enqueued as the first trial of a new study
        when the space holds it.
    plan : list of TuningWindow
    data : FoldData
        :func:`engine.tuning.windows.validation_data` of ``plan``.
    scorer : TrialScorer
    trials : int
        Finished (complete or pruned) trials the study should hold at the end.
    seed : int
        Window ``w`` is fitted with seed ``seed + w.number``.
    backend, workers, address
        See :func:`engine.parallel.make_executor`.
    timeout : float, optional
        Seconds after which no new batch starts (the first batch always runs).
    progress : callable, optional
        Receives one event per finished trial.
    executor : Executor, optional
        An executor already running :func:`engine.model.fit_tasks.run_fit_task`
        over ``data`` (its workers stay up between searches); it replaces
        ``backend``, ``workers`` and ``address`` and is not closed here.

    Returns
    -------
    SearchOutcome

    Raises
    ------
    engine.parallel.WorkerFailure
        After :func:`max_consecutive_failures` failed trials in a row, or
        when the workers themselves failed.
    """
    study = handle.study
    outcome = SearchOutcome(backend=backend, workers=workers)
    stale = _fail_stale(study)
    if stale:
        outcome.notes.append(f"{stale} trial(s) left running by an interrupted session: failed")
    if not handle.resumed:
        defaults = default_params(space, base)
        if contains(space, defaults):
            study.enqueue_trial(defaults, user_attrs={"default": True})
        else:
            outcome.notes.append("the default configuration lies outside the space: not a trial")
    began = time.perf_counter()
    todo = trials - _finished(study)
    if todo <= 0:
        return outcome
    owned = executor is None
    ex = executor or make_executor(backend, run_fit_task, data, workers=workers, address=address)
    outcome.threads, outcome.workers, outcome.backend = ex.threads, ex.workers, ex.name
    workers = ex.workers
    limit = max_consecutive_failures(workers)
    streak: list[optuna.trial.FrozenTrial] = []
    try:
        while todo > 0:
            # the first batch always runs: a session that selects needs finished trials
            late = timeout is not None and time.perf_counter() - began > timeout
            if late and outcome.ran > 0:
                outcome.stopped_by_timeout = True
                break
            n = min(workers, todo)
            numbers = _run_batch(study, ex, space, base, plan, scorer, n, seed, progress,
                                 trials, outcome)  # fmt: skip
            for t in study.get_trials(deepcopy=False):
                if t.number in numbers:  # in trial order, whatever order they finished in
                    failed = t.state == optuna.trial.TrialState.FAIL
                    streak = [*streak, t] if failed else []
                    outcome.failed += failed
                    outcome.ran += not failed
            todo = trials - _finished(study)
            if len(streak) >= limit:
                raise WorkerFailure(_streak_message(streak, _finished(study)))
    finally:
        if owned:
            ex.close()
    outcome.seconds = time.perf_counter() - began
    return outcome


def _streak_message(streak: list[optuna.trial.FrozenTrial], finished: int) -> str:
    numbers = ", ".join(str(t.number) for t in streak)
    last = streak[-1].user_attrs.get("error", "no error recorded")
    return (
        f"{len(streak)} trials failed in a row (trials {numbers}), the search stops; "
        f"the last error: {last}. The study keeps its {finished} finished trial(s): "
        "fix the cause, then continue it with --resume"
    )


def _run_batch(
    study: optuna.Study,
    ex: Executor,
    space: SearchSpace,
    base: ModelConfig,
    plan: list[TuningWindow],
    scorer: TrialScorer,
    n: int,
    seed: int,
    progress: TrialProgress | None,
    total: int,
    outcome: SearchOutcome,
) -> list[int]:
    """Ask for ``n`` trials, run them, tell Optuna; return their numbers."""
    running: dict[int, _Running] = {}
    for _ in range(n):
        trial = study.ask()
        params = suggest(trial, space)
        config = to_config(params, base).to_dict()
        trial.set_user_attr("config", config)
        running[trial.number] = _Running(trial, params, config)

    def submit(number: int, position: int) -> Any:
        task = FitTask(key=(number, position), fold=position, config=running[number].config,
                       seed=seed + plan[position].number, deterministic=True,
                       threads=ex.threads)  # fmt: skip
        return ex.submit(task)

    numbers = sorted(running)
    completed: dict[int, float] = {}
    keys = {submit(number, 0): (number, 0) for number in running}
    try:
        while keys:
            done, _ = ex.wait(list(keys))
            for handle, result, error in done:
                number, position = keys.pop(handle)
                state = running[number]
                if error is None:
                    try:
                        more = _advance(state, result, position, scorer, plan, outcome)
                    except _UndefinedObjective as exc:
                        error = exc
                if error is not None:
                    _fail(study, running.pop(number), error, progress, total)
                    continue
                if more == "next":
                    keys[submit(number, position + 1)] = (number, position + 1)
                elif more == "pruned":
                    study.tell(state.trial, state=optuna.trial.TrialState.PRUNED)
                    _report(progress, study, state, "pruned", None, completed, total)
                    running.pop(number)
                else:
                    completed[number] = _mean(state.values)
                    _report(progress, study, state, "complete", completed[number], completed,
                            total)  # fmt: skip
    except BaseException:
        for number, state in running.items():
            if number in completed:
                study.tell(state.trial, completed[number])
            else:
                study.tell(state.trial, state=optuna.trial.TrialState.FAIL)
        raise
    for number in sorted(completed):
        study.tell(running[number].trial, completed[number])
    return numbers


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


def _advance(
    state: _Running,
    result: FitOutcome,
    position: int,
    scorer: TrialScorer,
    plan: list[TuningWindow],
    outcome: SearchOutcome,
) -> str:
    """Record one finished window; return ``"next"``, ``"pruned"`` or ``"complete"``."""
    value = scorer.window_value(position, result.confidence)
    if not math.isfinite(value):
        raise _UndefinedObjective(
            f"window {plan[position].model_id}: the objective is undefined ({value})"
        )
    state.values.append(value)
    state.confidences.append(result.confidence)
    state.seconds += result.seconds
    state.epochs.append(result.epochs)
    outcome.fit_seconds += result.seconds
    trial = state.trial
    trial.report(_mean(state.values), step=position)
    if position + 1 < len(plan):
        if trial.should_prune():
            trial.set_user_attr("window_values", state.values)
            trial.set_user_attr("pruned_after", plan[position].model_id)
            trial.set_user_attr("seconds", round(state.seconds, 3))
            return "pruned"
        return "next"
    record = scorer.record(state.confidences)
    for key, value in record.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("seconds", round(state.seconds, 3))
    trial.set_user_attr("epochs", state.epochs)
    state.confidences.clear()  # the record holds what the selection needs
    return "complete"


def _fail(
    study: optuna.Study,
    state: _Running,
    error: Exception,
    progress: TrialProgress | None,
    total: int,
) -> None:
    state.trial.set_user_attr("error", f"{type(error).__name__}: {error}")
    study.tell(state.trial, state=optuna.trial.TrialState.FAIL)
    _report(progress, study, state, "failed", None, {}, total, error=str(error))


def _report(
    progress: TrialProgress | None,
    study: optuna.Study,
    state: _Running,
    kind: str,
    value: float | None,
    completed: dict[int, float],
    total: int,
    error: str | None = None,
) -> None:
    if progress is None:
        return
    best_number, best_value = _best(study, completed)
    progress(
        {
            "kind": "trial",
            "number": state.trial.number,
            "state": kind,
            "value": value,
            "cumulative": _mean(state.values) if state.values else None,
            "windows": len(state.values),
            "done": _finished(study) + len(completed),
            "params": dict(state.trial.params),
            "seconds": round(state.seconds, 1),
            "best_number": best_number,
            "best_value": best_value,
            "total": total,
            "error": error,
        }
    )
