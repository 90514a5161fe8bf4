"""Independent pandas oracle for the 17 features of SPEC section 3.

Written from the SPEC text only: it never imports ``engine`` or ``kernels``.
Every rolling statistic is the pandas one the SPEC names (``x.rolling(n).std()``
with ddof = 1, ``.skew()``, ``.corr()``, ``.cov()``, ``.mean()``), with
``min_periods = window`` so that a window holding any missing value is NaN.

Conventions (the implementation's documented contract):

* per-ticker series use that ticker's own rows (windows count rows);
* cross-asset inputs (market return, sector benchmark ``R_20``, the VIX series)
  are computed on the benchmark's own rows and then left-joined on date; a date
  the benchmark lacks gives a missing input;
* named fallbacks (0, or 0.5 for ``price_level``) apply only when the window is
  complete; any other non-finite result is NaN;
* ``garch_vol_ratio`` takes its forecast from ``arch`` (:mod:`tests.oracles.garch`):
  one arch fit per refit, so it is slow, and it agrees with the kernel only to
  the SPEC's GARCH tolerance (2 %), not to rounding. :data:`REFERENCE_FEATURES`,
  the default, leaves it out.

The output is a pandas frame with ``ticker``, ``date`` and the requested
features, one row per input (ticker, date) of the output tickers, sorted by
ticker then date, with NaN for missing values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import pandas as pd

from tests.oracles.bars import to_pandas_bars
from tests.oracles.garch import arch_rolling_sigma

#: SPEC section 3 table order.
FEATURE_NAMES: tuple[str, ...] = (
    "price_acceleration",
    "volume_price_divergence",
    "volatility_regime_change",
    "return_skewness",
    "momentum_persistence",
    "volatility_clustering",
    "trend_exhaustion",
    "garch_vol_ratio",
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
#: Features this oracle reproduces to rounding (all but the GARCH one).
REFERENCE_FEATURES: tuple[str, ...] = tuple(f for f in FEATURE_NAMES if f != "garch_vol_ratio")
CROSS_ASSET_FEATURES: frozenset[str] = frozenset(
    {"sector_relative_strength", "market_beta_instability", "vix_term_structure"}
)
ETFS: frozenset[str] = frozenset({"QQQ", "XLK", "SPY"})
VOLATILITY_INDICES: frozenset[str] = frozenset({"VIX", "VIX3M"})
VIX_VARIANTS: tuple[str, ...] = ("vix_vix3m", "vix_mean60", "market_vol_ratio")


# ---------------------------------------------------------------------------
# sector map; rolling statistics exact on constant windows
# ---------------------------------------------------------------------------
def default_sector_map(tickers: Sequence[str], market: str = "SPY") -> dict[str, str]:
    """Single stocks -> XLK; ETFs (QQQ, XLK, SPY) and the market -> SPY."""
    return {t: ("SPY" if (t in ETFS or t == market) else "XLK") for t in tickers}


def _finite(x: pd.Series) -> pd.Series:
    """Any non-finite value (inf from a zero denominator, log 0) -> NaN."""
    v = x.to_numpy(dtype=np.float64, copy=True)
    v[~np.isfinite(v)] = np.nan
    return pd.Series(v, index=x.index)


def _complete(*xs: pd.Series, n: int) -> pd.Series:
    """True where the last n values of every series are all present."""
    ok = None
    for x in xs:
        c = x.notna().astype(np.float64).rolling(n).sum() == n
        ok = c if ok is None else (ok & c)
    return ok


def _constant(x: pd.Series, n: int) -> pd.Series:
    """True where the last n values are all present and all equal (exact)."""
    return x.rolling(n).max() == x.rolling(n).min()


def rolling_mean(x: pd.Series, n: int) -> pd.Series:
    """x.rolling(n).mean(), exact on constant windows.

    pandas' add/remove accumulators can leave a residue (e.g. 1e-20 for a window
    of zeros after non-zero values); a constant window's mean is its value.
    """
    m = x.rolling(n).mean()
    const = _constant(x, n)
    m[const] = x[const]
    return m


def rolling_std(x: pd.Series, n: int) -> pd.Series:
    """x.rolling(n).std() (ddof = 1), exactly 0 on constant windows.

    pandas 3.1 returns ~1e-9 for 20 exact zeros that follow non-zero values
    (Welford residue); the SPEC's sd of a constant window is 0, which makes the
    zero-denominator rule (fallback or NaN) apply.
    """
    sd = x.rolling(n).std()
    sd[_constant(x, n)] = 0.0
    return sd


def rolling_var(x: pd.Series, n: int) -> pd.Series:
    """x.rolling(n).var() (ddof = 1), exactly 0 on constant windows."""
    v = x.rolling(n).var()
    v[_constant(x, n)] = 0.0
    return v


# ---------------------------------------------------------------------------
# building blocks (one ticker: a frame indexed by date, that ticker's rows)
# ---------------------------------------------------------------------------
def log_return(close: pd.Series) -> pd.Series:
    """r_t = ln(C_t / C_{t-1}) on the series' own rows; missing at the first row."""
    return _finite(np.log(close / close.shift(1)))


