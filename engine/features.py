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
>>> from engine.demo import generate_demo_universe
>>> bars = generate_demo_universe(seed=7).bars
>>> frame = compute_features(bars, ["price_level", "normalized_volume"], tickers=["AAPL"])
>>> frame.columns
['ticker', 'date', 'price_level', 'normalized_volume']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata

import numpy as np
import polars as pl

from engine.universe import (
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
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
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
    manifest: FeatureManifest


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
        and ETFs to ``SPY`` (see ``engine.universe.sector_benchmark_map``).
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
    return build_features(
        bars,
        features,
        tickers=tickers,
        market=market,
        sector_map=sector_map,
        vix_variant=vix_variant,
        progress=progress,
    ).frame


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
    names = _check_feature_names(features)
    bars = _canonical_bars(bars)
    available = bars.get_column("ticker").unique().sort().to_list()
    out_tickers = _output_tickers(tickers, available)
    sectors = sector_benchmark_map(out_tickers, sector_map)

    panel = bars.filter(pl.col("ticker").is_in(out_tickers))
    n_rows = panel.height
    market_return = np.full(n_rows, np.nan)
    sector_r20 = np.full(n_rows, np.nan)
    vix_term = np.full(n_rows, np.nan)
    variant, reason = None, "vix_term_structure not requested"

    if _MARKET_FEATURES & set(names):
        _require(available, [market], "market benchmark", _MARKET_FEATURES & set(names))
        market_return = _aligned(panel, _market_returns(bars, market), "value")
    if _SECTOR_FEATURES & set(names):
        needed = sorted({sectors[t] for t in out_tickers})
        _require(available, needed, "sector benchmark", _SECTOR_FEATURES)
        sector_frame = pl.concat([_sector_r20(bars, s) for s in needed])
        keyed = panel.select("ticker", "date").with_columns(
            sector=pl.col("ticker").replace_strict(sectors, return_dtype=pl.String)
        )
        sector_r20 = _column(
            keyed.join(sector_frame, on=["sector", "date"], how="left", maintain_order="left"),
            "value",
        )
    if _VIX_FEATURE in names:
        variant, reason = _choose_vix_variant(bars, panel, available, market, vix_variant)
        vix_term = _aligned(panel, _vix_series(bars, variant, market), "value")

    wanted = np.array([name in names for name in FEATURE_NAMES])
    offsets = _offsets(panel)
    values = _run_kernel(panel, offsets, market_return, sector_r20, vix_term, wanted, progress)

    frame = panel.select("ticker", "date").with_columns(
        pl.Series(name, values[FEATURE_NAMES.index(name)]).fill_nan(None) for name in names
    )
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
        fingerprint=bars_fingerprint(bars),
        versions=package_versions(),
    )
    return FeatureResult(frame=frame, manifest=manifest)


