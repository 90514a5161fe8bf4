"""The SPEC section 6 network, its inference twin and the masked loss (engine/model/network.py).

The parameter count is recomputed by hand from the layer formulas
(LSTM ``4 u (d + u + 1)``, BatchNorm ``2 c`` trainable + ``2 c`` moving
statistics, Dense ``d u + u``); the masked loss is compared with a NumPy
computation of the binary cross-entropy over the labelled entries only.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from engine.model.network import (
    ModelConfig,
    build_model,
    compile_model,
    masked_binary_crossentropy,
    parameter_counts,
)
from engine.model.trainer import predict

N_FEATURES = 17
N_PATTERNS = 4
RNG = np.random.default_rng(20240601)
MEAN = RNG.normal(size=N_FEATURES)
VARIANCE = RNG.uniform(0.5, 2.0, size=N_FEATURES)


def _model(config=None, *, inference=False, n_patterns=N_PATTERNS):
    return build_model(
        config or ModelConfig(),
        n_features=N_FEATURES,
        n_patterns=n_patterns,
        mean=MEAN,
        variance=VARIANCE,
        inference=inference,
    )


def _scramble_batch_norm(model, rng):
    """Give the BatchNorm layers non-trivial moving statistics (as after training)."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.3, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.gamma.assign(rng.uniform(0.8, 1.2, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, c).astype("float32"))


def _hand_bce(y, p, eps=1e-7):
    """Mean binary cross-entropy over the non-NaN labels, in float64."""
    mask = ~np.isnan(y)
    if not mask.any():
        return 0.0
    q = np.clip(p[mask].astype(np.float64), eps, 1 - eps)
    t = y[mask].astype(np.float64)
    return float(np.mean(-(t * np.log(q) + (1 - t) * np.log(1 - q))))


# ---------------------------------------------------------------------------
# configuration and architecture


def test_config_defaults_are_the_spec_values():
    c = ModelConfig()
    spec = {
        "lstm_units": 64,
        "lstm_dropout": 0.45,
        "lstm_recurrent_dropout": 0.3,
        "lstm2_units": 32,
        "dense_units": 16,
        "l2": 0.006,
        "head_dropout": 0.36,
        "learning_rate": 8e-4,
        "clipnorm": 1.0,
        "batch_size": 64,
        "epochs": 25,
        "early_stopping_patience": 15,
        "lr_factor": 0.8,
        "lr_patience": 5,
        # training options (issue 13): plain cross-entropy in float32 by default
        "loss": "bce",
        "focal_gamma": 2.0,
        "focal_alpha": None,
        "class_weights": "none",
        "precision": "float32",
        "output_bias": "zero",
    }
    assert c.to_dict() == spec
    assert ModelConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        pytest.param("lstm_units", 0, ValueError, id="zero units"),
        pytest.param("epochs", 2.5, ValueError, id="fractional epochs"),
        pytest.param("lstm_dropout", 1.0, ValueError, id="dropout 1"),
        pytest.param("head_dropout", -0.1, ValueError, id="negative dropout"),
        pytest.param("learning_rate", 0.0, ValueError, id="zero learning rate"),
        pytest.param("lr_factor", 1.0, ValueError, id="lr factor 1"),
        pytest.param("l2", -1e-3, ValueError, id="negative l2"),
        pytest.param("early_stopping_patience", -1, ValueError, id="negative patience"),
        pytest.param("batch_size", True, TypeError, id="bool batch size"),
        pytest.param("clipnorm", "1", TypeError, id="string clipnorm"),
    ],
)
def test_config_rejects_bad_values(field, value, error):
    with pytest.raises(error, match=field):
        ModelConfig(**{field: value})


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown ModelConfig settings"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "units": 3})


def test_architecture_follows_spec():
    model = _model()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Normalization",
        "LSTM",
        "BatchNormalization",
        "LSTM",
        "BatchNormalization",
        "Dense",
        "Dropout",
        "Dense",
    ]
    _, norm, lstm1, _, lstm2, _, dense, dropout, head = model.layers
    assert model.input_shape == (None, 20, N_FEATURES)
    assert model.output_shape == (None, N_PATTERNS)
    assert model.inputs[0].dtype == "float32"

    assert (lstm1.units, lstm1.return_sequences) == (64, True)
    assert lstm1.dropout == pytest.approx(0.45)
    assert lstm1.recurrent_dropout == pytest.approx(0.3)
    assert (lstm2.units, lstm2.return_sequences) == (32, False)
    assert (dense.units, dense.activation) == (16, keras.activations.relu)
    assert isinstance(dense.kernel_regularizer, keras.regularizers.L2)
    assert dense.kernel_regularizer.l2 == pytest.approx(0.006)
    assert dropout.rate == pytest.approx(0.36)
    assert (head.units, head.activation) == (N_PATTERNS, keras.activations.sigmoid)
    # the normalization statistics are the ones passed in, fixed (not adapted)
    np.testing.assert_allclose(np.ravel(norm.mean), MEAN, rtol=1e-6)
    np.testing.assert_allclose(np.ravel(norm.variance), VARIANCE, rtol=1e-6)
    assert not norm.trainable_weights


