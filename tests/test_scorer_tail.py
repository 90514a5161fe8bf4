"""PatternScorer in tail mode: scores from the full history equal the full computation's.

``score_bars`` and ``latest_windows`` compute only each ticker's last 20
feature rows. The reference here is independent of that path: the engine's
full-history ``compute_features``, its last 20 rows per ticker stacked by
hand, scored by the NumPy oracle of the toy model (``tests/test_scorer.py``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.data.demo import generate_demo_universe
from engine.features.build import FEATURE_NAMES, compute_features
from engine.features.source import SortedBars
from export import PatternScorer, ScoringError
from tests.test_scorer import oracle_scores, toy_model

LENGTH = 20


@pytest.fixture(scope="module")
def demo() -> pl.DataFrame:
    return generate_demo_universe(seed=7).bars


@pytest.fixture(scope="module")
def full(demo) -> pl.DataFrame:
    return compute_features(demo, vix_variant="market_vol_ratio")


@pytest.fixture(scope="module")
def toy(full):
    stats = full.select(FEATURE_NAMES).drop_nulls()
    return toy_model(stats.mean().to_numpy().ravel(), stats.std().to_numpy().ravel())


@pytest.fixture(scope="module")
def scorer(toy) -> PatternScorer:
    return PatternScorer.load(toy[0], intra_op_threads=1, allow_spinning=False)


def _windows(features: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
    last = features.group_by("ticker", maintain_order=True).tail(LENGTH)
    n = last.get_column("ticker").n_unique()
    X = last.select(FEATURE_NAMES).to_numpy().astype(np.float32).reshape(n, LENGTH, -1)
    return X, last.group_by("ticker", maintain_order=True).last().select("ticker", "date")


@pytest.mark.slow
def test_score_bars_on_the_full_demo_history_equals_the_full_computation(scorer, toy, demo, full):
    """All 34 securities, about 5,000 days each: scores within 1e-6 (measured: equal)."""
    X, index = _windows(full)
    expected = oracle_scores(toy[1], X)
    got = scorer.score_bars(demo)
    assert got.select("ticker", "date").equals(index)
    values = got.select(pl.exclude("ticker", "date")).to_numpy()
    assert np.abs(values - expected).max() <= 1e-6
    tail_X, _ = scorer.sequences_from_bars(demo)
    np.testing.assert_array_equal(tail_X, X)  # the features themselves: bit for bit


def test_latest_windows_as_of_equals_bars_cut_at_that_day(scorer, demo):
    as_of = dt.date(2012, 3, 30)
    source = SortedBars.of(demo)
    X, index = scorer.latest_windows(source, ["AAPL", "QQQ", "SPY"], as_of=as_of)
    cut = demo.filter(pl.col("date") <= as_of)
    expected, expected_index = scorer.sequences_from_bars(cut, ["AAPL", "QQQ", "SPY"])
    np.testing.assert_array_equal(X, expected)
    assert index.equals(expected_index)
    assert index.get_column("date").max() <= as_of


def test_latest_windows_names_a_short_history_as_of_a_day(scorer, demo):
    source = SortedBars.of(demo)
    early = dt.date(1999, 6, 30)
    with pytest.raises(ScoringError, match=r"AAPL has \d+ bar\(s\) on or before 1999-06-30.*272"):
        scorer.latest_windows(source, ["AAPL"], as_of=early)
    with pytest.raises(ScoringError, match=r"ticker\(s\) not in bars: NOPE"):
        scorer.latest_windows(source, ["NOPE"])


def test_session_spinning_is_off_when_asked(toy):
    on = PatternScorer.load(toy[0])
    off = PatternScorer.load(toy[0], allow_spinning=False)
    config = off._session.get_session_options().get_session_config_entry
    assert config("session.intra_op.allow_spinning") == "0"
    assert config("session.inter_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError):  # onnxruntime: no such entry unless set
        on._session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning"
        )
