"""Out-of-sample classification metrics, bootstrap intervals and diagnostics.

Import the public names from here (``from engine.evaluation import auc``);
the modules inside are an implementation detail.
"""

from engine.evaluation.metrics import (
    LOG_LOSS_EPS,
    METRICS,
    Evaluation,
    MetricResult,
    accuracy,
    auc,
    block_length,
    bootstrap_interval,
    brier,
    deflated_sharpe_ratio,
    evaluate,
    evaluate_frame,
    expected_max_sharpe,
    log_loss,
    majority_rate,
    point_biserial,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)

__all__ = [
    "LOG_LOSS_EPS",
    "METRICS",
    "Evaluation",
    "MetricResult",
    "accuracy",
    "auc",
    "block_length",
    "bootstrap_interval",
    "brier",
    "deflated_sharpe_ratio",
    "evaluate",
    "evaluate_frame",
    "expected_max_sharpe",
    "log_loss",
    "majority_rate",
    "point_biserial",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
]
