"""Load test of ``engine serve`` on loopback: latency percentiles and throughput.

The service runs as a subprocess started through the CLI (one worker, one
onnxruntime thread, 127.0.0.1, a free port) over the demo store (34
securities and VIX, full history) and the SPEC LSTM trained for one epoch.
The load comes from this process: ``clients`` asyncio tasks share one
``httpx.AsyncClient`` and each sends its next request when the last one is
answered, until a fixed number of requests is done, then the server is
stopped. Nothing leaves the machine and nothing runs open-ended.

Groups ``load|latest`` (``GET /v1/scores/latest`` for all 34 tickers: exact
tail-mode features, then the model) and ``load|score`` (``POST /v1/score``,
34 ready windows) at 1, 8 and 32 concurrent clients. Each benchmark's
``extra_info`` holds p50 and p99 latency (ms), requests per second and the
count of failed requests; p50/p99 at 1 client and zero errors at 32 are the
targets (p50 <= 20 ms, p99 <= 50 ms for ``/v1/scores/latest`` at one client
on 2 cores). Errors are asserted to be zero; speed never is. Print the table
of a saved run with ``python bench/test_bench_load.py load.json``.

The load generator shares the machine with the server: on 2 cores, the
figures at 8 and 32 clients measure the pair, and requests queue in the
server's thread pool (its latency grows, its throughput does not).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.server_process import start_logged, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = (1, 8, 32)
#: requests per run (enabled) -- bounded, so every run stops by itself
REQUESTS = {1: 300, 8: 400, 32: 640}
SMOKE_REQUESTS = 8


@pytest.fixture(scope="module")
def model_file(demo_bars, tmp_path_factory) -> Path:
    """The SPEC LSTM, one epoch on two demo tickers, exported (weights do not change the time)."""
    from engine.model.network import ModelConfig
    from engine.model.runs import RunSettings, prepare_dataset, train_windows
    from export.onnx_export import export_onnx

    settings = RunSettings(split="holdout")
    dataset = prepare_dataset(demo_bars, ["AAPL", "MSFT"], settings)
    out = tmp_path_factory.mktemp("load") / "run"
    report = train_windows(dataset, out, settings=settings, config=ModelConfig(epochs=1))
    return export_onnx(out / report.windows[0].artifact, out / "model.onnx", bars=demo_bars).path


@pytest.fixture(scope="module")
def server(demo_bars, model_file, tmp_path_factory):
    from engine.data.store import BarStore

    store = BarStore(tmp_path_factory.mktemp("load") / "data")
    store.write(demo_bars)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-c", "from engine.cli import app; app()", "serve",
               "--model", str(model_file), "--data-dir", str(store.data_dir),
               "--port", str(port), "--workers", "1", "--threads", "1"]  # fmt: skip
    log = store.data_dir.parent / "serve.log"
    proc = start_logged(command, log, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log, timeout=180)
        httpx.get(f"{url}/v1/scores/latest", timeout=120)  # load the store into memory
        yield url
    finally:
        stop(proc)


async def _load(url: str, request: dict, clients: int, total: int) -> dict:
    """``clients`` concurrent clients, ``total`` requests in all; latencies and failures."""
    latencies: list[float] = []
    failures: list[str] = []
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def one_client() -> None:
            nonlocal sent
            while sent < total:
                sent += 1
                began = time.perf_counter()
                try:
                    response = await client.request(**request)
                    ok = response.status_code == 200
                    if not ok:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if ok:
                    latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    ms = np.asarray(latencies) * 1e3
    return {
        "clients": clients,
        "requests": total,
        "errors": len(failures),
        "first_error": failures[0] if failures else None,
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if ms.size else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if ms.size else None,
        "requests_per_s": round(len(latencies) / elapsed, 1),
    }


def _requests() -> dict[str, dict]:
    X = np.random.default_rng(0).normal(size=(34, 20, 17)).round(6).tolist()
    return {
        "latest": {"method": "GET", "url": "/v1/scores/latest", "params": {"tickers": "all"}},
        "score": {"method": "POST", "url": "/v1/score", "json": {"sequences": X}},
    }


@pytest.mark.parametrize("clients", CLIENTS)
@pytest.mark.parametrize("endpoint", ["latest", "score"])
def test_load(benchmark, server, endpoint, clients):
    total = SMOKE_REQUESTS if benchmark.disabled else REQUESTS[clients]
    request = _requests()[endpoint]
    result: dict = {}

    def run() -> None:
        result.update(asyncio.run(_load(server, request, clients, total)))

    benchmark.group = f"load|{endpoint}"
    benchmark.pedantic(run, rounds=1, iterations=1)
    target = None
    if endpoint == "latest" and clients == 1:
        target = "p50 <= 20 ms, p99 <= 50 ms"
    benchmark.extra_info.update(role="info", label=f"{clients} clients", target=target, **result)
    assert result["errors"] == 0, result["first_error"]


def load_table(path: str | Path) -> list[str]:
    """Rows ``endpoint, clients, p50, p99, requests/s, errors`` from a ``--benchmark-json`` file."""
    runs = json.loads(Path(path).read_text())["benchmarks"]
    lines = [f"{'group':<14} {'clients':>7} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8} {'errors':>7}"]
    runs = [b for b in runs if (b["group"] or "").startswith("load|")]
    for bench in sorted(runs, key=lambda b: (b["group"], b["extra_info"]["clients"])):
        info = bench["extra_info"]
        lines.append(
            f"{bench['group']:<14} {info['clients']:>7} {info['p50_ms']:>9.2f} "
            f"{info['p99_ms']:>9.2f} {info['requests_per_s']:>8.1f} {info['errors']:>7}"
        )
    return lines


if __name__ == "__main__":  # pragma: no cover - report helper
    print("\n".join(load_table(sys.argv[1])))
