"""fit_model: normalization from the training fold only, determinism, best-epoch restore.

Four small fits are shared by the module (one fit costs a few seconds, most
of it graph tracing): ``a`` and ``b`` with the same seed in deterministic
mode, ``c`` with another seed, and ``d`` with the same training fold but a
different validation fold whose labels are the opposite of the training
relation (so the validation loss gets worse as the model learns, and the
best epoch is the first).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import polars as pl
import pytest

from engine.model.network import ModelConfig
from engine.model.trainer import fit_model, masked_loss, normalization_stats, predict

# SPEC dropout rates (the random masks are what determinism has to tame) on a
# smaller backbone.
CONFIG = ModelConfig(lstm_units=16, lstm2_units=8, dense_units=8, batch_size=32, epochs=2)
# Fit d must learn visibly within two epochs: light dropout, a larger step, and
# early stopping after one epoch without improvement.
LEARNER = dataclasses.replace(
    CONFIG,
    lstm_dropout=0.1,
    lstm_recurrent_dropout=0.0,
    head_dropout=0.1,
    learning_rate=1e-2,
    epochs=4,
    early_stopping_patience=1,
)
SEED = 7


def _fold(rng, n, *, flip=False, scale=1.0, shift=0.0):
    X = rng.normal(size=(n, 20, 17)).astype(np.float32)
    signal = X[:, -3, 0] > 0  # feature 0 two rows before the window's end
    y = np.full((n, 3), np.nan, dtype=np.float32)
    y[:, 0] = (~signal if flip else signal).astype(np.float32)
    coin = rng.uniform(size=n)
    y[:, 1] = np.where(coin < 0.5, (coin < 0.25).astype(np.float32), np.nan)
    # head 2 never has an event
    return (X * scale + shift).astype(np.float32), y


@pytest.fixture(scope="module")
def folds():
    rng = np.random.default_rng(42)
    X_train, y_train = _fold(rng, 512)
    X_val, y_val = _fold(rng, 96)
    X_val2, y_val2 = _fold(rng, 128, flip=True, scale=10.0, shift=3.0)
    return X_train, y_train, X_val, y_val, X_val2, y_val2


@pytest.fixture(scope="module")
def fits(folds):
    X_train, y_train, X_val, y_val, X_val2, y_val2 = folds
    rows = []
    a = fit_model(
        X_train, y_train, X_val, y_val, CONFIG, seed=SEED, deterministic=True,
        progress=rows.append,
    )  # fmt: skip
    b = fit_model(X_train, y_train, X_val, y_val, CONFIG, seed=SEED, deterministic=True)
    c = fit_model(X_train, y_train, X_val, y_val, CONFIG, seed=SEED + 1, deterministic=True)
    d = fit_model(X_train, y_train, X_val2, y_val2, LEARNER, seed=SEED, deterministic=True)
    return {"a": a, "b": b, "c": c, "d": d, "progress": rows}


# ---------------------------------------------------------------------------
# normalization statistics


def test_normalization_stats_are_per_feature_moments_of_all_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(40, 20, 5)).astype(np.float32)
    mean, variance = normalization_stats(X)
    flat = np.concatenate([X[i] for i in range(X.shape[0])]).astype(np.float64)
    for j in range(X.shape[2]):
        column = flat[:, j]
        assert mean[j] == pytest.approx(column.sum() / column.size, rel=1e-12)
        assert variance[j] == pytest.approx(
            ((column - column.mean()) ** 2).sum() / column.size, rel=1e-10
        )
    assert mean.dtype == variance.dtype == np.float64


@pytest.mark.parametrize(
    "X",
    [
        pytest.param(np.zeros((0, 20, 17), np.float32), id="empty"),
        pytest.param(np.zeros((20, 17), np.float32), id="2-d"),
        pytest.param(np.full((2, 20, 17), np.nan, np.float32), id="nan"),
    ],
)
def test_normalization_stats_rejects_bad_windows(X):
    with pytest.raises(ValueError, match="X must be|NaN"):
        normalization_stats(X)


def test_normalization_comes_from_the_training_fold_only(folds, fits):
    X_train = folds[0]
    rows = X_train.reshape(-1, X_train.shape[-1]).astype(np.float64)
    mean, variance = rows.mean(axis=0), rows.var(axis=0)
    for name in ("a", "d"):  # d saw a validation fold scaled by 10 and shifted by 3
        fit = fits[name]
        np.testing.assert_allclose(fit.mean, mean, rtol=1e-12)
        np.testing.assert_allclose(fit.variance, variance, rtol=1e-12)
        layer = fit.model.get_layer("normalization")
        np.testing.assert_allclose(np.ravel(layer.mean), mean, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.ravel(layer.variance), variance, rtol=1e-6)
    np.testing.assert_array_equal(fits["a"].mean, fits["d"].mean)
    np.testing.assert_array_equal(fits["a"].variance, fits["d"].variance)
    # the validation folds differ a lot, so validation data would have shown up
    val_mean = folds[4].reshape(-1, 17).mean(axis=0)
    assert np.abs(val_mean - mean).min() > 1.0


# ---------------------------------------------------------------------------
# determinism


def test_same_seed_deterministic_gives_identical_weights(fits):
    a, b = fits["a"].model.get_weights(), fits["b"].model.get_weights()
    assert len(a) == len(b) > 0
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert fits["a"].history.drop("seconds").equals(fits["b"].history.drop("seconds"))


def test_different_seed_gives_different_weights(fits):
    a, c = fits["a"].model.get_weights(), fits["c"].model.get_weights()
    trainable_differs = [not np.array_equal(wa, wc) for wa, wc in zip(a, c, strict=True)]
    assert sum(trainable_differs) >= len(a) // 2


# ---------------------------------------------------------------------------
# history and the best epoch


def test_history_columns_and_progress(fits):
    fit = fits["a"]
    history = fit.history
    assert history.columns[:4] == ["epoch", "loss", "train_loss", "val_loss"]
    assert {"gap", "learning_rate", "seconds"} <= set(history.columns)
    assert history["epoch"].to_list() == list(range(1, CONFIG.epochs + 1))
    np.testing.assert_allclose(
        history["gap"].to_numpy(), (history["val_loss"] - history["train_loss"]).to_numpy()
    )
    # progress received exactly the history rows
    assert pl.DataFrame(fits["progress"]).equals(history)
    assert not fit.stopped_early and history.height == CONFIG.epochs


def test_history_losses_are_inference_mode_masked_losses(folds, fits):
    """The final model's masked losses equal the history row of its (best) epoch."""
    X_train, y_train, X_val, y_val = folds[:4]
    fit = fits["a"]
    row = fit.history.row(fit.best_epoch - 1, named=True)
    assert masked_loss(fit.model, X_train, y_train) == pytest.approx(row["train_loss"], rel=1e-5)
    assert masked_loss(fit.model, X_val, y_val) == pytest.approx(row["val_loss"], rel=1e-5)


