"""Bars as the feature engine reads them: sorted, keyed, sliceable per ticker.

:class:`SortedBars` holds bars sorted by (ticker, date) as arrays: each
ticker's row range, the dates as day numbers and the OHLCV columns as
contiguous float64 (nulls as NaN), converted from Polars once. Taking a
ticker or a range of its rows out is then a slice, not a filter over every
row, and a long-lived holder (a server's copy of the store) pays for the
conversion once. :meth:`SortedBars.windows` cuts each ticker to a range of
its own rows, which is how the tail mode (:mod:`engine.features.tail`)
computes the last rows of a long history without touching the rest.

Examples
--------
>>> import datetime as dt
>>> import polars as pl
>>> bars = pl.DataFrame({"ticker": ["B", "A", "A"],
...                      "date": [dt.date(2020, 1, 2), dt.date(2020, 1, 3), dt.date(2020, 1, 2)],
...                      "open": [1.0, 2.0, 3.0], "high": [1.0, 2.0, 3.0], "low": [1.0, 2.0, 3.0],
...                      "close": [1.0, 2.0, 3.0], "volume": [0.0, 0.0, 0.0]})
>>> source = SortedBars.of(bars)
>>> source.ranges
{'A': (0, 2), 'B': (2, 3)}
>>> source.column("A", "close")  # in date order
array([3., 2.])
>>> source.windows({"A": (1, 2)}).column("A", "close")
array([2.])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.data.panel import sorted_panel, ticker_ranges

__all__ = ["OHLCV_COLUMNS", "SortedBars", "align", "day_number", "iso_day"]

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class SortedBars:
    """Bars sorted by (ticker, date): each ticker's row range, the dates, the OHLCV arrays.

    Build it with :meth:`of`. ``days`` holds the dates as int32 days since the
    epoch, one per row; ``arrays`` the OHLCV columns as contiguous float64
    arrays with nulls as NaN.
    """

    ranges: dict[str, tuple[int, int]]
    days: np.ndarray
    arrays: dict[str, np.ndarray]

    @classmethod
    def of(cls, bars: pl.DataFrame) -> SortedBars:
        """Check, cast and sort ``bars``; raise ``ValueError`` on duplicates or null keys."""
        frame = _canonical_bars(bars)
        return cls(
            ranges=ticker_ranges(frame),
            days=frame.get_column("date").cast(pl.Int32).to_numpy(),
            arrays={name: _column(frame, name) for name in OHLCV_COLUMNS},
        )

    @property
    def tickers(self) -> list[str]:
        """Tickers in sorted order."""
        return list(self.ranges)

    @property
    def height(self) -> int:
        """Number of rows."""
        return int(self.days.shape[0])

    def slice_of(self, ticker: str) -> slice:
        """The rows of ``ticker``."""
        a, b = self.ranges[ticker]
        return slice(a, b)

    def days_of(self, ticker: str) -> np.ndarray:
        """The dates of ``ticker`` as day numbers."""
        return self.days[self.slice_of(ticker)]

    def column(self, ticker: str, name: str) -> np.ndarray:
        """One OHLCV column of one ticker as contiguous float64, nulls as NaN."""
        return self.arrays[name][self.slice_of(ticker)]

    def length(self, ticker: str) -> int:
        """Rows of ``ticker``."""
        a, b = self.ranges[ticker]
        return b - a

    def stop_at(self, ticker: str, day: int | None) -> int:
        """Rows of ``ticker`` dated on or before ``day`` (all of them for ``None``)."""
        if day is None:
            return self.length(ticker)
        return int(np.searchsorted(self.days_of(ticker), day, side="right"))

    def subset(self, tickers: Sequence[str]) -> SortedBars:
        """The rows of ``tickers`` (which must be sorted), as a new ``SortedBars``."""
        if list(tickers) == self.tickers:
            return self
        return self.windows({t: (0, self.length(t)) for t in tickers})

    def windows(self, rows: Mapping[str, tuple[int, int]]) -> SortedBars:
        """Each ticker of ``rows`` cut to ``(start, stop)`` of its own rows, in ``rows`` order.

        ``rows`` must list tickers in sorted order; each range is clipped to
        the ticker's rows.
        """
        pieces = []
        ranges = {}
        at = 0
        for ticker, (start, stop) in rows.items():
            a, b = self.ranges[ticker]
            lo = a + min(max(start, 0), b - a)
            hi = max(lo, a + min(max(stop, 0), b - a))
            pieces.append(np.arange(lo, hi, dtype=np.int64))
            ranges[ticker] = (at, at + hi - lo)
            at += hi - lo
        index = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)
        return SortedBars(
            ranges=ranges,
            days=self.days[index],
            arrays={name: values[index] for name, values in self.arrays.items()},
        )

    def offsets(self) -> np.ndarray:
        """Row offsets of each ticker, ``len(tickers) + 1`` of them."""
        stops = [b for _, b in self.ranges.values()]
        return np.asarray([0, *stops], dtype=np.int64)

    def key_frame(self) -> pl.DataFrame:
        """``ticker`` (String) and ``date`` (Date) of every row."""
        lengths = [b - a for a, b in self.ranges.values()]
        return pl.DataFrame(
            {
                "ticker": pl.Series(self.tickers, dtype=pl.String).gather(
                    np.repeat(np.arange(len(lengths)), lengths)
                ),
                "date": pl.Series(self.days, dtype=pl.Int32).cast(pl.Date),
            }
        )

    def fingerprint(self) -> str:
        """SHA-256 over tickers, row counts, dates and prices; stable across runs and versions."""
        digest = hashlib.sha256()
        for ticker, (a, b) in self.ranges.items():
            digest.update(f"{ticker}:{b - a};".encode())
        digest.update(self.days.tobytes())
        for name in OHLCV_COLUMNS:
            digest.update(self.arrays[name].tobytes())
        return digest.hexdigest()


def align(target_days: np.ndarray, source_days: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Join ``values`` (on sorted ``source_days``) onto ``target_days``; absent dates give NaN.

    Day numbers index a lookup table over their span (one gather, no
    binary search per row); a span far wider than the inputs falls back to
    ``searchsorted``.

    Examples
    --------
    >>> align(np.array([1, 2, 5]), np.array([2, 3, 5]), np.array([20.0, 30.0, 50.0]))
    array([nan, 20., 50.])
    >>> align(np.array([3, 10**7]), np.array([2, 10**7]), np.array([20.0, 70.0]))  # sparse days
    array([nan, 70.])
    """
    n, m = target_days.shape[0], source_days.shape[0]
    extended = np.append(np.asarray(values, dtype=np.float64), np.nan)  # index m: missing
    if n == 0 or m == 0:
        return np.full(n, np.nan)
    low = min(int(target_days.min()), int(source_days[0]))
    span = max(int(target_days.max()), int(source_days[-1])) - low + 1
    if span <= 4 * (n + m) + 100_000:
        lookup = np.full(span, m, dtype=np.int64)
        lookup[source_days - low] = np.arange(m)
        return extended[lookup[target_days - low]]
    idx = np.searchsorted(source_days, target_days)
    idx[idx == m] = m - 1
    idx[source_days[idx] != target_days] = m
    return extended[idx]


