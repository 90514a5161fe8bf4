"""Training options: mixed precision, the heads' initial bias, all options in one fit.

Mixed precision: on a CPU the hidden layers run in bfloat16. The weights stay
float32 under every policy, so the same weights give a float32 and a mixed
build of one config; their outputs must stay close, and a mixed fit must
hand back a float32 model.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from engine.model.network import (
    ModelConfig,
    balanced_class_weights,
    build_model,
    precision_policy,
)
from engine.model.trainer import fit_model, predict

CPU_ONLY = not tf.config.list_physical_devices("GPU")


def _pair(config: ModelConfig):
    rng = np.random.default_rng(1)
    mean, variance = rng.normal(size=17) * 10, rng.uniform(0.5, 20, 17)
    shape = dict(n_features=17, n_patterns=4, mean=mean, variance=variance)
    f32 = build_model(config, **shape)
    mixed = build_model(ModelConfig(**{**config.to_dict(), "precision": "mixed"}), **shape)
    mixed.set_weights(f32.get_weights())
    X = (mean + rng.normal(size=(512, 20, 17)) * np.sqrt(variance)).astype("float32")
    return f32, mixed, X


@pytest.mark.skipif(not CPU_ONLY, reason="the CPU policy is bfloat16; a GPU uses float16")
def test_mixed_policy_on_cpu_is_bfloat16():
    assert precision_policy("mixed") == "mixed_bfloat16"


def test_mixed_forward_pass_stays_close_to_float32():
    f32, mixed, X = _pair(ModelConfig())
    hidden = {layer.name: layer.dtype_policy.name for layer in mixed.layers}
    assert hidden["lstm_1"] == precision_policy("mixed")
    # raw features are normalised, and the heads computed, in float32
    assert hidden["normalization"] == "float32"
    assert hidden["pattern_confidence"] == "float32"
    assert all(w.dtype == "float32" for w in mixed.weights)
    a = predict(f32, X)
    b = predict(mixed, X)
    assert b.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa (relative step 2**-8 = 0.004)
    assert np.abs(a - b).max() < 0.02
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_fit_with_every_training_option_returns_a_float32_model():
    # one fit with focal loss, balanced class weights and mixed precision together
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 6, 3)).astype("float32")
    y = np.stack([(X[:, -1, 0] > -0.5), (X[:, -1, 1] > 0.8)], axis=1).astype("float32")
    y[rng.random(y.shape) < 0.3] = np.nan
    config = ModelConfig(lstm_units=4, lstm2_units=2, dense_units=2, epochs=1, batch_size=32,
                         loss="focal", focal_gamma=1.0, class_weights="balanced",
                         precision="mixed")  # fmt: skip
    fit = fit_model(X[:120], y[:120], X[120:], y[120:], config, seed=0)
    assert {layer.dtype_policy.name for layer in fit.model.layers} == {"float32"}
    np.testing.assert_allclose(fit.class_weights, balanced_class_weights(y[:120]))
    # the monitor stays the plain masked cross-entropy, measured in inference mode
    p = predict(fit.model, X[120:])
    labelled = ~np.isnan(y[120:])
    q = np.clip(p[labelled].astype(np.float64), 1e-7, 1 - 1e-7)
    t = y[120:][labelled]
    bce = -np.mean(t * np.log(q) + (1 - t) * np.log(1 - q))
    # the float32 copy of the weights scores within bfloat16 rounding of the monitor
    assert fit.history["val_loss"][-1] == pytest.approx(bce, abs=0.01)


def test_prior_output_bias_starts_each_head_at_its_base_rate():
    from engine.model.trainer import _set_prior_bias

    rng = np.random.default_rng(5)
    y = (rng.random((400, 3)) < [0.8, 0.3, 0.5]).astype("float32")
    y[rng.random(y.shape) < 0.25] = np.nan
    y[:, 2] = np.nan  # a head without labels starts at 0.5
    model = build_model(ModelConfig(output_bias="prior"), n_features=17, n_patterns=3,
                        mean=np.zeros(17), variance=np.ones(17))  # fmt: skip
    _set_prior_bias(model, y)
    bias = model.get_layer("pattern_confidence").bias.numpy()
    rates = [np.nanmean(y[:, 0]), np.nanmean(y[:, 1])]
    np.testing.assert_allclose(1 / (1 + np.exp(-bias[:2])), rates, rtol=1e-5)
    assert bias[2] == 0.0
    # with the kernel at zero, the model's output is exactly the base-rate forecast
    head = model.get_layer("pattern_confidence")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    p = predict(model, np.random.default_rng(0).normal(size=(5, 20, 17)).astype("float32"))
    np.testing.assert_allclose(p[:, :2], np.tile(rates, (5, 1)), rtol=1e-5)