def _expected_counts(d, u1, u2, dense, heads):
    lstm1 = 4 * u1 * (d + u1 + 1)  # kernel d x 4u, recurrent u x 4u, bias 4u
    lstm2 = 4 * u2 * (u1 + u2 + 1)
    bn = 2 * u1 + 2 * u2  # gamma and beta
    relu = u2 * dense + dense
    out = dense * heads + heads
    trainable = lstm1 + bn + lstm2 + relu + out
    non_trainable = 2 * u1 + 2 * u2  # moving mean and variance
    return trainable, non_trainable


@pytest.mark.parametrize(
    ("config", "heads"),
    [
        pytest.param(ModelConfig(), 4, id="spec"),
        pytest.param(ModelConfig(lstm_units=8, lstm2_units=5, dense_units=3), 2, id="small"),
    ],
)
def test_parameter_count_matches_hand_formula(config, heads):
    model = _model(config, n_patterns=heads)
    trainable, non_trainable = _expected_counts(
        N_FEATURES, config.lstm_units, config.lstm2_units, config.dense_units, heads
    )
    counts = parameter_counts(model)
    assert counts == {
        "trainable": trainable,
        "non_trainable": non_trainable,
        "total": trainable + non_trainable,
    }
    assert counts["total"] == model.count_params()


def test_spec_model_has_about_35_thousand_parameters():
    # SPEC section 6: "about 35 thousand, not 400 thousand"
    assert 30_000 < parameter_counts(_model())["total"] < 40_000


def test_build_model_checks_statistics_shape():
    with pytest.raises(ValueError, match=r"shape \(17,\)"):
        build_model(
            ModelConfig(), n_features=17, n_patterns=4, mean=np.zeros(16), variance=np.ones(17)
        )


def test_normalization_layer_standardises_inputs():
    model = _model()
    x = RNG.normal(size=(3, 20, N_FEATURES)).astype("float32")
    out = np.asarray(model.get_layer("normalization")(x))
    np.testing.assert_allclose(out, (x - MEAN) / np.sqrt(VARIANCE), rtol=1e-5, atol=1e-5)


def test_inference_twin_matches_training_model():
    rng = np.random.default_rng(3)
    keras.utils.set_random_seed(11)
    train = _model()
    _scramble_batch_norm(train, rng)
    twin = _model(inference=True)

    assert not any(isinstance(layer, layers.Dropout) for layer in twin.layers)
    for layer in twin.layers:
        if isinstance(layer, layers.LSTM):
            assert layer.dropout == 0 and layer.recurrent_dropout == 0
    assert [w.shape for w in twin.weights] == [w.shape for w in train.weights]
    assert parameter_counts(twin) == parameter_counts(train)

    x = rng.normal(size=(50, 20, N_FEATURES)).astype("float32")
    twin.set_weights(train.get_weights())
    expected = predict(train, x)
    np.testing.assert_allclose(predict(twin, x), expected, rtol=0, atol=1e-6)
    # and the training model is deterministic in inference mode (dropout off)
    np.testing.assert_array_equal(predict(train, x), expected)
    # a twin with its own random weights is a different function: the copy mattered
    fresh = _model(inference=True)
    assert np.abs(predict(fresh, x) - expected).max() > 1e-3


# ---------------------------------------------------------------------------
# masked loss


Y_BATCH = np.array(
    [
        [1.0, 0.0, np.nan, np.nan],
        [0.0, np.nan, np.nan, 1.0],
        [np.nan, 1.0, np.nan, 0.0],
        [1.0, 1.0, np.nan, np.nan],
        [0.0, np.nan, np.nan, np.nan],
        [np.nan, 0.0, np.nan, 1.0],
    ],
    dtype=np.float32,
)  # head 2 has no event in the batch
P_BATCH = np.array(
    [
        [0.8, 0.3, 0.6, 0.5],
        [0.4, 0.9, 0.2, 0.7],
        [0.5, 0.6, 0.99, 0.1],
        [0.7, 0.2, 0.4, 0.5],
        [0.1, 0.5, 0.5, 0.6],
        [0.3, 0.35, 0.05, 0.9],
    ],
    dtype=np.float32,
)


def test_masked_loss_equals_hand_computation():
    loss = float(masked_binary_crossentropy(Y_BATCH, P_BATCH))
    # by hand: the labelled (sample, head) pairs, each weighing the same
    terms = []
    for i in range(Y_BATCH.shape[0]):
        for j in range(Y_BATCH.shape[1]):
            y, p = float(Y_BATCH[i, j]), float(P_BATCH[i, j])
            if not np.isnan(y):
                terms.append(-np.log(p) if y == 1 else -np.log(1 - p))
    assert len(terms) == int((~np.isnan(Y_BATCH)).sum()) == 11
    assert loss == pytest.approx(np.mean(terms), rel=1e-6)