def log_return_n(close: pd.Series, n: int) -> pd.Series:
    """R_n(t) = ln(C_t / C_{t-n})."""
    return _finite(np.log(close / close.shift(n)))


# ---------------------------------------------------------------------------
# the per-ticker features
# ---------------------------------------------------------------------------
def price_acceleration(g: pd.DataFrame) -> pd.Series:
    """(R_5(t) - R_5(t-5)) / (sd_20(r) * sqrt(5))."""
    r = log_return(g["close"])
    r5 = log_return_n(g["close"], 5)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite((r5 - r5.shift(5)) / (rolling_std(r, 20) * np.sqrt(5.0)))


def volume_price_divergence(g: pd.DataFrame) -> pd.Series:
    """corr_20(r, dlv), dlv = ln(1+V_t) - ln(1+V_{t-1}); 0 if either side is constant."""
    r = log_return(g["close"])
    lv = np.log(1.0 + g["volume"])
    dlv = _finite(lv - lv.shift(1))
    out = _finite(r.rolling(20).corr(dlv))
    fallback = _complete(r, dlv, n=20) & (_constant(r, 20) | _constant(dlv, 20))
    out[fallback] = 0.0
    return out


def volatility_regime_change(g: pd.DataFrame) -> pd.Series:
    """ln(sd_10(r) / sd_60(r))."""
    r = log_return(g["close"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite(np.log(rolling_std(r, 10) / rolling_std(r, 60)))


def return_skewness(g: pd.DataFrame) -> pd.Series:
    """r.rolling(20).skew() (pandas' bias-corrected estimator; NaN for zero variance)."""
    r = log_return(g["close"])
    out = _finite(r.rolling(20).skew())
    out[_constant(r, 20)] = np.nan
    return out


def momentum_persistence(g: pd.DataFrame) -> pd.Series:
    """s * mean(sign(r_{t-6..t}) == s), s = sign(R_7(t)); 0 if s = 0."""
    r = log_return(g["close"])
    s = np.sign(log_return_n(g["close"], 7))
    sg = np.sign(r)
    hits = sum((sg.shift(k) == s).astype(np.float64) for k in range(7))
    out = s * (hits / 7.0)
    out[~(_complete(r, n=7) & s.notna())] = np.nan
    return _finite(out)


def volatility_clustering(g: pd.DataFrame) -> pd.Series:
    """corr_60(q_t, q_{t-1}), q = r^2: q.rolling(60).corr(q.shift(1))."""
    q = log_return(g["close"]) ** 2
    q1 = q.shift(1)
    out = _finite(q.rolling(60).corr(q1))
    out[_constant(q, 60) | _constant(q1, 60)] = np.nan  # zero variance: no fallback named
    return out


def trend_exhaustion(g: pd.DataFrame) -> pd.Series:
    """(C_t - mean_20(C)) / (2 sd_20(C)); 0 if sd_20(C) = 0."""
    c = g["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _finite((c - rolling_mean(c, 20)) / (2.0 * rolling_std(c, 20)))
    out[_constant(c, 20)] = 0.0
    return out


def garch_vol_ratio(g: pd.DataFrame) -> pd.Series:
    """sigma_hat(t+1 | t) / sd_60(r), the GARCH forecast by arch on the SPEC's schedule."""
    r = log_return(g["close"])
    sigma = pd.Series(arch_rolling_sigma(r.to_numpy()), index=g.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite(sigma / rolling_std(r, 60))


def intraday_range_expansion(g: pd.DataFrame) -> pd.Series:
    """g_t / mean_20(g), g = (H - L) / C."""
    rng = _finite((g["high"] - g["low"]) / g["close"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite(rng / rolling_mean(rng, 20))


def overnight_gap(g: pd.DataFrame) -> pd.Series:
    """ln(O_t / C_{t-1}) / sd_20(r)."""
    r = log_return(g["close"])
    gap = _finite(np.log(g["open"] / g["close"].shift(1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite(gap / rolling_std(r, 20))


def end_of_day_momentum(g: pd.DataFrame) -> pd.Series:
    """(C - L) / (H - L) - 0.5; 0 if H = L (bar complete)."""
    h, lo, c = g["high"], g["low"], g["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _finite((c - lo) / (h - lo) - 0.5)
    out[(h == lo) & c.notna()] = 0.0
    return out


def multi_timeframe_return(g: pd.DataFrame) -> pd.Series:
    """Mean over n in {5, 20, 60} of R_n(t) / (sd_60(r) sqrt(n))."""
    c = g["close"]
    sd60 = rolling_std(log_return(c), 60)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = [log_return_n(c, n) / (sd60 * np.sqrt(float(n))) for n in (5, 20, 60)]
        return _finite((terms[0] + terms[1] + terms[2]) / 3.0)


def normalized_volume(g: pd.DataFrame) -> pd.Series:
    """ln((V_t + 1) / (mean_20(V) + 1))."""
    v = g["volume"]
    return _finite(np.log((v + 1.0) / (rolling_mean(v, 20) + 1.0)))


def price_level(g: pd.DataFrame) -> pd.Series:
    """(C - min_252(C)) / (max_252(C) - min_252(C)); 0.5 if max = min."""
    c = g["close"]
    lo, hi = c.rolling(252).min(), c.rolling(252).max()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _finite((c - lo) / (hi - lo))
    out[hi == lo] = 0.5
    return out


PER_TICKER = {
    "price_acceleration": price_acceleration,
    "volume_price_divergence": volume_price_divergence,
    "volatility_regime_change": volatility_regime_change,
    "return_skewness": return_skewness,
    "momentum_persistence": momentum_persistence,
    "volatility_clustering": volatility_clustering,
    "trend_exhaustion": trend_exhaustion,
    "garch_vol_ratio": garch_vol_ratio,
    "intraday_range_expansion": intraday_range_expansion,
    "overnight_gap": overnight_gap,
    "end_of_day_momentum": end_of_day_momentum,
    "multi_timeframe_return": multi_timeframe_return,
    "normalized_volume": normalized_volume,
    "price_level": price_level,
}


# ---------------------------------------------------------------------------
# cross-asset features: benchmark series on its own rows, then joined on date
# ---------------------------------------------------------------------------
def sector_relative_strength(g: pd.DataFrame, bench: pd.DataFrame) -> pd.Series:
    """R_20(ticker) - R_20(sector benchmark), the latter on the benchmark's rows."""
    rb = log_return_n(bench["close"], 20).reindex(g.index)
    return _finite(log_return_n(g["close"], 20) - rb)


def market_beta_instability(g: pd.DataFrame, mkt: pd.DataFrame) -> pd.Series:
    """sd_60(beta_20), beta_20 = cov_20(r, r_m) / var_20(r_m) over the ticker's rows."""
    r = log_return(g["close"])
    rm = log_return(mkt["close"]).reindex(g.index)  # SPY's own calendar, then joined
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = _finite(r.rolling(20).cov(rm) / rolling_var(rm, 20))
    return _finite(rolling_std(beta, 60))


def vix_series(frames: Mapping[str, pd.DataFrame], variant: str, market: str) -> pd.Series:
    """The vix_term_structure input series, indexed by the date of its own rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "vix_vix3m":
            vix = frames["VIX"]["close"]
            v3 = frames["VIX3M"]["close"].reindex(vix.index)
            return _finite(np.log(vix / v3))
        if variant == "vix_mean60":
            vix = frames["VIX"]["close"]
            return _finite(np.log(vix / rolling_mean(vix, 60)))
        if variant == "market_vol_ratio":
            rm = log_return(frames[market]["close"])
            return _finite(np.log(rolling_std(rm, 10) / rolling_std(rm, 60)))
    raise ValueError(f"unknown vix_variant {variant!r}")


def vix_inputs(variant: str, market: str) -> tuple[str, ...]:
    return {"vix_vix3m": ("VIX", "VIX3M"), "vix_mean60": ("VIX",),
            "market_vol_ratio": (market,)}[variant]  # fmt: skip


def choose_vix_variant(
    frames: Mapping[str, pd.DataFrame], out_dates: pd.DatetimeIndex, market: str
) -> str:
    """'auto': the first variant whose inputs exist and start on or before the first output date.

    "Start" is the first row with a close. Deciding from bars up to the first
    output date keeps the choice causal: no later bar (a missing VIX value, an
    index that stops early) can switch the variant of past rows; dates the
    chosen inputs lack later give NaN. (The first contract, "a row on every
    output date", let a future gap switch every past row; the engine changed
    it in 90d2658 and this oracle follows.)
    """
    first = out_dates.min()
    for variant in VIX_VARIANTS[:2]:
        needed = vix_inputs(variant, market)
        if all(
            t in frames
            and frames[t]["close"].notna().any()
            and frames[t].index[frames[t]["close"].notna()].min() <= first
            for t in needed
        ):
            return variant
    return "market_vol_ratio"


# ---------------------------------------------------------------------------
# the whole panel
# ---------------------------------------------------------------------------
def reference_features(
    bars,
    features: Sequence[str] | None = None,
    *,
    tickers: Sequence[str] | None = None,
    market: str = "SPY",
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
) -> tuple[pd.DataFrame, str | None]:
    """Reference feature frame and the vix variant used (None if not requested).

    ``features`` defaults to :data:`REFERENCE_FEATURES` (``garch_vol_ratio``
    only when asked for by name).
    """
    df = to_pandas_bars(bars)
    features = list(REFERENCE_FEATURES if features is None else features)
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown:
        raise ValueError(f"no reference for features {unknown}; known: {FEATURE_NAMES}")
    features = [f for f in FEATURE_NAMES if f in features]

    frames = {
        t: g.drop(columns="ticker").set_index("date") for t, g in df.groupby("ticker", sort=True)
    }
    if tickers is None:
        tickers = [t for t in frames if t not in VOLATILITY_INDICES]
    tickers = sorted(set(tickers))
    smap = default_sector_map(tickers, market)
    smap.update(sector_map or {})

    variant = None
    vix = None
    if "vix_term_structure" in features:
        out_dates = pd.DatetimeIndex(sorted(set().union(*(frames[t].index for t in tickers))))
        variant = (
            choose_vix_variant(frames, out_dates, market) if vix_variant == "auto" else vix_variant
        )
        vix = vix_series(frames, variant, market)

    pieces = []
    for t in tickers:
        g = frames[t]
        out = pd.DataFrame({"ticker": t, "date": g.index})
        for f in features:
            if f in PER_TICKER:
                s = PER_TICKER[f](g)
            elif f == "sector_relative_strength":
                s = sector_relative_strength(g, frames[smap[t]])
            elif f == "market_beta_instability":
                s = market_beta_instability(g, frames[market])
            else:  # vix_term_structure
                s = vix.reindex(g.index)
            out[f] = s.to_numpy(dtype=np.float64)
        pieces.append(out)
    result = pd.concat(pieces, ignore_index=True)
    return result, variant


# ---------------------------------------------------------------------------
# exact (rational) oracle for the large-offset stability test
# ---------------------------------------------------------------------------
def trend_exhaustion_exact(close: np.ndarray, window: int = 20) -> np.ndarray:
    """trend_exhaustion with the mean and variance in exact rational arithmetic.

    Each float close is converted exactly to a Fraction, so the only rounding is
    the final float conversion and square root: the ground truth for a series far
    from zero (1e8 + noise), where one-pass sum-of-squares formulas collapse.
    """
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.shape, np.nan)
    fr = [None if not np.isfinite(x) else Fraction(float(x)) for x in c]
    for t in range(window - 1, len(c)):
        w = fr[t - window + 1 : t + 1]
        if any(x is None for x in w):
            continue
        m = sum(w) / window
        ss = sum((x - m) ** 2 for x in w) / (window - 1)
        if ss == 0:
            out[t] = 0.0
            continue
        out[t] = float(fr[t] - m) / (2.0 * np.sqrt(float(ss)))
    return out
