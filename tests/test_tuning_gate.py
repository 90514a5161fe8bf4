"""The gate end to end: nothing is promoted on a random walk, the planted signal is.

Both runs are real: features, targets, a tiny LSTM (8 units, no dropout,
the heads started at their base rates, 5 to 8 epochs at learning rate
0.01), two trials of a seeded TPE study in a journal file, the filtered
momentum strategy on the validation days, PBO and DSR, then the selected
and the default configuration fitted again and scored on the test rows.

The planted universe (``tests/tuning_universe.py``) lets the momentum head
learn whether a trend persists from the day's close location; with 1,500
days and a drift of 1 % a day the selected model's test skill interval was
above 0 for each of the seeds 0-3 tried while the test was written (lowest
lower bound +0.015), and its filtered strategy's DSR above 0.99.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, prepare_dataset
from engine.tuning.space import load_space
from engine.tuning.tune import TuneSettings, tune
from tests.tuning_universe import planted_bars, random_walk_bars

pytestmark = pytest.mark.slow

TICKERS = [f"S{i}" for i in range(6)]
SPACE = """
learning_rate = 0.01
lstm_units = 8
lstm_dropout = [0.0, 0.1]
lstm_recurrent_dropout = 0.0
head_dropout = 0.0
l2 = 0.0001
batch_size = 64
imbalance = "none"
"""
BASE = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, epochs=8, learning_rate=0.01,
                   lstm_dropout=0.0, lstm_recurrent_dropout=0.0, head_dropout=0.0, l2=1e-4,
                   output_bias="prior")  # fmt: skip


def _tune(bars: pl.DataFrame, out, tmp_path_factory, epochs: int):
    space_file = tmp_path_factory.mktemp("space") / "space.toml"
    space_file.write_text(SPACE)
    settings = RunSettings(split="holdout", seed=0, train_stride=1)
    dataset = prepare_dataset(bars, TICKERS, settings)
    events = []
    report = tune(
        dataset,
        bars,
        out,
        run_settings=settings,
        base=ModelConfig(**{**BASE.to_dict(), "epochs": epochs}),
        space=load_space(space_file),
        settings=TuneSettings(trials=2, windows=None, threshold=0.55, n_boot=300),
        progress=events.append,
    )
    return report, events


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise")
    return (*_tune(random_walk_bars(0, n_days=900, n_stocks=6), out, tmp_path_factory, 5), out)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted")
    bars = planted_bars(0, n_days=1500, n_stocks=6, drift=0.01)
    return (*_tune(bars, out, tmp_path_factory, 8), out)


def test_random_walk_promotes_nothing(noise_run):
    report, events, out = noise_run
    assert not report.gate["promoted"]
    assert report.gate["reasons"]
    assert report.selection["dsr"]["value"] is not None  # the strategy traded: a real DSR
    assert report.selection["dsr"]["value"] < 0.95
    assert not (out / "best.toml").exists()
    assert "no configuration beats chance" in "\n".join(report.summary_lines())


def test_planted_signal_is_promoted(planted_run):
    report, events, out = planted_run
    assert report.gate["promoted"], report.summary_lines()
    assert report.selection["dsr"]["value"] >= 0.95
    assert report.test["selected"]["ci_low"] > 0
    best = ModelConfig.from_toml(out / "best.toml")
    assert best.to_dict() == report.selection["config"]
    assert "recommended = true" in (out / "best.toml").read_text()


def test_report_files_and_progress(planted_run):
    report, events, out = planted_run
    saved = json.loads((out / "tune.json").read_text())
    assert saved["gate"] == report.gate
    assert {t["number"] for t in saved["trials"]} == {0, 1}
    # the default configuration is the first trial
    assert saved["trials"][0]["default"] and saved["selected"]["default_trial"] == 0
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == 2 and set(trials["state"]) == {"complete"}
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "plan" and kinds.count("trial") == 2 and kinds[-1] == "phase"
    # the test rows come after the validation period, scored only by the two final fits
    preds = pl.read_parquet(out / "test_predictions.parquet")
    window = report.windows[0]
    assert str(preds["date"].min()) >= window["test_start"]
    assert preds.height == report.test["rows"]
    assert {"momentum_persistence_p_selected", "momentum_persistence_p_default"} <= set(
        preds.columns
    )
    assert (out / "study.journal").stat().st_size > 0