def test_head_without_events_contributes_nothing():
    base = float(masked_binary_crossentropy(Y_BATCH, P_BATCH))
    other = P_BATCH.copy()
    other[:, 2] = RNG.uniform(0.01, 0.99, size=other.shape[0])
    assert float(masked_binary_crossentropy(Y_BATCH, other)) == base
    # the loss without that column is the same number
    keep = [0, 1, 3]
    assert float(masked_binary_crossentropy(Y_BATCH[:, keep], P_BATCH[:, keep])) == pytest.approx(
        base, rel=1e-6
    )


def test_masked_loss_gradient_is_zero_on_unlabelled_entries():
    logits = tf.Variable(np.log(P_BATCH / (1 - P_BATCH)))
    probs = tf.Variable(P_BATCH)
    with tf.GradientTape(persistent=True) as tape:
        loss_from_logits = masked_binary_crossentropy(Y_BATCH, tf.sigmoid(logits))
        loss_from_probs = masked_binary_crossentropy(Y_BATCH, probs)
    g_logits = tape.gradient(loss_from_logits, logits).numpy()
    g_probs = tape.gradient(loss_from_probs, probs).numpy()
    mask = ~np.isnan(Y_BATCH)
    assert np.isfinite(g_logits).all() and np.isfinite(g_probs).all()
    assert (g_logits[~mask] == 0).all()
    assert (g_probs[~mask] == 0).all()
    assert (g_probs[:, 2] == 0).all()
    # labelled entries: d/dp = (p - y) / (p (1 - p)) / N, d/dlogit = (p - y) / N
    n = mask.sum()
    y = np.nan_to_num(Y_BATCH.astype(np.float64))
    p = P_BATCH.astype(np.float64)
    np.testing.assert_allclose(g_probs[mask], ((p - y) / (p * (1 - p)) / n)[mask], rtol=1e-4)
    np.testing.assert_allclose(g_logits[mask], ((p - y) / n)[mask], rtol=1e-4, atol=1e-7)


def test_batch_without_any_label_has_zero_loss_and_gradient():
    y = np.full((3, 2), np.nan, dtype=np.float32)
    p = tf.Variable(np.full((3, 2), 0.3, dtype=np.float32))
    with tf.GradientTape() as tape:
        loss = masked_binary_crossentropy(y, p)
    assert float(loss) == 0.0
    assert (tape.gradient(loss, p).numpy() == 0).all()


def test_masked_loss_clips_certain_wrong_predictions():
    y = np.array([[1.0], [0.0]], dtype=np.float32)
    p = tf.Variable(np.array([[0.0], [1.0]], dtype=np.float32))
    with tf.GradientTape() as tape:
        loss = masked_binary_crossentropy(y, p)
    # finite, and far above the loss of any sensible prediction (-log 0.01 = 4.6)
    assert np.isfinite(float(loss)) and float(loss) > 10
    assert np.isfinite(tape.gradient(loss, p).numpy()).all()


@pytest.mark.parametrize("l2", [0.0, 0.006], ids=["no l2", "spec l2"])
def test_compiled_model_loss_is_the_masked_loss(l2):
    """Keras's loss = masked BCE of the inference-mode predictions + the L2 penalty."""
    rng = np.random.default_rng(5)
    keras.utils.set_random_seed(5)
    config = dataclasses.replace(ModelConfig(), l2=l2)
    model = compile_model(_model(config), config)
    _scramble_batch_norm(model, rng)
    x = rng.normal(size=(48, 20, N_FEATURES)).astype("float32")
    y = (rng.uniform(size=(48, N_PATTERNS)) < 0.5).astype("float32")
    y[rng.uniform(size=y.shape) < 0.4] = np.nan
    y[:, 1] = np.nan  # a head with no event at all

    p = predict(model, x)
    kernel = model.get_layer("dense").kernel.numpy().astype(np.float64)
    expected = _hand_bce(y, p) + l2 * np.sum(kernel**2)
    got = model.evaluate(x, y, batch_size=len(x), verbose=0)
    assert got == pytest.approx(expected, rel=1e-5)
    if l2 > 0:
        assert l2 * np.sum(kernel**2) > 1e-3 * expected  # the penalty is visible at this tolerance


def test_compile_model_uses_spec_optimiser():
    config = ModelConfig()
    model = compile_model(_model(config), config)
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.Adam)
    assert float(opt.learning_rate) == pytest.approx(8e-4)
    assert opt.clipnorm == pytest.approx(1.0)
    assert model.loss is masked_binary_crossentropy
