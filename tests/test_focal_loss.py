"""Class-imbalance options of the trainer: focal loss and balanced class weights.

Every loss is checked against a NumPy reference written here from the
definitions (Lin et al. 2017 for the focal loss; scikit-learn's "balanced"
rule for the weights), never against numbers printed by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.model.network import (
    ModelConfig,
    balanced_class_weights,
    build_model,
    compile_model,
    make_masked_loss,
    masked_binary_crossentropy,
)

EPS = 1e-7


def focal_reference(y, p, gamma, alpha=None, weights=None) -> float:
    """Masked focal loss from its definition, in float64 after the float32 clip."""
    y = np.asarray(y, np.float64)
    # the model clips float32 confidences: 1 - 1e-7 is 1 - 2**-23 in float32
    lo, hi = np.float32(EPS), np.float32(1 - EPS)
    p = np.clip(np.asarray(p, np.float32), lo, hi).astype(np.float64)
    total, count = 0.0, 0
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            if np.isnan(y[i, j]):
                continue
            positive = y[i, j] == 1.0
            p_t = p[i, j] if positive else 1.0 - p[i, j]
            term = -((1.0 - p_t) ** gamma) * np.log(p_t)
            if alpha is not None:
                term *= alpha if positive else 1.0 - alpha
            if weights is not None:
                term *= weights[1, j] if positive else weights[0, j]
            total += term
            count += 1
    return total / max(count, 1)


def _labels(draw_seed: int, n: int, k: int, nan_share: float = 0.3):
    rng = np.random.default_rng(draw_seed)
    y = (rng.random((n, k)) < 0.6).astype(np.float32)
    y[rng.random((n, k)) < nan_share] = np.nan
    p = rng.uniform(0.001, 0.999, (n, k)).astype(np.float32)
    return y, p


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 12),
    k=st.integers(1, 4),
    gamma=st.floats(0.0, 4.0),
    alpha=st.one_of(st.none(), st.floats(0.05, 0.95)),
)
def test_focal_loss_matches_numpy_reference(seed, n, k, gamma, alpha):
    y, p = _labels(seed, n, k)
    got = float(make_masked_loss("focal", gamma=gamma, alpha=alpha)(y, p))
    assert got == pytest.approx(focal_reference(y, p, gamma, alpha), rel=2e-5, abs=1e-7)


@settings(max_examples=25, deadline=None)
@given(
    y=arrays(np.float32, (8, 3), elements=st.sampled_from([0.0, 1.0, np.nan])),
    p=arrays(np.float32, (8, 3), elements=st.floats(0.0, 1.0, width=32)),
)
def test_focal_gamma_zero_without_alpha_is_bce(y, p):
    focal = float(make_masked_loss("focal", gamma=0.0)(y, p))
    bce = float(masked_binary_crossentropy(y, p))
    assert focal == pytest.approx(bce, rel=1e-6, abs=1e-7)
    assert focal == pytest.approx(focal_reference(y, p, 0.0), rel=2e-5, abs=1e-6)


def test_focal_loss_discounts_easy_examples():
    # an easy positive (p = 0.95) loses almost all its weight, a hard one (p = 0.2) little
    y = np.array([[1.0], [1.0]], np.float32)
    easy, hard = np.array([[0.95]], np.float32), np.array([[0.2]], np.float32)
    loss = make_masked_loss("focal", gamma=2.0)
    ratio_easy = float(loss(y[:1], easy)) / float(masked_binary_crossentropy(y[:1], easy))
    ratio_hard = float(loss(y[:1], hard)) / float(masked_binary_crossentropy(y[:1], hard))
    assert ratio_easy == pytest.approx(0.05**2, rel=1e-4)
    assert ratio_hard == pytest.approx(0.8**2, rel=1e-4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.sampled_from([0.0, 1.5]))
def test_class_weighted_loss_matches_numpy_reference(seed, gamma):
    y, p = _labels(seed, 10, 3)
    w = np.random.default_rng(seed + 1).uniform(0.2, 3.0, (2, 3))
    kind = "focal" if gamma else "bce"
    got = float(make_masked_loss(kind, gamma=gamma, class_weights=w)(y, p))
    assert got == pytest.approx(focal_reference(y, p, gamma, None, w), rel=2e-5, abs=1e-7)


def test_balanced_class_weights_follow_the_sklearn_rule():
    rng = np.random.default_rng(3)
    y = (rng.random((200, 4)) < [0.7, 0.5, 0.1, 0.0]).astype(np.float64)
    y[rng.random((200, 4)) < 0.4] = np.nan
    w = balanced_class_weights(y)
    for j in range(3):
        labels = y[~np.isnan(y[:, j]), j]
        n, n1 = labels.size, labels.sum()
        assert w[1, j] == pytest.approx(n / (2 * n1))
        assert w[0, j] == pytest.approx(n / (2 * (n - n1)))
        # both classes carry half the weight, and the mean weight is 1
        assert w[1, j] * n1 == pytest.approx(w[0, j] * (n - n1))
        assert (w[1, j] * n1 + w[0, j] * (n - n1)) / n == pytest.approx(1.0)
    assert w[:, 3].tolist() == [1.0, 1.0]  # a head with one class cannot be balanced


def test_unlabelled_entries_get_no_gradient_under_every_option():
    y = tf.constant([[1.0, np.nan], [0.0, np.nan]])
    p = tf.Variable([[0.7, 0.4], [0.2, 0.9]])
    w = np.array([[1.5, 2.0], [0.5, 3.0]])
    for loss in (
        make_masked_loss("focal", gamma=2.0, alpha=0.25),
        make_masked_loss("bce", class_weights=w),
    ):
        with tf.GradientTape() as tape:
            value = loss(y, p)
        grad = tape.gradient(value, p).numpy()
        assert np.all(np.isfinite(grad))
        assert grad[:, 1].tolist() == [0.0, 0.0]
        assert np.all(grad[:, 0] != 0.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("loss", "hinge", id="unknown loss"),
        pytest.param("class_weights", "auto", id="unknown weighting"),
        pytest.param("precision", "float16", id="unknown precision"),
        pytest.param("focal_gamma", -0.5, id="negative gamma"),
        pytest.param("focal_alpha", 1.0, id="alpha 1"),
        pytest.param("focal_alpha", 0.0, id="alpha 0"),
    ],
)
def test_config_rejects_bad_training_options(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})


def test_compile_uses_the_configured_loss():
    config = ModelConfig(lstm_units=4, lstm2_units=2, dense_units=2, loss="focal",
                         focal_gamma=1.0, focal_alpha=0.3)  # fmt: skip
    model = build_model(config, n_features=3, n_patterns=2, mean=np.zeros(3),
                        variance=np.ones(3), sequence_length=5)  # fmt: skip
    compile_model(model, config)
    y, p = _labels(0, 6, 2)
    assert float(model.loss(y, p)) == pytest.approx(focal_reference(y, p, 1.0, 0.3), rel=2e-5)
    with pytest.raises(ValueError, match="balanced"):
        compile_model(model, ModelConfig(class_weights="balanced"))
