"""What every CLI job over stored bars shares: load, choose prices and benchmarks, trim.

A job (``engine features``, ``targets``, ``train``, ``pipeline``) resolves a
ticker spec against the store and loads those tickers together with the
benchmarks their features read. :class:`BarInputs` holds the user's choices
about those bars, declared once for every command:

* ``prices`` (``--prices``): total-return adjusted OHLC (the default) or raw,
  see :mod:`engine.data.prices`;
* ``market`` (``--market``): the market benchmark, ``SPY`` by default;
* ``sector_map`` (``--sector-map FILE``): ticker -> sector ETF overrides of
  the default rule (stocks -> ``XLK``, ETFs -> the market).

The job computes on the full history, keeps ``[start, end]`` and records the
choices (:meth:`JobBars.info`) in its manifest or model metadata.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from engine.data.bars import TICKER_PATTERN
from engine.data.prices import DEFAULT_PRICES, PriceBasis, apply_prices, check_price_mode
from engine.data.store import BarStore
from engine.data.universe import (
    MARKET_BENCHMARK,
    VOLATILITY_INDICES,
    parse_tickers,
    sector_benchmark_map,
)

__all__ = [
    "BarInputs",
    "JobBars",
    "benchmark_inputs",
    "check_benchmarks",
    "keep_dates",
    "load_bars",
    "load_job_bars",
    "short_histories",
    "synthetic_flags",
]

_MARKET_FEATURES = frozenset({"market_beta_instability"})
_SECTOR_FEATURES = frozenset({"sector_relative_strength"})


@dataclass(frozen=True)
class BarInputs:
    """The user's choices about the bars a job computes on.

    Attributes
    ----------
    prices : {"adjusted", "raw"}
        Price basis (``--prices``).
    market : str
        Market benchmark ticker (``--market``).
    sector_map : mapping of str to str
        Sector ETF overrides (``--sector-map``); other tickers follow the
        default rule.

    Examples
    --------
    >>> BarInputs(market="QQQ", sector_map={"JPM": "XLF"}).sectors(["AAPL", "JPM", "SPY"])
    {'AAPL': 'XLK', 'JPM': 'XLF', 'SPY': 'QQQ'}
    """

    prices: str = DEFAULT_PRICES
    market: str = MARKET_BENCHMARK
    sector_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_price_mode(self.prices)
        if not isinstance(self.market, str) or not re.match(TICKER_PATTERN, self.market):
            raise ValueError(f"--market must be a ticker such as SPY, got {self.market!r}")
        object.__setattr__(self, "sector_map", dict(self.sector_map or {}))

    def sectors(self, tickers: Sequence[str]) -> dict[str, str]:
        """Each ticker's sector benchmark under these choices."""
        return sector_benchmark_map(tickers, self.sector_map, market=self.market)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"prices": self.prices, "market": self.market, "sector_map": dict(self.sector_map)}


@dataclass
class JobBars:
    """What :func:`load_bars` loaded.

    Attributes
    ----------
    tickers : list of str
        The requested tickers (the job's output rows).
    bars : pl.DataFrame
        Their bars and their benchmarks', full history, on the chosen price basis.
    prices : PriceBasis
        Which tickers were adjusted.
    inputs : BarInputs
    sectors : dict of str to str
        Sector benchmark of every requested ticker (pass it to the feature
        builders as their ``sector_map``).
    """

    tickers: list[str]
    bars: pl.DataFrame
    prices: PriceBasis
    inputs: BarInputs
    sectors: dict[str, str]

    def info(self) -> dict[str, Any]:
        """What a manifest or model metadata records about the bars."""
        return {
            "prices": self.prices.to_dict(),
            "market": self.inputs.market,
            "sector_map": dict(self.sectors),
        }


def benchmark_inputs(
    wanted: list[str],
    available: list[str],
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
) -> list[str]:
    """``wanted`` plus the stored benchmarks their features read, sorted.

    Examples
    --------
    >>> benchmark_inputs(["AAPL"], ["AAPL", "MSFT", "SPY", "XLK", "VIX"])
    ['AAPL', 'SPY', 'VIX', 'XLK']
    >>> benchmark_inputs(["JPM"], ["JPM", "QQQ", "XLF", "SPY"], "QQQ", {"JPM": "XLF"})
    ['JPM', 'QQQ', 'XLF']
    """
    sectors = sector_benchmark_map(wanted, sector_map, market=market)
    needed = {market, *sectors.values(), *VOLATILITY_INDICES}
    return sorted(set(wanted) | (needed & set(available)))


