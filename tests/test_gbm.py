"""The LightGBM baseline: window summaries, float32 thresholds, per-head fits, runs."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model.gbm import (
    GBMConfig,
    fit_gbm,
    float32_thresholds,
    summary_names,
    window_summaries,
)
from engine.model.kinds import check_kind, kind_of
from engine.model.network import ModelConfig


def _windows(seed: int = 0, n: int = 900, length: int = 20, width: int = 17):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, length, width)).astype(np.float32)
    signal = X[:, -1, 0] + 0.5 * X[:, :, 1].mean(axis=1)
    y = np.full((n, 3), np.nan, dtype=np.float32)
    y[:, 0] = (signal + rng.normal(size=n) > 0).astype(np.float32)  # every row an event
    events = rng.uniform(size=n) < 0.5  # half the rows
    y[events, 1] = (X[events, -1, 2] + rng.normal(size=events.sum()) > 0).astype(np.float32)
    y[:, 2] = np.where(rng.uniform(size=n) < 0.3, 1.0, np.nan)  # one class only: constant head
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _windows()
    config = GBMConfig(n_estimators=60, early_stopping_rounds=10)
    fit = fit_gbm(X[:600], y[:600], X[600:], y[600:], config, seed=3,
                  pattern_names=["a", "b", "c"])  # fmt: skip
    return X, y, config, fit


# ------------------------------------------------------------------ window summaries


def _summaries_pandas(X: np.ndarray) -> np.ndarray:
    """Reference: each summary from its own definition, feature by feature."""
    import pandas as pd

    cols = []
    for name in ("last", "mean", "min", "max", "change"):
        for f in range(X.shape[2]):
            frame = pd.DataFrame(X[:, :, f].astype(np.float64))
            col = {
                "last": frame.iloc[:, -1],
                "mean": frame.sum(axis=1) / X.shape[1],
                "min": frame.min(axis=1),
                "max": frame.max(axis=1),
                "change": frame.iloc[:, -1] - frame.iloc[:, 0],
            }[name]
            cols.append(col.to_numpy())
    return np.column_stack(cols)


def test_window_summaries_match_their_definitions():
    X, _ = _windows(n=50)
    got = window_summaries(X)
    assert got.dtype == np.float32 and got.shape == (50, 85)
    np.testing.assert_allclose(got, _summaries_pandas(X), rtol=1e-6, atol=1e-6)
    assert summary_names(["f", "g"]) == [
        f"{f}_{s}" for s in ("last", "mean", "min", "max", "change") for f in ("f", "g")
    ]


def test_window_summaries_refuse_other_dtypes():
    with pytest.raises(ValueError, match="float32 array"):
        window_summaries(np.zeros((2, 20, 17)))


# ------------------------------------------------------------------ float32 thresholds


@pytest.fixture(scope="module")
def adjacent_booster():
    """A booster whose thresholds sit half-way between adjacent float32 values."""
    base = np.float32(0.1)
    grid = [base]
    for _ in range(40):
        grid.append(np.nextafter(grid[-1], np.float32(1.0)))
    values = np.array(grid, dtype=np.float32)
    x = np.repeat(values, 30).reshape(-1, 1)
    y = (np.arange(x.shape[0]) // 30) % 2  # alternating labels between adjacent floats
    params = {"objective": "binary", "min_data_in_leaf": 5, "min_data_in_bin": 1,
              "max_bin": 255, "num_leaves": 31, "verbose": -1, "deterministic": True,
              "num_threads": 1, "learning_rate": 0.5}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=5)
    return booster, values


def test_thresholds_rounded_to_float32_change_predictions_unless_floored(adjacent_booster):
    booster, values = adjacent_booster
    text = booster.model_to_string()
    thresholds = [float(t) for line in text.splitlines() if line.startswith("threshold=")
                  for t in line.split("=")[1].split()]  # fmt: skip
    # the hazard exists: some float64 threshold rounds *up* to a float32 that is a data value
    assert any(float(np.float32(t)) > t for t in thresholds)
    floored = lgb.Booster(model_str=float32_thresholds(text))
    x = values.reshape(-1, 1)
    np.testing.assert_array_equal(floored.predict(x), booster.predict(x))
    for line in float32_thresholds(text).splitlines():
        if line.startswith("threshold="):
            for token in line.split("=")[1].split():
                assert float(np.float32(float(token))) == float(token)  # exact in float32


_NEAR = st.floats(float(np.float32(0.0999)), float(np.float32(0.1001)), width=32)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_floored_booster_is_the_same_function_on_float32_inputs(adjacent_booster, data):
    booster, values = adjacent_booster
    grid = st.sampled_from([float(v) for v in values])  # the training values themselves
    x = data.draw(hnp.arrays(np.float32, (64, 1), elements=st.one_of(grid, _NEAR)))
    floored = lgb.Booster(model_str=float32_thresholds(booster.model_to_string()))
    np.testing.assert_array_equal(floored.predict(x), booster.predict(x))


# ------------------------------------------------------------------ fitting


def test_each_head_is_fitted_on_its_events_and_early_stopped_on_validation(fitted):
    X, y, config, fit = fitted
    heads = fit.training["heads"]
    assert heads["a"]["n_train"] == 600 and heads["b"]["n_train"] == int(
        (~np.isnan(y[:600, 1])).sum()
    )
    assert heads["c"]["constant"] == 1.0 and "reason" in heads["c"]
    # the kept rounds minimise the validation log loss, recomputed here with LightGBM's
    # unrounded models on the same validation events (independent of the early-stopping code)
    inputs = window_summaries(X)
    for j, head in enumerate(("a", "b")):
        rows = 600 + np.flatnonzero(~np.isnan(y[600:, j]))
        clf = lgb.LGBMClassifier(**config.classifier_params(3 + j))
        train = np.flatnonzero(~np.isnan(y[:600, j]))
        clf.fit(inputs[train], y[train, j].astype(int))
        losses = []
        for k in range(1, config.n_estimators + 1):
            p = np.clip(clf.predict_proba(inputs[rows], num_iteration=k)[:, 1], 1e-15, 1 - 1e-15)
            t = y[rows, j]
            losses.append(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
        best = int(np.argmin(losses[: heads[head]["rounds"]])) + 1
        assert heads[head]["best_iteration"] == best
        want = clf.predict_proba(inputs[rows], num_iteration=best)[:, 1]
        np.testing.assert_allclose(fit.model.predict(X[rows])[:, j], want, atol=1e-6)
    np.testing.assert_array_equal(fit.model.predict(X[:5])[:, 2], np.ones(5, np.float32))


def test_a_run_that_never_stops_early_keeps_the_validation_minimum():
    # the validation loss bottoms out early and the patience outlasts the run, so early stopping
    # never fires; the kept rounds must still be the validation minimum, not the last round
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 20, 17)).astype(np.float32)
    y = (0.3 * X[:, -1, :1] + rng.normal(size=(600, 1)) > 0).astype(np.float32)
    config = GBMConfig(n_estimators=40, early_stopping_rounds=39, learning_rate=0.2)
    fit = fit_gbm(X[:400], y[:400], X[400:], y[400:], config, pattern_names=["a"])
    head = fit.training["heads"]["a"]
    curve = fit.history.get_column("a_val_loss").to_numpy()
    assert head["rounds"] == config.n_estimators  # early stopping did not fire
    assert head["best_iteration"] == int(np.argmin(curve)) + 1 < config.n_estimators
    # reference: LightGBM itself, watching the validation set only
    inputs, t = window_summaries(X), y[:, 0]
    clf = lgb.LGBMClassifier(**config.classifier_params(0))
    stop = lgb.early_stopping(config.early_stopping_rounds, verbose=False)
    yt, yv = t[:400].astype(int), t[400:].astype(int)
    clf.fit(inputs[:400], yt, eval_X=(inputs[400:],), eval_y=(yv,), callbacks=[stop])
    assert head["best_iteration"] == clf.best_iteration_
    p = np.clip(fit.model.predict(X[400:])[:, 0].astype(np.float64), 1e-15, 1 - 1e-15)
    kept = -np.mean(t[400:] * np.log(p) + (1 - t[400:]) * np.log(1 - p))
    assert kept == pytest.approx(curve.min(), abs=1e-6)


def test_history_is_the_event_weighted_mean_of_the_heads(fitted):
    _, y, _, fit = fitted
    h = fit.history
    counts = {"a": int((~np.isnan(y[600:, 0])).sum()), "b": int((~np.isnan(y[600:, 1])).sum())}
    last = h.row(h.height - 1, named=True)
    want = (counts["a"] * last["a_val_loss"] + counts["b"] * last["b_val_loss"]) / sum(
        counts.values()
    )
    assert last["val_loss"] == pytest.approx(want)
    assert h.get_column("epoch").to_list() == list(range(1, h.height + 1))
    assert fit.best_epoch == max(fit.training["heads"][p]["best_iteration"] for p in ("a", "b"))


def test_same_seed_same_trees_and_seed_matters():
    X, y = _windows(seed=1, n=500)
    config = GBMConfig(n_estimators=30, subsample=0.7, colsample_bytree=0.6)
    runs = [fit_gbm(X[:350], y[:350], X[350:], y[350:], config, seed=s,
                    pattern_names=["a", "b", "c"]) for s in (5, 5, 6)]  # fmt: skip
    text = [r.model.boosters["a"].model_to_string() for r in runs]
    assert text[0] == text[1] and text[0] != text[2]


def test_config_errors_name_the_setting():
    with pytest.raises(ValueError, match="`num_threads` must be an integer >= 1"):
        GBMConfig(num_threads=0)
    with pytest.raises(ValueError, match="`subsample` must lie in"):
        GBMConfig(subsample=1.5)
    with pytest.raises(ValueError, match="unknown GBMConfig settings"):
        GBMConfig.from_dict({"epochs": 3})


def test_model_kinds():
    assert kind_of(ModelConfig()) == "lstm" and kind_of(GBMConfig()) == "lightgbm"
    with pytest.raises(ValueError, match="unknown model kind 'xgboost'; choose one of lstm"):
        check_kind("xgboost")