def test_best_epoch_weights_are_restored_after_early_stop(folds, fits):
    X_train, y_train = folds[:2]
    X_val2, y_val2 = folds[4:]
    fit = fits["d"]
    history = fit.history
    val = history["val_loss"].to_list()
    # the model learns the training relation, so the flipped validation loss rises
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert val[-1] > val[0]
    assert fit.best_epoch == 1
    assert fit.stopped_early and history.height < LEARNER.epochs
    # the returned model holds epoch 1's weights, not the last epoch's
    assert masked_loss(fit.model, X_val2, y_val2) == pytest.approx(val[0], rel=1e-5)
    assert masked_loss(fit.model, X_val2, y_val2) != pytest.approx(val[-1], rel=1e-3)
    assert masked_loss(fit.model, X_train, y_train) == pytest.approx(
        history["train_loss"][0], rel=1e-5
    )


# ---------------------------------------------------------------------------
# argument checks (raise before any model is built)


def _arrays(n=8, heads=2, nan=False):
    X = np.zeros((n, 20, 17), np.float32)
    y = np.full((n, heads), np.nan if nan else 1.0, np.float32)
    return X, y


@pytest.mark.parametrize(
    ("train", "val", "match"),
    [
        pytest.param(_arrays(0), _arrays(), "training fold is empty", id="empty train"),
        pytest.param(_arrays(), _arrays(0), "validation fold is empty", id="empty val"),
        pytest.param(_arrays(nan=True), _arrays(), "no labelled event", id="no train label"),
        pytest.param(_arrays(), _arrays(nan=True), "no labelled event", id="no val label"),
        pytest.param(_arrays(), _arrays(heads=3), "does not match", id="head count"),
        pytest.param(
            (np.zeros((8, 20, 17), np.float32), np.ones((7, 2), np.float32)),
            _arrays(),
            "same n",
            id="length",
        ),
    ],
)
def test_fit_model_rejects_bad_folds(train, val, match):
    with pytest.raises(ValueError, match=match):
        fit_model(*train, *val, ModelConfig(epochs=1))


def test_predict_handles_empty_and_batched_input(fits):
    model = fits["a"].model
    empty = predict(model, np.zeros((0, 20, 17), np.float32))
    assert empty.shape == (0, 3) and empty.dtype == np.float32
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10, 20, 17)).astype(np.float32)
    np.testing.assert_allclose(predict(model, X, batch_size=3), predict(model, X), atol=1e-6)


def test_fit_uses_spec_schedule(monkeypatch):
    """Batch size, epochs, shuffling, early stopping and the LR schedule as configured."""
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(self, x, y, **kwargs):
        seen.update(kwargs, x=x, y=y, model=self)
        raise Stop

    monkeypatch.setattr(keras.Model, "fit", fake_fit)
    rng = np.random.default_rng(0)
    X_train, y_train = _fold(rng, 40)
    X_val, y_val = _fold(rng, 20)
    with pytest.raises(Stop):
        fit_model(X_train, y_train, X_val, y_val, ModelConfig(), seed=0)
    assert (seen["batch_size"], seen["epochs"], seen["shuffle"]) == (64, 25, True)
    np.testing.assert_array_equal(seen["x"], X_train)
    callbacks = {type(cb).__name__: cb for cb in seen["callbacks"]}
    stop, plateau = callbacks["EarlyStopping"], callbacks["ReduceLROnPlateau"]
    assert stop.patience == 15 and stop.restore_best_weights
    assert plateau.factor == pytest.approx(0.8) and plateau.patience == 5
    # both watch the same validation quantity, lower is better
    assert stop.monitor == plateau.monitor and "val" in stop.monitor
    opt = seen["model"].optimizer
    assert float(opt.learning_rate) == pytest.approx(8e-4) and opt.clipnorm == pytest.approx(1.0)
