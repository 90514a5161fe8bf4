"""The search space: defaults as the issue lists them, TOML overrides, clear errors, suggestions."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from engine.model.network import ModelConfig
from engine.tuning.space import (
    Choice,
    Fixed,
    FloatRange,
    IntRange,
    contains,
    default_params,
    default_space,
    load_space,
    suggest,
    to_config,
    trainable_parameters,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_default_space_is_the_issues():
    space = default_space()
    assert space["learning_rate"] == FloatRange(1e-4, 3e-3, log=True)
    assert space["lstm_units"] == Choice((32, 64, 96))
    assert space["lstm_dropout"] == FloatRange(0.2, 0.6)
    assert space["lstm_recurrent_dropout"] == FloatRange(0.0, 0.4)
    assert space["l2"] == FloatRange(1e-4, 1e-2, log=True)
    assert space["batch_size"] == Choice((32, 64, 128))
    assert space["imbalance"] == Choice(("none", "balanced", "focal"))
    assert space["focal_gamma"] == FloatRange(0.5, 3.0)


def test_toml_overrides_keys_one_by_one(tmp_path):
    path = _write(
        tmp_path,
        """
        learning_rate = { low = 1e-4, high = 1e-3, log = true }
        lstm_units = [32, 64]
        batch_size = 64
        [space]
        head_dropout = { low = 0.2, high = 0.5 }
        dense_units = { low = 8, high = 32 }
        """,
    )
    space = load_space(path)
    assert space["learning_rate"] == FloatRange(1e-4, 1e-3, log=True)
    assert space["lstm_units"] == Choice((32, 64))
    assert space["batch_size"] == Fixed(64)
    assert space["head_dropout"] == FloatRange(0.2, 0.5)
    assert space["dense_units"] == IntRange(8, 32)
    assert space["l2"] == default_space()["l2"]  # untouched keys keep the default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("lr = 0.001", r"unknown key 'lr'; the known keys are .*learning_rate",
                     id="unknown key"),
        pytest.param("learning_rate = { low = 3e-3, high = 1e-4 }", "empty range",
                     id="empty range"),
        pytest.param("l2 = { low = 0.01, high = 0.01 }", "empty range", id="point range"),
        pytest.param("lstm_units = []", "empty list of choices", id="no choices"),
        pytest.param("lstm_units = [32, 32]", "twice", id="repeated choice"),
        pytest.param("lstm_dropout = { low = 0.2, high = 1.0 }", "lstm_dropout.*refused",
                     id="value ModelConfig refuses"),
        pytest.param("l2 = { low = 0.0, high = 0.1, log = true }", "log-scaled", id="log at 0"),
        pytest.param("batch_size = 64.5", "integers", id="fractional batch"),
        pytest.param("epochs = 5", "--epochs sets it", id="epochs"),
        pytest.param("lstm2_units = 8", "half of lstm_units", id="second layer"),
        pytest.param("imbalance = ['none', 'smote']", "imbalance.*smote", id="bad imbalance"),
        pytest.param("learning_rate = { low = 1e-4, top = 1e-3 }", "must be a range",
                     id="bad range keys"),
        pytest.param("learning_rate = ", "not a valid TOML", id="not toml"),
    ],
)  # fmt: skip
def test_bad_space_files_name_the_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_space(path)
    assert str(path) in str(info.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_space(tmp_path / "nope.toml")


def test_suggest_draws_focal_parameters_only_for_focal_trials():
    space = default_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = {"focal": 0, "other": 0}
    for _ in range(30):
        trial = study.ask()
        params = suggest(trial, space)
        focal = params["imbalance"] == "focal"
        seen["focal" if focal else "other"] += 1
        assert ("focal_gamma" in params) == focal
        assert ("focal_alpha" in params) == focal
        assert contains(space, params)
        config = to_config(params, ModelConfig())
        assert config.lstm2_units == params["lstm_units"] // 2
        assert config.loss == ("focal" if focal else "bce")
        assert config.class_weights == ("balanced" if params["imbalance"] == "balanced" else "none")
        study.tell(trial, 0.0)
    assert seen["focal"] and seen["other"]


def test_fixed_keys_are_not_asked():
    space = {**default_space(), "batch_size": Fixed(128), "imbalance": Fixed("none")}
    trial = optuna.create_study().ask()
    params = suggest(trial, space)
    assert params["batch_size"] == 128 and "batch_size" not in trial.params


def test_default_configuration_is_inside_the_default_space():
    params = default_params(default_space(), ModelConfig())
    assert contains(default_space(), params)
    assert to_config(params, ModelConfig()) == ModelConfig()


def test_trainable_parameters_match_keras():
    from engine.model.network import build_model, parameter_counts

    for config in (ModelConfig(), ModelConfig(lstm_units=96, lstm2_units=48, dense_units=7)):
        model = build_model(config, n_features=17, n_patterns=4, mean=[0.0] * 17,
                            variance=[1.0] * 17)  # fmt: skip
        assert trainable_parameters(config, 17, 4) == parameter_counts(model)["trainable"]


def test_model_config_toml_round_trip(tmp_path):
    config = ModelConfig(lstm_units=96, lstm2_units=48, loss="focal", focal_gamma=1.5,
                         focal_alpha=0.25, learning_rate=1.2e-3)  # fmt: skip
    path = tmp_path / "best.toml"
    path.write_text("recommended = true\n\n" + config.to_toml())
    assert ModelConfig.from_toml(path) == config
    path.write_text("[model]\nunits = 3\n")
    with pytest.raises(ValueError, match="best.toml.*unknown ModelConfig settings"):
        ModelConfig.from_toml(path)
    assert math.isclose(ModelConfig.from_toml(_write(tmp_path, "[model]\nl2 = 0.001\n")).l2, 1e-3)
