"""The 17 causal pattern features over a Polars panel of daily bars.

This module owns everything around the Numba kernels in ``kernels.features``:
checking the input, choosing output tickers, computing the cross-asset inputs
on each benchmark's own calendar and joining them on date, handing contiguous
float64 arrays to the kernel, and wrapping the result back into Polars with
missing values as nulls. It also builds the manifest that travels with every
feature set (feature order, the ``vix_term_structure`` variant, a data
fingerprint and package versions).

Examples
--------
>>> import polars as pl
>>> from engine.data.demo import generate_demo_universe
>>> bars = generate_demo_universe(seed=7).bars
>>> frame = compute_features(bars, ["price_level", "normalized_volume"], tickers=["AAPL"])
>>> frame.columns  # the features asked for, always in FEATURE_NAMES order
['ticker', 'date', 'normalized_volume', 'price_level']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata

import numpy as np
import polars as pl

from engine.data.panel import sorted_panel, ticker_ranges
from engine.data.universe import (
    MARKET_BENCHMARK,
    VIX3M_TICKER,
    VIX_TICKER,
    VOLATILITY_INDICES,
    sector_benchmark_map,
)
from kernels.features import FEATURE_NAMES, N_FEATURES, panel_features
from kernels.garch import GARCH_MAX_WINDOW, GARCH_MIN_OBS, GARCH_REFIT_EVERY
from kernels.rolling import log_return, rolling_mean_std

__all__ = [
    "FEATURE_NAMES",
    "VIX_VARIANTS",
    "FeatureManifest",
    "FeatureResult",
    "build_features",
    "compute_features",
]

#: ``vix_term_structure`` variants, in the order ``"auto"`` tries them.
VIX_VARIANTS: tuple[str, ...] = ("vix_vix3m", "vix_mean60", "market_vol_ratio")
OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_MARKET_FEATURES = frozenset({"market_beta_instability"})
_SECTOR_FEATURES = frozenset({"sector_relative_strength"})
_VIX_FEATURE = "vix_term_structure"
_VERSIONED_PACKAGES = ("pattern-engine", "numpy", "numba", "polars", "arch")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class FeatureManifest:
    """What a feature set was computed from and how."""

    feature_names: tuple[str, ...]
    tickers: tuple[str, ...]
    market: str
    sector_map: dict[str, str]
    vix_variant: str | None
    vix_variant_reason: str
    garch: dict[str, int]
    fingerprint: str
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return a JSON-ready dictionary."""
        out = asdict(self)
        out["feature_names"] = list(self.feature_names)
        out["tickers"] = list(self.tickers)
        return out


@dataclass(frozen=True)
class FeatureResult:
    """A feature frame and its manifest."""

    frame: pl.DataFrame
    manifest: FeatureManifest | None


def compute_features(
    bars: pl.DataFrame,
    features: Sequence[str] | None = None,
    *,
    tickers: Sequence[str] | None = None,
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
    progress: ProgressCallback | None = None,
) -> pl.DataFrame:
    """Compute causal pattern features for every (ticker, date) of a panel.

    Parameters
    ----------
    bars : pl.DataFrame
        Long frame with ``ticker, date, open, high, low, close, volume``, in any
        row order, one row per (ticker, date). Nulls and NaN are missing values:
        every rolling window that holds one gives null. Benchmarks (market,
        sector, VIX) are read from the same frame.
    features : sequence of str, optional
        Subset of ``FEATURE_NAMES`` to compute (default all 17). Only what is
        requested is computed: leaving out ``garch_vol_ratio`` skips GARCH.
    tickers : sequence of str, optional
        Tickers to return (default every ticker except the volatility indices
        ``VIX`` and ``VIX3M``, which only feed ``vix_term_structure``).
    market : str
        Market benchmark ticker, for ``market_beta_instability`` and the
        ``market_vol_ratio`` variant of ``vix_term_structure``.
    sector_map : mapping, optional
        Ticker -> sector benchmark overrides; by default stocks map to ``XLK``
        and ETFs to ``SPY`` (see ``engine.data.universe.sector_benchmark_map``).
    vix_variant : {"auto", "vix_vix3m", "vix_mean60", "market_vol_ratio"}
        How ``vix_term_structure`` is computed. ``"auto"`` takes the first
        variant whose inputs have a bar on or before the first output date
        (later dates they lack give null); pin the variant when serving a
        model so that a different history cannot switch it.
    progress : callable, optional
        Called as ``progress(done, total)`` in tickers after each chunk.

    Returns
    -------
    pl.DataFrame
        ``ticker`` (String), ``date`` (Date) and one Float64 column per feature
        in ``FEATURE_NAMES`` order; sorted by ticker and date; missing values
        are null, never NaN or infinite.

    Raises
    ------
    ValueError
        Unknown feature or ticker names, missing columns, duplicate
        (ticker, date) rows, or a benchmark that a requested feature needs and
        ``bars`` lacks; the message names them.

    See Also
    --------
    build_features : the same, with the manifest.
    """
    return _build(bars, features, tickers, market, sector_map, vix_variant, progress, False).frame


