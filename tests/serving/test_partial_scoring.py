"""``tickers=all`` scores what can be scored and lists the rest; named tickers stay strict.

A stored security can be unscorable as of a day: a new ticker with a few
bars, a date before it listed, a daily bar appended before its benchmarks'.
Under ``all`` such a ticker must not fail the request for every client: it
is listed under ``"skipped"`` with the scorer's own message, and the other
tickers' scores equal the full-history reference. Named explicitly, it is
still a 422.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import export.scorer as scorer_module
from engine.features.source import SortedBars
from export.scorer import PatternScorer, ScoringError
from tests.serving.conftest import API_KEY, KEY_ENV, SECURITIES, next_bars, reference_scores

TOL = 1e-6
KEY = {"X-API-Key": API_KEY}


def _new_ticker(store, name="NEWCO") -> list[dict]:
    """One bar of a ticker the store does not hold, the day after its last date."""
    return [dict(next_bars(store, ["AAPL"], days=1)[0], ticker=name)]


def _check_scores(rows, want) -> None:
    for row in rows:
        for key, value in want[row["ticker"]].items():
            if key.endswith("_p"):
                assert abs(row[key] - value) <= TOL, (row["ticker"], key)
            else:
                assert row[key] == value


def test_all_skips_a_new_ticker_with_too_short_a_history(make_client, store, toy):
    client = make_client(api_key_env=KEY_ENV)
    assert client.post("/v1/bars", json={"bars": _new_ticker(store)}, headers=KEY).is_success
    body = client.get("/v1/scores/latest").json()
    assert [row["ticker"] for row in body["scores"]] == SECURITIES
    _check_scores(body["scores"], reference_scores(toy, store.read_bars(), SECURITIES))
    [skipped] = body["skipped"]
    assert skipped["ticker"] == "NEWCO"
    assert "NEWCO has 1 bar(s)" in skipped["reason"] and "at least 272 bars" in skipped["reason"]
    early = client.get("/v1/scores/latest", params={"as_of": "2015-06-30"}).json()
    assert early["skipped"][0]["reason"].startswith(
        "too short a history: NEWCO has 0 bar(s) on or before 2015-06-30"
    )
    assert [row["ticker"] for row in early["scores"]] == SECURITIES
    named = client.get("/v1/scores/latest", params={"tickers": "AAPL,NEWCO"})
    assert named.status_code == 422 and "NEWCO has 1 bar(s)" in named.json()["detail"]
    signals = client.post("/v1/signals", json={"strategy": "momentum"}).json()
    assert [row["ticker"] for row in signals["signals"]] == SECURITIES
    assert signals["skipped"] == body["skipped"]


def test_all_skips_a_bar_appended_before_its_benchmarks(make_client, store, toy, monkeypatch):
    client = make_client(api_key_env=KEY_ENV)
    before = store.read_bars()
    new = next_bars(store, ["AAPL"], days=1)  # SPY, XLK and VIX not yet in for the day
    assert client.post("/v1/bars", json={"bars": new}, headers=KEY).is_success
    calls = []
    real = scorer_module.tail_arrays
    monkeypatch.setattr(
        scorer_module, "tail_arrays", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    body = client.get("/v1/scores/latest").json()
    assert len(calls) == 1  # the tail is computed once; the incomplete ticker is set aside
    rest = [t for t in SECURITIES if t != "AAPL"]
    assert [row["ticker"] for row in body["scores"]] == rest
    _check_scores(body["scores"], reference_scores(toy, before, rest))
    [skipped] = body["skipped"]
    assert skipped["ticker"] == "AAPL"
    assert skipped["reason"].startswith("incomplete latest window")
    assert "AAPL: " in skipped["reason"] and f"missing from {new[0]['date']}" in skipped["reason"]
    named = client.get("/v1/scores/latest", params={"tickers": "AAPL"})
    assert named.status_code == 422 and "incomplete latest window" in named.json()["detail"]
    strict = client.get("/v1/scores/latest", params={"tickers": ",".join(rest)}).json()
    assert strict["scores"] == body["scores"] and strict["skipped"] == []


@pytest.fixture
def scorer(model_file) -> PatternScorer:
    return PatternScorer.load(model_file, intra_op_threads=1)


def test_scorable_windows_equal_the_strict_windows_and_messages(scorer, store):
    bars = store.read_bars()
    late = next_bars(store, ["MSFT"], days=1)[0]
    extra = pl.DataFrame([late, dict(late, ticker="NEWCO")]).with_columns(
        pl.col("date").str.to_date()
    )
    source = SortedBars.of(pl.concat([bars, extra.select(bars.columns)], how="diagonal_relaxed"))
    tickers = [*SECURITIES, "NEWCO"]
    X, index, skipped = scorer.scorable_windows(source, tickers)
    rest = [t for t in SECURITIES if t != "MSFT"]
    X_strict, index_strict = scorer.latest_windows(source, rest)
    np.testing.assert_array_equal(X, X_strict)
    assert index.equals(index_strict)
    assert list(skipped) == ["MSFT", "NEWCO"]
    for ticker, reason in skipped.items():
        with pytest.raises(ScoringError) as refused:
            scorer.latest_windows(source, [ticker])
        assert reason == str(refused.value)
    X_none, index_none, skipped_none = scorer.scorable_windows(source, ["NEWCO"])
    assert (
        X_none.shape == (0, 20, 17) and index_none.height == 0 and list(skipped_none) == ["NEWCO"]
    )
