"""Fit one model on a training fold, early-stopped on a validation fold.

:func:`fit_model` is the only place that trains: normalization statistics
from the training fold alone, the masked loss, Adam with gradient clipping,
early stopping with the best epoch's weights restored, ReduceLROnPlateau,
and a per-epoch history that includes the training loss measured the same
way as the validation loss (inference mode, no dropout), so the
train/validation gap is an honest overfitting monitor.

The monitor is always the plain masked cross-entropy, whatever loss the
model trains on (``ModelConfig.loss``, ``class_weights``): a proper scoring
rule on the probabilities themselves, so early stopping and the best epoch
mean the same thing for every configuration. A mixed-precision fit returns
a float32 copy of the model (same weights), which is what is saved, scored
and exported.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(256, 20, 17)).astype("float32")
>>> y = (X[:, -1, :4] > 0).astype("float32")
>>> fit = fit_model(X[:192], y[:192], X[192:], y[192:], ModelConfig(epochs=2), seed=1)
>>> fit.history.columns[:4]
['epoch', 'loss', 'train_loss', 'val_loss']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np
import polars as pl

from engine.model.network import (
    ModelConfig,
    balanced_class_weights,
    build_model,
    compile_model,
)

__all__ = [
    "EpochProgress",
    "FitResult",
    "fit_model",
    "masked_loss",
    "normalization_stats",
    "predict",
    "set_seed",
]

#: ``progress(epoch_record)`` after every epoch; the record is one history row.
EpochProgress = Callable[[dict[str, Any]], None]

_EVAL_BATCH = 4096
#: The quantity early stopping, the learning-rate schedule and the best epoch use: the masked
#: cross-entropy on the whole validation fold in inference mode, without the L2 penalty.
MONITOR = "val_masked_loss"


@dataclass
class FitResult:
    """A fitted model with how it got there.

    Attributes
    ----------
    model : keras.Model
        Holds the weights of ``best_epoch``.
    history : pl.DataFrame
        One row per epoch: ``epoch`` (1-based), ``loss`` (Keras training loss,
        dropout active, averaged over the epoch's batches), ``train_loss`` and
        ``val_loss`` (masked loss in inference mode at the epoch's end, without
        the L2 penalty), ``gap`` (``val_loss - train_loss``), ``learning_rate``
        (during the epoch) and ``seconds``.
    best_epoch : int
        1-based epoch with the lowest validation loss.
    mean, variance : ndarray
        Normalization statistics (training fold).
    stopped_early : bool
        Whether early stopping ended the fit before ``config.epochs``.
    seconds : float
        Wall time of the fit.
    class_weights : ndarray or None
        ``(2, n_patterns)`` weights of negatives and positives per head
        (``config.class_weights == "balanced"``), counted on the training fold.

    A fit result pickles (to come back from a worker process): the model
    travels as its architecture and weights and is rebuilt uncompiled.
    """

    model: keras.Model
    history: pl.DataFrame
    best_epoch: int
    mean: np.ndarray
    variance: np.ndarray
    stopped_early: bool
    seconds: float
    class_weights: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A compiled Keras model does not unpickle (its loss is a local function): travel as
        # the architecture and the weights, rebuilt uncompiled (what scoring and saving need).
        state = dict(self.__dict__)
        model = state.pop("model")
        state["model_config"] = model.get_config()
        state["model_weights"] = model.get_weights()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        model = keras.Model.from_config(state.pop("model_config"))
        model.set_weights(state.pop("model_weights"))
        self.__dict__.update(state, model=model)


def set_seed(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; ``deterministic`` also forces deterministic ops.

    Deterministic ops make repeated CPU runs with the same seed give identical
    weights, at some cost in speed. TensorFlow cannot switch the setting off
    again within a process.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def normalization_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over every row of every training window.

    Parameters
    ----------
    X : ndarray, shape (n, length, n_features)
        Training windows only.

    Returns
    -------
    mean, variance : ndarray, shape (n_features,), float64
    """
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty (n, length, n_features) array, got {X.shape}")
    rows = X.reshape(-1, X.shape[-1]).astype(np.float64)
    if not np.all(np.isfinite(rows)):
        raise ValueError("training windows hold NaN or inf; build_sequences drops such windows")
    return rows.mean(axis=0), rows.var(axis=0)


def masked_loss(model: keras.Model, X: np.ndarray, y: np.ndarray) -> float:
    """Masked cross-entropy of ``model`` on ``(X, y)`` in inference mode (no dropout)."""
    p = predict(model, X)
    return _masked_loss_numpy(y, p)


def _masked_loss_numpy(y: np.ndarray, p: np.ndarray) -> float:
    mask = ~np.isnan(y)
    if not mask.any():
        return math.nan
    q = np.clip(p[mask].astype(np.float64), 1e-7, 1 - 1e-7)
    t = y[mask].astype(np.float64)
    return float(-np.mean(t * np.log(q) + (1 - t) * np.log(1 - q)))


def predict(model: keras.Model, X: np.ndarray, batch_size: int = _EVAL_BATCH) -> np.ndarray:
    """Confidences ``(n, n_patterns)`` float32, inference mode, in compiled batches."""
    X = np.asarray(X, dtype=np.float32)
    if X.shape[0] == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    out = model.predict(X, batch_size=batch_size, verbose=0)
    return np.asarray(out, dtype=np.float32)


class _EpochRecorder(keras.callbacks.Callback):
    """Adds inference-mode training and validation loss to the history, reports progress."""

    def __init__(self, train, validation, progress: EpochProgress | None) -> None:
        super().__init__()
        self._train = train
        self._validation = validation
        self._progress = progress
        self.rows: list[dict[str, Any]] = []
        self._began = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        train_loss = masked_loss(self.model, *self._train)
        val_loss = masked_loss(self.model, *self._validation)
        if logs is not None:
            # Runs before EarlyStopping and ReduceLROnPlateau, which monitor this key.
            logs[MONITOR] = val_loss
        row = {
            "epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", math.nan)),
            "train_loss": train_loss,
            "val_loss": val_loss,
            "gap": val_loss - train_loss,
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": time.perf_counter() - self._began,
        }
        self.rows.append(row)
        if self._progress is not None:
            self._progress(row)