def build_features(
    bars: pl.DataFrame,
    features: Sequence[str] | None = None,
    *,
    tickers: Sequence[str] | None = None,
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
    progress: ProgressCallback | None = None,
) -> FeatureResult:
    """Compute features as :func:`compute_features` does, and return the manifest too."""
    return _build(bars, features, tickers, market, sector_map, vix_variant, progress, True)


def _build(
    bars: pl.DataFrame,
    features: Sequence[str] | None,
    tickers: Sequence[str] | None,
    market: str,
    sector_map: Mapping[str, str] | None,
    vix_variant: str,
    progress: ProgressCallback | None,
    with_manifest: bool,
) -> FeatureResult:
    names = _check_feature_names(features)
    source = SortedBars.of(bars)
    available = source.tickers
    out_tickers = _output_tickers(tickers, available)
    sectors = sector_benchmark_map(out_tickers, sector_map)

    panel = source.subset(out_tickers)
    n_rows = panel.frame.height
    market_return = np.full(n_rows, np.nan)
    sector_r20 = np.full(n_rows, np.nan)
    vix_term = np.full(n_rows, np.nan)
    variant, reason = None, "vix_term_structure not requested"

    if _MARKET_FEATURES & set(names):
        _require(available, [market], "market benchmark", _MARKET_FEATURES & set(names))
        market_return = _align(panel.days, source.days_of(market), _market_return(source, market))
    if _SECTOR_FEATURES & set(names):
        needed = sorted({sectors[t] for t in out_tickers})
        _require(available, needed, "sector benchmark", _SECTOR_FEATURES)
        r20 = {s: log_return(source.column(s, "close"), 20) for s in needed}
        for ticker in out_tickers:
            rows = panel.slice_of(ticker)
            sector = sectors[ticker]
            sector_r20[rows] = _align(panel.days[rows], source.days_of(sector), r20[sector])
    if _VIX_FEATURE in names:
        variant, reason = _choose_vix_variant(source, panel, market, vix_variant)
        vix_days, vix_values = _vix_series(source, variant, market)
        vix_term = _align(panel.days, vix_days, vix_values)

    wanted = np.array([name in names for name in FEATURE_NAMES])
    values = _run_kernel(panel, market_return, sector_r20, vix_term, wanted, progress)

    frame = panel.frame.select("ticker", "date").with_columns(
        pl.Series(name, values[FEATURE_NAMES.index(name)]).fill_nan(None) for name in names
    )
    if not with_manifest:
        return FeatureResult(frame=frame, manifest=None)
    manifest = FeatureManifest(
        feature_names=tuple(names),
        tickers=tuple(out_tickers),
        market=market,
        sector_map={t: sectors[t] for t in out_tickers},
        vix_variant=variant,
        vix_variant_reason=reason,
        garch={
            "refit_every": GARCH_REFIT_EVERY,
            "max_window": GARCH_MAX_WINDOW,
            "min_obs": GARCH_MIN_OBS,
        },
        fingerprint=source.fingerprint(),
        versions=package_versions(),
    )
    return FeatureResult(frame=frame, manifest=manifest)


