"""The default universe, its benchmarks, and ticker-list parsing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

STOCKS: tuple[str, ...] = (
    "AAPL", "MSFT", "GOOG", "NVDA", "TSLA", "AMZN", "META", "CRM", "ADBE", "NOW",
    "ORCL", "NFLX", "AMD", "INTC", "CSCO", "AVGO", "TXN", "QCOM", "MU", "AMAT",
    "LRCX", "KLAC", "MRVL", "SNPS", "CDNS", "FTNT", "PANW", "INTU", "UBER", "ZM",
    "DDOG",
)  # fmt: skip
ETFS: tuple[str, ...] = ("QQQ", "XLK", "SPY")
DEFAULT_UNIVERSE: tuple[str, ...] = STOCKS + ETFS

MARKET_BENCHMARK = "SPY"
SECTOR_BENCHMARK = "XLK"
VIX_TICKER = "VIX"
VIX3M_TICKER = "VIX3M"
#: Volatility indices are inputs to ``vix_term_structure``, not securities:
#: ``--tickers all`` leaves them out of feature output.
VOLATILITY_INDICES: frozenset[str] = frozenset({VIX_TICKER, VIX3M_TICKER})

NAMED_LISTS: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_UNIVERSE,
    "stocks": STOCKS,
    "etfs": ETFS,
}


def sector_benchmark_map(
    tickers: Iterable[str],
    overrides: Mapping[str, str] | None = None,
    market: str = MARKET_BENCHMARK,
) -> dict[str, str]:
    """Map each ticker to its sector benchmark.

    Single stocks map to ``XLK``; ETFs (and any ticker that is itself a
    benchmark) map to the market (``SPY`` by default). ``overrides`` (a
    ``--sector-map``) wins over both rules.

    Examples
    --------
    >>> sector_benchmark_map(["AAPL", "QQQ"])
    {'AAPL': 'XLK', 'QQQ': 'SPY'}
    >>> sector_benchmark_map(["AAPL", "JPM", "XLK"], {"JPM": "XLF"}, market="QQQ")
    {'AAPL': 'XLK', 'JPM': 'XLF', 'XLK': 'QQQ'}
    """
    overrides = dict(overrides or {})
    out = {}
    for ticker in tickers:
        if ticker in overrides:
            out[ticker] = overrides[ticker]
        elif ticker in ETFS or ticker in (MARKET_BENCHMARK, SECTOR_BENCHMARK, market):
            out[ticker] = market
        else:
            out[ticker] = SECTOR_BENCHMARK
    return out


def parse_tickers(spec: str, available: Iterable[str]) -> list[str]:
    """Resolve a ticker specification against the tickers in the data directory.

    Parameters
    ----------
    spec : str
        ``"all"`` (every available ticker except volatility indices), a named
        list (``default``, ``stocks``, ``etfs``) or a comma-separated list.
    available : iterable of str
        Tickers present in the data directory.

    Returns
    -------
    list of str
        Sorted, de-duplicated tickers.

    Raises
    ------
    ValueError
        If a requested ticker is not available; the message lists them.

    Examples
    --------
    >>> parse_tickers("msft, aapl", ["AAPL", "MSFT", "SPY"])
    ['AAPL', 'MSFT']
    """
    available = sorted(set(available))
    key = spec.strip()
    if key.lower() == "all":
        return [t for t in available if t not in VOLATILITY_INDICES]
    if key.lower() in NAMED_LISTS:
        wanted = list(NAMED_LISTS[key.lower()])
    else:
        wanted = [t.strip().upper() for t in key.split(",") if t.strip()]
    if not wanted:
        raise ValueError(f"no tickers in --tickers={spec!r}")
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(
            f"tickers not in the data directory: {', '.join(missing)} "
            f"(available: {', '.join(available) or 'none'})"
        )
    return sorted(set(wanted))
