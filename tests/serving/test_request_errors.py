"""Which status a refusal gets: the client's mistakes are 422, the server's store faults 503."""

from __future__ import annotations

import pytest

from tests.serving.conftest import API_KEY, KEY_ENV

VIX_REFUSED = "VIX is a volatility index (a feature input), not a security the model scores"


@pytest.mark.parametrize("tickers", ["VIX", "aapl,vix"])
def test_a_volatility_index_is_refused_as_a_feature_input(make_client, tickers):
    client = make_client()
    got = client.get("/v1/scores/latest", params={"tickers": tickers})
    assert got.status_code == 422 and got.json()["detail"] == VIX_REFUSED
    signals = client.post(
        "/v1/signals", json={"strategy": "momentum", "tickers": tickers.split(",")}
    )
    assert signals.status_code == 422
    both = client.get("/v1/scores/latest", params={"tickers": "VIX3M,VIX"})
    assert both.status_code == 422
    assert both.json()["detail"].startswith("VIX, VIX3M are volatility indices (a feature input)")


def test_a_volatility_index_is_refused_in_the_clients_bars(make_client):
    bar = {"ticker": "VIX", "date": "2018-01-02", "open": 10.0, "high": 11.0, "low": 9.5,
           "close": 10.5, "volume": 0.0}  # fmt: skip
    got = make_client().post("/v1/score/bars", json={"bars": [bar], "tickers": ["VIX"]})
    assert got.status_code == 422 and got.json()["detail"] == VIX_REFUSED


def test_an_empty_store_is_503_naming_how_to_fill_it(make_client, tmp_path):
    client = make_client(data_dir=str(tmp_path / "empty"))
    for got in (
        client.get("/v1/scores/latest"),
        client.post("/v1/signals", json={"strategy": "momentum"}),
    ):
        assert got.status_code == 503, got.text
        assert "`engine data demo`" in got.json()["detail"]
        assert "POST /v1/bars" in got.json()["detail"]


def test_a_corrupt_store_is_503_and_a_bad_ticker_list_stays_422(make_client, store):
    client = make_client()
    empty_list = client.get("/v1/scores/latest", params={"tickers": " , "})
    assert empty_list.status_code == 422 and "tickers is empty" in empty_list.json()["detail"]
    store.metadata_path.write_text("{not json")
    for got in (client.get("/v1/scores/latest"), client.get("/readyz")):
        assert got.status_code == 503, got.text
        assert "cannot read the store's metadata" in got.json()["detail"]


def test_a_reload_that_cannot_open_the_model_is_503_and_keeps_serving(
    make_client, model_file, tmp_path
):
    served = tmp_path / "served.onnx"
    served.write_bytes(model_file.read_bytes())
    client = make_client(model=str(served), api_key_env=KEY_ENV)
    served.write_bytes(b"not an onnx model")
    got = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert got.status_code == 503
    assert f"cannot reload {served}" in got.json()["detail"]
    assert "still serving version" in got.json()["detail"]
    assert client.get("/v1/scores/latest", params={"tickers": "AAPL"}).status_code == 200