@dataclass(frozen=True)
class SortedBars:
    """Canonical bars sorted by (ticker, date), with each ticker's row range.

    Slicing a ticker out is O(1) instead of a string filter over every row.
    """

    frame: pl.DataFrame
    ranges: dict[str, tuple[int, int]]
    days: np.ndarray  # date as int32 days since the epoch, one per row

    @classmethod
    def of(cls, bars: pl.DataFrame) -> SortedBars:
        """Check, cast and sort ``bars``; raise ``ValueError`` on duplicates or null keys."""
        frame = _canonical_bars(bars)
        days = frame.get_column("date").cast(pl.Int32).to_numpy()
        return cls(frame=frame, ranges=ticker_ranges(frame), days=days)

    @property
    def tickers(self) -> list[str]:
        """Tickers in sorted order."""
        return list(self.ranges)

    def slice_of(self, ticker: str) -> slice:
        """The rows of ``ticker``."""
        a, b = self.ranges[ticker]
        return slice(a, b)

    def days_of(self, ticker: str) -> np.ndarray:
        """The dates of ``ticker`` as day numbers."""
        return self.days[self.slice_of(ticker)]

    def column(self, ticker: str, name: str) -> np.ndarray:
        """One column of one ticker as contiguous float64, nulls as NaN."""
        a, b = self.ranges[ticker]
        return _column(self.frame.slice(a, b - a), name)

    def subset(self, tickers: Sequence[str]) -> SortedBars:
        """The rows of ``tickers`` (which must be sorted), as a new ``SortedBars``."""
        if list(tickers) == self.tickers:
            return self
        mask = np.zeros(self.frame.height, dtype=bool)
        ranges = {}
        start = 0
        for ticker in tickers:
            a, b = self.ranges[ticker]
            mask[a:b] = True
            ranges[ticker] = (start, start + b - a)
            start += b - a
        return SortedBars(
            frame=self.frame.filter(pl.Series(mask)), ranges=ranges, days=self.days[mask]
        )

    def offsets(self) -> np.ndarray:
        """Row offsets of each ticker, ``len(tickers) + 1`` of them."""
        stops = [b for _, b in self.ranges.values()]
        return np.asarray([0, *stops], dtype=np.int64)

    def fingerprint(self) -> str:
        """SHA-256 over tickers, row counts, dates and prices; stable across runs and versions."""
        digest = hashlib.sha256()
        for ticker, (a, b) in self.ranges.items():
            digest.update(f"{ticker}:{b - a};".encode())
        digest.update(self.days.tobytes())
        for name in OHLCV_COLUMNS:
            digest.update(_column(self.frame, name).tobytes())
        return digest.hexdigest()


def bars_fingerprint(bars: pl.DataFrame) -> str:
    """SHA-256 of the canonical bars (sorted tickers, dates and prices), stable across runs."""
    return SortedBars.of(bars).fingerprint()