def _set_prior_bias(model: keras.Model, y: np.ndarray) -> None:
    """Start each head at its training base rate: bias = logit(rate), rate in [0.01, 0.99]."""
    labelled = ~np.isnan(y)
    n = labelled.sum(axis=0)
    rate = np.where(n > 0, np.nansum(y, axis=0) / np.maximum(n, 1), 0.5)
    rate = np.clip(rate, 0.01, 0.99)
    head = model.get_layer("pattern_confidence")
    head.bias.assign(np.log(rate / (1.0 - rate)).astype("float32"))


def _check_fold(X: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if X.ndim != 3 or y.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name} fold: X must be (n, length, n_features) and y (n, n_patterns) with the "
            f"same n, got {X.shape} and {y.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} fold is empty")
    if np.isnan(y).all():
        raise ValueError(f"{name} fold has no labelled event for any pattern")
    return X, y


def fit_model(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    config: ModelConfig | None = None,
    *,
    seed: int = 0,
    deterministic: bool = False,
    progress: EpochProgress | None = None,
) -> FitResult:
    """Train the SPEC model on one fold, early-stopped on the validation fold.

    Parameters
    ----------
    X_train, y_train : ndarray
        Training windows ``(n, length, n_features)`` and labels
        ``(n, n_patterns)`` with NaN where a head has no event.
    X_val, y_val : ndarray
        Validation fold, used for early stopping, the learning-rate schedule
        and the choice of the best epoch; never for normalization.
    config : ModelConfig, optional
        Defaults to the SPEC settings; ``loss``, ``focal_gamma``,
        ``focal_alpha``, ``class_weights`` and ``precision`` choose the
        training loss and the compute dtype.
    seed : int
        Seeds weight initialisation, dropout and shuffling.
    deterministic : bool
        Force deterministic TensorFlow ops (see :func:`set_seed`).
    progress : callable, optional
        Called with each epoch's history row.

    Returns
    -------
    FitResult
    """
    config = config or ModelConfig()
    X_train, y_train = _check_fold(X_train, y_train, "training")
    X_val, y_val = _check_fold(X_val, y_val, "validation")
    if X_val.shape[1:] != X_train.shape[1:] or y_val.shape[1] != y_train.shape[1]:
        raise ValueError(
            f"validation fold shape {X_val.shape}/{y_val.shape} does not match the training "
            f"fold {X_train.shape}/{y_train.shape}"
        )
    began = time.perf_counter()
    set_seed(seed, deterministic=deterministic)
    mean, variance = normalization_stats(X_train)
    shape = {
        "n_features": X_train.shape[2],
        "n_patterns": y_train.shape[1],
        "mean": mean,
        "variance": variance,
        "sequence_length": X_train.shape[1],
    }
    model = build_model(config, **shape)
    if config.output_bias == "prior":
        _set_prior_bias(model, y_train)
    class_weights = balanced_class_weights(y_train) if config.class_weights == "balanced" else None
    compile_model(model, config, class_weights=class_weights)
    recorder = _EpochRecorder((X_train, y_train), (X_val, y_val), progress)
    callbacks = [
        recorder,  # first: it adds the monitored validation loss to the epoch's logs
        keras.callbacks.EarlyStopping(
            monitor=MONITOR,
            mode="min",
            patience=config.early_stopping_patience,
            restore_best_weights=True,
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=MONITOR, mode="min", factor=config.lr_factor, patience=config.lr_patience
        ),
    ]
    model.fit(
        X_train,
        y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    history = pl.DataFrame(recorder.rows)
    # EarlyStopping keeps the first epoch with the lowest value, as argmin does.
    best_epoch = int(np.argmin(history["val_loss"].to_numpy())) + 1
    if config.precision != "float32":
        # weights are float32 under every policy: the copy computes what the fit learned
        float32 = build_model(replace(config, precision="float32"), **shape)
        float32.set_weights(model.get_weights())
        model = float32
    return FitResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        mean=mean,
        variance=variance,
        stopped_early=history.height < config.epochs,
        seconds=time.perf_counter() - began,
        class_weights=class_weights,
    )
