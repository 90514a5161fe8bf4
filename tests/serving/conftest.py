"""Shared fixtures: a store of demo bars, a toy ONNX model with a NumPy oracle, a client.

The toy model (``tests/test_scorer.py``) weights every cell of the 20 x 17
window on its own, so a feature or a row out of place changes the score;
its oracle scores windows in NumPy. The reference scores of the stored
tickers come from the engine's *full-history* ``compute_features``, never
from the tail mode the service uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from engine.data.demo import generate_demo_universe
from engine.data.store import BarStore
from engine.features.build import FEATURE_NAMES, compute_features
from engine.serving import ServeSettings, create_app
from tests.test_scorer import PATTERNS, oracle_scores, toy_model

STORED = ["AAPL", "MSFT", "QQQ", "SPY", "XLK", "VIX"]
SECURITIES = ["AAPL", "MSFT", "QQQ", "SPY", "XLK"]
VARIANT = "market_vol_ratio"
EMBARGO_END = dt.date(2010, 1, 4)
API_KEY = "s3cret-key"
KEY_ENV = "ENGINE_TEST_SERVE_KEY"


@pytest.fixture(scope="session")
def demo_bars() -> pl.DataFrame:
    return generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(STORED))


@pytest.fixture(scope="session")
def full_features(demo_bars) -> pl.DataFrame:
    return compute_features(demo_bars, vix_variant=VARIANT)


@pytest.fixture(scope="session")
def toy(full_features):
    stats = full_features.select(FEATURE_NAMES).drop_nulls()
    return toy_model(stats.mean().to_numpy().ravel(), stats.std().to_numpy().ravel())


@pytest.fixture(scope="session")
def model_file(toy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "toy.onnx"
    path.write_bytes(toy[0])
    return path


def reference_scores(toy, bars: pl.DataFrame, tickers, as_of=None) -> dict[str, dict]:
    """Scores of each ticker's last full-history window on or before ``as_of`` (NumPy)."""
    if as_of is not None:
        bars = bars.filter(pl.col("date") <= as_of)
    features = compute_features(bars, tickers=sorted(tickers), vix_variant=VARIANT)
    last = features.group_by("ticker", maintain_order=True).tail(20)
    X = last.select(FEATURE_NAMES).to_numpy().astype(np.float32).reshape(len(tickers), 20, -1)
    scores = oracle_scores(toy[1], X)
    ends = last.group_by("ticker", maintain_order=True).last()
    out = {}
    for i, (ticker, day) in enumerate(ends.select("ticker", "date").iter_rows()):
        out[ticker] = {"date": day.isoformat()}
        out[ticker].update({f"{p}_p": float(scores[i, j]) for j, p in enumerate(PATTERNS)})
    return out


def next_bars(store, tickers, days=2) -> list[dict]:
    """Plausible bars for the next business days after each ticker's last stored bar."""
    rows = []
    for ticker in tickers:
        last = store.read_bars([ticker]).tail(1).row(0, named=True)
        day = last["date"]
        for k in range(days):
            day = day + dt.timedelta(days=3 if day.weekday() == 4 else 1)
            close = last["close"] * (1.0 + 0.01 * (k + 1))
            rows.append({"ticker": ticker, "date": day.isoformat(), "open": close,
                         "high": close * 1.01, "low": close * 0.99, "close": close,
                         "volume": 1e6, "adj_close": close})  # fmt: skip
    return rows


@pytest.fixture
def store(demo_bars, tmp_path) -> BarStore:
    """A fresh store per test (appends write to it)."""
    store = BarStore(tmp_path / "data")
    store.write(demo_bars, {t: {"synthetic": t not in ("SPY", "QQQ", "VIX")} for t in STORED})
    return store


@pytest.fixture
def make_client(model_file, store, monkeypatch) -> Callable[..., TestClient]:
    """A TestClient over the toy model and the store; settings overridable."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    clients = []

    def make(**overrides) -> TestClient:
        values = {"model": str(model_file), "data_dir": str(store.data_dir), "threads": 1}
        values.update(overrides)
        client = TestClient(create_app(ServeSettings(**values)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