def package_versions(names: Sequence[str] = _VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (default: the packages that determine feature values)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _check_feature_names(features: Sequence[str] | None) -> list[str]:
    if features is None:
        return list(FEATURE_NAMES)
    if isinstance(features, str):
        features = [features]
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown:
        raise ValueError(
            f"unknown feature name(s): {', '.join(unknown)}; "
            f"known features are: {', '.join(FEATURE_NAMES)}"
        )
    if not features:
        raise ValueError("features is empty: name at least one feature or pass None for all")
    requested = set(features)
    return [f for f in FEATURE_NAMES if f in requested]


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


def _output_tickers(tickers: Sequence[str] | None, available: list[str]) -> list[str]:
    if tickers is None:
        out = [t for t in available if t not in VOLATILITY_INDICES]
        if not out:
            raise ValueError("bars hold no securities (only volatility indices or nothing)")
        return out
    if isinstance(tickers, str):
        tickers = [tickers]
    unknown = sorted(set(tickers) - set(available))
    if unknown:
        raise ValueError(f"ticker(s) not in bars: {', '.join(unknown)}")
    return sorted(set(tickers))


def _require(available: Sequence[str], needed: list[str], role: str, features: set[str]) -> None:
    missing = [t for t in needed if t not in available]
    if missing:
        raise ValueError(
            f"feature {', '.join(sorted(features))} needs the {role} {', '.join(missing)}, "
            "which is not in bars: include its bars, choose another benchmark, "
            "or request features without it"
        )


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A Float64 column as a contiguous numpy array, nulls as NaN."""
    series = frame.get_column(name).cast(pl.Float64).fill_null(np.nan)
    return np.ascontiguousarray(series.to_numpy(), dtype=np.float64)


def _align(target_days: np.ndarray, source_days: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Join ``values`` (on sorted ``source_days``) onto ``target_days``; absent dates give NaN.

    Examples
    --------
    >>> _align(np.array([1, 2, 5]), np.array([2, 3, 5]), np.array([20.0, 30.0, 50.0]))
    array([nan, 20., 50.])
    """
    out = np.full(target_days.shape[0], np.nan)
    if source_days.shape[0] == 0:
        return out
    idx = np.searchsorted(source_days, target_days)
    found = idx < source_days.shape[0]
    found[found] = source_days[idx[found]] == target_days[found]
    out[found] = values[idx[found]]
    return out


def _market_return(source: SortedBars, market: str) -> np.ndarray:
    """The market's daily log return on the market's own calendar."""
    return log_return(source.column(market, "close"), 1)


def _choose_vix_variant(
    source: SortedBars, panel: SortedBars, market: str, requested: str
) -> tuple[str, str]:
    if requested != "auto" and requested not in VIX_VARIANTS:
        raise ValueError(
            f"vix_variant must be 'auto' or one of {', '.join(VIX_VARIANTS)}, got {requested!r}"
        )
    needs = {
        "vix_vix3m": [VIX_TICKER, VIX3M_TICKER],
        "vix_mean60": [VIX_TICKER],
        "market_vol_ratio": [market],
    }
    if requested != "auto":
        _require(source.tickers, needs[requested], "input", {_VIX_FEATURE})
        return requested, "chosen by the caller"
    # Decided from bars on or before the first output date only, so that no
    # later bar (a missing VIX value, say) can switch the variant of past rows.
    first = int(panel.days.min())
    reasons = []
    for variant in ("vix_vix3m", "vix_mean60"):
        absent = [t for t in needs[variant] if t not in source.ranges]
        if absent:
            reasons.append(f"{variant}: no {', '.join(absent)} in bars")
            continue
        starts = {t: _first_valid_day(source, t) for t in needs[variant]}
        late = {t: d for t, d in starts.items() if d is None or d > first}
        if not late:
            return variant, f"{' and '.join(needs[variant])} start on or before {_iso_day(first)}"
        reasons.append(
            f"{variant}: "
            + ", ".join(f"{t} starts {_iso_day(d)}" for t, d in late.items())
            + f", after the first output date {_iso_day(first)}"
        )
    _require(source.tickers, [market], "market benchmark", {_VIX_FEATURE})
    return "market_vol_ratio", "; ".join(reasons)


def _first_valid_day(source: SortedBars, ticker: str) -> int | None:
    valid = source.days_of(ticker)[~np.isnan(source.column(ticker, "close"))]
    return int(valid[0]) if valid.shape[0] else None


def _iso_day(day: int | None) -> str:
    if day is None:
        return "never"
    return (np.datetime64(0, "D") + np.timedelta64(day, "D")).astype(str)


def _vix_series(source: SortedBars, variant: str, market: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``vix_term_structure`` series on its source's own calendar: (days, values)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "vix_vix3m":
            days = source.days_of(VIX_TICKER)
            vix3m = _align(days, source.days_of(VIX3M_TICKER), source.column(VIX3M_TICKER, "close"))
            return days, np.log(source.column(VIX_TICKER, "close") / vix3m)
        if variant == "vix_mean60":
            level = source.column(VIX_TICKER, "close")
            mean = np.empty_like(level)
            rolling_mean_std(level, 60, mean, np.empty_like(level))
            return source.days_of(VIX_TICKER), np.log(level / mean)
        r = _market_return(source, market)
        sd10 = np.empty_like(r)
        sd60 = np.empty_like(r)
        rolling_mean_std(r, 10, np.empty_like(r), sd10)
        rolling_mean_std(r, 60, np.empty_like(r), sd60)
        return source.days_of(market), np.log(sd10 / sd60)


def _run_kernel(
    panel: SortedBars,
    market_return: np.ndarray,
    sector_r20: np.ndarray,
    vix_term: np.ndarray,
    wanted: np.ndarray,
    progress: ProgressCallback | None,
) -> np.ndarray:
    columns = [_column(panel.frame, c) for c in OHLCV_COLUMNS]
    offsets = panel.offsets()
    n_tickers = offsets.shape[0] - 1
    if progress is None:
        return panel_features(offsets, *columns, market_return, sector_r20, vix_term, wanted)
    out = np.empty((N_FEATURES, panel.frame.height))  # only wanted rows are written
    chunk = max(1, math.ceil(n_tickers / 20))
    for first in range(0, n_tickers, chunk):
        last = min(first + chunk, n_tickers)
        a, b = offsets[first], offsets[last]
        out[:, a:b] = panel_features(
            offsets[first : last + 1] - a,
            *(c[a:b] for c in columns),
            market_return[a:b],
            sector_r20[a:b],
            vix_term[a:b],
            wanted,
        )
        progress(last, n_tickers)
    return out
