"""The shared-backbone LSTM of SPEC section 6 and its masked loss.

One model scores every pattern: a two-layer LSTM backbone over the
(20, 17) feature window, one sigmoid output per pattern head. A head's
label is NaN where its pattern has no event; :func:`masked_binary_crossentropy`
skips those entries, so each head learns only from its own events.

Normalization is the first layer, with the per-feature mean and variance of
the training fold passed in (never adapted on validation or test data) and
saved with the model, so a served model needs raw features only.

Examples
--------
>>> import numpy as np
>>> config = ModelConfig()
>>> model = build_model(config, n_features=17, n_patterns=4,
...                     mean=np.zeros(17), variance=np.ones(17))
>>> parameter_counts(model)["trainable"]
34196
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

__all__ = [
    "ModelConfig",
    "build_model",
    "compile_model",
    "masked_binary_crossentropy",
    "parameter_counts",
]

_EPSILON = 1e-7


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and optimisation settings; the defaults are SPEC section 6.

    Attributes
    ----------
    lstm_units, lstm2_units : int
        Units of the first (sequence-returning) and second LSTM.
    lstm_dropout, lstm_recurrent_dropout : float
        Input and recurrent dropout of the first LSTM (training only).
    dense_units : int
        Units of the ReLU layer before the heads.
    l2 : float
        L2 penalty on that layer's kernel.
    head_dropout : float
        Dropout between the ReLU layer and the sigmoid heads.
    learning_rate, clipnorm : float
        Adam step size and gradient-norm clip.
    batch_size, epochs : int
        Mini-batch size and the most epochs per fit.
    early_stopping_patience : int
        Epochs without a better validation loss before stopping; the best
        epoch's weights are restored.
    lr_factor : float
        ReduceLROnPlateau factor after ``lr_patience`` epochs without a
        better validation loss.
    lr_patience : int
        See ``lr_factor``.
    """

    lstm_units: int = 64
    lstm_dropout: float = 0.45
    lstm_recurrent_dropout: float = 0.3
    lstm2_units: int = 32
    dense_units: int = 16
    l2: float = 0.006
    head_dropout: float = 0.36
    learning_rate: float = 8e-4
    clipnorm: float = 1.0
    batch_size: int = 64
    epochs: int = 25
    early_stopping_patience: int = 15
    lr_factor: float = 0.8
    lr_patience: int = 5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"ModelConfig.{f.name} must be a number, got {value!r}")
        for name in ("lstm_units", "lstm2_units", "dense_units", "batch_size", "epochs"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(
                    f"ModelConfig.{name} must be an integer >= 1, got {getattr(self, name)!r}"
                )
        for name in ("lstm_dropout", "lstm_recurrent_dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"ModelConfig.{name} must be in [0, 1), got {getattr(self, name)!r}"
                )
        for name in ("learning_rate", "clipnorm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ModelConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 < self.lr_factor < 1.0:
            raise ValueError(f"ModelConfig.lr_factor must be in (0, 1), got {self.lr_factor!r}")
        if self.l2 < 0:
            raise ValueError(f"ModelConfig.l2 must be >= 0, got {self.l2!r}")
        for name in ("early_stopping_patience", "lr_patience"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                raise ValueError(f"ModelConfig.{name} must be an integer >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for metadata files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig settings {unknown}")
        return cls(**values)


def build_model(
    config: ModelConfig,
    *,
    n_features: int,
    n_patterns: int,
    mean: np.ndarray,
    variance: np.ndarray,
    sequence_length: int = 20,
    inference: bool = False,
) -> keras.Model:
    """The SPEC section 6 network with fixed normalization statistics.

    Parameters
    ----------
    config : ModelConfig
    n_features, n_patterns : int
        Input width and number of sigmoid heads.
    mean, variance : ndarray, shape (n_features,)
        Training-fold statistics of each feature (see
        :func:`engine.model.trainer.normalization_stats`).
    sequence_length : int
        Rows per input window.
    inference : bool
        Build the inference twin: same layers and weight shapes, without
        dropout or recurrent dropout. Dropout is inactive at inference
        anyway; the twin exists so that exporters see plain LSTM cells.

    Returns
    -------
    keras.Model
        Input ``sequences`` ``(batch, sequence_length, n_features)`` float32,
        output ``pattern_confidence`` ``(batch, n_patterns)``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    if mean.shape != (n_features,) or variance.shape != (n_features,):
        raise ValueError(
            f"normalization statistics must have shape ({n_features},), got "
            f"{mean.shape} and {variance.shape}"
        )
    dropout = 0.0 if inference else config.lstm_dropout
    recurrent_dropout = 0.0 if inference else config.lstm_recurrent_dropout
    head_dropout = 0.0 if inference else config.head_dropout

    inputs = keras.Input((sequence_length, n_features), name="sequences", dtype="float32")
    x = layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalization")(inputs)
    x = layers.LSTM(
        config.lstm_units,
        return_sequences=True,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        name="lstm_1",
    )(x)
    x = layers.BatchNormalization(name="batch_norm_1")(x)
    x = layers.LSTM(config.lstm2_units, name="lstm_2")(x)
    x = layers.BatchNormalization(name="batch_norm_2")(x)
    x = layers.Dense(
        config.dense_units,
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(config.l2),
        name="dense",
    )(x)
    if head_dropout > 0:
        x = layers.Dropout(head_dropout, name="head_dropout")(x)
    outputs = layers.Dense(n_patterns, activation="sigmoid", name="pattern_confidence")(x)
    return keras.Model(inputs, outputs, name="pattern_lstm")


def masked_binary_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Binary cross-entropy over the labelled entries of a batch only.

    ``y_true`` holds 1, 0 or NaN (no event for that head); the loss is the
    mean of ``-(y log p + (1 - y) log(1 - p))`` over the non-NaN entries of
    the whole batch, every labelled (sample, head) pair weighing the same.
    A head with no labels in the batch contributes nothing (no term, no
    gradient); a batch with no labels at all has loss 0.

    Parameters
    ----------
    y_true, y_pred : tensor, shape (batch, n_patterns)

    Returns
    -------
    tensor
        Scalar loss.
    """
    ops = keras.ops
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    mask = ops.logical_not(ops.isnan(y_true))
    # Replace NaN labels before they meet arithmetic: 0 * NaN would poison the gradient.
    y = ops.where(mask, y_true, ops.zeros_like(y_true))
    p = ops.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
    terms = -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
    weights = ops.cast(mask, "float32")
    return ops.sum(terms * weights) / ops.maximum(ops.sum(weights), 1.0)


def compile_model(model: keras.Model, config: ModelConfig) -> keras.Model:
    """Compile with Adam(``learning_rate``, ``clipnorm``) and the masked loss."""
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=config.learning_rate, clipnorm=config.clipnorm
        ),
        loss=masked_binary_crossentropy,
    )
    return model


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable (normalization and batch-norm statistics) and total weights."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}
