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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata

import numpy as np
import polars as pl

from engine.data.universe import (
    MARKET_BENCHMARK,
    VIX3M_TICKER,
    VIX_TICKER,
    VOLATILITY_INDICES,
    sector_benchmark_map,
)
from engine.features.source import OHLCV_COLUMNS, SortedBars, align, iso_day
from kernels.features import FEATURE_NAMES, N_FEATURES, panel_features_from
from kernels.garch import GARCH_MAX_WINDOW, GARCH_MIN_OBS, GARCH_REFIT_EVERY
from kernels.rolling import log_return, rolling_mean_std

__all__ = [
    "FEATURE_NAMES",
    "VIX_VARIANTS",
    "FeatureManifest",
    "FeaturePlan",
    "FeatureResult",
    "build_features",
    "compute_features",
    "feature_values",
    "plan_features",
]

#: ``vix_term_structure`` variants, in the order ``"auto"`` tries them.
VIX_VARIANTS: tuple[str, ...] = ("vix_vix3m", "vix_mean60", "market_vol_ratio")
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
    source = SortedBars.of(bars)
    plan = plan_features(source, features, tickers, market, sector_map, vix_variant)
    panel = source.subset(plan.tickers)
    values = feature_values(plan, panel, source, progress=progress)
    frame = panel.key_frame().with_columns(
        pl.Series(name, values[FEATURE_NAMES.index(name)], nan_to_null=True) for name in plan.names
    )
    if not with_manifest:
        return FeatureResult(frame=frame, manifest=None)
    manifest = FeatureManifest(
        feature_names=tuple(plan.names),
        tickers=tuple(plan.tickers),
        market=market,
        sector_map=dict(plan.sectors),
        vix_variant=plan.variant,
        vix_variant_reason=plan.reason,
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
class FeaturePlan:
    """What to compute, decided once from the whole source.

    Attributes
    ----------
    names : list of str
        Requested features, in ``FEATURE_NAMES`` order.
    tickers : list of str
        Output tickers, sorted.
    sectors : dict of str to str
        Output ticker -> sector benchmark.
    market : str
        Market benchmark.
    variant, reason : str or None, str
        The ``vix_term_structure`` variant and why (``None`` when not requested).
    """

    names: list[str]
    tickers: list[str]
    sectors: dict[str, str]
    market: str
    variant: str | None
    reason: str

    @property
    def wanted(self) -> np.ndarray:
        """One bool per feature of ``FEATURE_NAMES``: whether it is requested."""
        return np.array([name in self.names for name in FEATURE_NAMES])

    def benchmarks(self) -> list[str]:
        """Tickers whose bars feed the cross-asset inputs, sorted."""
        names = set(self.names)
        out = set()
        if _MARKET_FEATURES & names:
            out.add(self.market)
        if _SECTOR_FEATURES & names:
            out |= set(self.sectors.values())
        if self.variant == "vix_vix3m":
            out |= {VIX_TICKER, VIX3M_TICKER}
        elif self.variant == "vix_mean60":
            out.add(VIX_TICKER)
        elif self.variant == "market_vol_ratio":
            out.add(self.market)
        return sorted(out)


def plan_features(
    source: SortedBars,
    features: Sequence[str] | None,
    tickers: Sequence[str] | None,
    market: str,
    sector_map: Mapping[str, str] | None,
    vix_variant: str,
    *,
    available: Sequence[str] | None = None,
) -> FeaturePlan:
    """Check the request against ``source`` and decide the ``vix_term_structure`` variant.

    The ``"auto"`` variant is decided from the first date of the output
    tickers' full histories in ``source``, so that a computation of the last
    rows only (the tail mode) decides as the full computation does.
    ``available`` restricts the tickers that count as present (default:
    every ticker of ``source``; the tail mode passes those with bars on or
    before its ``as_of``).

    Raises
    ------
    ValueError
        Unknown feature or ticker names, or a benchmark a requested feature
        needs and ``source`` lacks; the message names them.
    """
    names = _check_feature_names(features)
    available = source.tickers if available is None else list(available)
    out_tickers = _output_tickers(tickers, available)
    sectors = sector_benchmark_map(out_tickers, sector_map)
    wanted = set(names)
    if _MARKET_FEATURES & wanted:
        _require(available, [market], "market benchmark", _MARKET_FEATURES & wanted)
    if _SECTOR_FEATURES & wanted:
        needed = sorted({sectors[t] for t in out_tickers})
        _require(available, needed, "sector benchmark", _SECTOR_FEATURES)
    variant, reason = None, "vix_term_structure not requested"
    if _VIX_FEATURE in wanted:
        first = min(int(source.days_of(t)[0]) for t in out_tickers if source.length(t))
        variant, reason = _choose_vix_variant(source, available, first, market, vix_variant)
    return FeaturePlan(names, out_tickers, sectors, market, variant, reason)


def feature_values(
    plan: FeaturePlan,
    panel: SortedBars,
    bench: SortedBars,
    *,
    garch_run0: np.ndarray | None = None,
    garch_first: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """The planned features over every row of ``panel``, shape (17, rows).

    Parameters
    ----------
    plan : FeaturePlan
    panel : SortedBars
        The rows to compute, the output tickers in ``plan`` order: each one's
        full history, or a window of it (the tail mode).
    bench : SortedBars
        The benchmarks' bars (the full source, or windows of it that reach far
        enough back); cross-asset inputs are computed on each benchmark's own
        calendar and joined on date.
    garch_run0, garch_first : ndarray of int64, optional
        Per ticker of ``panel``: consecutive valid returns before its first
        row, and the first row that needs a GARCH forecast (default 0 and 0:
        a full history).
    progress : callable, optional
        ``progress(done, total)`` in tickers.

    Returns
    -------
    ndarray, shape (17, panel.height)
        Rows not requested are left unwritten.
    """
    names = set(plan.names)
    n_rows = panel.height
    unused = np.empty(0)  # a cross-asset input no wanted feature reads
    market_return = sector_r20 = vix_term = unused
    if _MARKET_FEATURES & names:
        market_return = align(
            panel.days, bench.days_of(plan.market), _market_return(bench, plan.market)
        )
    if _SECTOR_FEATURES & names:
        sector_r20 = np.empty(n_rows)
        lengths = np.diff(panel.offsets())
        for sector in sorted(set(plan.sectors.values())):
            rows = np.repeat([plan.sectors[t] == sector for t in plan.tickers], lengths)
            r20 = log_return(bench.column(sector, "close"), 20)
            sector_r20[rows] = align(panel.days[rows], bench.days_of(sector), r20)
    if plan.variant is not None:
        vix_days, vix_values = _vix_series(bench, plan.variant, plan.market)
        vix_term = align(panel.days, vix_days, vix_values)
    n_tickers = len(panel.ranges)
    if garch_run0 is None:
        garch_run0 = np.zeros(n_tickers, dtype=np.int64)
    if garch_first is None:
        garch_first = np.zeros(n_tickers, dtype=np.int64)
    return _run_kernel(
        panel, market_return, sector_r20, vix_term, plan.wanted, garch_run0, garch_first, progress
    )


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


#: The CLI flag that chooses each kind of benchmark, named in the messages.
_BENCHMARK_FLAGS = {
    "market benchmark": "another market benchmark with --market TICKER",
    "sector benchmark": "other sector benchmarks with --sector-map FILE",
}


def _require(available: Sequence[str], needed: list[str], role: str, features: set[str]) -> None:
    missing = [t for t in needed if t not in available]
    if missing:
        choose = _BENCHMARK_FLAGS.get(role, "another vix_variant ('auto' picks one the bars allow)")
        raise ValueError(
            f"feature {', '.join(sorted(features))} needs the {role} {', '.join(missing)}, "
            f"which is not in bars: include its bars, choose {choose}, "
            "or request features without it"
        )


def _market_return(source: SortedBars, market: str) -> np.ndarray:
    """The market's daily log return on the market's own calendar."""
    return log_return(source.column(market, "close"), 1)


def _choose_vix_variant(
    source: SortedBars, available: list[str], first: int, market: str, requested: str
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
    reasons = []
    for variant in ("vix_vix3m", "vix_mean60"):
        absent = [t for t in needs[variant] if t not in available]
        if absent:
            reasons.append(f"{variant}: no {', '.join(absent)} in bars")
            continue
        starts = {t: _first_valid_day(source, t) for t in needs[variant]}
        late = {t: d for t, d in starts.items() if d is None or d > first}
        if not late:
            return variant, f"{' and '.join(needs[variant])} start on or before {iso_day(first)}"
        reasons.append(
            f"{variant}: "
            + ", ".join(f"{t} starts {iso_day(d)}" for t, d in late.items())
            + f", after the first output date {iso_day(first)}"
        )
    _require(available, [market], "market benchmark", {_VIX_FEATURE})
    return "market_vol_ratio", "; ".join(reasons)


def _first_valid_day(source: SortedBars, ticker: str) -> int | None:
    valid = source.days_of(ticker)[~np.isnan(source.column(ticker, "close"))]
    return int(valid[0]) if valid.shape[0] else None


def _vix_series(source: SortedBars, variant: str, market: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``vix_term_structure`` series on its source's own calendar: (days, values)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "vix_vix3m":
            days = source.days_of(VIX_TICKER)
            vix3m = align(days, source.days_of(VIX3M_TICKER), source.column(VIX3M_TICKER, "close"))
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
    garch_run0: np.ndarray,
    garch_first: np.ndarray,
    progress: ProgressCallback | None,
) -> np.ndarray:
    columns = [panel.arrays[c] for c in OHLCV_COLUMNS]
    offsets = panel.offsets()
    n_tickers = offsets.shape[0] - 1
    if progress is None:
        return panel_features_from(
            offsets, *columns, market_return, sector_r20, vix_term, wanted, garch_run0, garch_first
        )
    out = np.empty((N_FEATURES, panel.height))  # only wanted rows are written
    chunk = max(1, math.ceil(n_tickers / 20))
    for first in range(0, n_tickers, chunk):
        last = min(first + chunk, n_tickers)
        a, b = offsets[first], offsets[last]
        out[:, a:b] = panel_features_from(
            offsets[first : last + 1] - a,
            *(c[a:b] for c in columns),
            market_return[a:b],
            sector_r20[a:b],
            vix_term[a:b],
            wanted,
            garch_run0[first:last],
            garch_first[first:last],
        )
        progress(last, n_tickers)
    return out
