"""Null distributions for a filtered backtest."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.backtest.simulation import BacktestSettings, PriceGrid, simulate
from engine.evaluation import sharpe_ratio

__all__ = ["random_filter_null"]


def random_filter_null(
    grid: PriceGrid, candidates: pl.DataFrame, n_taken: int, settings: BacktestSettings,
    real_sharpe: float | None,
) -> dict[str, Any] | None:  # fmt: skip
    """Sharpe ratios of ``n_null`` random filters that take ``n_taken`` candidates each.

    It answers "is the model better than taking the same number of signals
    at random?": each random filter takes ``n_taken`` candidate signals
    (non-zero signals with a confidence), chosen uniformly, and is
    simulated like the model's filter. The p-value is the share of random
    filters whose Sharpe ratio reaches the model's.
    """
    if settings.n_null == 0 or candidates.height == 0 or real_sharpe is None:
        return None
    row_of = {d: k for k, d in enumerate(grid.dates.astype("datetime64[D]").tolist())}
    col_of = {t: k for k, t in enumerate(grid.tickers)}
    rows = np.array([row_of[d] for d in candidates.get_column("date").to_list()])
    cols = np.array([col_of[t] for t in candidates.get_column("ticker").to_list()])
    signs = candidates.get_column("signal").to_numpy().astype(np.float64)
    rng = np.random.default_rng(settings.seed)
    values = []
    signal = np.zeros_like(grid.close)
    for _ in range(settings.n_null):
        pick = rng.choice(candidates.height, size=n_taken, replace=False)
        signal[:] = 0.0
        signal[rows[pick], cols[pick]] = signs[pick]
        values.append(sharpe_ratio(simulate(grid.open, grid.close, signal, settings).returns))
    usable = np.array([v for v in values if v is not None])
    if usable.size == 0:
        return None
    return {
        "n": int(usable.size),
        "taken_per_filter": int(n_taken),
        "sharpe_median": float(np.median(usable)),
        "sharpe_low": float(np.quantile(usable, 0.025)),
        "sharpe_high": float(np.quantile(usable, 0.975)),
        "p_value": float((1 + np.sum(usable >= real_sharpe)) / (1 + usable.size)),
    }
