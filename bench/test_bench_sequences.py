"""Sequence building throughput (sequences per second), demo and 500-ticker panels.

Baseline: what a NumPy user writes without the engine, a loop over tickers
with ``sliding_window_view`` and a NaN filter per window (same windows, no
shared calendar grid: every window ends on a stride step of its own ticker).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from engine.features.build import FEATURE_NAMES, compute_features
from engine.model.sequences import build_sequences

NON_GARCH = [f for f in FEATURE_NAMES if f != "garch_vol_ratio"]


@pytest.fixture(scope="module")
def feature_panels(demo_bars, wide_bars):
    # GARCH is left out so the fixture stays cheap; it does not change the windowing work.
    return {
        "demo": compute_features(demo_bars, NON_GARCH),
        "500": compute_features(wide_bars, NON_GARCH),
    }


def numpy_sequences(features: pl.DataFrame, length: int, stride: int) -> np.ndarray:
    out = []
    for _, own in features.sort("ticker", "date").group_by("ticker", maintain_order=True):
        values = own.select(NON_GARCH).fill_null(np.nan).to_numpy()
        if values.shape[0] < length:
            continue
        windows = sliding_window_view(values, (length, values.shape[1]))[:, 0][::stride]
        out.append(windows[np.isfinite(windows).all(axis=(1, 2))])
    return np.concatenate(out).astype(np.float32)


@pytest.mark.parametrize(("panel", "stride"), [("demo", 5), ("demo", 1), ("500", 5)])
def test_sequences_engine(benchmark, feature_panels, panel, stride):
    features = feature_panels[panel]
    benchmark.group = f"sequences|{panel}|stride{stride}"
    seqs = benchmark(build_sequences, features, stride=stride)
    benchmark.extra_info.update(role="ours", label="engine", sequences=len(seqs))
    assert seqs.X.shape[1:] == (20, len(NON_GARCH))


@pytest.mark.parametrize(("panel", "stride"), [("demo", 5), ("demo", 1), ("500", 5)])
def test_sequences_numpy_loop(benchmark, feature_panels, panel, stride):
    features = feature_panels[panel]
    benchmark.group = f"sequences|{panel}|stride{stride}"
    windows = benchmark(numpy_sequences, features, 20, stride)
    benchmark.extra_info.update(role="baseline", label="numpy-loop", sequences=len(windows))
    if stride == 1:  # with stride 1 both build exactly the complete windows
        assert len(windows) == len(build_sequences(features, stride=1))
