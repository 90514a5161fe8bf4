"""Fixed-length feature sequences pooled across tickers.

A sequence ending at day t holds the feature rows t-19..t of one ticker
(20 x 17, float32). Every sample keeps ``(ticker, date, t1)`` so that splits
can be made by calendar date and purged by label end time.

Stride. Training uses every 5th end date, inference every date. End dates
sit on a grid anchored on the panel's calendar (the sorted unique dates of
the feature frame): date number ``k`` is an end date when ``k % stride == 0``.
All tickers therefore share the same end dates, and appending new days never
moves the old samples.

A window with any missing feature (warm-up, a gap) is dropped and counted;
nothing is filled in.

Examples
--------
>>> from engine.data.demo import generate_demo_universe
>>> from engine.features.build import compute_features
>>> bars = generate_demo_universe(seed=7).bars
>>> features = compute_features(bars, tickers=["SPY"])
>>> seqs = build_sequences(features, stride=5)
>>> seqs.X.shape[1:], seqs.X.dtype.name
((20, 17), 'float32')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.data.panel import sorted_panel, ticker_ranges
from engine.features.build import FEATURE_NAMES
from engine.labels.targets import PATTERN_NAMES

__all__ = ["SEQUENCE_LENGTH", "TRAIN_STRIDE", "SequenceSet", "build_sequences"]

SEQUENCE_LENGTH = 20
TRAIN_STRIDE = 5


@dataclass(frozen=True)
class SequenceSet:
    """Pooled sequences with their sample index.

    Attributes
    ----------
    X : ndarray, shape (n, length, n_features), float32
        Feature windows, oldest row first.
    y : ndarray, shape (n, n_patterns), float32, or None
        Pattern labels at the window's last day: 1, 0, or NaN (no event or
        outcome unknown). None when no targets were given.
    index : pl.DataFrame
        ``ticker, date`` (the window's last day) and ``t1`` (label end date,
        null when unknown), one row per sample, sorted by ticker and date.
    feature_names, pattern_names : tuple of str
        Column order of ``X`` and ``y``.
    dropped : dict of str to int
        Per ticker, windows on the stride grid dropped for a missing feature.
    """

    X: np.ndarray
    y: np.ndarray | None
    index: pl.DataFrame
    feature_names: tuple[str, ...]
    pattern_names: tuple[str, ...]
    dropped: dict[str, int]

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_dropped(self) -> int:
        """Windows dropped for a missing feature, all tickers together."""
        return sum(self.dropped.values())


def build_sequences(
    features: pl.DataFrame,
    targets: pl.DataFrame | None = None,
    *,
    length: int = SEQUENCE_LENGTH,
    stride: int = TRAIN_STRIDE,
    feature_names: Sequence[str] | None = None,
    pattern_names: Sequence[str] | None = None,
) -> SequenceSet:
    """Cut feature frames into fixed-length windows, one per (ticker, end date).

    Parameters
    ----------
    features : pl.DataFrame
        ``ticker, date`` and feature columns (as ``compute_features`` returns);
        nulls are missing values.
    targets : pl.DataFrame, optional
        ``ticker, date, t1`` and one 0/1/null column per pattern (as
        ``compute_targets`` returns), joined on the window's last day. Its
        columns must be the keys and ``pattern_names``, nothing else: an
        unknown column (an event flag, say) is refused, never taken as a head.
    length : int
        Rows per window (default 20).
    stride : int
        Distance between end dates on the calendar grid (5 for training,
        1 for inference).
    feature_names : sequence of str, optional
        Features to use, in this order (default: every ``FEATURE_NAMES``
        column of ``features``, in SPEC order).
    pattern_names : sequence of str, optional
        The heads, in this order (default
        :data:`engine.labels.targets.PATTERN_NAMES`). Only read with ``targets``.

    Returns
    -------
    SequenceSet

    Raises
    ------
    ValueError
        Bad ``length``/``stride``, missing or unknown columns, duplicate
        (ticker, date).
    """
    if length < 1:
        raise ValueError(f"`length` must be at least 1, got `length={length}`")
    if stride < 1:
        raise ValueError(f"`stride` must be at least 1, got `stride={stride}`")
    names = _feature_names(features, feature_names)
    frame = sorted_panel(features.select("ticker", "date", *names), "features")
    ranges = ticker_ranges(frame)
    # float32 before gathering: the gather then moves half the bytes
    values = frame.select(pl.col(names).cast(pl.Float32).fill_null(np.nan)).to_numpy(order="c")

    ends, on_grid = _window_ends(frame, ranges, values, length, stride)
    offsets = np.arange(length - 1, -1, -1)
    X = values[ends[:, None] - offsets[None, :]]

    index = frame.select("ticker", "date")[ends]
    dropped = _dropped_by_ticker(ranges, on_grid, ends)
    patterns: tuple[str, ...] = ()
    y = None
    if targets is not None:
        patterns = tuple(PATTERN_NAMES if pattern_names is None else pattern_names)
        index, y, patterns = _attach_targets(index, targets, patterns)
    else:
        index = index.with_columns(t1=pl.lit(None, dtype=pl.Date))
    return SequenceSet(
        X=X,
        y=y,
        index=index,
        feature_names=tuple(names),
        pattern_names=patterns,
        dropped=dropped,
    )


def _feature_names(features: pl.DataFrame, requested: Sequence[str] | None) -> list[str]:
    if requested is None:
        names = [n for n in FEATURE_NAMES if n in features.columns]
        if not names:
            raise ValueError("features hold none of the engine's feature columns")
        return names
    missing = [n for n in requested if n not in features.columns]
    if missing:
        raise ValueError(f"features lack requested column(s): {', '.join(missing)}")
    return list(requested)


def _window_ends(
    frame: pl.DataFrame,
    ranges: dict[str, tuple[int, int]],
    values: np.ndarray,
    length: int,
    stride: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of complete windows' last rows, and the mask of rows on the stride grid."""
    n = frame.height
    starts = np.array([a for a, _ in ranges.values()], dtype=np.int64)
    sizes = np.array([b - a for a, b in ranges.values()], dtype=np.int64)
    rows = np.arange(n)
    position = rows - np.repeat(starts, sizes)  # row number within its ticker
    days = frame.get_column("date").cast(pl.Int32).to_numpy()
    calendar = np.unique(days)
    on_grid = (position >= length - 1) & (np.searchsorted(calendar, days) % stride == 0)
    # a window is complete when none of its rows has a missing feature
    invalid = ~np.isfinite(values).all(axis=1)
    bad_so_far = np.concatenate(([0], np.cumsum(invalid)))
    first = np.maximum(rows - length + 1, 0)
    complete = (bad_so_far[rows + 1] - bad_so_far[first]) == 0
    return np.flatnonzero(on_grid & complete), on_grid