def bars_fingerprint(bars: pl.DataFrame) -> str:
    """SHA-256 of the canonical bars (ticker, date and prices, sorted), stable across runs."""
    bars = bars.sort("ticker", "date")
    digest = hashlib.sha256()
    digest.update("\n".join(bars.get_column("ticker").to_list()).encode())
    digest.update(bars.get_column("date").cast(pl.Int32).to_numpy().tobytes())
    for name in PRICE_COLUMNS:
        digest.update(_column(bars, name).tobytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine feature values."""
    out = {}
    for name in _VERSIONED_PACKAGES:
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
    missing = [c for c in ("ticker", "date", *PRICE_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack required column(s): {', '.join(missing)}")
    bars = bars.select(
        pl.col("ticker").cast(pl.String),
        pl.col("date").cast(pl.Date),
        *(pl.col(c).cast(pl.Float64) for c in PRICE_COLUMNS),
    ).sort("ticker", "date")
    duplicated = bars.filter(pl.struct("ticker", "date").is_duplicated())
    if duplicated.height:
        shown = ", ".join(
            f"{t} {d}" for t, d in duplicated.select("ticker", "date").unique().head(5).rows()
        )
        raise ValueError(
            f"bars hold {duplicated.height} rows with a duplicate (ticker, date), e.g. {shown}; "
            "each (ticker, date) must appear once"
        )
    return bars


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


def _require(available: list[str], needed: list[str], role: str, features: set[str]) -> None:
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


def _series_of(bars: pl.DataFrame, ticker: str) -> pl.DataFrame:
    return bars.filter(pl.col("ticker") == ticker)


def _market_returns(bars: pl.DataFrame, market: str) -> pl.DataFrame:
    """The market's daily log return on the market's own calendar."""
    own = _series_of(bars, market)
    return own.select("date").with_columns(value=log_return(_column(own, "close"), 1))


def _sector_r20(bars: pl.DataFrame, sector: str) -> pl.DataFrame:
    """A sector benchmark's 20-day log return on its own calendar."""
    own = _series_of(bars, sector)
    return own.select("date").with_columns(
        sector=pl.lit(sector), value=log_return(_column(own, "close"), 20)
    )


def _aligned(panel: pl.DataFrame, series: pl.DataFrame, name: str) -> np.ndarray:
    """Left-join a per-date series onto the panel's rows; a date it lacks gives NaN."""
    joined = panel.select("date").join(
        series.select("date", name), on="date", how="left", maintain_order="left"
    )
    return _column(joined, name)


def _choose_vix_variant(
    bars: pl.DataFrame,
    panel: pl.DataFrame,
    available: list[str],
    market: str,
    requested: str,
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
        _require(available, needs[requested], "input", {_VIX_FEATURE})
        return requested, "chosen by the caller"
    # Decided from bars on or before the first output date only, so that no
    # later bar (a missing VIX value, say) can switch the variant of past rows.
    first = panel.get_column("date").min()
    reasons = []
    for variant in ("vix_vix3m", "vix_mean60"):
        absent = [t for t in needs[variant] if t not in available]
        if absent:
            reasons.append(f"{variant}: no {', '.join(absent)} in bars")
            continue
        starts = {
            t: _series_of(bars, t).filter(pl.col("close").is_not_null()).get_column("date").min()
            for t in needs[variant]
        }
        late = {t: d for t, d in starts.items() if d is None or d > first}
        if not late:
            return variant, f"{' and '.join(needs[variant])} start on or before {first}"
        reasons.append(
            f"{variant}: "
            + ", ".join(f"{t} starts {d}" for t, d in late.items())
            + f", after the first output date {first}"
        )
    _require(available, [market], "market benchmark", {_VIX_FEATURE})
    return "market_vol_ratio", "; ".join(reasons)


def _vix_series(bars: pl.DataFrame, variant: str, market: str) -> pl.DataFrame:
    """The ``vix_term_structure`` series on its source's own calendar."""
    if variant == "vix_vix3m":
        vix = _series_of(bars, VIX_TICKER).select("date", pl.col("close").alias("vix"))
        vix3m = _series_of(bars, VIX3M_TICKER).select("date", pl.col("close").alias("vix3m"))
        both = vix.join(vix3m, on="date", how="inner", maintain_order="left")
        return both.select("date", value=(pl.col("vix") / pl.col("vix3m")).log())
    if variant == "vix_mean60":
        own = _series_of(bars, VIX_TICKER)
        level = _column(own, "close")
        mean = np.empty_like(level)
        rolling_mean_std(level, 60, mean, np.empty_like(level))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.log(level / mean)
        return own.select("date").with_columns(value=value)
    own = _series_of(bars, market)
    r = log_return(_column(own, "close"), 1)
    sd10 = np.empty_like(r)
    sd60 = np.empty_like(r)
    rolling_mean_std(r, 10, np.empty_like(r), sd10)
    rolling_mean_std(r, 60, np.empty_like(r), sd60)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.log(sd10 / sd60)
    return own.select("date").with_columns(value=value)


def _offsets(panel: pl.DataFrame) -> np.ndarray:
    sizes = panel.group_by("ticker", maintain_order=True).len().get_column("len").to_numpy()
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def _run_kernel(
    panel: pl.DataFrame,
    offsets: np.ndarray,
    market_return: np.ndarray,
    sector_r20: np.ndarray,
    vix_term: np.ndarray,
    wanted: np.ndarray,
    progress: ProgressCallback | None,
) -> np.ndarray:
    columns = [_column(panel, c) for c in PRICE_COLUMNS]
    n_tickers = offsets.shape[0] - 1
    if progress is None:
        return panel_features(offsets, *columns, market_return, sector_r20, vix_term, wanted)
    out = np.full((N_FEATURES, panel.height), np.nan)
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
