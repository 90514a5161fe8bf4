"""Property tests for the feature engine (hypothesis).

* causality: changing (or dropping) every bar after a cut, for any ticker and the
  benchmarks, never changes a feature value on or before the cut;
* row-order / ticker-order invariance;
* warm-up lengths derived from the SPEC definitions;
* shapes and dtypes: ticker String, date Date, features Float64, one row per
  input row of the output tickers, only nulls (never NaN or inf).

Panels are small (2-5 tickers x 60-340 days) so the file runs in seconds once
the kernels are compiled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tests.oracles import features as ref
from tests.oracles.bars import BAR_COLUMNS, bars_to_polars, random_walk_bars

ALL = list(ref.FEATURE_NAMES)
NO_GARCH = list(ref.REFERENCE_FEATURES)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compute(bars: pl.DataFrame, features=None, **kw) -> pl.DataFrame:
    from engine.features.build import compute_features

    return compute_features(bars, features, **kw)


# ---------------------------------------------------------------------------
# random panels
# ---------------------------------------------------------------------------
BENCHMARKS = ("SPY", "XLK")
STOCKS = ("AAA", "BBB", "QQQ")


def _ohlcv(ticker: str, dates, rng: np.random.Generator) -> pd.DataFrame:
    return random_walk_bars(
        ticker, dates, rng, start=float(rng.uniform(5, 500)), vol=float(rng.uniform(0.005, 0.04))
    )


def _punch_holes(df: pd.DataFrame, rng: np.random.Generator, p_gap: float, p_null: float):
    """Drop whole rows (missing dates) and null out cells (close, volume, or the bar)."""
    if p_gap > 0 and len(df) > 2:
        keep = rng.random(len(df)) >= p_gap
        keep[0] = True
        df = df[keep]
    if p_null > 0:
        df = df.copy()
        u = rng.random(len(df))
        df.loc[df.index[u < p_null / 3], "close"] = np.nan
        df.loc[df.index[(u >= p_null / 3) & (u < 2 * p_null / 3)], "volume"] = np.nan
        df.loc[df.index[(u >= 2 * p_null / 3) & (u < p_null)], list(BAR_COLUMNS)] = np.nan
    return df


def random_panel(
    seed: int,
    n_days: int,
    n_stocks: int,
    *,
    p_gap: float = 0.0,
    p_null: float = 0.0,
    late: bool = False,
    vix: bool = False,
) -> pd.DataFrame:
    """SPY + XLK + n_stocks stocks (QQQ is the third: an ETF), optionally VIX/VIX3M."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2012-01-02", periods=n_days)
    parts = []
    for t in (*BENCHMARKS, *STOCKS[:n_stocks]):
        df = _ohlcv(t, dates, rng)
        if late and t not in BENCHMARKS and rng.random() < 0.5:
            df = df.iloc[int(rng.integers(1, max(2, n_days // 3))) :]
        parts.append(_punch_holes(df, rng, p_gap, p_null))
    if vix:  # gap-free volatility indices on every date, so 'auto' is stable under truncation
        level = 15 * np.exp(np.cumsum(rng.normal(0, 0.05, n_days)))
        for t, lv in (("VIX", level), ("VIX3M", level * rng.uniform(0.9, 1.2, n_days))):
            parts.append(pd.DataFrame({"ticker": t, "date": dates, "open": lv, "high": lv,
                                       "low": lv, "close": lv, "volume": 0.0}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def replace_after(df: pd.DataFrame, cut: pd.Timestamp, seed: int, p_null: float) -> pd.DataFrame:
    """Same rows; every bar dated after ``cut`` (every ticker, VIX included) gets new
    random values, with fresh null holes."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    for t, g in df.groupby("ticker"):
        later = g.index[g["date"] > cut]
        if len(later) == 0:
            continue
        new = _ohlcv(t, g.loc[later, "date"], rng)
        new.index = later
        new = _punch_holes(new, rng, 0.0, p_null)
        out.loc[later, list(BAR_COLUMNS)] = new[list(BAR_COLUMNS)]
    return out


panel_args = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n_days": st.integers(60, 320),
        "n_stocks": st.integers(0, 3),
        "p_gap": st.sampled_from([0.0, 0.02, 0.08]),
        "p_null": st.sampled_from([0.0, 0.01, 0.05]),
        "late": st.booleans(),
        "vix": st.booleans(),
    }
)


def _before(frame: pl.DataFrame, cut: pd.Timestamp) -> pl.DataFrame:
    return frame.filter(pl.col("date") <= cut.date())


# ---------------------------------------------------------------------------
# causality
# ---------------------------------------------------------------------------
@SETTINGS
@given(
    args=panel_args,
    cut_frac=st.floats(0.0, 1.0),
    seed2=st.integers(0, 2**32 - 1),
    variant=st.sampled_from(["auto", *ref.VIX_VARIANTS]),
)
def test_causality_replacing_future_bars_never_changes_the_past(args, cut_frac, seed2, variant):
    if variant in ("vix_vix3m", "vix_mean60"):
        args = {**args, "vix": True}
    df = random_panel(**args)
    dates = np.sort(df["date"].unique())
    cut = pd.Timestamp(dates[min(int(cut_frac * len(dates)), len(dates) - 1)])
    df2 = replace_after(df, cut, seed2, args["p_null"])  # VIX gets future nulls too
    a = compute(bars_to_polars(df), NO_GARCH, vix_variant=variant)
    b = compute(bars_to_polars(df2), NO_GARCH, vix_variant=variant)
    assert a.height == b.height
    assert_frame_equal(_before(a, cut), _before(b, cut), check_exact=True)


@SETTINGS
@given(args=panel_args, cut_frac=st.floats(0.0, 1.0))
def test_causality_truncated_history_is_a_prefix(args, cut_frac):
    """f(x[:t]) == f(x)[:t] (numbagg's bigger-arrays-have-the-same-beginning)."""
    df = random_panel(**args)
    dates = np.sort(df["date"].unique())
    cut = pd.Timestamp(dates[min(int(cut_frac * len(dates)), len(dates) - 1)])
    full = compute(bars_to_polars(df), NO_GARCH)
    short = compute(bars_to_polars(df[df["date"] <= cut]), NO_GARCH)
    assert_frame_equal(short, _before(full, cut), check_exact=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_days=st.integers(300, 345),
    cut=st.integers(230, 344),
    seed2=st.integers(0, 2**32 - 1),
    p_null=st.sampled_from([0.0, 0.01]),
)
def test_causality_including_garch_refits(seed, n_days, cut, seed2, p_null):
    """>= 300 days: the GARCH fit at 252 returns and its 21-day refits all sit in range."""
    df = random_panel(seed, n_days, 1, p_null=p_null)
    dates = np.sort(df["date"].unique())
    cut_d = pd.Timestamp(dates[min(cut, len(dates) - 1)])
    df2 = replace_after(df, cut_d, seed2, p_null)
    a = compute(bars_to_polars(df), ALL)
    b = compute(bars_to_polars(df2), ALL)
    assert_frame_equal(_before(a, cut_d), _before(b, cut_d), check_exact=True)
    short = compute(bars_to_polars(df[df["date"] <= cut_d]), ALL)
    assert_frame_equal(short, _before(a, cut_d), check_exact=True)


# ---------------------------------------------------------------------------
# invariance
# ---------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=panel_args, shuffle_seed=st.integers(0, 2**32 - 1))
def test_shuffled_rows_and_ticker_order_give_identical_output(args, shuffle_seed):
    df = random_panel(**args)
    bars = bars_to_polars(df)
    base = compute(bars, NO_GARCH)
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=shuffle_seed % 2**31)
    assert_frame_equal(compute(shuffled, NO_GARCH), base, check_exact=True)
    tickers = sorted(set(df["ticker"]) - ref.VOLATILITY_INDICES)
    perm = list(np.random.default_rng(shuffle_seed).permutation(tickers))
    assert_frame_equal(compute(shuffled, NO_GARCH, tickers=perm), base, check_exact=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=panel_args)
def test_a_ticker_depends_only_on_itself_and_its_benchmarks(args):
    """Dropping an unrelated stock (BBB) leaves every other ticker's rows unchanged."""
    args = {**args, "n_stocks": 2}
    df = random_panel(**args)
    with_bbb = compute(bars_to_polars(df), NO_GARCH).filter(pl.col("ticker") != "BBB")
    without = compute(bars_to_polars(df[df["ticker"] != "BBB"]), NO_GARCH)
    assert_frame_equal(without, with_bbb, check_exact=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=panel_args, pick=st.integers(0, 4))
def test_tickers_argument_selects_rows_without_changing_values(args, pick):
    df = random_panel(**args)
    bars = bars_to_polars(df)
    full = compute(bars, NO_GARCH)
    names = sorted(set(df["ticker"]) - ref.VOLATILITY_INDICES)
    one = names[pick % len(names)]
    assert_frame_equal(
        compute(bars, NO_GARCH, tickers=[one]), full.filter(pl.col("ticker") == one),
        check_exact=True,
    )  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=panel_args)
def test_nan_inputs_are_missing_like_nulls(args):
    """The same holes written as NaN instead of null give the identical frame."""
    args = {**args, "p_null": 0.05}
    bars = bars_to_polars(random_panel(**args))
    as_nan = bars.with_columns(pl.col(c).fill_null(float("nan")) for c in BAR_COLUMNS)
    assert as_nan.select(pl.col("close").is_nan().sum()).item() == bars["close"].null_count()
    assert_frame_equal(compute(as_nan, NO_GARCH), compute(bars, NO_GARCH), check_exact=True)


# ---------------------------------------------------------------------------
# warm-up lengths (0-based row of the first value = number of leading nulls)
# ---------------------------------------------------------------------------
WARMUP = {
    "price_acceleration": 20,  # sd_20(r) needs r_1..r_20 (r_0 missing); R_5(t-5) needs row 10
    "volume_price_divergence": 20,  # corr_20 of r and dlv, both first defined at row 1
    "volatility_regime_change": 60,  # sd_60(r) needs r_1..r_60
    "return_skewness": 20,  # 20 returns r_1..r_20
    "momentum_persistence": 7,  # R_7 needs C_0; the 7 returns r_1..r_7
    "volatility_clustering": 61,  # 60 pairs (q_t, q_{t-1}) with q_{t-1} from q_1: t = 2..61
    "trend_exhaustion": 19,  # 20 closes C_0..C_19
    "garch_vol_ratio": 252,  # the first GARCH fit needs 252 returns r_1..r_252
    "intraday_range_expansion": 19,  # g needs no lag: mean_20(g) over rows 0..19
    "overnight_gap": 20,  # ln(O_t/C_{t-1}) from row 1, sd_20(r) from row 20
    "end_of_day_momentum": 0,  # same-bar quantity
    "sector_relative_strength": 20,  # R_20 needs C_{t-20} (benchmark has the same history)
    "market_beta_instability": 79,  # beta_20 from row 20, then 60 betas: rows 20..79
    "vix_term_structure": 60,  # market_vol_ratio: sd_60(r_m) on the market's rows 1..60
    "multi_timeframe_return": 60,  # R_60 needs C_{t-60}; sd_60(r) needs r_1..r_60
    "normalized_volume": 19,  # mean_20(V) over rows 0..19
    "price_level": 251,  # 252 closes C_0..C_251
}


def test_warmup_table_covers_every_feature():
    assert list(WARMUP) == ALL


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_days=st.integers(256, 300), listing=st.integers(1, 90))
def test_warmup_leading_nulls_match_the_spec(seed, n_days, listing):
    """Gap-free tickers and benchmarks; LATE lists ``listing`` days after the others.

    Per-ticker windows count LATE's own rows, so its warm-up is the same as
    everyone's, except vix_term_structure: the market's own history is older, so
    LATE has it from max(0, 60 - listing).
    """
    df = random_panel(seed, n_days, 3)
    late = _ohlcv("LATE", pd.bdate_range("2012-01-02", periods=n_days)[listing:],
                  np.random.default_rng(seed + 1))  # fmt: skip
    out = compute(bars_to_polars(pd.concat([df, late], ignore_index=True)), ALL)
    for t in ("SPY", "XLK", "AAA", "BBB", "QQQ", "LATE"):
        g = out.filter(pl.col("ticker") == t)
        for f in ALL:
            want = WARMUP[f]
            if t == "LATE" and f == "vix_term_structure":
                want = max(0, 60 - listing)
            if t == "LATE" and f == "garch_vol_ratio" and n_days - listing <= 252:
                want = n_days - listing  # not enough rows: all null
            nulls = g[f].is_null().to_numpy()
            want = min(want, len(nulls))  # a short history is all warm-up
            lead = int(np.argmin(nulls)) if not nulls.all() else len(nulls)
            assert lead == want, f"{t}/{f}: {lead} leading nulls, SPEC implies {want}"
            assert not nulls[lead:].any(), f"{t}/{f}: null after the warm-up"
    garch = out["garch_vol_ratio"].drop_nulls()
    assert (garch > 0).all()


# ---------------------------------------------------------------------------
# shapes and dtypes
# ---------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=panel_args, subset=st.one_of(st.none(), st.sets(st.sampled_from(ALL), min_size=1)))
def test_schema_rows_and_null_only_missing_values(args, subset):
    df = random_panel(**args)
    bars = bars_to_polars(df)
    features = None if subset is None else sorted(subset)  # any order in, SPEC order out
    out = compute(bars, features)
    names = ALL if subset is None else [f for f in ALL if f in subset]
    assert list(out.schema.items()) == [
        ("ticker", pl.String),
        ("date", pl.Date),
        *((f, pl.Float64) for f in names),
    ]
    keys = bars.filter(~pl.col("ticker").is_in(list(ref.VOLATILITY_INDICES)))
    keys = keys.select("ticker", "date").sort("ticker", "date")
    assert out.height == keys.height
    assert_frame_equal(out.select("ticker", "date"), keys)
    for f in names:
        assert out[f].is_nan().sum() == 0, f"{f}: NaN in output"
        assert out[f].is_infinite().sum() == 0, f"{f}: inf in output"


@pytest.mark.parametrize("seed", [0, 1])
def test_garch_warmup_on_gap_free_ticker(seed):
    df = random_panel(seed, 300, 1)
    out = compute(bars_to_polars(df), ["garch_vol_ratio"])
    for t in ("SPY", "XLK", "AAA"):
        g = out.filter(pl.col("ticker") == t)["garch_vol_ratio"]
        assert g[:252].is_null().all() and g[252:].is_not_null().all(), t
        assert (g[252:] > 0).all(), t
