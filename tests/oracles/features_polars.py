"""Polars-native baseline for the 16 non-GARCH features of SPEC section 3.

This is what a competent Polars user would write without Numba: one lazy
query over the long panel, per-ticker windows with ``.over("ticker")``, the
built-in rolling kernels (``rolling_mean``, ``rolling_std``, ``rolling_skew``,
``rolling_min``/``rolling_max``, ``pl.rolling_corr``/``pl.rolling_cov``) and
left joins on date for the benchmark inputs (market return, sector ``R_20``,
the ``vix_term_structure`` series), each computed on the benchmark's own rows.

It is the bench's Polars baseline, timed against
``engine.features.build.compute_features``, and a second reference beside the
pandas oracle (:mod:`tests.oracles.features`): it is only worth timing
because it computes the same numbers (checked loosely by
``bench/test_bench_features.py::test_polars_reference_matches_engine_*``).
Conventions follow the SPEC: a window holding a missing value gives null; the
named fallbacks (0, or 0.5 for ``price_level``) apply when the window is
complete; any other non-finite value is null. It never imports ``engine`` or
``kernels``; the sector map and the volatility indices are the pandas
oracle's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import polars as pl

from tests.oracles.features import VOLATILITY_INDICES, default_sector_map

#: SPEC section 3 order, without ``garch_vol_ratio``.
FEATURES16: tuple[str, ...] = (
    "price_acceleration",
    "volume_price_divergence",
    "volatility_regime_change",
    "return_skewness",
    "momentum_persistence",
    "volatility_clustering",
    "trend_exhaustion",
    "intraday_range_expansion",
    "overnight_gap",
    "end_of_day_momentum",
    "sector_relative_strength",
    "market_beta_instability",
    "vix_term_structure",
    "multi_timeframe_return",
    "normalized_volume",
    "price_level",
)
_PRICES = ("open", "high", "low", "close", "volume")
T = "ticker"


def _finite(e: pl.Expr) -> pl.Expr:
    """Non-finite (NaN, inf) or null -> null."""
    return pl.when(e.is_finite()).then(e)


def _log_ret(n: int) -> pl.Expr:
    return _finite((pl.col("close") / pl.col("close").shift(n)).log())


def _constant(name: str, n: int) -> pl.Expr:
    c = pl.col(name)
    return c.rolling_max(n) == c.rolling_min(n)


def choose_vix_variant(bars: pl.LazyFrame, out_dates: pl.LazyFrame, market: str) -> str:
    """'auto': the first variant whose inputs start on or before the first output date.

    "Start" is the first row with a close (the engine's causal contract, as
    in :func:`tests.oracles.features.choose_vix_variant`).
    """
    first = out_dates.select(pl.col("date").min()).collect().item()
    for variant, needed in (("vix_vix3m", ("VIX", "VIX3M")), ("vix_mean60", ("VIX",))):
        starts = (
            bars.filter(pl.col(T).is_in(list(needed)) & pl.col("close").is_not_null())
            .group_by(T)
            .agg(pl.col("date").min())
            .collect()
        )
        if starts.height == len(needed) and (starts.get_column("date") <= first).all():
            return variant
    return "market_vol_ratio"


def _vix_frame(bars: pl.LazyFrame, variant: str, market: str) -> pl.LazyFrame:
    if variant == "vix_vix3m":
        vix = bars.filter(pl.col(T) == "VIX").select("date", vix="close")
        v3 = bars.filter(pl.col(T) == "VIX3M").select("date", v3="close")
        return vix.join(v3, on="date", how="inner").select(
            "date", vix_term=_finite((pl.col("vix") / pl.col("v3")).log())
        )
    if variant == "vix_mean60":
        c = pl.col("close")
        return bars.filter(pl.col(T) == "VIX").select(
            "date", vix_term=_finite((c / c.rolling_mean(60)).log())
        )
    rm = bars.filter(pl.col(T) == market).select("date", rm=_log_ret(1))
    return rm.select(
        "date",
        vix_term=_finite((pl.col("rm").rolling_std(10) / pl.col("rm").rolling_std(60)).log()),
    )


def polars_features(
    bars: pl.DataFrame,
    features: Sequence[str] | None = None,
    *,
    market: str = "SPY",
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
) -> pl.DataFrame:
    """The 16 non-GARCH features for every non-VIX ticker of ``bars``.

    Returns ``ticker, date`` and the requested features (SPEC order), sorted by
    ticker and date, Float64 with nulls for missing values.
    """
    wanted = [f for f in FEATURES16 if features is None or f in features]
    lf = (
        bars.lazy()
        .select(
            pl.col(T).cast(pl.String),
            pl.col("date"),
            *(pl.col(c).cast(pl.Float64) for c in _PRICES),
        )
        .with_columns(pl.col(c).fill_nan(None) for c in _PRICES)
        .sort(T, "date")
    )
    tickers = lf.select(pl.col(T).unique().sort()).collect().get_column(T).to_list()
    out_tickers = [t for t in tickers if t not in VOLATILITY_INDICES]
    sectors = default_sector_map(out_tickers, market)
    sectors.update(sector_map or {})

    panel = lf.filter(pl.col(T).is_in(out_tickers)).with_columns(
        sector=pl.col(T).replace_strict(sectors, return_dtype=pl.String)
    )
    # benchmark inputs, each on its own calendar, then joined on date
    if "market_beta_instability" in wanted:
        mkt = lf.filter(pl.col(T) == market).select("date", rm=_log_ret(1))
        panel = panel.join(mkt, on="date", how="left", maintain_order="left")
    if "sector_relative_strength" in wanted:
        sec = lf.filter(pl.col(T).is_in(sorted(set(sectors.values())))).select(
            pl.col(T).alias("sector"), "date", sector_r20=_log_ret(20).over(T)
        )
        panel = panel.join(sec, on=["sector", "date"], how="left", maintain_order="left")
    if "vix_term_structure" in wanted:
        variant = vix_variant
        if variant == "auto":
            variant = choose_vix_variant(lf, panel.select("date").unique(), market)
        panel = panel.join(
            _vix_frame(lf, variant, market), on="date", how="left", maintain_order="left"
        )

    c, o, h, lo, v = (pl.col(x) for x in ("close", "open", "high", "low", "volume"))
    # stage 1: per-ticker transforms
    panel = panel.with_columns(
        r=_log_ret(1).over(T),
        R5=_log_ret(5).over(T),
        R7=_log_ret(7).over(T),
        R20=_log_ret(20).over(T),
        R60=_log_ret(60).over(T),
        dlv=(v.log1p() - v.log1p().shift(1)).over(T),
        gap=_finite((o / c.shift(1)).log()).over(T),
        g=_finite((h - lo) / c),
    ).with_columns(q=pl.col("r") ** 2)
    r = pl.col("r")
    # stage 2: rolling statistics per ticker
    panel = panel.with_columns(
        sd10=r.rolling_std(10).over(T),
        sd20=r.rolling_std(20).over(T),
        sd60=r.rolling_std(60).over(T),
    )
    sd10, sd20, sd60 = pl.col("sd10"), pl.col("sd20"), pl.col("sd60")
    exprs: dict[str, pl.Expr] = {}
    if "price_acceleration" in wanted:
        r5 = pl.col("R5")
        exprs["price_acceleration"] = ((r5 - r5.shift(5)) / (sd20 * math.sqrt(5.0))).over(T)
    if "volume_price_divergence" in wanted:
        corr = pl.rolling_corr("r", "dlv", window_size=20)
        const = _constant("r", 20) | _constant("dlv", 20)
        exprs["volume_price_divergence"] = (
            pl.when(const & corr.is_not_null()).then(0.0).otherwise(corr).over(T)
        )
    if "volatility_regime_change" in wanted:
        exprs["volatility_regime_change"] = (sd10 / sd60).log()
    if "return_skewness" in wanted:
        exprs["return_skewness"] = r.rolling_skew(20, bias=False).over(T)
    if "momentum_persistence" in wanted:
        s = pl.col("R7").sign()
        up = (r > 0).cast(pl.Float64).rolling_sum(7)
        down = (r < 0).cast(pl.Float64).rolling_sum(7)
        exprs["momentum_persistence"] = (
            pl.when(up.is_null() | s.is_null())
            .then(None)
            .when(s > 0)
            .then(up / 7.0)
            .when(s < 0)
            .then(-down / 7.0)
            .otherwise(0.0)
        ).over(T)
    if "volatility_clustering" in wanted:
        q = pl.col("q")
        exprs["volatility_clustering"] = pl.rolling_corr(q, q.shift(1), window_size=60).over(T)
    if "trend_exhaustion" in wanted:
        te = (c - c.rolling_mean(20)) / (2.0 * c.rolling_std(20))
        exprs["trend_exhaustion"] = pl.when(_constant("close", 20)).then(0.0).otherwise(te).over(T)
    if "intraday_range_expansion" in wanted:
        exprs["intraday_range_expansion"] = (pl.col("g") / pl.col("g").rolling_mean(20)).over(T)
    if "overnight_gap" in wanted:
        exprs["overnight_gap"] = pl.col("gap") / sd20
    if "end_of_day_momentum" in wanted:
        eod = (c - lo) / (h - lo) - 0.5
        exprs["end_of_day_momentum"] = pl.when(h == lo).then(0.0).otherwise(eod)
    if "sector_relative_strength" in wanted:
        exprs["sector_relative_strength"] = pl.col("R20") - pl.col("sector_r20")
    if "market_beta_instability" in wanted:
        beta = pl.rolling_cov("r", "rm", window_size=20) / pl.col("rm").rolling_var(20)
        exprs["market_beta_instability"] = _finite(beta).rolling_std(60).over(T)
    if "vix_term_structure" in wanted:
        exprs["vix_term_structure"] = pl.col("vix_term")
    if "multi_timeframe_return" in wanted:
        terms = [pl.col(f"R{n}") / (sd60 * math.sqrt(n)) for n in (5, 20, 60)]
        exprs["multi_timeframe_return"] = (terms[0] + terms[1] + terms[2]) / 3.0
    if "normalized_volume" in wanted:
        exprs["normalized_volume"] = ((v + 1.0) / (v.rolling_mean(20).over(T) + 1.0)).log()
    if "price_level" in wanted:
        cmin, cmax = c.rolling_min(252), c.rolling_max(252)
        exprs["price_level"] = (
            pl.when(cmax == cmin).then(0.5).otherwise((c - cmin) / (cmax - cmin)).over(T)
        )
    return panel.select(T, "date", *(_finite(exprs[f]).alias(f) for f in wanted)).collect()
