"""Selection after the search: DSR and PBO from the study, the fallback, the gate, no test leak.

The study here is a real Optuna study (in memory) filled with trials whose
records are drawn at random; every statistic is recomputed in the test from
the records with the library functions it must agree with.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import polars as pl
import pytest

from engine.backtest.simulation import BacktestSettings
from engine.evaluation import deflated_sharpe_ratio, sharpe_ratio
from engine.evaluation.overfitting import cscv_pbo
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, prepare_dataset
from engine.tuning.selection import gate, select
from engine.tuning.trial_scores import TrialScorer
from engine.tuning.windows import clean_test_rows, plan_windows, validation_data
from tests.tuning_universe import random_walk_bars

TRIALS_DIST = {"lstm_units": optuna.distributions.CategoricalDistribution([8, 16, 32])}


def _trial(study, rng, *, value, units, months, default=False, flat=False, skill=None):
    returns = np.zeros(300) if flat else rng.normal(0.0005, 0.01, 300)
    config = ModelConfig(lstm_units=units, lstm2_units=units // 2).to_dict()
    attrs = {
        "config": config,
        "monthly": list(rng.normal(value, 0.05, months)),
        "pooled_skill": value if skill is None else skill,
        "skill_ci": [value - 0.02, value + 0.02],
        "strategy_returns": list(returns),
        "strategy_sharpe": None if flat else sharpe_ratio(returns, periods_per_year=1),
        "default": default,
    }
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE,
            value=value,
            params={"lstm_units": units},
            distributions=TRIALS_DIST,
            user_attrs=attrs,
        )
    )
    return attrs


def _pruned(study, units):
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"lstm_units": units},
            distributions=TRIALS_DIST,
            intermediate_values={0: -1.0},
        )
    )


def test_dsr_and_pbo_are_computed_from_the_records():
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    records = [
        _trial(study, rng, value=v, units=u, months=20, flat=(i == 3))
        for i, (v, u) in enumerate([(0.01, 8), (0.03, 16), (0.02, 32), (-0.01, 8)])
    ]
    _pruned(study, 32)
    _pruned(study, 16)
    sel = select(study, n_features=17, n_patterns=4)
    assert sel.number == 1 and sel.value == pytest.approx(0.03)
    assert (sel.n_complete, sel.n_pruned, sel.n_failed) == (4, 2, 0)
    sharpes = [r["strategy_sharpe"] or 0.0 for r in records]  # never traded: Sharpe 0
    expected = deflated_sharpe_ratio(
        records[1]["strategy_returns"], 6, sr_variance=float(np.var(sharpes, ddof=1))
    )
    assert sel.dsr["value"] == pytest.approx(expected, rel=1e-12)
    assert sel.dsr["n_trials"] == 6  # pruned trials were tried too
    matrix = np.array([r["monthly"] for r in records]).T
    assert sel.pbo["pbo"] == pytest.approx(cscv_pbo(matrix, 16).pbo)
    # 20 months: S = 16
    assert sel.pbo["n_blocks"] == 16


def test_pbo_uses_fewer_blocks_on_short_validation():
    rng = np.random.default_rng(1)
    study = optuna.create_study(direction="maximize")
    records = [_trial(study, rng, value=v, units=8, months=9) for v in (0.0, 0.01, 0.02)]
    sel = select(study, n_features=17, n_patterns=4)
    matrix = np.array([r["monthly"] for r in records]).T
    assert sel.pbo["n_blocks"] == 8
    assert sel.pbo["pbo"] == pytest.approx(cscv_pbo(matrix, 8).pbo)
    assert any("S = 8" in n for n in sel.notes)


def test_unreliable_ranking_recommends_the_default_or_the_simplest():
    rng = np.random.default_rng(2)
    study = optuna.create_study(direction="maximize")
    # equal skill everywhere: PBO is near 0.5 and every trial is within the best's interval
    for i, units in enumerate([16, 32, 8, 16]):
        _trial(study, rng, value=0.010 + 0.001 * i, units=units, months=24, default=(i == 0))
    sel = select(study, n_features=17, n_patterns=4)
    assert sel.pbo["pbo"] >= 0.5  # equal skill: the ranking is a coin flip out of sample
    assert sel.recommendation["trial"] == 0  # the default, within the interval
    # without a default trial: the fewest weights
    study2 = optuna.create_study(direction="maximize")
    for i, units in enumerate([16, 32, 8, 16]):
        _trial(study2, rng, value=0.010 + 0.001 * i, units=units, months=24)
    sel2 = select(study2, n_features=17, n_patterns=4)
    assert sel2.pbo["pbo"] >= 0.5
    assert sel2.recommendation["trial"] == 2
    assert "simplest" in sel2.recommendation["why"]


def test_selected_without_trades_has_no_dsr_and_is_not_promoted():
    rng = np.random.default_rng(3)
    study = optuna.create_study(direction="maximize")
    _trial(study, rng, value=0.05, units=8, months=12, flat=True)
    _trial(study, rng, value=0.01, units=16, months=12)
    sel = select(study, n_features=17, n_patterns=4)
    assert sel.dsr["value"] is None and any("never traded" in n for n in sel.notes)
    decision = gate(sel, {"selected": {"skill": 0.02, "ci_low": 0.01, "ci_high": 0.03}}, 0.95)
    assert not decision["promoted"]


@pytest.mark.parametrize(
    ("dsr", "low", "promoted"),
    [(0.97, 0.001, True), (0.94, 0.01, False), (0.99, -0.001, False), (0.99, None, False)],
)
def test_gate_needs_both_the_dsr_and_a_positive_test_interval(dsr, low, promoted):
    rng = np.random.default_rng(4)
    study = optuna.create_study(direction="maximize")
    _trial(study, rng, value=0.05, units=8, months=12)
    _trial(study, rng, value=0.01, units=16, months=12)
    sel = select(study, n_features=17, n_patterns=4)
    sel.dsr["value"] = dsr
    test = {"selected": {"skill": 0.01, "ci_low": low, "ci_high": 0.02}}
    decision = gate(sel, test, 0.95)
    assert decision["promoted"] is promoted
    if not promoted:
        assert decision["reasons"]


def test_no_completed_trial_is_a_clear_error():
    study = optuna.create_study(direction="maximize")
    _pruned(study, 8)
    with pytest.raises(ValueError, match="no completed trial"):
        select(study, n_features=17, n_patterns=4)


# ---------------------------------------------------------------------------
# the search never reads the test fold


@pytest.fixture(scope="module")
def clean_and_poisoned():
    """The same universe twice; in the second, every bar from the first test day on is noise."""
    bars = random_walk_bars(5, n_days=1000, n_stocks=3)
    settings = RunSettings(split="walk-forward", train_months=12, validation_months=4,
                           test_months=4, step_months=4)  # fmt: skip
    tickers = ["S0", "S1", "S2"]
    clean = prepare_dataset(bars, tickers, settings)
    plan = plan_windows(clean, settings, 2)
    first_test = plan[-1].bounds[2].astype("datetime64[D]").item()
    rng = np.random.default_rng(9)
    after = pl.col("date") >= first_test
    factor = pl.Series(np.exp(rng.normal(0, 0.2, bars.height)))
    poisoned_bars = bars.with_columns(
        *(pl.when(after).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
          for c in ("open", "high", "low", "close")),
        volume=pl.when(after).then(pl.col("volume") * 7).otherwise(pl.col("volume")),
    ).with_columns(
        high=pl.max_horizontal("open", "high", "low", "close"),
        low=pl.min_horizontal("open", "high", "low", "close"),
    )  # fmt: skip
    poisoned = prepare_dataset(poisoned_bars, tickers, settings)
    return (clean, bars), (poisoned, poisoned_bars), settings


def test_search_inputs_do_not_change_when_the_test_period_is_poisoned(clean_and_poisoned):
    (clean, bars), (poisoned, poisoned_bars), settings = clean_and_poisoned
    results = []
    for dataset, b in ((clean, bars), (poisoned, poisoned_bars)):
        plan = plan_windows(dataset, settings, 2)
        data = validation_data(dataset, plan)
        scorer = TrialScorer(dataset, plan, b, "log_loss_skill",
                             BacktestSettings(threshold=0.5, n_null=0), n_boot=50)  # fmt: skip
        results.append((plan, data, scorer))
    (plan_a, data_a, scorer_a), (plan_b, data_b, scorer_b) = results
    assert [w.bounds for w in plan_a] == [w.bounds for w in plan_b]
    np.testing.assert_array_equal(data_a.X, data_b.X)
    np.testing.assert_array_equal(data_a.y, data_b.y)
    np.testing.assert_array_equal(data_a.score_X, data_b.score_X)
    for fa, fb in zip(data_a.folds, data_b.folds, strict=True):
        for part in ("train", "validation", "score"):
            np.testing.assert_array_equal(getattr(fa, part), getattr(fb, part))
    np.testing.assert_array_equal(scorer_a.pooled_y, scorer_b.pooled_y)
    for pa, pb in zip(scorer_a.strategy.periods, scorer_b.strategy.periods, strict=True):
        np.testing.assert_array_equal(pa.grid.close, pb.grid.close)
        np.testing.assert_array_equal(pa.grid.open, pb.grid.open)
    # and the poison is there: the test rows do differ
    rows = clean_test_rows(clean, plan_a)[-1]
    assert rows.size and not np.array_equal(clean.score_set.X[rows], poisoned.score_set.X[rows])
    # every strategy day lies before the first test day
    assert scorer_a.strategy_dates.max() < plan_a[-1].bounds[2]
    assert math.isfinite(scorer_a.window_value(0, np.full((plan_a[0].validation_days.size, 4),
                                                          0.5)))  # fmt: skip
