"""Which status a refusal gets: the client's mistakes are 422, the server's store faults 503."""

from __future__ import annotations

import pytest

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
