"""One tiny model for the lifecycle tests: trained, exported, registered as champion.

AAPL and MSFT of the demo universe (with SPY, XLK and VIX) in a data
directory whose MLflow database (``mlflow.db``, SQLite, no server) is the
default tracking destination. The model is the SPEC architecture shrunk
(8/4 LSTM units), one epoch, holdout split: it exists to be exported,
registered, served and monitored, not to show skill.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine.data.demo import generate_demo_universe
from engine.data.store import BarStore
from engine.jobs.train import run_train_job
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings
from engine.tracking import Tracking

STORED = ["AAPL", "MSFT", "SPY", "XLK", "VIX"]
TINY = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, epochs=1)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> BarStore:
    bars = generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(STORED))
    store = BarStore(tmp_path_factory.mktemp("lifecycle") / "data")
    store.write(bars)
    return store


@pytest.fixture(scope="session")
def tracking(demo_store) -> Tracking:
    return Tracking(data_dir=demo_store.data_dir)


@pytest.fixture(scope="session")
def artifact_dir(demo_store, tmp_path_factory):
    report = run_train_job(
        demo_store,
        "AAPL,MSFT",
        settings=RunSettings(split="holdout", deterministic=True),
        config=TINY,
        out=tmp_path_factory.mktemp("run") / "run",
    )
    return report.out / report.windows[0].artifact


@pytest.fixture(scope="session")
def exported(artifact_dir, tracking):
    """``export_onnx`` with tracking: model.onnx in the artifact, version 1, champion."""
    from export.onnx_export import export_onnx

    return export_onnx(artifact_dir, tracking=tracking, champion_if_none=True)
