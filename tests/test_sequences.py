"""Sequences against a naive per-sample loop, stride grid, drop counts and causality."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model.sequences import build_sequences

NAMES = ["f0", "f1", "f2"]


def _panel(seed: int, n_days: int = 80, tickers=("AAA", "BBB", "CCC"), p_null=0.03):
    """Random feature panel on a business-day calendar with ragged starts and nulls."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=int(k)) for k in range(n_days)]
    frames = []
    for i, ticker in enumerate(tickers):
        start = int(rng.integers(0, 10)) * i
        n = n_days - start
        data = rng.normal(size=(n, len(NAMES)))
        data[rng.random((n, len(NAMES))) < p_null] = np.nan
        frame = pl.DataFrame({"ticker": [ticker] * n, "date": days[start:]})
        frames.append(
            frame.with_columns(
                pl.Series(name, data[:, k]).fill_nan(None) for k, name in enumerate(NAMES)
            )
        )
    return pl.concat(frames)


def _naive(features: pl.DataFrame, length: int, stride: int):
    """The obvious loop: every ticker, every row, check the window by hand."""
    calendar = sorted(set(features.get_column("date").to_list()))
    k_of = {d: k for k, d in enumerate(calendar)}
    windows, keys, dropped = [], [], {}
    for ticker in sorted(set(features.get_column("ticker").to_list())):
        own = features.filter(pl.col("ticker") == ticker).sort("date")
        values = own.select(NAMES).to_numpy().astype(np.float64)
        dates = own.get_column("date").to_list()
        dropped[ticker] = 0
        for i in range(length - 1, len(dates)):
            if k_of[dates[i]] % stride:
                continue
            window = values[i - length + 1 : i + 1]
            if np.isnan(window).any():
                dropped[ticker] += 1
                continue
            windows.append(window)
            keys.append((ticker, dates[i]))
    return np.array(windows, dtype=np.float32).reshape(-1, length, len(NAMES)), keys, dropped


@pytest.mark.parametrize(("length", "stride"), [(20, 5), (20, 1), (5, 3), (1, 1)])
def test_equals_naive_loop(length, stride):
    features = _panel(1)
    got = build_sequences(features, length=length, stride=stride, feature_names=NAMES)
    X, keys, dropped = _naive(features, length, stride)
    np.testing.assert_array_equal(got.X, X)
    assert got.index.select("ticker", "date").rows() == keys
    assert got.dropped == dropped
    assert got.X.dtype == np.float32 and got.X.flags.c_contiguous


def test_end_dates_are_shared_by_all_tickers_and_survive_appending_days():
    longer_panel = _panel(2, n_days=150, p_null=0.0)
    features = longer_panel.filter(pl.col("date") < dt.date(2020, 1, 1) + dt.timedelta(days=120))
    seqs = build_sequences(features, feature_names=NAMES)
    per_ticker = seqs.index.group_by("ticker").agg(pl.col("date")).sort("ticker")
    ends = [set(d) for d in per_ticker.get_column("date").to_list()]
    latest_start = max(min(e) for e in ends)
    assert len({frozenset(d for d in e if d >= latest_start) for e in ends}) == 1
    longer = build_sequences(longer_panel, feature_names=NAMES)
    assert set(seqs.index.rows()) <= set(longer.index.rows())


def test_targets_attach_on_window_end_and_keep_t1():
    features = _panel(3, p_null=0.0)
    targets = features.select(
        "ticker",
        "date",
        t1=pl.col("date") + dt.timedelta(days=5),
        up=pl.when(pl.col("f0") > 0).then(1).when(pl.col("f0") < -1).then(0).cast(pl.Int8),
    )
    seqs = build_sequences(features, targets, feature_names=NAMES, pattern_names=["up"])
    assert seqs.pattern_names == ("up",)
    expected = seqs.index.join(targets, on=["ticker", "date"], how="left", maintain_order="left")
    assert seqs.index.get_column("t1").equals(expected.get_column("t1_right"))
    labels = expected.get_column("up").cast(pl.Float32).fill_null(np.nan).to_numpy()
    np.testing.assert_array_equal(seqs.y[:, 0], labels)
    # the label belongs to the window's last row: f0 there decides it
    last_f0 = seqs.X[:, -1, 0]
    assert np.all(seqs.y[last_f0 > 0, 0] == 1)


