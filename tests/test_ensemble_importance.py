"""Ensemble stacking and member checks; permutation importance and its null."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy.optimize import minimize

from engine.evaluation.importance import (
    group_summaries,
    permutation_importance,
    permute_feature,
    permuted_scores,
)
from engine.model.ensemble import EnsembleError, EnsembleModel, check_members, combine, fit_stack


def _penalised_loss(c, Z, y, l2):
    s = Z @ c
    return np.mean(np.logaddexp(0.0, s) - y * s) + l2 * np.sum(c[1:] ** 2)


def test_stack_minimises_the_penalised_log_loss():
    rng = np.random.default_rng(0)
    n = 800
    y = (rng.uniform(size=n) < 0.4).astype(float)
    p = np.column_stack([
        1 / (1 + np.exp(-(1.5 * (y - 0.4) + rng.normal(0, 1, n)))),
        1 / (1 + np.exp(-(0.5 * (y - 0.4) + rng.normal(0, 1, n)))),
        rng.uniform(0.05, 0.95, n),
    ])  # fmt: skip
    coef = fit_stack(p, y, l2=1e-3)
    Z = np.column_stack([np.ones(n), np.log(p / (1 - p))])
    # an independent derivative-free minimiser of the same objective agrees
    other = minimize(
        _penalised_loss,
        np.zeros(4),
        args=(Z, y, 1e-3),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20000, "maxfev": 20000},
    )
    np.testing.assert_allclose(coef, other.x, atol=2e-3)
    assert _penalised_loss(coef, Z, y, 1e-3) <= _penalised_loss(other.x, Z, y, 1e-3) + 1e-9
    assert coef[1] > coef[2] > abs(coef[3])  # the better member weighs more, noise least
    np.testing.assert_allclose(combine(p, "stack", coef), 1 / (1 + np.exp(-(Z @ coef))))


def test_ensemble_model_combines_each_head():
    members = [lambda X: np.full((len(X), 2), 0.2), lambda X: np.full((len(X), 2), 0.6)]
    model = EnsembleModel(members, "stack", {"a": None, "b": [0.0, 1.0, 0.0]}, ["a", "b"])
    out = model.predict(np.zeros((3, 20, 17), np.float32))
    np.testing.assert_allclose(out[:, 0], 0.4, rtol=1e-6)  # no weights: the mean
    np.testing.assert_allclose(out[:, 1], 0.2, rtol=1e-6)  # only the first member's log-odds
    with pytest.raises(ValueError, match="unknown ensemble method 'median'"):
        EnsembleModel(members, "median", {}, ["a"])


RUN = {
    "feature_names": ["f1", "f2", "f3"],
    "pattern_names": ["a", "b"],
    "settings": {"split": "walk-forward", "seed": 0},
    "data": {"fingerprint": "abc", "tickers": ["X"], "start": None, "end": None},
    "windows": [{"model_id": "wf00", "test_start": "2020-01-01", "test_end": "2021-01-01"}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feature_names": ["f1", "f3", "f2"]}, "features in another order .*position 1"),
        ({"pattern_names": ["a"]}, r"predicts \['a'\] but r1 predicts \['a', 'b'\]"),
        ({"data": {**RUN["data"], "fingerprint": "xyz"}}, "different data \\(fingerprint"),
        ({"windows": []}, "window 0 is absent in r2"),
        ({"settings": {"split": "holdout", "seed": 0}}, r"differ in run settings \['split'\]"),
        ({"model_kind": "ensemble"}, "is an ensemble already"),
    ],
)
def test_members_that_cannot_be_combined_are_refused(change, message):
    assert check_members({"r1": RUN, "r2": {**RUN, "settings": {**RUN["settings"], "seed": 5}}})
    with pytest.raises(EnsembleError, match=message):
        check_members({"r1": RUN, "r2": {**RUN, **change}})
    with pytest.raises(EnsembleError, match="at least two runs"):
        check_members({"r1": RUN})


# ------------------------------------------------------------------ permutation importance


def _panel(seed: int = 0, n_dates: int = 150, per_date: int = 4):
    rng = np.random.default_rng(seed)
    n = n_dates * per_date
    X = rng.normal(size=(n, 20, 3)).astype(np.float32)
    signal = X[:, -5:, 0].mean(axis=1)
    y = np.column_stack([(signal + rng.normal(0, 0.3, n) > 0), rng.uniform(size=n) < 0.5])
    dates = np.repeat(np.array([dt.date(2020, 1, 1) + dt.timedelta(days=i)
                                for i in range(n_dates)]), per_date)  # fmt: skip
    return X, y.astype(float), dates


def _uses_feature_0(X: np.ndarray) -> np.ndarray:
    s = 1 / (1 + np.exp(-3 * X[:, -5:, 0].mean(axis=1)))
    return np.column_stack([s, s])


def test_permutation_finds_the_used_feature_and_exact_zero_for_the_others():
    X, y, dates = _panel()
    base = _uses_feature_0(X)
    scores = permuted_scores(_uses_feature_0, X, np.random.default_rng(1))
    table = permutation_importance(y, dates, base, scores, ["f0", "f1", "f2"], ["a", "b"],
                                   n_boot=200, seed=0)  # fmt: skip
    a = {r["feature"]: r for r in table.filter(table["pattern"] == "a").to_dicts()}
    assert a["f0"]["drop"] > 0.2 and a["f0"]["ci_low"] > 0 and a["f0"]["p_value_adj"] < 0.05
    for f in ("f1", "f2"):  # unused: the permuted scores are the original ones
        assert a[f]["drop"] == 0.0 and a[f]["ci_low"] == 0.0 == a[f]["ci_high"]
    b = table.filter(table["pattern"] == "b")  # a coin: no feature matters for it
    assert (b["ci_low"] <= 0).all() and (b["ci_high"] >= 0).all()


def test_permutation_keeps_other_features_and_the_block_values():
    X, _, _ = _panel(n_dates=10)
    Xp = permute_feature(X, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(Xp[:, :, :2], X[:, :, :2])
    rows = {tuple(r) for r in X[:, :, 2]}
    assert {tuple(r) for r in Xp[:, :, 2]} == rows  # whole 20-day blocks moved between windows


def test_group_summaries_sums_each_features_five_summaries():
    values = np.arange(2 * 15, dtype=float).reshape(2, 15)  # 3 features x 5 summaries
    want = np.array([[values[r, f::3].sum() for f in range(3)] for r in range(2)])
    np.testing.assert_array_equal(group_summaries(values, 3), want)
    with pytest.raises(ValueError, match="not a multiple of 4 features"):
        group_summaries(values, 4)
