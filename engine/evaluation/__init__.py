"""Out-of-sample classification metrics, bootstrap intervals and Sharpe-ratio inference.

Import the public names from here (``from engine.evaluation import auc``);
the modules inside are an implementation detail:

* :mod:`~engine.evaluation.classification`: point metrics of a binary outcome
  against a confidence (AUC, accuracy, Brier, log loss, point-biserial).
* :mod:`~engine.evaluation.bootstrap`: the stationary block bootstrap (block
  length, resampling indices, percentile intervals).
* :mod:`~engine.evaluation.skill`: :func:`evaluate` and :func:`evaluate_frame`,
  every metric with an interval and a no-skill p-value.
* :mod:`~engine.evaluation.sharpe`: the Sharpe ratio, probabilistic and
  deflated Sharpe ratios.
* :mod:`~engine.evaluation.multiple_testing`: Holm and Benjamini-Hochberg
  adjusted p-values for a table of tests.
* :mod:`~engine.evaluation.permutation`: the block-permutation test of the
  pooled AUC (N draws of permuted outcomes, no retraining).
"""

from engine.evaluation.bootstrap import (
    block_length,
    bootstrap_interval,
    check_bootstrap_settings,
    stationary_bootstrap_indices,
)
from engine.evaluation.classification import (
    LOG_LOSS_EPS,
    METRICS,
    accuracy,
    auc,
    brier,
    log_loss,
    majority_rate,
    point_biserial,
)
from engine.evaluation.multiple_testing import adjust_p_values, benjamini_hochberg, holm
from engine.evaluation.permutation import permutation_auc_test
from engine.evaluation.sharpe import (
    PERIODS_PER_YEAR,
    check_periods_per_year,
    check_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)
from engine.evaluation.skill import Evaluation, MetricResult, evaluate, evaluate_frame

__all__ = [
    "LOG_LOSS_EPS",
    "METRICS",
    "PERIODS_PER_YEAR",
    "Evaluation",
    "MetricResult",
    "accuracy",
    "adjust_p_values",
    "auc",
    "benjamini_hochberg",
    "block_length",
    "bootstrap_interval",
    "brier",
    "check_bootstrap_settings",
    "check_periods_per_year",
    "check_returns",
    "deflated_sharpe_ratio",
    "evaluate",
    "evaluate_frame",
    "expected_max_sharpe",
    "holm",
    "log_loss",
    "majority_rate",
    "permutation_auc_test",
    "point_biserial",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
    "stationary_bootstrap_indices",
]
