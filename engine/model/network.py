"""The shared-backbone LSTM of SPEC section 6 and its masked losses.

One model scores every pattern: a two-layer LSTM backbone over the
(20, 17) feature window, one sigmoid output per pattern head. A head's
label is NaN where its pattern has no event; the losses here
(:func:`masked_binary_crossentropy`, :func:`make_masked_loss`) skip those
entries, so each head learns only from its own events.

Normalization is the first layer, with the per-feature mean and variance of
the training fold passed in (never adapted on validation or test data) and
saved with the model, so a served model needs raw features only.

Class imbalance and precision are training options of :class:`ModelConfig`:

* ``loss="focal"`` replaces the cross-entropy of each labelled entry by the
  focal loss of Lin et al. (2017), ``-alpha_t (1 - p_t)^gamma log(p_t)``;
  ``gamma = 0`` without ``alpha`` is the cross-entropy itself.
* ``class_weights="balanced"`` weighs each head's positives and negatives by
  ``n / (2 n_1)`` and ``n / (2 n_0)``, counted on the training fold
  (:func:`balanced_class_weights`), so both classes of every head carry the
  same total weight; the mean weight over the training fold stays 1.
* ``precision="mixed"`` computes the hidden layers in ``mixed_float16`` on a
  GPU and ``mixed_bfloat16`` on a CPU (:func:`precision_policy`); the
  normalization, the sigmoid heads and the loss stay float32, and so do the
  weights. The inference twin and the model a fit returns compute in float32.

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
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

__all__ = [
    "CLASS_WEIGHTS",
    "LOSSES",
    "OUTPUT_BIASES",
    "PRECISIONS",
    "ModelConfig",
    "balanced_class_weights",
    "build_model",
    "compile_model",
    "make_masked_loss",
    "masked_binary_crossentropy",
    "parameter_counts",
    "precision_policy",
]

_EPSILON = 1e-7
#: ``ModelConfig.loss``: binary cross-entropy or the focal loss.
LOSSES = ("bce", "focal")
#: ``ModelConfig.class_weights``: none, or balanced per head on the training fold.
CLASS_WEIGHTS = ("none", "balanced")
#: ``ModelConfig.precision``: float32 everywhere, or mixed precision in the hidden layers.
PRECISIONS = ("float32", "mixed")
#: ``ModelConfig.output_bias``: heads start at 0.5, or at their training base rate.
OUTPUT_BIASES = ("zero", "prior")
_CHOICES = {
    "loss": LOSSES,
    "class_weights": CLASS_WEIGHTS,
    "precision": PRECISIONS,
    "output_bias": OUTPUT_BIASES,
}


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
    loss : {"bce", "focal"}
        Masked binary cross-entropy, or the masked focal loss.
    focal_gamma : float
        Focusing exponent of the focal loss (>= 0; 0 gives the cross-entropy).
    focal_alpha : float or None
        Weight of the positive class in the focal loss, in (0, 1); the
        negatives get ``1 - focal_alpha``. ``None``: no alpha weighting.
    class_weights : {"none", "balanced"}
        ``"balanced"``: per-head class weights from the training fold
        (:func:`balanced_class_weights`).
    precision : {"float32", "mixed"}
        Compute dtype of the hidden layers during training (see
        :func:`precision_policy`).
    output_bias : {"zero", "prior"}
        Initial bias of the sigmoid heads: 0 (every head starts at 0.5), or
        the logit of each head's base rate on the training fold (Lin et al.
        2017), so an untrained model is the base-rate forecast and training
        starts at no skill instead of below it.
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
    loss: str = "bce"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    class_weights: str = "none"
    precision: str = "float32"
    output_bias: str = "zero"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _CHOICES:
                if value not in _CHOICES[f.name]:
                    raise ValueError(
                        f"ModelConfig.{f.name} must be one of {', '.join(_CHOICES[f.name])}, "
                        f"got {value!r}"
                    )
                continue
            if f.name == "focal_alpha" and value is None:
                continue
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
        if not 0.0 <= self.focal_gamma <= 100.0:
            raise ValueError(
                f"ModelConfig.focal_gamma must be in [0, 100], got {self.focal_gamma!r}"
            )
        if self.focal_alpha is not None and not 0.0 < self.focal_alpha < 1.0:
            raise ValueError(
                f"ModelConfig.focal_alpha must be in (0, 1) or None, got {self.focal_alpha!r}"
            )

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

    def to_toml(self) -> str:
        """The settings as a TOML ``[model]`` table (``focal_alpha = None`` is left out).

        Examples
        --------
        >>> print(ModelConfig(lstm_units=96, lstm2_units=48).to_toml().splitlines()[:3])
        ['[model]', 'lstm_units = 96', 'lstm_dropout = 0.45']
        """
        lines = ["[model]"]
        for key, value in self.to_dict().items():
            if value is None:
                continue
            text = f'"{value}"' if isinstance(value, str) else repr(value)
            lines.append(f"{key} = {text}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> ModelConfig:
        """Read the ``[model]`` table of a TOML file (``engine tune``'s ``best.toml``).

        Keys not given keep their SPEC defaults; other tables of the file
        are ignored.

        Raises
        ------
        FileNotFoundError
            When the file does not exist.
        ValueError
            Naming the file: not TOML, no ``[model]`` table, an unknown key
            or a refused value.
        """
        import tomllib

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model configuration file {path} does not exist")
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not a valid TOML file ({exc})") from None
        table = data.get("model")
        if not isinstance(table, dict):
            raise ValueError(f"{path}: no [model] table of ModelConfig settings")
        try:
            return cls.from_dict(table)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None


def precision_policy(precision: str) -> str:
    """The Keras dtype policy of the hidden layers for ``ModelConfig.precision``.

    ``"float32"`` gives ``"float32"``. ``"mixed"`` gives ``"mixed_float16"``
    when TensorFlow sees a GPU (fast on tensor cores; the optimizer then
    scales the loss, :func:`compile_model`) and ``"mixed_bfloat16"`` on a CPU
    (bfloat16 keeps float32's exponent range, so no loss scaling; its speed
    depends on the CPU's bfloat16 instructions).

    Examples
    --------
    >>> precision_policy("float32")
    'float32'
    >>> precision_policy("mixed") in ("mixed_float16", "mixed_bfloat16")
    True
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return "float32"
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


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
        dropout or recurrent dropout, always in float32. Dropout is inactive
        at inference anyway; the twin exists so that exporters see plain
        LSTM cells.

    Returns
    -------
    keras.Model
        Input ``sequences`` ``(batch, sequence_length, n_features)`` float32,
        output ``pattern_confidence`` ``(batch, n_patterns)`` float32. With
        ``config.precision == "mixed"`` the LSTM, batch-norm and ReLU layers
        compute in :func:`precision_policy`'s dtype; the weights are float32
        in every case, so ``get_weights`` / ``set_weights`` move them between
        a mixed and a float32 build of the same config.
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
    hidden = "float32" if inference else precision_policy(config.precision)

    inputs = keras.Input((sequence_length, n_features), name="sequences", dtype="float32")
    # raw features reach 1e3 and more: normalise them in float32 whatever the policy
    x = layers.Normalization(
        axis=-1, mean=mean, variance=variance, name="normalization", dtype="float32"
    )(inputs)
    x = layers.LSTM(
        config.lstm_units,
        return_sequences=True,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        name="lstm_1",
        dtype=hidden,
    )(x)
    x = layers.BatchNormalization(name="batch_norm_1", dtype=hidden)(x)
    x = layers.LSTM(config.lstm2_units, name="lstm_2", dtype=hidden)(x)
    x = layers.BatchNormalization(name="batch_norm_2", dtype=hidden)(x)
    x = layers.Dense(
        config.dense_units,
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(config.l2),
        name="dense",
        dtype=hidden,
    )(x)
    if head_dropout > 0:
        x = layers.Dropout(head_dropout, name="head_dropout", dtype=hidden)(x)
    outputs = layers.Dense(
        n_patterns, activation="sigmoid", name="pattern_confidence", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name="pattern_lstm")


def balanced_class_weights(y: np.ndarray) -> np.ndarray:
    """Per-head weights of the negatives and positives that balance a training fold.

    For head ``j`` with ``n_j`` labelled entries, ``n1_j`` of them positive,
    the weights are ``n_j / (2 n0_j)`` for a negative and ``n_j / (2 n1_j)``
    for a positive (scikit-learn's ``class_weight="balanced"``): each class
    then carries half the head's weight and the mean weight stays 1. A head
    with one class only (or no labels) gets weight 1 for both.

    Parameters
    ----------
    y : ndarray, shape (n, n_patterns)
        Training labels: 1, 0 or NaN (no event).

    Returns
    -------
    ndarray, shape (2, n_patterns), float64
        Row 0: weight of a negative, row 1: weight of a positive.

    Examples
    --------
    >>> y = np.array([[1, 0], [0, 1], [0, np.nan], [0, 1]], dtype="float32")
    >>> balanced_class_weights(y)
    array([[0.66666667, 1.5       ],
           [2.        , 0.75      ]])
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"y must be (n, n_patterns), got shape {y.shape}")
    labelled = ~np.isnan(y)
    n1 = np.where(labelled, y == 1, False).sum(axis=0).astype(np.float64)
    n = labelled.sum(axis=0).astype(np.float64)
    n0 = n - n1
    weights = np.ones((2, y.shape[1]))
    both = (n0 > 0) & (n1 > 0)
    weights[0, both] = n[both] / (2.0 * n0[both])
    weights[1, both] = n[both] / (2.0 * n1[both])
    return weights


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
    return _masked_loss(y_true, y_pred)


def make_masked_loss(
    loss: str = "bce",
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    class_weights: np.ndarray | None = None,
) -> Callable[[Any, Any], Any]:
    """A masked loss for Keras: cross-entropy or focal loss, optionally class-weighted.

    For a labelled entry with label ``y`` and confidence ``p`` (clipped to
    ``[1e-7, 1 - 1e-7]``), ``p_t = p`` if ``y = 1`` else ``1 - p``, and the
    term is

    * ``"bce"``: ``-log(p_t)``;
    * ``"focal"``: ``-alpha_t (1 - p_t)^gamma log(p_t)`` with ``alpha_t =
      alpha`` if ``y = 1`` else ``1 - alpha`` (``alpha_t = 1`` when
      ``alpha`` is None). ``gamma = 0`` without ``alpha`` is ``"bce"``.

    With ``class_weights`` (shape ``(2, n_patterns)``, row 0 negatives, row 1
    positives; :func:`balanced_class_weights`) each term is multiplied by the
    weight of its head and class. The loss is the sum of the terms over the
    labelled entries divided by their number, as
    :func:`masked_binary_crossentropy`: NaN labels contribute nothing, a
    head still learns only from its own events.

    Parameters
    ----------
    loss : {"bce", "focal"}
    gamma : float
        Focal exponent, >= 0 (ignored for ``"bce"``).
    alpha : float, optional
        Focal weight of the positive class, in (0, 1) (ignored for ``"bce"``).
    class_weights : ndarray, optional

    Returns
    -------
    callable
        ``loss(y_true, y_pred) -> scalar tensor``.

    Examples
    --------
    >>> y = np.array([[1.0, np.nan], [0.0, 1.0]], dtype="float32")
    >>> p = np.array([[0.8, 0.5], [0.3, 0.6]], dtype="float32")
    >>> bce = float(make_masked_loss("bce")(y, p))
    >>> focal0 = float(make_masked_loss("focal", gamma=0.0)(y, p))
    >>> abs(bce - focal0) < 1e-7, float(make_masked_loss("focal", gamma=2.0)(y, p)) < bce
    (True, True)
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if not gamma >= 0.0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    if alpha is not None and not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1) or None, got {alpha!r}")
    weights = None
    if class_weights is not None:
        weights = np.asarray(class_weights, dtype=np.float32)
        if weights.ndim != 2 or weights.shape[0] != 2 or not np.all(weights > 0):
            raise ValueError(
                f"class_weights must be a positive (2, n_patterns) array, got {weights.shape}"
            )
    focal = loss == "focal"

    def masked_loss(y_true: Any, y_pred: Any) -> Any:
        return _masked_loss(
            y_true,
            y_pred,
            gamma=gamma if focal else 0.0,
            alpha=alpha if focal else None,
            class_weights=weights,
        )

    masked_loss.__name__ = f"masked_{loss}" + ("_weighted" if weights is not None else "")
    return masked_loss


def _masked_loss(
    y_true: Any,
    y_pred: Any,
    *,
    gamma: float = 0.0,
    alpha: float | None = None,
    class_weights: np.ndarray | None = None,
) -> Any:
    ops = keras.ops
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    mask = ops.logical_not(ops.isnan(y_true))
    # Replace NaN labels before they meet arithmetic: 0 * NaN would poison the gradient.
    y = ops.where(mask, y_true, ops.zeros_like(y_true))
    p = ops.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
    terms = -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
    if gamma > 0.0:
        p_t = y * p + (1.0 - y) * (1.0 - p)
        terms = terms * ops.power(1.0 - p_t, gamma)
    if alpha is not None:
        terms = terms * (y * alpha + (1.0 - y) * (1.0 - alpha))
    if class_weights is not None:
        w0 = ops.convert_to_tensor(class_weights[0], dtype="float32")
        w1 = ops.convert_to_tensor(class_weights[1], dtype="float32")
        terms = terms * (y * w1 + (1.0 - y) * w0)
    weights = ops.cast(mask, "float32")
    return ops.sum(terms * weights) / ops.maximum(ops.sum(weights), 1.0)


def compile_model(
    model: keras.Model, config: ModelConfig, *, class_weights: np.ndarray | None = None
) -> keras.Model:
    """Compile with Adam(``learning_rate``, ``clipnorm``) and the configured masked loss.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_model` with the same ``config``.
    config : ModelConfig
        ``loss``, ``focal_gamma`` and ``focal_alpha`` choose the loss
        (:func:`make_masked_loss`). Under ``mixed_float16`` the optimizer
        scales the loss (Keras's ``LossScaleOptimizer``) so small float16
        gradients do not flush to zero.
    class_weights : ndarray, optional
        ``(2, n_patterns)`` weights, required when ``config.class_weights``
        is ``"balanced"`` (the trainer computes them from the training fold).
    """
    if config.class_weights == "balanced" and class_weights is None:
        raise ValueError("class_weights='balanced' needs the training fold's weights")
    if config.class_weights == "none":
        class_weights = None
    optimizer: keras.optimizers.Optimizer = keras.optimizers.Adam(
        learning_rate=config.learning_rate, clipnorm=config.clipnorm
    )
    if precision_policy(config.precision) == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    if config.loss == "bce" and class_weights is None:
        loss = masked_binary_crossentropy
    else:
        loss = make_masked_loss(
            config.loss,
            gamma=config.focal_gamma,
            alpha=config.focal_alpha,
            class_weights=class_weights,
        )
    model.compile(optimizer=optimizer, loss=loss)
    return model


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable (normalization and batch-norm statistics) and total weights."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}
