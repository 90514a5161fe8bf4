"""Does a data directory hold the bars a run was trained on? The run's fingerprint says.

A training run records ``bars_fingerprint`` of the bars it computed its
features on (``run.json`` and every ``metadata.json``, under ``data``): its
tickers and their benchmarks, full history, on its price basis (adjusted
prices by default). :func:`trained_bars_fingerprint` reads the same tickers
from a store, puts them on the same basis and fingerprints them, so that a
command given another data directory can check it before reading bars from
it. Comparing the stored prices as they are would call every ticker whose
``adj_close`` differs from its close a mismatch.

Examples
--------
>>> import tempfile
>>> from engine.data.demo import generate_demo_universe
>>> from engine.data.store import BarStore
>>> from engine.features.build import bars_fingerprint
>>> bars = generate_demo_universe(seed=7).bars
>>> store = BarStore(tempfile.mkdtemp())
>>> _ = store.write(bars)
>>> data = {"tickers": ["AAPL"], "market": "SPY", "sector_map": {"AAPL": "XLK"},
...         "prices": {"mode": "raw"}}
>>> trained = bars.filter(bars["ticker"].is_in(["AAPL", "SPY", "VIX", "VIX3M", "XLK"]))
>>> trained_bars_fingerprint(store, data) == bars_fingerprint(trained)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.data.loading import benchmark_inputs
from engine.data.prices import PriceBasis, apply_prices
from engine.data.store import BarStore
from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import bars_fingerprint

__all__ = ["trained_bars_fingerprint"]


def trained_bars_fingerprint(store: BarStore, data: Mapping[str, Any]) -> str:
    """The fingerprint a run's bars have when read from ``store`` as training read them.

    Parameters
    ----------
    store : BarStore
        The data directory to check.
    data : mapping
        The run's ``data`` record (``run.json`` or ``metadata.json``):
        ``tickers``, ``market``, ``sector_map`` and ``prices`` (absent in
        runs made before price bases: raw).

    Returns
    -------
    str
        Equal to ``data["fingerprint"]`` when ``store`` holds the bars the
        run was trained on.

    Raises
    ------
    ValueError
        ``store`` lacks some of the run's tickers (named).
    """
    tickers = sorted(data.get("tickers") or [])
    available = store.tickers()
    missing = [t for t in tickers if t not in available]
    if missing:
        raise ValueError(
            f"{store.data_dir} lacks {', '.join(missing)}, which the run was trained on"
        )
    market = data.get("market") or MARKET_BENCHMARK
    read = benchmark_inputs(tickers, available, market, data.get("sector_map") or None)
    mode = PriceBasis.from_dict(data.get("prices")).mode
    bars, _ = apply_prices(store.read_bars(read), mode)
    return bars_fingerprint(bars)
