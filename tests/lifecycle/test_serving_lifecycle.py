"""``engine serve`` on a trained, exported, registered model (issue 15).

Uses the lifecycle fixtures (``conftest.py``): a tiny LSTM trained on AAPL
and MSFT, exported and registered as ``pattern-lstm`` (champion), in a data
directory whose MLflow database is SQLite.

* ``/v1/scores/latest?as_of=D`` from the store equals, within 1e-5, the
  out-of-sample prediction the training run recorded for (ticker, D): the
  run scored with Keras on full-history features, the service with
  onnxruntime on tail-mode features.
* ``POST /admin/reload`` moves a ``models:/NAME@ALIAS`` service to the
  version the alias points at now.
"""

from __future__ import annotations

import polars as pl
import pytest
from fastapi.testclient import TestClient

from engine.serving import ServeSettings, create_app
from engine.tracking import track_job
from engine.tracking.registry import Registry
from tests.test_scorer import toy_model

KEY_ENV = "ENGINE_TEST_LIFECYCLE_KEY"


@pytest.fixture
def served(exported, demo_store, tracking, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    settings = ServeSettings(
        model="models:/pattern-lstm@champion",
        data_dir=str(demo_store.data_dir),
        tracking_uri=tracking.resolve().uri,
        api_key_env=KEY_ENV,
        threads=1,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.slow
def test_latest_scores_as_of_equal_the_runs_out_of_sample_predictions(served, artifact_dir):
    recorded = pl.read_parquet(artifact_dir.parents[1] / "predictions.parquet")
    heads = [c.removesuffix("_p") for c in recorded.columns if c.endswith("_p")]
    assert heads
    picked = []
    for _, rows in recorded.sort("date").group_by("ticker", maintain_order=True):
        picked += [rows.row(i, named=True) for i in (0, rows.height // 2, rows.height - 1)]
    assert len(picked) >= 6
    worst = 0.0
    for row in picked:
        response = served.get(
            "/v1/scores/latest",
            params={"tickers": row["ticker"], "as_of": row["date"].isoformat()},
        )
        assert response.status_code == 200, response.text
        got = response.json()["scores"][0]
        assert got["date"] == row["date"].isoformat()
        assert got["in_sample"] is False  # recorded predictions are out of sample
        for head in heads:
            worst = max(worst, abs(got[f"{head}_p"] - row[f"{head}_p"]))
    print(f"served vs recorded out-of-sample predictions: max abs diff {worst:.2e}")
    assert worst <= 1e-5


def test_readyz_names_the_registered_version_and_alias(served, exported):
    model = served.get("/readyz").json()["model"]
    assert model["reference"] == "models:/pattern-lstm@champion"
    assert model["version"] == "models:/pattern-lstm/1" and model["alias"] == "champion"
    assert model["model_id"] == exported.to_dict()["model_id"]


def test_reload_moves_to_the_aliases_current_version(exported, demo_store, tracking, monkeypatch):
    """A name of its own, so the shared pattern-lstm champion is left alone."""
    name = "serving-reload-test"
    toy, _ = toy_model([0.0] * 17, [1.0] * 17, model_id="toy-v2", vix_variant="market_vol_ratio")
    toy_path = demo_store.data_dir / "toy-v2.onnx"
    toy_path.write_bytes(toy)
    registry = Registry(tracking)
    for path in (exported.path, toy_path):
        with track_job("serving-test", None, tracking) as run:
            Registry(run.where).register_onnx(path, name=name, run_id=run.run_id, tags={})
    registry.set_alias(name, 1, "live", reason="first")
    monkeypatch.setenv(KEY_ENV, "k")
    settings = ServeSettings(
        model=f"models:/{name}@live",
        data_dir=str(demo_store.data_dir),
        tracking_uri=tracking.resolve().uri,
        api_key_env=KEY_ENV,
        threads=1,
    )
    with TestClient(create_app(settings)) as client:
        first = client.get("/readyz").json()["model"]
        assert first["version"] == f"models:/{name}/1"
        unchanged = client.post("/admin/reload", headers={"X-API-Key": "k"}).json()
        assert unchanged["swapped"] is False
        registry.set_alias(name, 2, "live", reason="serving test")
        swapped = client.post("/admin/reload", headers={"X-API-Key": "k"}).json()
        assert swapped["swapped"] is True
        assert swapped["previous"]["version"] == f"models:/{name}/1"
        assert swapped["current"]["version"] == f"models:/{name}/2"
        assert client.get("/readyz").json()["model"]["model_id"] == "toy-v2"
        assert 'version="models:/serving-reload-test/2"' in client.get("/metrics").text