def check_benchmarks(
    store: BarStore,
    wanted: list[str],
    inputs: BarInputs,
    available: list[str],
    features: Sequence[str] | None = None,
) -> None:
    """Refuse, naming the flag to use, when a benchmark the features need is not stored.

    Parameters
    ----------
    features : sequence of str, optional
        The features to compute (default all): the market is needed for
        ``market_beta_instability``, the sector ETFs for
        ``sector_relative_strength``.

    Raises
    ------
    ValueError
        The market or a sector ETF is missing from the store.
    """
    names = set(features) if features is not None else None
    if names is None or names & _MARKET_FEATURES:
        if inputs.market not in available:
            raise ValueError(
                f"the market benchmark {inputs.market} is not in {store.data_dir}: import its "
                "bars, or choose a stored market with --market TICKER"
            )
    if names is None or names & _SECTOR_FEATURES:
        missing: dict[str, list[str]] = {}
        for ticker, sector in inputs.sectors(wanted).items():
            if sector not in available:
                missing.setdefault(sector, []).append(ticker)
        if missing:
            listed = "; ".join(
                f"{sector} (sector of {', '.join(ts[:5])}{' ...' if len(ts) > 5 else ''})"
                for sector, ts in sorted(missing.items())
            )
            raise ValueError(
                f"sector benchmark(s) not in {store.data_dir}: {listed}. Import their bars, "
                "or map the tickers to stored sector ETFs with --sector-map FILE "
                "(TOML or CSV: ticker -> sector ETF)"
            )


def load_bars(
    store: BarStore,
    tickers: str,
    start: date | None = None,
    end: date | None = None,
    inputs: BarInputs | None = None,
    *,
    features: Sequence[str] | None = None,
) -> JobBars:
    """Resolve ``tickers`` and load their bars with their benchmarks on the chosen prices.

    Parameters
    ----------
    store : BarStore
    tickers : str
        ``"all"``, a named list or a comma list.
    start, end : date, optional
        Checked for order only: jobs compute on the full history.
    inputs : BarInputs, optional
        Prices, market and sector map (default: adjusted, SPY, the default rule).
    features : sequence of str, optional
        The features the job computes (default all); decides which
        benchmarks must be stored (:func:`check_benchmarks`).

    Raises
    ------
    ValueError
        ``start`` after ``end``, an empty store, unknown tickers, a missing
        benchmark, or bars the price basis cannot use.
    """
    inputs = inputs or BarInputs()
    if start is not None and end is not None and start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    available = store.tickers()
    if not available:
        raise ValueError(
            f"no bars in {store.data_dir}; run `engine data demo` or `engine data import PATH`"
        )
    wanted = parse_tickers(tickers, available)
    check_benchmarks(store, wanted, inputs, available, features)
    bars = store.read_bars(benchmark_inputs(wanted, available, inputs.market, inputs.sector_map))
    bars, basis = apply_prices(bars, inputs.prices)
    return JobBars(wanted, bars, basis, inputs, inputs.sectors(wanted))


def load_job_bars(
    store: BarStore, tickers: str, start: date | None, end: date | None
) -> tuple[list[str], pl.DataFrame]:
    """``(tickers, bars)`` of :func:`load_bars` with the default choices.

    Raises
    ------
    ValueError
        ``start`` after ``end``, an empty store, or unknown tickers.
    """
    loaded = load_bars(store, tickers, start, end, features=())
    return loaded.tickers, loaded.bars


def keep_dates(frame: pl.DataFrame, start: date | None, end: date | None) -> pl.DataFrame:
    """Rows with ``start <= date <= end`` (either bound optional)."""
    if start is not None:
        frame = frame.filter(pl.col("date") >= start)
    if end is not None:
        frame = frame.filter(pl.col("date") <= end)
    return frame


def short_histories(bars: pl.DataFrame, tickers: Sequence[str], min_bars: int) -> dict[str, int]:
    """Tickers with fewer than ``min_bars`` bars, with their bar counts.

    Examples
    --------
    >>> import datetime as dt
    >>> days = [dt.date(2020, 1, d) for d in (1, 2, 1)]
    >>> f = pl.DataFrame({"ticker": ["A", "A", "B"], "date": days})
    >>> short_histories(f, ["A", "B"], 2)
    {'B': 1}
    """
    counts = dict(bars.group_by("ticker").len().iter_rows())
    return {t: int(counts.get(t, 0)) for t in sorted(tickers) if counts.get(t, 0) < min_bars}


def synthetic_flags(store: BarStore, tickers: list[str]) -> dict[str, bool]:
    """Whether each ticker is marked synthetic in the store's metadata."""
    meta = store.metadata().get("tickers", {})
    return {t: bool(meta.get(t, {}).get("synthetic", False)) for t in tickers}
