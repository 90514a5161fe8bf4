"""The HTTP API through FastAPI's TestClient: every endpoint, schema and error code.

Scores are checked against an independent path: the engine's full-history
features, stacked by hand and scored by the toy model's NumPy oracle
(``conftest.reference_scores``). Signals are checked against
``compute_signals`` over the full closes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading

import numpy as np
import polars as pl
import pytest

from engine.backtest.signals import STRATEGY_HEADS, compute_signals
from engine.features.build import FEATURE_NAMES
from engine.features.source import SortedBars
from tests.serving.conftest import (
    API_KEY,
    EMBARGO_END,
    KEY_ENV,
    SECURITIES,
    next_bars,
    reference_scores,
)
from tests.test_scorer import PATTERNS, oracle_scores, toy_model

TOL = 1e-6


def _close(got: dict, want: dict) -> None:
    assert got["date"] == want["date"], (got, want)
    for p in PATTERNS:
        assert abs(got[f"{p}_p"] - want[f"{p}_p"]) <= TOL, (p, got, want)


# --------------------------------------------------------------------------- health


def test_healthz_and_readyz_describe_the_model_and_store(make_client, toy, store):
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    model = ready["model"]
    assert model["model_id"] == "toy"
    assert model["patterns"] == PATTERNS
    assert model["feature_names"] == list(FEATURE_NAMES)
    assert model["data_fingerprint"] == "toy"
    assert len(model["version"]) == 12  # the file's SHA-256, 12 hex digits
    assert model["alias"] is None and model["embargo_end"] == EMBARGO_END.isoformat()
    last = max(e["last_date"] for e in store.metadata()["tickers"].values())
    assert ready["store"] == {"data_dir": str(store.data_dir), "tickers": 6, "last_date": last}


def test_openapi_lists_every_endpoint(make_client):
    paths = make_client().get("/openapi.json").json()["paths"]
    for path in ("/healthz", "/readyz", "/v1/scores/latest", "/v1/score", "/v1/score/bars",
                 "/v1/signals", "/v1/bars", "/metrics", "/admin/reload"):  # fmt: skip
        assert path in paths, path


# --------------------------------------------------------------------------- latest scores


def test_latest_scores_of_every_security_equal_the_full_computation(make_client, toy, demo_bars):
    body = make_client().get("/v1/scores/latest").json()
    assert body["model_id"] == "toy" and body["as_of"] is None
    want = reference_scores(toy, demo_bars, SECURITIES)
    assert [row["ticker"] for row in body["scores"]] == SECURITIES
    for row in body["scores"]:
        _close(row, want[row["ticker"]])
        assert row["in_sample"] is False  # the demo ends in 2018, after the toy's embargo


@pytest.mark.parametrize("as_of", [dt.date(2009, 6, 30), dt.date(2015, 11, 27)])
def test_latest_scores_as_of_a_day_and_the_in_sample_flag(make_client, toy, demo_bars, as_of):
    body = (
        make_client()
        .get("/v1/scores/latest", params={"tickers": "msft,AAPL", "as_of": as_of.isoformat()})
        .json()
    )
    want = reference_scores(toy, demo_bars, ["AAPL", "MSFT"], as_of)
    assert [row["ticker"] for row in body["scores"]] == ["AAPL", "MSFT"]
    for row in body["scores"]:
        _close(row, want[row["ticker"]])
        assert row["in_sample"] is (dt.date.fromisoformat(row["date"]) <= EMBARGO_END)


def test_latest_scores_errors(make_client):
    client = make_client()
    unknown = client.get("/v1/scores/latest", params={"tickers": "AAPL,NOPE,ZZZ"})
    assert unknown.status_code == 404
    assert "unknown ticker(s): NOPE, ZZZ" in unknown.json()["detail"]
    bad_date = client.get("/v1/scores/latest", params={"as_of": "2015-13-01"})
    assert bad_date.status_code == 422
    assert bad_date.json()["detail"][0]["loc"] == ["query", "as_of"]
    early = client.get("/v1/scores/latest", params={"tickers": "AAPL", "as_of": "1999-06-30"})
    assert early.status_code == 422
    assert "AAPL has" in early.json()["detail"] and "at least 272 bars" in early.json()["detail"]


# --------------------------------------------------------------------------- raw windows


def test_score_windows_equal_the_oracle_at_batch_1_and_34(make_client, toy):
    client = make_client()
    rng = np.random.default_rng(3)
    for batch in (1, 34):
        X = rng.normal(size=(batch, 20, 17)).astype(np.float32)
        body = client.post("/v1/score", json={"sequences": X.tolist()}).json()
        assert body["patterns"] == PATTERNS and body["model_id"] == "toy"
        np.testing.assert_allclose(body["scores"], oracle_scores(toy[1], X), atol=TOL)


@pytest.mark.parametrize(
    ("sequences", "loc"),
    [
        pytest.param([[[0.0] * 17] * 19], ["body", "sequences", 0], id="19 rows"),
        pytest.param(
            [[[0.0] * 17] * 19 + [[0.0] * 16]], ["body", "sequences", 0, 19], id="row short"
        ),
        pytest.param(
            [[[0.0] * 17] * 20, [[0.0] * 18] * 20],
            ["body", "sequences", 1, 0],
            id="second window, 18 features",
        ),  # fmt: skip
        pytest.param([], ["body", "sequences"], id="empty batch"),
        pytest.param([[["x"] * 17] * 20], ["body", "sequences", 0, 0, 0], id="not a number"),
    ],
)
def test_score_refuses_malformed_windows_naming_where(make_client, sequences, loc):
    response = make_client().post("/v1/score", json={"sequences": sequences})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_score_refuses_nan_inf_and_more_than_4096_windows(make_client):
    client = make_client()
    window = [[0.0] * 17] * 20
    text = json.dumps({"sequences": [window]}).replace("0.0", "NaN", 1)
    response = client.post("/v1/score", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "sequences", 0, 0, 0]
    text = json.dumps({"sequences": [window]}).replace("0.0", "Infinity", 1)
    response = client.post("/v1/score", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    too_many = client.post("/v1/score", json={"sequences": [window] * 4097})
    assert too_many.status_code == 422
    assert "4096" in json.dumps(too_many.json())


def test_unknown_fields_are_refused(make_client):
    response = make_client().post("/v1/score", json={"sequences": [[[0.0] * 17] * 20], "x": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "x"]


# --------------------------------------------------------------------------- client bars


def _bars_json(bars: pl.DataFrame) -> list[dict]:
    return (
        bars.with_columns(pl.col("date").cast(pl.String))
        .select("ticker", "date", "open", "high", "low", "close", "volume")
        .to_dicts()
    )


def test_score_bars_from_the_clients_history_equals_the_full_computation(
    make_client, toy, demo_bars
):
    mine = demo_bars.filter(pl.col("ticker").is_in(["MSFT", "SPY", "XLK"]))
    body = (
        make_client()
        .post("/v1/score/bars", json={"bars": _bars_json(mine), "tickers": ["msft"]})
        .json()
    )
    want = reference_scores(toy, mine, ["MSFT"])
    assert [row["ticker"] for row in body["scores"]] == ["MSFT"]
    _close(body["scores"][0], want["MSFT"])


def test_score_bars_errors_name_the_row_ticker_date_rule_and_minimum(make_client, demo_bars):
    client = make_client()
    mine = demo_bars.filter(pl.col("ticker").is_in(["AAPL", "SPY", "XLK"]))
    rows = _bars_json(mine)
    rows[5]["high"] = rows[5]["low"] / 2  # high below low: a bar rule, not a schema one
    bad = client.post("/v1/score/bars", json={"bars": rows})
    assert bad.status_code == 422
    violation = bad.json()["violations"][0]
    assert (violation["row"], violation["ticker"], violation["date"]) == (
        6,
        "AAPL",
        rows[5]["date"],
    )
    assert violation["rule"] == "high_below_low"
    short = _bars_json(mine.group_by("ticker", maintain_order=True).tail(271))
    too_short = client.post("/v1/score/bars", json={"bars": short})
    assert too_short.status_code == 422
    assert "has 271 bar(s)" in too_short.json()["detail"]
    assert "at least 272 bars" in too_short.json()["detail"]
    missing = [dict(r) for r in rows[:3]]
    del missing[2]["close"]
    schema = client.post("/v1/score/bars", json={"bars": missing})
    assert schema.status_code == 422
    assert schema.json()["detail"][0]["loc"] == ["body", "bars", 2, "close"]
    no_bench = _bars_json(demo_bars.filter(pl.col("ticker") == "AAPL"))
    missing_bench = client.post("/v1/score/bars", json={"bars": no_bench})
    assert missing_bench.status_code == 422
    assert "SPY" in missing_bench.json()["detail"]


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("strategy", ["momentum", "mean_reversion", "ma_cross"])
def test_signals_equal_the_backtests_signal_and_the_heads_score(
    make_client, toy, demo_bars, strategy
):
    as_of = dt.date(2016, 8, 31)
    body = (
        make_client()
        .post(
            "/v1/signals",
            json={
                "strategy": strategy,
                "threshold": 0.5,
                "tickers": ["AAPL", "QQQ"],
                "as_of": as_of.isoformat(),
            },  # fmt: skip
        )
        .json()
    )
    cut = demo_bars.filter(pl.col("date") <= as_of)
    base = compute_signals(cut, strategy).group_by("ticker").last()
    expected_signal = dict(base.select("ticker", "signal").iter_rows())
    want = reference_scores(toy, demo_bars, ["AAPL", "QQQ"], as_of)
    head = STRATEGY_HEADS[strategy]
    assert body["strategy"] == strategy and body["threshold"] == 0.5
    for row in body["signals"]:
        assert row["signal"] == expected_signal[row["ticker"]]
        assert row["head"] == head
        assert abs(row["confidence"] - want[row["ticker"]][f"{head}_p"]) <= TOL
        assert row["taken"] is (row["signal"] != 0 and row["confidence"] >= 0.5)


def test_signals_refuse_bad_requests(make_client):
    client = make_client()
    unknown = client.post("/v1/signals", json={"strategy": "breakout"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "strategy"]
    above = client.post("/v1/signals", json={"strategy": "momentum", "threshold": 1.5})
    assert above.status_code == 422 and above.json()["detail"][0]["loc"] == ["body", "threshold"]
    missing = client.post("/v1/signals", json={"strategy": "momentum", "tickers": ["NOPE"]})
    assert missing.status_code == 404


# --------------------------------------------------------------------------- appending bars


def test_append_needs_the_key_then_extends_the_latest_scores(make_client, store, toy):
    client = make_client(api_key_env=KEY_ENV)
    new = next_bars(store, ["AAPL", "SPY", "XLK"])
    assert client.post("/v1/bars", json={"bars": new}).status_code == 401
    wrong = client.post("/v1/bars", json={"bars": new}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    before = client.get("/v1/scores/latest", params={"tickers": "AAPL"}).json()["scores"][0]
    done = client.post("/v1/bars", json={"bars": new}, headers={"X-API-Key": API_KEY})
    assert done.status_code == 200, done.text
    assert done.json()["appended"] == {"AAPL": 2, "SPY": 2, "XLK": 2}
    assert store.verify() == []  # every file matches the checksum recorded with it
    after = client.get("/v1/scores/latest", params={"tickers": "AAPL"}).json()["scores"][0]
    assert after["date"] == new[1]["date"] != before["date"]
    want = reference_scores(toy, store.read_bars(), ["AAPL"])
    _close(after, want["AAPL"])
    # the same bars again: accepted as unchanged, nothing written
    again = client.post(
        "/v1/bars", json={"bars": new}, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert again.json()["appended"] == {"AAPL": 0, "SPY": 0, "XLK": 0}
    assert again.json()["unchanged"] == {"AAPL": 2, "SPY": 2, "XLK": 2}


def test_append_never_rewrites_history_and_names_the_row(make_client, store):
    client = make_client()  # no key configured: appending is open
    stored = store.read_bars(["MSFT"]).tail(3).with_columns(pl.col("date").cast(pl.String))
    rows = next_bars(store, ["MSFT"], days=1)
    changed = stored.row(0, named=True)
    keys = ("ticker", "date", "open", "high", "low", "close", "volume", "adj_close")
    changed = {k: changed[k] for k in keys}
    changed["volume"] += 1.0
    response = client.post("/v1/bars", json={"bars": [*rows, changed]})
    assert response.status_code == 422
    v = response.json()["violations"][0]
    assert (v["row"], v["ticker"], v["date"], v["rule"]) == (2, "MSFT", changed["date"],
                                                              "not_an_append")  # fmt: skip
    assert "volume differ" in v["detail"]
    assert store.read_bars(["MSFT"]).height == store.metadata()["tickers"]["MSFT"]["rows"]
    assert store.read_bars(["MSFT"]).get_column("date").max().isoformat() < rows[0]["date"]


def test_append_keeps_adj_close_where_the_ticker_has_it(make_client, store):
    rows = next_bars(store, ["AAPL"], days=1)
    del rows[0]["adj_close"]
    response = make_client().post("/v1/bars", json={"bars": rows})
    assert response.status_code == 422
    v = response.json()["violations"][0]
    assert (v["row"], v["ticker"], v["rule"]) == (1, "AAPL", "adj_close_mismatch")


def test_append_validates_like_import_and_writes_nothing_on_error(make_client, store):
    client = make_client()
    rows = next_bars(store, ["AAPL"], days=2)
    rows[1]["volume"] = -5.0
    before = store.metadata()
    response = client.post("/v1/bars", json={"bars": rows})
    assert response.status_code == 422
    v = response.json()["violations"][0]
    assert (v["row"], v["ticker"], v["rule"]) == (2, "AAPL", "negative_volume")
    assert store.metadata() == before


def test_append_keeps_the_tickers_metadata_and_adds_new_tickers(make_client, store):
    client = make_client()
    rows = next_bars(store, ["AAPL"], days=1)
    rows.append({**rows[0], "ticker": "newco"})
    body = client.post("/v1/bars", json={"bars": rows}).json()
    assert body["new_tickers"] == ["NEWCO"]
    meta = store.metadata()["tickers"]
    assert meta["AAPL"]["synthetic"] is True and meta["NEWCO"]["source"] == "POST /v1/bars"


def test_two_appends_at_once_lose_neither(make_client, store):
    client = make_client()
    results = []
    batches = [next_bars(store, ["AAPL"], days=1), next_bars(store, ["MSFT"], days=1)]
    threads = [threading.Thread(target=lambda b=b: results.append(
        client.post("/v1/bars", json={"bars": b}).status_code)) for b in batches]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200]
    meta = store.metadata()["tickers"]
    assert meta["AAPL"]["last_date"] == batches[0][0]["date"]
    assert meta["MSFT"]["last_date"] == batches[1][0]["date"]


# --------------------------------------------------------------------------- limits


def test_body_over_the_limit_is_413_declared_or_streamed(make_client):
    client = make_client(max_body_mb=0.01)  # about 10 kB
    window = [[0.25] * 17] * 20
    big = client.post("/v1/score", json={"sequences": [window] * 20})
    assert big.status_code == 413
    assert "over the limit of 10485 bytes" in big.json()["detail"]

    def chunks():
        text = json.dumps({"sequences": [window] * 20}).encode()
        for i in range(0, len(text), 4096):
            yield text[i : i + 4096]

    streamed = client.post("/v1/score", content=chunks(),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert streamed.status_code == 413
    assert client.post("/v1/score", json={"sequences": [window]}).status_code == 200


def test_over_max_concurrency_is_503_but_health_answers(make_client):
    client = make_client(max_concurrency=1)
    limit = client.app.state.limit
    assert limit.try_acquire()  # one request in flight
    try:
        busy = client.get("/v1/scores/latest", params={"tickers": "AAPL"})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "--max-concurrency" in busy.json()["detail"]
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
    finally:
        limit.release()
    assert client.get("/v1/scores/latest", params={"tickers": "AAPL"}).status_code == 200


# --------------------------------------------------------------------------- metrics and reload


def test_metrics_count_requests_per_endpoint_and_name_the_model(make_client):
    client = make_client()
    client.get("/v1/scores/latest", params={"tickers": "AAPL"})
    client.get("/v1/scores/latest", params={"tickers": "NOPE"})
    client.get("/not-a-route")
    text = client.get("/metrics").text
    assert (
        'engine_http_requests_total{endpoint="/v1/scores/latest",method="GET",status="200"} 1.0'
        in text
    )
    assert (
        'engine_http_requests_total{endpoint="/v1/scores/latest",method="GET",status="404"} 1.0'
        in text
    )
    assert 'endpoint="unmatched"' in text and "/not-a-route" not in text
    assert 'engine_http_request_duration_seconds_count{endpoint="/v1/scores/latest"} 2.0' in text
    assert f'engine_model_info{{engine_worker_pid="{os.getpid()}",model_id="toy"' in text


def test_reload_needs_a_key_and_swaps_a_changed_file(make_client, toy, full_features, tmp_path):
    model_file = tmp_path / "served.onnx"
    model_file.write_bytes(toy[0])
    no_key = make_client(model=str(model_file))
    assert no_key.post("/admin/reload").status_code == 403
    client = make_client(model=str(model_file), api_key_env=KEY_ENV)
    assert client.post("/admin/reload").status_code == 401
    same = client.post("/admin/reload", headers={"X-API-Key": API_KEY}).json()
    assert same["swapped"] is False
    stats = full_features.select(FEATURE_NAMES).drop_nulls()
    other, _ = toy_model(stats.mean().to_numpy().ravel(), stats.std().to_numpy().ravel(),
                         seed=9, model_id="toy-b")  # fmt: skip
    staged = model_file.with_suffix(".staged")
    staged.write_bytes(other)
    os.replace(staged, model_file)  # the file is replaced atomically, as an export does
    swapped = client.post("/admin/reload", headers={"X-API-Key": API_KEY}).json()
    assert swapped["swapped"] is True
    assert (swapped["previous"]["model_id"], swapped["current"]["model_id"]) == ("toy", "toy-b")
    assert client.get("/readyz").json()["model"]["model_id"] == "toy-b"
    assert 'model_id="toy-b"' in client.get("/metrics").text


def test_a_request_in_flight_finishes_on_the_old_session(make_client, toy, tmp_path):
    model_file = tmp_path / "served.onnx"
    model_file.write_bytes(toy[0])
    client = make_client(model=str(model_file), api_key_env=KEY_ENV)
    old = client.app.state.slot.current()
    started, release = threading.Event(), threading.Event()
    real = old.scorer.score

    def slow_score(X):
        started.set()
        release.wait(10)
        return real(X)

    old.scorer.score = slow_score  # this session only
    X = np.zeros((1, 20, 17), dtype=np.float32).tolist()
    out = {}
    worker = threading.Thread(target=lambda: out.update(
        r=client.post("/v1/score", json={"sequences": X}).json()))  # fmt: skip
    worker.start()
    assert started.wait(10)
    mean = np.zeros(17)
    other, _ = toy_model(mean, np.ones(17), seed=4, model_id="toy-new")
    model_file.write_bytes(other)
    assert client.post("/admin/reload", headers={"X-API-Key": API_KEY}).json()["swapped"]
    release.set()
    worker.join(10)
    assert out["r"]["model_id"] == "toy"  # started before the swap: the old model answered
    assert client.post("/v1/score", json={"sequences": X}).json()["model_id"] == "toy-new"


def test_settings_errors_name_the_flag(model_file, store, monkeypatch):
    from fastapi.testclient import TestClient

    from engine.serving import ServeSettings, create_app

    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    app = create_app(ServeSettings(model=str(model_file), data_dir=str(store.data_dir),
                                   api_key_env="NOT_SET_HERE"))  # fmt: skip
    with pytest.raises(ValueError, match="--api-key-env NOT_SET_HERE: that environment variable"):
        with TestClient(app):
            pass
    with pytest.raises(ValueError, match="`--workers` must be between 1 and 64"):
        ServeSettings(model="m.onnx", workers=0)
    with pytest.raises(ValueError, match="`--max-body-mb` must be in"):
        ServeSettings(model="m.onnx", max_body_mb=-1)


def test_latest_scores_are_computed_from_the_tail_only(make_client, monkeypatch):
    """The service never runs the full-history feature computation per request."""
    import engine.features.build as build

    client = make_client()
    client.get("/v1/scores/latest")  # the store is loaded once
    rows = []
    real = build._run_kernel
    monkeypatch.setattr(build, "_run_kernel", lambda panel, *a: rows.append(panel.height)
                        or real(panel, *a))  # fmt: skip
    assert client.get("/v1/scores/latest").status_code == 200
    full = SortedBars.of(client.app.state.history.store.read_bars()).height
    assert rows and sum(rows) < full / 3
