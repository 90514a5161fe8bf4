"""``engine train`` with the tuner's trainer options: --config, the loss, weights, precision.

One tiny holdout run on a demo ticker takes its LSTM settings from a
``best.toml`` and overrides some of them on the command line; the run
records exactly the merged configuration. LightGBM refuses LSTM options.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.model.network import ModelConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["data", "demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return data_dir


@pytest.mark.slow
def test_config_file_and_options_merge_into_the_run(demo_dir, tmp_path):
    best = tmp_path / "best.toml"
    file_config = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, loss="focal",
                              focal_gamma=1.5, learning_rate=0.003)  # fmt: skip
    best.write_text("recommended = true\n\n" + file_config.to_toml())
    out = tmp_path / "run"
    args = ["train", "--tickers", "AAPL", "--split", "holdout", "--start", "2015-01-01",
            "--min-train-sequences", "0", "--epochs", "1", "--config", str(best),
            "--focal-alpha", "0.25", "--class-weights", "balanced", "--precision", "mixed",
            "--data-dir", str(demo_dir), "--out", str(out), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "run.json").read_text())["config"]
    expected = {**file_config.to_dict(), "epochs": 1, "focal_alpha": 0.25,
                "class_weights": "balanced", "precision": "mixed"}  # fmt: skip
    assert recorded == expected
    assert json.loads(result.stdout)["status"] == "complete"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--model", "lightgbm", "--loss", "focal"], "--loss apply to --model lstm",
                     id="lightgbm with an LSTM option"),
        pytest.param(["--config", "missing.toml"], "does not exist", id="missing config"),
        pytest.param(["--loss", "focal", "--focal-alpha", "1.0"], "focal_alpha",
                     id="alpha 1"),
    ],
)  # fmt: skip
def test_bad_training_options_are_clear_errors(demo_dir, tmp_path, args, message):
    result = runner.invoke(app, ["train", "--data-dir", str(demo_dir), "--out",
                                 str(tmp_path / "o"), *args])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