def day_number(value) -> int:
    """Days since 1970-01-01 of a ``datetime.date`` (the ``days`` of :class:`SortedBars`).

    Examples
    --------
    >>> import datetime as dt
    >>> day_number(dt.date(1970, 1, 11))
    10
    """
    return int((np.datetime64(value, "D") - np.datetime64(0, "D")).astype(np.int64))


def iso_day(day: int | None) -> str:
    """ISO date of a day number; ``"never"`` for ``None``.

    Examples
    --------
    >>> iso_day(10), iso_day(None)
    ('1970-01-11', 'never')
    """
    if day is None:
        return "never"
    return str(np.datetime64(0, "D") + np.timedelta64(day, "D"))


def _canonical_bars(bars: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in ("ticker", "date", *OHLCV_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack required column(s): {', '.join(missing)}")
    bars = bars.select(
        pl.col("ticker").cast(pl.String),
        pl.col("date").cast(pl.Date),
        *(pl.col(c).cast(pl.Float64) for c in OHLCV_COLUMNS),
    )
    return sorted_panel(bars, "bars")


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A Float64 column as a contiguous numpy array, nulls as NaN."""
    series = frame.get_column(name).cast(pl.Float64).fill_null(np.nan)
    return np.ascontiguousarray(series.to_numpy(), dtype=np.float64)
