"""Leakage-free date splitters, the trading-day calendar and the leakage check.

Import the public names from here (``from engine.splits import WalkForward``);
the modules inside are an implementation detail.
"""

from engine.splits.splitters import (
    CombinatorialPurgedCV,
    GappedTimeSeriesCV,
    Holdout,
    LeakageError,
    PurgedKFold,
    SplitInfo,
    TradingDays,
    WalkForward,
    check_no_leakage,
)

__all__ = [
    "CombinatorialPurgedCV",
    "GappedTimeSeriesCV",
    "Holdout",
    "LeakageError",
    "PurgedKFold",
    "SplitInfo",
    "TradingDays",
    "WalkForward",
    "check_no_leakage",
]
