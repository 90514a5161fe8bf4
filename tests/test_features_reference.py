"""Feature engine vs the independent pandas oracle (``tests/oracles/features.py``).

Every feature except ``garch_vol_ratio`` must equal the oracle within rtol 1e-7 /
atol 1e-9 with identical null positions, on the real S&P 500 / NASDAQ series
shipped in ``arch.data`` and on the demo universe. ``garch_vol_ratio``, whose
oracle takes its forecast from ``arch``, is held to the SPEC's GARCH tolerance
(2 %), beside every other reference the registry holds (the Polars baseline).
Edge cases each have a test named after the failure they guard.

The worst abs / rel difference per feature is recorded; ``pytest -s`` prints it,
and ``python -m tests.test_features_reference`` prints the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.oracles import ORACLES
from tests.oracles import features as ref
from tests.oracles.bars import bars_to_polars, random_walk_bars

RTOL, ATOL = 1e-7, 1e-9
FEATS = list(ref.REFERENCE_FEATURES)

#: (dataset, feature) -> worst-case statistics of impl vs oracle, filled as tests run.
WORST: dict[tuple[str, str], dict[str, float]] = {}


# ---------------------------------------------------------------------------
# access to the implementation (imported lazily: the oracle self-checks in
# test_features_oracle.py run without it)
# ---------------------------------------------------------------------------
def _features_module():
    import engine.features.build as ef

    return ef


def compute(bars: pl.DataFrame, features=None, **kw) -> pl.DataFrame:
    return _features_module().compute_features(bars, features, **kw)


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------
def _fmt_rows(impl: pl.DataFrame, b: np.ndarray, feature: str, idx: Iterable[int]) -> str:
    t, d, a = impl["ticker"], impl["date"], impl[feature]
    rows = [int(i) for i in list(idx)[:12]]
    return "\n".join(f"  {t[i]} {d[i]} impl={a[i]!r} ref={b[i]!r}" for i in rows)


def compare_feature(
    impl: pl.DataFrame,
    expected: pd.DataFrame,
    feature: str,
    dataset: str,
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> dict[str, float]:
    """Assert impl == oracle for one feature (nulls and values); record the worst case."""
    assert impl.height == len(expected), (impl.height, len(expected))
    assert impl["ticker"].to_list() == list(expected["ticker"]), "row keys (ticker) differ"
    exp_dates = pd.to_datetime(expected["date"]).to_numpy().astype("datetime64[D]")
    assert np.array_equal(impl["date"].to_numpy(), exp_dates), "row keys (date) differ"
    col = impl[feature]
    assert col.dtype == pl.Float64, (feature, col.dtype)
    assert not col.is_nan().any(), f"{feature}: NaN in output (missing must be null)"
    assert not col.is_infinite().any(), f"{feature}: inf in output"
    a = col.to_numpy().astype(np.float64)  # nulls -> NaN
    a_null = col.is_null().to_numpy()
    b = expected[feature].to_numpy(dtype=np.float64)
    b_null = np.isnan(b)
    mism = np.flatnonzero(a_null != b_null)
    assert mism.size == 0, (
        f"{feature} [{dataset}]: {mism.size} rows where null-ness differs "
        f"(impl null: {int(a_null[mism].sum())}, oracle null: {int(b_null[mism].sum())}):\n"
        + _fmt_rows(impl, b, feature, mism)
    )
    both = ~a_null
    diff = np.abs(a[both] - b[both])
    mag = np.abs(b[both])
    # relative error where the rtol term dominates the tolerance (|ref| >= atol/rtol)
    rel = np.divide(diff, mag, out=np.zeros_like(diff), where=mag >= atol / rtol)
    ratio = diff / (atol + rtol * mag)
    stats = {
        "n": float(both.sum()),
        "nulls": float(a_null.sum()),
        "max_abs": float(diff.max(initial=0.0)),
        "max_rel": float(rel.max(initial=0.0)),
        "tol_used": float(ratio.max(initial=0.0)),
    }
    key = (dataset, feature)
    old = WORST.get(key)
    WORST[key] = stats if old is None else {k: max(old[k], stats[k]) for k in stats}
    bad = np.flatnonzero(both)[ratio > 1.0]
    assert bad.size == 0, (
        f"{feature} [{dataset}]: {bad.size} values outside rtol={rtol}, atol={atol}; "
        f"max abs {stats['max_abs']:.3g}, max rel {stats['max_rel']:.3g}; worst first:\n"
        + _fmt_rows(impl, b, feature, bad[np.argsort(-ratio[ratio > 1.0])])
    )
    return stats


def worst_case_table(worst: dict[tuple[str, str], dict[str, float]] | None = None) -> str:
    worst = WORST if worst is None else worst
    lines = [
        f"{'dataset':<24}{'feature':<26}{'n':>8}{'nulls':>7}{'max_abs':>11}"
        f"{'max_rel*':>11}{'tol_used':>10}"
    ]
    for (ds, f), s in sorted(worst.items(), key=lambda kv: (kv[0][0], FEATS.index(kv[0][1]))):
        lines.append(
            f"{ds:<24}{f:<26}{int(s['n']):>8}{int(s['nulls']):>7}{s['max_abs']:>11.2e}"
            f"{s['max_rel']:>11.2e}{s['tol_used']:>10.4f}"
        )
    lines.append("max_rel* over |ref| >= atol/rtol = 1e-2, where the rtol term dominates")
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def _print_worst_cases():
    yield
    if WORST:
        print("\nworst-case |impl - oracle| per feature (tol_used = max diff/(atol+rtol|ref|))")
        print(worst_case_table())


# ---------------------------------------------------------------------------
# data sets
# ---------------------------------------------------------------------------
def _arch_frame(df: pd.DataFrame, ticker: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": ticker, "date": df.index, "open": df["Open"], "high": df["High"],
         "low": df["Low"], "close": df["Close"], "volume": df["Volume"].astype(float)}
    ).reset_index(drop=True)  # fmt: skip


def real_panel_pandas(start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """SPY = real S&P 500, QQQ = real NASDAQ, XLK = NASDAQ renamed, STK from both.

    STK (a single stock, sector XLK) is the geometric mean of the two indices'
    OHLC (so OHLC stays consistent), lists 1500 days late and misses 5 dates.
    """
    import arch.data.nasdaq
    import arch.data.sp500

    sp = arch.data.sp500.load().loc[start:end]
    nq = arch.data.nasdaq.load().loc[start:end]
    spy, qqq, xlk = _arch_frame(sp, "SPY"), _arch_frame(nq, "QQQ"), _arch_frame(nq, "XLK")
    common = sp.index.intersection(nq.index)
    a, b = sp.loc[common], nq.loc[common]
    stk = pd.DataFrame(
        {"ticker": "STK", "date": common,
         **{c.lower(): np.sqrt(a[c] * b[c]) for c in ("Open", "High", "Low", "Close")},
         "volume": ((a["Volume"] + b["Volume"]) / 2000.0).round()}
    ).reset_index(drop=True)  # fmt: skip
    late = min(1500, len(stk) // 3)
    stk = stk.iloc[late:]
    drop = np.random.default_rng(11).choice(np.arange(300, len(stk) - 10), 5, replace=False)
    stk = stk.drop(stk.index[drop])
    return pd.concat([spy, qqq, xlk, stk], ignore_index=True)


def _expected(bars: pl.DataFrame, features=None, **kw) -> pd.DataFrame:
    return ref.reference_features(bars, features, **kw)[0]


@pytest.fixture(scope="module")
def real_case():
    bars = bars_to_polars(real_panel_pandas())
    return compute(bars, FEATS), _expected(bars, FEATS)


@pytest.fixture(scope="module")
def demo_bars() -> pl.DataFrame:
    from engine.data.demo import generate_demo_universe

    return generate_demo_universe(7).bars


@pytest.fixture(scope="module")
def demo_case(demo_bars):
    return compute(demo_bars, FEATS), _expected(demo_bars, FEATS)


# ---------------------------------------------------------------------------
# (a) real S&P 500 / NASDAQ panel and (b) the demo universe
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("feature", FEATS)
def test_matches_pandas_reference_real_sp500(real_case, feature):
    impl, expected = real_case
    s = compare_feature(impl, expected, feature, "real_sp500")
    print(f"\n[real_sp500] {feature}: max_abs={s['max_abs']:.3e} max_rel={s['max_rel']:.3e}")


@pytest.mark.parametrize("feature", FEATS)
def test_matches_pandas_reference_demo_universe(demo_case, feature):
    impl, expected = demo_case
    s = compare_feature(impl, expected, feature, "demo_seed7")
    print(f"\n[demo_seed7] {feature}: max_abs={s['max_abs']:.3e} max_rel={s['max_rel']:.3e}")


# ---------------------------------------------------------------------------
# every reference the registry holds, all 17 features (GARCH against arch)
# ---------------------------------------------------------------------------
#: (rtol, atol) of each reference role; the GARCH forecast gets the SPEC's 2 % instead.
ROLE_TOLERANCE = {"pandas": (RTOL, ATOL), "polars": (1e-6, 1e-8)}
GARCH_RTOL = 0.02


@pytest.fixture(scope="module")
def short_real_bars() -> pl.DataFrame:
    """Two years of the real panel: in 1999 the first GARCH fits sit near alpha = 0."""
    return bars_to_polars(real_panel_pandas("1999-01-01", "2000-12-31"))


@pytest.mark.parametrize("feature", ref.FEATURE_NAMES)
def test_every_registered_reference_agrees_with_the_engine(short_real_bars, feature):
    roles = ORACLES[feature]
    got = roles["engine"](short_real_bars)
    assert np.isfinite(got).sum() > 800, "too few values to compare"
    references = [role for role in roles if role != "engine"]
    assert "pandas" in references
    for role in references:
        want = roles[role](short_real_bars)
        label = f"{feature}: engine vs {role}"
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{label} nulls")
        rtol, atol = (GARCH_RTOL, 0.0) if feature == "garch_vol_ratio" else ROLE_TOLERANCE[role]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=label)


def test_demo_universe_output_tickers_and_vix_variant(demo_bars):
    res = _features_module().build_features(demo_bars, ["vix_term_structure"])
    tickers = set(demo_bars["ticker"].unique()) - {"VIX", "VIX3M"}
    assert set(res.frame["ticker"].unique()) == tickers
    assert {"SPY", "QQQ", "XLK", "AAPL", "TSLA"} <= tickers
    # VIX starts in 2014, after the first output date (1999): auto takes the market ratio
    assert res.manifest.vix_variant == "market_vol_ratio"


# ---------------------------------------------------------------------------
# vix_term_structure variants and the manifest
# ---------------------------------------------------------------------------
def vix_panel_pandas(
    *,
    vix3m: bool = True,
    vix_start: str | None = None,
    vix_end: str | None = None,
    vix3m_start: str | None = None,
    drop_vix3m_on: str | None = None,
):
    """SPY/QQQ/XLK/STK real 2014-01-03..2018-12-31 + real VIX (arch.data.vix) + VIX3M.

    VIX3M is built here: 1.04 x an exponential mean (span 63) of VIX on VIX's rows.
    """
    import arch.data.vix

    bars = real_panel_pandas("2014-01-03", "2018-12-31")
    vix = arch.data.vix.load()["vix"].dropna()
    v3 = (1.04 * vix.ewm(span=63).mean()).loc[vix3m_start:]
    vix = vix.loc[vix_start:vix_end]
    if drop_vix3m_on is not None:
        v3 = v3.drop(pd.Timestamp(drop_vix3m_on))
    frames = [bars]
    for t, s in (("VIX", vix), ("VIX3M", v3)) if vix3m else (("VIX", vix),):
        frames.append(
            pd.DataFrame({"ticker": t, "date": s.index, "open": s.values, "high": s.values,
                          "low": s.values, "close": s.values, "volume": 0.0})
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("variant", ref.VIX_VARIANTS)
def test_vix_term_structure_variant_matches_reference(variant):
    bars = bars_to_polars(vix_panel_pandas())
    res = _features_module().build_features(bars, ["vix_term_structure"], vix_variant=variant)
    assert res.manifest.vix_variant == variant
    assert list(res.manifest.feature_names) == ["vix_term_structure"]
    expected, used = ref.reference_features(bars, ["vix_term_structure"], vix_variant=variant)
    assert used == variant
    compare_feature(res.frame, expected, "vix_term_structure", f"vix:{variant}")
    assert "VIX" not in res.frame["ticker"].to_list()


# "auto" = the first variant whose inputs exist and start on or before the first
# output date (2014-01-03 here); dates they lack afterwards are null.
@pytest.mark.parametrize(
    ("kwargs", "want", "null_dates"),
    [
        pytest.param({}, "vix_vix3m", [], id="vix-and-vix3m-from-the-start"),
        pytest.param({"vix3m": False}, "vix_mean60", [], id="no-vix3m"),
        pytest.param({"vix3m_start": "2014-03-03"}, "vix_mean60", [], id="vix3m-starts-late"),
        pytest.param({"vix_start": "2014-03-03"}, "market_vol_ratio", [], id="vix-starts-late"),
        pytest.param(
            {"drop_vix3m_on": "2016-06-15"}, "vix_vix3m", ["2016-06-15"],
            id="vix3m-misses-a-later-date-null-there",
        ),
        pytest.param(
            {"vix_end": "2017-12-29"}, "vix_vix3m", ["2018-01-02", "2018-12-31"],
            id="vix-ends-early-null-after",
        ),
    ],
)  # fmt: skip
def test_vix_auto_variant_choice_recorded_in_manifest(kwargs, want, null_dates):
    bars = bars_to_polars(vix_panel_pandas(**kwargs))
    res = _features_module().build_features(bars, ["vix_term_structure"])
    expected, used = ref.reference_features(bars, ["vix_term_structure"])
    assert used == want  # the oracle's own reading of "auto"
    assert res.manifest.vix_variant == want
    compare_feature(res.frame, expected, "vix_term_structure", f"vix:auto->{want}")
    spy = res.frame.filter(pl.col("ticker") == "SPY")
    for d in null_dates:
        row = spy.filter(pl.col("date") == pd.Timestamp(d).date())
        assert row.height == 1 and row["vix_term_structure"].is_null().all(), d


# ---------------------------------------------------------------------------
# edge cases, named after the failure they guard against
# ---------------------------------------------------------------------------
def edge_panel(n: int = 400, seed: int = 0, extra: Iterable[str] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-04", periods=n)
    parts = [
        random_walk_bars(t, dates, rng, start=s)
        for t, s in (("AAA", 40.0), ("SPY", 100.0), ("XLK", 60.0), *((e, 80.0) for e in extra))
    ]
    return pd.concat(parts, ignore_index=True)


def _rows(df: pd.DataFrame, ticker: str) -> pd.Index:
    return df.index[df["ticker"] == ticker]


def _ticker_col(frame: pl.DataFrame, ticker: str, feature: str) -> np.ndarray:
    return frame.filter(pl.col("ticker") == ticker)[feature].to_numpy().astype(float)


def _check_all(bars: pl.DataFrame, dataset: str, features=None, **kw) -> pl.DataFrame:
    features = FEATS if features is None else features
    impl = compute(bars, features, **kw)
    expected = _expected(bars, features, **kw)
    for f in features:
        compare_feature(impl, expected, f, dataset)
    return impl


def test_volume_price_divergence_constant_volume_window_gives_zero():
    df = edge_panel()
    idx = _rows(df, "AAA")
    df.loc[idx[100:140], "volume"] = 123456.0  # dlv = 0 on rows 101..139
    out = _check_all(bars_to_polars(df), "edge")
    vpd = _ticker_col(out, "AAA", "volume_price_divergence")
    assert (vpd[120:140] == 0.0).all(), vpd[118:142]
    assert np.isfinite(vpd[20:]).all()


def test_flat_close_window_trend_exhaustion_zero_price_level_half():
    df = edge_panel(n=600)
    idx = _rows(df, "AAA")
    flat = idx[:300]
    df.loc[flat, ["open", "close"]] = 50.0  # O = C = 50 from the first day: r = 0
    df.loc[flat, "high"] = 50.0 * (1 + np.linspace(0.01, 0.02, 300))
    df.loc[flat, "low"] = 50.0 * (1 - np.linspace(0.01, 0.02, 300))
    mid = idx[450:480]  # a flat stretch after moving prices: a drifting rolling std misses it
    df.loc[mid, ["open", "close"]] = df.loc[idx[449], "close"]
    df.loc[mid, "high"] = df.loc[idx[449], "close"] * 1.01
    df.loc[mid, "low"] = df.loc[idx[449], "close"] * 0.99
    out = _check_all(bars_to_polars(df), "edge")
    te = _ticker_col(out, "AAA", "trend_exhaustion")
    lvl = _ticker_col(out, "AAA", "price_level")
    assert (te[19:300] == 0.0).all() and (te[469:480] == 0.0).all(), te[465:482]
    assert (lvl[251:300] == 0.5).all()
    # zero-variance returns: named fallbacks where the SPEC names one, null elsewhere
    assert (_ticker_col(out, "AAA", "volume_price_divergence")[20:300] == 0.0).all()
    assert (_ticker_col(out, "AAA", "momentum_persistence")[7:300] == 0.0).all()
    for f in ("volatility_regime_change", "return_skewness", "price_acceleration",
              "overnight_gap", "multi_timeframe_return", "volatility_clustering"):  # fmt: skip
        assert np.isnan(_ticker_col(out, "AAA", f)[:300]).all(), f


def test_end_of_day_momentum_high_equals_low_gives_zero():
    df = edge_panel()
    idx = _rows(df, "AAA")
    for i in (50, 51, 200):
        df.loc[idx[i], ["open", "high", "low", "close"]] = df.loc[idx[i - 1], "close"]
    df.loc[idx[300], ["open", "high", "low"]] = 41.0
    df.loc[idx[300], "close"] = np.nan  # H = L but the bar has no close: no fallback
    out = _check_all(bars_to_polars(df), "edge")
    eod = _ticker_col(out, "AAA", "end_of_day_momentum")
    assert eod[50] == 0.0 and eod[51] == 0.0 and eod[200] == 0.0
    assert np.isnan(eod[300])
    assert np.isfinite(np.delete(eod, 300)).all()


# Rows (offsets from the missing row k) that must be null, derived from the SPEC:
CLOSE_MISSING = {
    # R_5 null at k, k+5 (its lag at k+5, k+10); sd_20(r) windows holding r_k or r_{k+1}
    "price_acceleration": range(0, 21),
    "volume_price_divergence": range(0, 21),  # corr_20 windows holding r_k or r_{k+1}
    "volatility_regime_change": range(0, 61),  # sd_60 windows holding r_k or r_{k+1}
    "return_skewness": range(0, 21),  # 20-window of r holding r_k or r_{k+1}
    "momentum_persistence": range(0, 8),  # 7-window of r holding r_k or r_{k+1}; R_7 at k, k+7
    "volatility_clustering": range(0, 62),  # q_k, q_{k+1} and lags q_{k+1}, q_{k+2} in 60 pairs
    "trend_exhaustion": range(0, 20),  # 20-window of C holding C_k
    "intraday_range_expansion": range(0, 20),  # g_k = (H-L)/C_k missing, mean_20(g)
    "overnight_gap": range(0, 21),  # ln(O_{k+1}/C_k) and sd_20(r)
    "end_of_day_momentum": range(0, 1),  # the bar itself only
    "sector_relative_strength": (0, 20),  # R_20 uses only C_t and C_{t-20}
    "market_beta_instability": range(0, 80),  # beta_20 null k..k+20, then sd_60 of it
    "vix_term_structure": (),  # market / VIX input only
    "multi_timeframe_return": range(0, 61),  # R_5/R_20/R_60 at k, k+n; sd_60(r)
    "normalized_volume": (),  # volume only
    "price_level": range(0, 252),  # 252-window of C holding C_k
}
VOLUME_MISSING = {f: () for f in FEATS} | {
    "volume_price_divergence": range(0, 21),  # dlv_k, dlv_{k+1} missing
    "normalized_volume": range(0, 20),  # V_k in mean_20(V)
}
BAR_MISSING = {f: set(CLOSE_MISSING[f]) | set(VOLUME_MISSING[f]) for f in FEATS}


@pytest.mark.parametrize(
    ("columns", "offsets"),
    [
        pytest.param(["close"], CLOSE_MISSING, id="null-close"),
        pytest.param(["volume"], VOLUME_MISSING, id="null-volume"),
        pytest.param(["open", "high", "low", "close", "volume"], BAR_MISSING, id="null-bar"),
    ],
)
def test_missing_bar_nulls_exactly_the_windows_containing_it(columns, offsets):
    k = 400
    df = edge_panel(n=700, seed=5)
    idx = _rows(df, "AAA")
    df.loc[idx[k], columns] = np.nan
    out = _check_all(bars_to_polars(df), "missing-bar")
    expected = _expected(bars_to_polars(df), FEATS)
    for f in FEATS:
        want = sorted(k + o for o in offsets[f])
        got = np.flatnonzero(np.isnan(_ticker_col(out, "AAA", f)))
        got = [int(i) for i in got if i >= 300]  # past every warm-up
        assert got == want, f"{f}: impl nulls {got[:5]}..{got[-5:]}, SPEC {want[:3]}..{want[-3:]}"
        mine = np.flatnonzero(np.isnan(expected.loc[expected["ticker"] == "AAA", f].to_numpy()))
        assert [int(i) for i in mine if i >= 300] == want, f"oracle disagrees with SPEC for {f}"


def test_trend_exhaustion_large_offset_rolling_std_stability():
    """Closes of 1e8 + U(0, 1) (window sd ~ 0.3), a null every 97th day.

    The exact rational oracle is the truth. Even a per-window two-pass float
    computation is ~6e-8 off here (the mean of 20 closes near 1e8 carries ~1e-8
    of rounding against an sd of 0.3), and a well-behaved Welford add/remove
    drifts to ~1e-6 over a few thousand days; the one-pass sum-of-squares
    formula is off by O(1). Hence an absolute tolerance of 1e-5 on a quantity of
    order 1 (asserted below to reject the sum-of-squares formula).
    """
    n, tol = 3000, 1e-5
    rng = np.random.default_rng(8)
    close = 1e8 + rng.random(n)
    close[96::97] = np.nan
    dates = pd.bdate_range("2000-01-03", periods=n)
    base = edge_panel(n=n, seed=9)
    aaa = pd.DataFrame({"ticker": "AAA", "date": dates, "open": close, "high": close + 0.5,
                        "low": close - 0.5, "close": close, "volume": 1e6})  # fmt: skip
    df = pd.concat([aaa, base[base["ticker"] != "AAA"]], ignore_index=True)
    out = compute(bars_to_polars(df), ["trend_exhaustion"])
    got = _ticker_col(out, "AAA", "trend_exhaustion")
    want = ref.trend_exhaustion_exact(close)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    err = np.nanmax(np.abs(got - want))
    WORST[("large_offset", "trend_exhaustion")] = {
        "n": float(np.isfinite(want).sum()), "nulls": float(np.isnan(want).sum()),
        "max_abs": float(err), "max_rel": float(np.nanmax(np.abs(got - want) / np.abs(want))),
        "tol_used": float(err / tol),
    }  # fmt: skip
    print(f"\n[large_offset] trend_exhaustion max abs error vs exact: {err:.3e}")
    assert err < tol, err
    # the test has teeth: the one-pass sum-of-squares formula fails it
    s = pd.Series(close)
    s1, s2 = s.rolling(20).sum(), (s * s).rolling(20).sum()
    naive = (s - s1 / 20) / (2 * np.sqrt(np.abs(s2 - s1 * s1 / 20) / 19))
    assert np.nanmax(np.abs(naive.to_numpy() - want)) > tol


def test_benchmark_missing_date_nulls_cross_asset_features_only_there():
    df = edge_panel(n=600, seed=6, extra=("QQQ",))
    spy, xlk = _rows(df, "SPY"), _rows(df, "XLK")
    dates = pd.bdate_range("2010-01-04", periods=600)
    d_spy, d_xlk = 300, 330
    df = df.drop([spy[d_spy], xlk[d_xlk]])
    bars = bars_to_polars(df)
    out = _check_all(bars, "bench-gap")

    def null_rows(ticker, f):
        col = _ticker_col(out, ticker, f)
        return [int(i) for i in np.flatnonzero(np.isnan(col)) if i >= 260]  # past warm-up

    # AAA (a stock: sector XLK, market SPY) keeps every date
    assert null_rows("AAA", "sector_relative_strength") == [d_xlk]
    assert null_rows("AAA", "market_beta_instability") == list(range(d_spy, d_spy + 79))
    assert null_rows("AAA", "vix_term_structure") == [d_spy]  # market_vol_ratio
    # QQQ (an ETF: sector SPY) loses only SPY's date
    assert null_rows("QQQ", "sector_relative_strength") == [d_spy]
    # XLK has no row on d_xlk; its own sector benchmark is SPY
    xd = out.filter(pl.col("ticker") == "XLK")["date"].to_list()
    assert dates[d_xlk].date() not in xd
    assert [xd[i] for i in null_rows("XLK", "sector_relative_strength")] == [dates[d_spy].date()]
    # SPY's own features are computed on SPY's own rows (its r spans the gap)
    for f in FEATS:
        assert null_rows("SPY", f) == [], f
    for f in set(FEATS) - ref.CROSS_ASSET_FEATURES:
        assert null_rows("AAA", f) == [], f


def test_sector_map_override_matches_reference():
    df = edge_panel(n=200, seed=12, extra=("QQQ",))
    bars = bars_to_polars(df)
    smap = {"AAA": "QQQ"}
    _check_all(bars, "sector-map", ["sector_relative_strength"], sector_map=smap)
    out = compute(bars, ["sector_relative_strength"], sector_map=smap)
    spy = _ticker_col(out, "SPY", "sector_relative_strength")
    assert (spy[20:] == 0.0).all() and np.isnan(spy[:20]).all()


# ---------------------------------------------------------------------------
# errors and column selection
# ---------------------------------------------------------------------------
def test_unknown_feature_name_raises_naming_it():
    bars = bars_to_polars(edge_panel(n=80))
    with pytest.raises(ValueError, match="not_a_feature"):
        compute(bars, ["trend_exhaustion", "not_a_feature"])


@pytest.mark.parametrize(
    ("drop", "feature", "missing"),
    [
        pytest.param("SPY", "market_beta_instability", "SPY", id="beta-without-SPY"),
        pytest.param("XLK", "sector_relative_strength", "XLK", id="rs-without-XLK"),
        pytest.param("SPY", "sector_relative_strength", "SPY", id="etf-rs-without-SPY"),
        pytest.param("SPY", "vix_term_structure", "SPY", id="vix-without-VIX-or-SPY"),
    ],
)
def test_cross_asset_feature_without_benchmark_raises_naming_it(drop, feature, missing):
    df = edge_panel(n=80, extra=("QQQ",))
    bars = bars_to_polars(df[df["ticker"] != drop])
    with pytest.raises(ValueError, match=missing):
        compute(bars, [feature])


def test_explicit_vix_variant_without_its_input_raises_naming_it():
    bars = bars_to_polars(vix_panel_pandas(vix3m=False))
    with pytest.raises(ValueError, match="VIX3M"):
        compute(bars, ["vix_term_structure"], vix_variant="vix_vix3m")


def test_unknown_vix_variant_raises_naming_it():
    bars = bars_to_polars(edge_panel(n=80))
    with pytest.raises(ValueError, match="vix_bogus"):
        compute(bars, ["vix_term_structure"], vix_variant="vix_bogus")


def test_feature_subset_returns_only_those_columns_in_spec_order():
    bars = bars_to_polars(edge_panel(n=80))
    out = compute(bars, ["price_level", "end_of_day_momentum", "price_acceleration"])
    assert out.columns == ["ticker", "date", "price_acceleration", "end_of_day_momentum",
                           "price_level"]  # fmt: skip
    res = _features_module().build_features(bars, ["price_level", "price_acceleration"])
    assert list(res.manifest.feature_names) == ["price_acceleration", "price_level"]


def test_feature_names_are_the_spec_table_in_order():
    assert tuple(_features_module().FEATURE_NAMES) == ref.FEATURE_NAMES


def test_per_ticker_features_need_no_benchmark():
    df = edge_panel(n=80)
    bars = bars_to_polars(df[df["ticker"] == "AAA"])
    per_ticker = [f for f in FEATS if f not in ref.CROSS_ASSET_FEATURES]
    out = compute(bars, per_ticker)
    assert out["ticker"].unique().to_list() == ["AAA"]


def test_default_output_is_all_features_and_excludes_volatility_indices():
    df = edge_panel(n=120)
    vix = df[df["ticker"] == "SPY"].assign(ticker="VIX")
    v3 = df[df["ticker"] == "SPY"].assign(ticker="VIX3M")
    bars = bars_to_polars(pd.concat([df, vix, v3], ignore_index=True))
    out = compute(bars)
    assert out.columns == ["ticker", "date", *ref.FEATURE_NAMES]
    assert sorted(out["ticker"].unique().to_list()) == ["AAA", "SPY", "XLK"]
    assert out.height == 3 * 120


# ---------------------------------------------------------------------------
# ``python -m tests.test_features_reference``: print the worst-case table
# ---------------------------------------------------------------------------
def main() -> None:  # pragma: no cover - a report, not a test
    worst: dict[tuple[str, str], dict[str, float]] = {}
    cases = {"real_sp500": bars_to_polars(real_panel_pandas())}
    try:
        from engine.data.demo import generate_demo_universe

        cases["demo_seed7"] = generate_demo_universe(7).bars
    except ImportError as exc:
        print(f"(demo universe unavailable: {exc})")
    failures = []
    for name, bars in cases.items():
        impl, expected = compute(bars, FEATS), _expected(bars, FEATS)
        for f in FEATS:
            try:
                compare_feature(impl, expected, f, name)
            except AssertionError as exc:
                failures.append(f"{name}/{f}: {str(exc).splitlines()[0]}")
    worst.update(WORST)
    print(f"rtol={RTOL}, atol={ATOL}; tol_used <= 1 passes")
    print(worst_case_table(worst))
    for line in failures:
        print("FAIL", line)


if __name__ == "__main__":  # pragma: no cover
    main()
