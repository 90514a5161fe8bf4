"""Hyperparameter search over walk-forward validation folds, with the selection paid for.

``engine tune`` (:func:`engine.tuning.tune.tune`) searches a space of model
settings (:mod:`~engine.tuning.space`) with Optuna: seeded TPE, one pruner
step per walk-forward window (:mod:`~engine.tuning.study`), trials as pure
fit tasks on local processes or Ray (:mod:`~engine.tuning.search`,
:mod:`engine.parallel`). A trial sees the windows' training and validation
parts only (:mod:`~engine.tuning.windows`); its objective is out-of-sample
skill on validation days (:mod:`~engine.tuning.scoring`,
:mod:`~engine.tuning.trial_scores`).

Choosing the best of N trials is paid for (:mod:`~engine.tuning.selection`):
the deflated Sharpe ratio of the selected trial's filtered strategy on the
validation periods and PBO by CSCV over the trials' monthly validation
skill. Then, and only then, the selected and the default configuration are
scored on test rows no validation period has seen
(:mod:`~engine.tuning.final_test`), and the gate promotes the selection
only when the DSR reaches 0.95 and the test skill is positive with its
interval (:mod:`~engine.tuning.report` writes ``best.toml``).
"""