def _dropped_by_ticker(
    ranges: dict[str, tuple[int, int]], on_grid: np.ndarray, ends: np.ndarray
) -> dict[str, int]:
    kept = np.zeros(on_grid.shape[0], dtype=bool)
    kept[ends] = True
    dropped = np.concatenate(([0], np.cumsum(on_grid & ~kept)))
    return {t: int(dropped[b] - dropped[a]) for t, (a, b) in ranges.items()}


def _attach_targets(
    index: pl.DataFrame, targets: pl.DataFrame, patterns: tuple[str, ...]
) -> tuple[pl.DataFrame, np.ndarray, tuple[str, ...]]:
    keys = ("ticker", "date", "t1")
    missing = [c for c in (*keys, *patterns) if c not in targets.columns]
    if missing:
        raise ValueError(f"targets lack the column(s) {missing} (patterns: {list(patterns)})")
    unknown = [c for c in targets.columns if c not in keys and c not in patterns]
    if unknown:
        raise ValueError(
            f"targets hold column(s) {unknown} that are neither keys nor the patterns "
            f"{list(patterns)}; drop them (event flags are not heads) or pass pattern_names"
        )
    joined = index.join(
        targets.select("ticker", "date", "t1", *patterns),
        on=["ticker", "date"],
        how="left",
        maintain_order="left",
    )
    y = (
        np.column_stack(
            [joined.get_column(p).cast(pl.Float32).fill_null(np.nan).to_numpy() for p in patterns]
        ).astype(np.float32)
        if patterns
        else np.empty((joined.height, 0), np.float32)
    )
    return joined.select("ticker", "date", "t1"), y, patterns
