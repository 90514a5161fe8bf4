"""A resumed study keeps its first session's number of random start-up trials."""

from __future__ import annotations

import optuna

from engine.tuning.study import open_storage, open_study


def _objective(x):
    return -((x - 0.3) ** 2)


def _run(study, until):
    while len(study.trials) < until:
        trial = study.ask()
        study.tell(trial, _objective(trial.suggest_float("x", 0.0, 1.0)))


def test_resume_keeps_the_stored_random_trials_and_reseeds(tmp_path):
    storage, where = open_storage(None, tmp_path)
    first = open_study(storage, where, "s", resume=False, seed=0, settings={}, random_trials=4)
    _run(first.study, 2)
    # a later session with more --trials would compute another number: the stored one wins
    resumed = open_study(storage, where, "s", resume=True, seed=0, settings={}, random_trials=10)
    assert resumed.study.user_attrs["random_trials"] == 4
    _run(resumed.study, 8)
    got = [t.params["x"] for t in resumed.study.trials]

    # reference: plain Optuna, the same two first trials, TPE reseeded with seed + 2 trials
    # that models the history after 4 trials in all
    reference = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=2, n_startup_trials=4)
    )
    for x in got[:2]:
        reference.add_trial(
            optuna.trial.create_trial(
                params={"x": x},
                distributions={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
                value=_objective(x),
            )
        )
    _run(reference, 8)
    assert got == [t.params["x"] for t in reference.trials]