def test_targets_columns_must_be_keys_and_the_named_patterns():
    """An event flag beside the labels is refused, never silently turned into a head."""
    features = _panel(3, p_null=0.0)
    targets = features.select(
        "ticker",
        "date",
        t1=pl.col("date") + dt.timedelta(days=5),
        up=(pl.col("f0") > 0).cast(pl.Int8),
        down=(pl.col("f0") < 0).cast(pl.Int8),
        up_event=pl.lit(True),
    )
    with pytest.raises(ValueError, match=r"\['up_event'\].*neither keys nor the patterns"):
        build_sequences(features, targets, feature_names=NAMES, pattern_names=["up", "down"])
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['sideways'\]"):
        build_sequences(features, targets, feature_names=NAMES, pattern_names=["sideways"])
    seqs = build_sequences(
        features, targets.drop("up_event"), feature_names=NAMES, pattern_names=["down", "up"]
    )
    assert seqs.pattern_names == ("down", "up")  # the order asked for, not the frame's
    np.testing.assert_array_equal(seqs.y[:, 0], (seqs.X[:, -1, 0] < 0).astype(np.float32))


def test_demo_features_give_complete_float32_windows():
    from engine.data.demo import generate_demo_universe
    from engine.features.build import FEATURE_NAMES, compute_features

    bars = generate_demo_universe(seed=7).bars
    features = compute_features(bars, tickers=["SPY", "TSLA"])
    seqs = build_sequences(features)
    assert seqs.feature_names == FEATURE_NAMES
    assert seqs.X.shape[1:] == (20, 17) and np.isfinite(seqs.X).all()
    assert seqs.index.get_column("t1").null_count() == len(seqs)
    assert seqs.n_dropped > 0  # warm-up windows are dropped, never filled


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(25, 79), stride=st.sampled_from([1, 5]))
def test_changing_later_rows_never_changes_earlier_sequences(seed, cut, stride):
    features = _panel(seed)
    cut_date = dt.date(2020, 1, 1) + dt.timedelta(days=cut)
    noise = np.random.default_rng(seed + 1).normal(size=features.height)
    later = pl.col("date") > cut_date
    changed = features.with_columns(
        pl.when(later).then(pl.Series(noise)).otherwise(pl.col("f1")).alias("f1")
    )
    a = build_sequences(features, stride=stride, feature_names=NAMES)
    b = build_sequences(changed, stride=stride, feature_names=NAMES)
    keep_a = (a.index.get_column("date") <= cut_date).to_numpy()
    keep_b = (b.index.get_column("date") <= cut_date).to_numpy()
    np.testing.assert_array_equal(a.X[keep_a], b.X[keep_b])
    assert a.index.filter(pl.Series(keep_a)).equals(b.index.filter(pl.Series(keep_b)))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariant_to_row_and_ticker_order(seed):
    features = _panel(seed)
    shuffled = features.sample(fraction=1.0, shuffle=True, seed=seed)
    a = build_sequences(features, feature_names=NAMES)
    b = build_sequences(shuffled, feature_names=NAMES)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.index.equals(b.index) and a.dropped == b.dropped


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "`length` must be at least 1, got `length=0`"),
        ({"stride": 0}, "`stride` must be at least 1, got `stride=0`"),
        ({"feature_names": ["nope"]}, "lack requested column"),
    ],
    ids=["length", "stride", "unknown-feature"],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_sequences(_panel(4), **kwargs)


def test_duplicate_rows_raise():
    features = _panel(5)
    with pytest.raises(ValueError, match="duplicate"):
        build_sequences(pl.concat([features, features.head(1)]), feature_names=NAMES)
