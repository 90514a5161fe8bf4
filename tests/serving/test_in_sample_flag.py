"""``in_sample`` is unknown (null), not false, for a model that records no embargo end."""

from __future__ import annotations

import pytest

from tests.test_scorer import toy_model


@pytest.fixture(scope="module")
def model_without_split(toy, tmp_path_factory):
    oracle = toy[1]
    data, _ = toy_model(oracle["mean"], oracle["sd"], split={})
    path = tmp_path_factory.mktemp("nosplit") / "nosplit.onnx"
    path.write_bytes(data)
    return path


def test_in_sample_is_null_without_an_embargo_end(make_client, model_without_split):
    client = make_client(model=str(model_without_split))
    assert client.get("/readyz").json()["model"]["embargo_end"] is None
    scores = client.get("/v1/scores/latest", params={"as_of": "2009-06-30"}).json()["scores"]
    assert scores and all(row["in_sample"] is None for row in scores)
    signals = client.post("/v1/signals", json={"strategy": "momentum"}).json()["signals"]
    assert signals and all(row["in_sample"] is None for row in signals)


def test_in_sample_is_a_bool_with_an_embargo_end(make_client):
    scores = make_client().get("/v1/scores/latest", params={"as_of": "2009-06-30"}).json()
    assert scores["scores"] and all(row["in_sample"] is True for row in scores["scores"])
