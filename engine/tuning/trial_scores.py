"""Score a trial's validation confidences: per-window objective, monthly skill, strategy returns.

Everything here reads validation days only (:mod:`engine.tuning.windows`):

* the **window value**: the objective on the window's scored validation days,
  against that window's base rates; a trial's value is the mean over its
  windows (after window ``k``: the mean of the first ``k + 1``, reported to
  the pruner);
* the **record** of a finished trial, stored with it in the study:
  the window values, the skill per calendar month (a column of the PBO
  matrix), the pooled skill with its date-block interval, and the daily
  returns of the filtered strategy on the validation periods (for the DSR).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from engine.backtest.simulation import BacktestSettings
from engine.model.runs import TrainDataset
from engine.tuning.scoring import base_rates, monthly_skill, skill, skill_interval
from engine.tuning.strategy import ValidationStrategy, own_rows, per_day_sharpe
from engine.tuning.windows import TuningWindow

__all__ = ["TrialScorer"]


class TrialScorer:
    """Scores of one trial's confidences on the tuned windows' validation days.

    Parameters
    ----------
    dataset : TrainDataset
    plan : list of TuningWindow
    bars : polars.DataFrame
        Bars of the traded tickers (for the strategy).
    objective : {"log_loss_skill", "auc"}
    backtest : BacktestSettings
        The filtered strategy whose validation returns the DSR deflates.
    n_boot, seed : int
        Bootstrap replicates and seed of the skill interval.
    """

    def __init__(
        self,
        dataset: TrainDataset,
        plan: list[TuningWindow],
        bars: pl.DataFrame,
        objective: str,
        backtest: BacktestSettings,
        *,
        n_boot: int = 1000,
        seed: int = 0,
    ) -> None:
        score_set = dataset.score_set
        assert score_set.y is not None
        self.objective = objective
        self.n_boot, self.seed = n_boot, seed
        self.patterns = list(score_set.pattern_names)
        head = backtest.pattern_head
        if head not in self.patterns:
            raise ValueError(
                f"the strategy {backtest.strategy!r} is filtered by the head {head!r}, which "
                f"the model does not have (heads: {', '.join(self.patterns)})"
            )
        self.head = self.patterns.index(head)
        index = score_set.index
        dates = [index.get_column("date").to_numpy()[w.validation_days] for w in plan]
        dates = [d.astype("datetime64[D]") for d in dates]
        self._y = [score_set.y[w.validation_days] for w in plan]
        self._scored = [w.scored for w in plan]
        self._rates = [base_rates(y[s]) for y, s in zip(self._y, self._scored, strict=True)]
        self._own = own_rows(plan, dates)
        pooled = [o & s for o, s in zip(self._own, self._scored, strict=True)]
        self._pooled = pooled
        self.pooled_dates = np.concatenate([d[m] for d, m in zip(dates, pooled, strict=True)])
        self.pooled_y = np.concatenate([y[m] for y, m in zip(self._y, pooled, strict=True)])
        self.pooled_rates = np.concatenate(
            [np.tile(r, (int(m.sum()), 1)) for r, m in zip(self._rates, pooled, strict=True)]
        )
        months = self.pooled_dates.astype("datetime64[M]")
        self._months_of_rows = months
        self.months, _ = monthly_skill(
            months, self.pooled_y, np.full(self.pooled_y.shape, 0.5), self.pooled_rates, objective
        )
        keys = [
            index[w.validation_days[o]].select("ticker", "date")
            for w, o in zip(plan, self._own, strict=True)
        ]
        self._strategy_windows = [i for i, k in enumerate(keys) if k.height]
        self.strategy = ValidationStrategy(bars, keys, backtest)
        self.unfiltered = self.strategy.unfiltered_returns()

    @property
    def strategy_dates(self) -> np.ndarray:
        """Days of the strategy returns (every validation period, in order)."""
        return self.strategy.dates

    def window_value(self, position: int, confidence: np.ndarray) -> float:
        """The objective on window ``position``'s scored validation days."""
        scored = self._scored[position]
        return skill(
            self._y[position][scored], confidence[scored], self._rates[position], self.objective
        )

    def record(self, confidences: list[np.ndarray]) -> dict[str, Any]:
        """Everything the selection needs about a finished trial (JSON-ready).

        Parameters
        ----------
        confidences : list of ndarray
            Per window, the confidences of its ``validation_days`` rows.

        Returns
        -------
        dict
            ``window_values``, ``monthly`` (aligned with :attr:`months`, None
            where undefined), ``pooled_skill``, ``skill_ci``,
            ``strategy_returns`` (aligned with :attr:`strategy_dates`),
            ``strategy_sharpe`` (per day; None when the strategy never
            traded) and ``take_days`` (days with a position).
        """
        values = [self.window_value(i, c) for i, c in enumerate(confidences)]
        p = np.concatenate([c[m] for c, m in zip(confidences, self._pooled, strict=True)])
        months, monthly = monthly_skill(
            self._months_of_rows, self.pooled_y, p, self.pooled_rates, self.objective
        )
        by_month = dict(zip(months.tolist(), monthly.tolist(), strict=True))
        aligned = [by_month.get(m) for m in self.months.tolist()]
        point, low, high = skill_interval(
            self.pooled_dates,
            self.pooled_y,
            p,
            self.pooled_rates,
            self.objective,
            n_boot=self.n_boot,
            seed=self.seed,
        )
        head = [confidences[i][self._own[i]][:, self.head] for i in self._strategy_windows]
        returns = self.strategy.returns(head)
        sharpe = per_day_sharpe(returns)
        return {
            "window_values": [_plain(v) for v in values],
            "monthly": [_plain(v) for v in aligned],
            "pooled_skill": _plain(point),
            "skill_ci": [_plain(low), _plain(high)],
            "strategy_returns": [float(r) for r in returns],
            "strategy_sharpe": sharpe,
            "traded_days": int(np.count_nonzero(returns)),
        }


def _plain(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
