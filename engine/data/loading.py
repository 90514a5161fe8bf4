"""What every CLI job over stored bars shares: load, trim to dates, write.

A job (``engine features``, ``engine targets``) resolves a ticker spec
against the store, loads those tickers together with the benchmarks their
features read, computes on the full history, keeps ``[start, end]`` and may
write the result atomically.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from engine.data.store import BarStore
from engine.data.universe import (
    MARKET_BENCHMARK,
    VOLATILITY_INDICES,
    parse_tickers,
    sector_benchmark_map,
)

__all__ = [
    "benchmark_inputs",
    "keep_dates",
    "load_job_bars",
    "synthetic_flags",
]


def benchmark_inputs(wanted: list[str], available: list[str]) -> list[str]:
    """``wanted`` plus the stored benchmarks their features read, sorted.

    Examples
    --------
    >>> benchmark_inputs(["AAPL"], ["AAPL", "MSFT", "SPY", "XLK", "VIX"])
    ['AAPL', 'SPY', 'VIX', 'XLK']
    """
    needed = {MARKET_BENCHMARK, *sector_benchmark_map(wanted).values(), *VOLATILITY_INDICES}
    return sorted(set(wanted) | (needed & set(available)))


def load_job_bars(
    store: BarStore, tickers: str, start: date | None, end: date | None
) -> tuple[list[str], pl.DataFrame]:
    """Resolve ``tickers`` and load their bars with their benchmarks (full history).

    Raises
    ------
    ValueError
        ``start`` after ``end``, an empty store, or unknown tickers.
    """
    if start is not None and end is not None and start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    available = store.tickers()
    if not available:
        raise ValueError(
            f"no bars in {store.data_dir}; run `engine data demo` or `engine data import PATH`"
        )
    wanted = parse_tickers(tickers, available)
    return wanted, store.read_bars(benchmark_inputs(wanted, available))


def keep_dates(frame: pl.DataFrame, start: date | None, end: date | None) -> pl.DataFrame:
    """Rows with ``start <= date <= end`` (either bound optional)."""
    if start is not None:
        frame = frame.filter(pl.col("date") >= start)
    if end is not None:
        frame = frame.filter(pl.col("date") <= end)
    return frame


def synthetic_flags(store: BarStore, tickers: list[str]) -> dict[str, bool]:
    """Whether each ticker is marked synthetic in the store's metadata."""
    meta = store.metadata().get("tickers", {})
    return {t: bool(meta.get(t, {}).get("synthetic", False)) for t in tickers}
