"""One real ``engine serve`` under uvicorn on 127.0.0.1, end to end.

The service runs as a subprocess started through the CLI, exactly as a user
starts it, with two workers. Its latest scores must equal what
``engine predict --json`` prints for the same store and model, and the rest
of the API must answer over a real socket.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from tests.serving.conftest import API_KEY, KEY_ENV, SECURITIES
from tests.serving.server_process import start_logged, stop, wait_ready
from tests.test_scorer import toy_model

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_model(model_file, tmp_path):
    """A copy of the toy model that a test may replace (the original is shared)."""
    served = tmp_path / "served.onnx"
    served.write_bytes(model_file.read_bytes())
    return served


@pytest.fixture
def server(served_model, store, tmp_path):
    model_file = served_model
    port = _free_port()
    env = {**os.environ, KEY_ENV: API_KEY}
    command = [sys.executable, "-c", "from engine.cli import app; app()", "serve",
               "--model", str(model_file), "--data-dir", str(store.data_dir),
               "--port", str(port), "--workers", "2", "--threads", "1",
               "--api-key-env", KEY_ENV, "--max-concurrency", "16"]  # fmt: skip
    log = tmp_path / "serve.log"
    proc = start_logged(command, log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log, timeout=120)
        yield url
    finally:
        stop(proc)


@pytest.mark.slow
def test_real_server_scores_equal_engine_predict(server, model_file, store):
    served = httpx.get(f"{server}/v1/scores/latest", params={"tickers": "all"}, timeout=60).json()
    result = runner.invoke(app, ["predict", "--model", str(model_file), "--tickers", "all",
                                 "--data-dir", str(store.data_dir), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    predicted = json.loads(result.stdout)["scores"]
    assert [r["ticker"] for r in served["scores"]] == [r["ticker"] for r in predicted]
    assert [r["ticker"] for r in predicted] == SECURITIES
    for got, want in zip(served["scores"], predicted, strict=True):
        assert got["date"] == want["date"]
        for key, value in want.items():
            if key.endswith("_p"):
                assert got[key] == pytest.approx(value, abs=1e-7), (got["ticker"], key)

    # the rest of the API over a real socket: raw windows, errors, the key, metrics
    X = np.zeros((2, 20, 17)).tolist()
    assert len(httpx.post(f"{server}/v1/score", json={"sequences": X}).json()["scores"]) == 2
    assert httpx.get(f"{server}/v1/scores/latest", params={"tickers": "NOPE"}).status_code == 404
    assert httpx.post(f"{server}/v1/bars", json={"bars": []}).status_code == 401
    assert httpx.post(f"{server}/admin/reload", headers={"X-API-Key": API_KEY}).status_code == 200
    metrics = httpx.get(f"{server}/metrics").text
    assert "engine_http_requests_total" in metrics and 'model_id="toy"' in metrics


@pytest.mark.slow
def test_a_reload_reaches_both_workers(server, served_model, toy):
    """The reloading worker stamps the data directory; the other follows on its next request."""
    before = {httpx.get(f"{server}/readyz").json()["model"]["version"] for _ in range(8)}
    served_model.write_bytes(toy_model(toy[1]["mean"], toy[1]["sd"], seed=1)[0])
    done = httpx.post(f"{server}/admin/reload", headers={"X-API-Key": API_KEY}).json()
    assert done["swapped"] is True and done["worker_pid"] > 0
    new = done["current"]["version"]
    assert before == {done["previous"]["version"]} != {new}
    seen = {}
    for _ in range(24):  # a new connection each: the kernel spreads them over both workers
        ready = httpx.get(f"{server}/readyz").json()
        seen.setdefault(ready["model"]["version"], set()).add(ready["worker_pid"])
    assert set(seen) == {new}, seen  # no worker answers with the old model


def test_serve_refuses_bad_settings_before_starting(model_file, store, tmp_path):
    """Errors a user can fix are one red line and exit 1, before any worker starts."""
    missing = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope.onnx"),
                                  "--data-dir", str(store.data_dir)])  # fmt: skip
    assert missing.exit_code == 1 and "does not exist" in missing.output
    args = ["serve", "--model", str(model_file), "--data-dir", str(store.data_dir),
            "--api-key-env", "ENGINE_NOT_SET_XYZ"]  # fmt: skip
    unset = runner.invoke(app, args)
    assert unset.exit_code == 1
    assert "--api-key-env ENGINE_NOT_SET_XYZ" in unset.output
