"""Pattern-validation targets (SPEC section 4) against an independent pandas oracle.

The oracle below is written from the SPEC text with pandas rolling/shift per
ticker; it computes the feature values it needs itself and never calls
``engine`` (``tests/oracles/bars.py`` is used only to build and convert
bars). Labels and ``t1`` must be *exactly* equal, nulls included. Hypothesis
then checks causality (future bars never change a label whose ``t1`` is
before them, nor any event), row/ticker-order invariance and the null
structure; edge cases are named after the failure they guard.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.labels.targets import EVENT_COLUMNS, PATTERN_NAMES, compute_targets, target_summary
from tests.oracles import bars as ref

H = 5


def targets_with_events(bars: pl.DataFrame, **kw) -> pl.DataFrame:
    return compute_targets(bars, with_events=True, **kw)


# ---------------------------------------------------------------------------
# independent pandas oracle, from the SPEC text
# ---------------------------------------------------------------------------
def _oracle_one(g: pd.DataFrame, h: int) -> pd.DataFrame:
    g = g.sort_values("date").reset_index(drop=True)
    close = g["close"].astype(float)
    c = close.where(np.isfinite(close) & (close > 0))
    v = g["volume"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(c / c.shift(1))
        r7 = np.log(c / c.shift(7))
        sd10, sd20, sd60 = (r.rolling(n).std() for n in (10, 20, 60))
        # SPEC 3 #3: ln(sd_10 / sd_60); a zero denominator (or ln 0) is NaN
        vrc = np.log(sd10 / sd60).replace([np.inf, -np.inf], np.nan)
        # SPEC 3 #7: (C - mean_20(C)) / (2 sd_20(C)); 0 if sd_20(C) = 0
        mean20, sdc20 = c.rolling(20).mean(), c.rolling(20).std()
        te = ((c - mean20) / (2 * sdc20)).where(sdc20 != 0, 0.0).where(sdc20.notna())
        # SPEC 3 #16: ln((V + 1) / (mean_20(V) + 1))
        nv = np.log((v + 1) / (v.rolling(20).mean() + 1))
        z = r7.abs() / (sd20 * math.sqrt(7))
    z = z.where(sd20 > 0)  # zero denominator: NaN, no event
    hi20, lo20 = c.rolling(20).max(), c.rolling(20).min()
    high, low = c == hi20, c == lo20
    events = {
        "momentum_persistence": z > 1,
        "volatility_regime": vrc.abs() > math.log(1.5),
        "trend_exhaustion": te.abs() > 1,
        "volume_divergence": (high ^ low) & (nv < 0),  # a flat window is both: no event
    }
    fwd = np.log(c.shift(-h) / c)
    realised = np.sqrt((r**2).rolling(h).mean().shift(-h))
    # closes t .. t+h all present (the outcome window is complete)
    known = c.notna().astype(float).rolling(h + 1).sum().shift(-h) == h + 1
    outcomes = {
        "momentum_persistence": np.sign(fwd) == np.sign(r7),
        "volatility_regime": (realised > sd60) == (sd10 > sd60),
        "trend_exhaustion": np.sign(fwd) == -np.sign(c - mean20),
        "volume_divergence": ((fwd < 0) & high) | ((fwd > 0) & ~high),
    }
    out = pd.DataFrame({"ticker": g["ticker"], "date": g["date"], "t1": g["date"].shift(-h)})
    for name in PATTERN_NAMES:
        out[name] = outcomes[name].astype(float).where(events[name] & known)
        out[f"{name}_event"] = events[name]
    return out


def oracle_targets(bars: pd.DataFrame, h: int = H) -> pd.DataFrame:
    bars = bars[~bars["ticker"].isin(["VIX", "VIX3M"])]
    parts = [_oracle_one(g, h) for _, g in bars.groupby("ticker", sort=True)]
    return pd.concat(parts, ignore_index=True)


def assert_matches_oracle(impl: pl.DataFrame, expected: pd.DataFrame) -> None:
    assert impl.height == len(expected)
    assert impl["ticker"].to_list() == expected["ticker"].tolist()
    days = pd.to_datetime(expected["date"]).to_numpy().astype("datetime64[D]")
    assert np.array_equal(impl["date"].to_numpy(), days)
    t1 = pd.to_datetime(expected["t1"]).to_numpy().astype("datetime64[D]")
    assert np.array_equal(impl["t1"].to_numpy(), t1, equal_nan=True), "t1 differs"
    for name in PATTERN_NAMES:
        a = impl[name].cast(pl.Float64).to_numpy()
        b = expected[name].to_numpy(dtype=float)
        bad = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
        shown = [(impl["ticker"][i], impl["date"][i], a[i], b[i]) for i in bad[:8]]
        assert bad.size == 0, f"{name}: {bad.size} labels differ, e.g. {shown}"
        ev = impl[f"{name}_event"].to_numpy()
        assert np.array_equal(ev, expected[f"{name}_event"].to_numpy(dtype=bool)), name


def _arch_frame(df: pd.DataFrame, ticker: str) -> pd.DataFrame:
    out = df.rename(columns=str.lower).reset_index(names="date")
    out.insert(0, "ticker", ticker)
    return out[["ticker", "date", "open", "high", "low", "close", "volume"]]


def real_panel() -> pd.DataFrame:
    """Real S&P 500 as SPY, NASDAQ as QQQ and XLK, plus STK: the NASDAQ with holes."""
    import arch.data.nasdaq
    import arch.data.sp500

    sp, nq = arch.data.sp500.load(), arch.data.nasdaq.load()
    stk = _arch_frame(nq, "STK").iloc[200:].reset_index(drop=True)
    rng = np.random.default_rng(3)
    stk = stk.drop(rng.choice(np.arange(100, len(stk) - 10), 6, replace=False))
    stk.loc[stk.index[rng.choice(np.arange(100, len(stk)), 8, replace=False)], "close"] = np.nan
    stk.loc[stk.index[rng.choice(np.arange(100, len(stk)), 8, replace=False)], "volume"] = np.nan
    parts = [_arch_frame(sp, "SPY"), _arch_frame(nq, "QQQ"), _arch_frame(nq, "XLK"), stk]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def real_bars() -> pd.DataFrame:
    return real_panel()


@pytest.fixture(scope="module")
def demo_bars() -> pl.DataFrame:
    from engine.data.demo import generate_demo_universe

    return generate_demo_universe(seed=7).bars


def test_oracle_self_check_hand_computed_momentum_label():
    # 30 rows rising 1 % a day, then 5 rows falling: R_7 > 0, forward return < 0 -> label 0
    close = np.r_[100 * np.exp(0.01 * np.arange(30) + 0.002 * (np.arange(30) % 2)),
                  np.full(5, 90.0)]  # fmt: skip
    df = _bars(close)
    out = _oracle_one(df, H)
    assert out.loc[29, "momentum_persistence"] == 0.0
    assert out.loc[20, "momentum_persistence"] == 1.0  # C_25 > C_20 and R_7(20) > 0
    assert out["t1"].iloc[-H:].isna().all()


@pytest.mark.parametrize("h", [1, 5, 10])
def test_matches_pandas_oracle_real_sp500(real_bars, h):
    impl = targets_with_events(ref.bars_to_polars(real_bars), horizon=h)
    expected = oracle_targets(real_bars, h)
    assert_matches_oracle(impl, expected)
    # the real data exercises every pattern, with both outcomes
    for name in PATTERN_NAMES:
        assert set(impl[name].drop_nulls().unique()) == {0, 1}, name


def test_matches_pandas_oracle_demo_universe(demo_bars):
    impl = targets_with_events(demo_bars)
    expected = oracle_targets(ref.to_pandas_bars(demo_bars), H)
    assert_matches_oracle(impl, expected)
    assert impl["ticker"].n_unique() == 34


def test_precomputed_features_give_the_same_targets(demo_bars):
    """The pipeline hands its feature frame on; the labels must not change."""
    from engine.features.build import compute_features

    tickers = ["AAPL", "SPY", "XLK"]
    features = compute_features(demo_bars, tickers=["AAPL", "MSFT", "SPY", "XLK"])
    given = compute_targets(demo_bars, tickers=tickers, features=features, with_events=True)
    assert given.equals(compute_targets(demo_bars, tickers=tickers, with_events=True))


def test_precomputed_features_missing_a_ticker_or_column_are_refused(demo_bars):
    from engine.features.build import compute_features

    features = compute_features(demo_bars, ["trend_exhaustion"], tickers=["SPY"])
    with pytest.raises(ValueError, match="volatility_regime_change"):
        compute_targets(demo_bars, tickers=["SPY"], features=features)
    full = compute_features(demo_bars, tickers=["SPY"])
    with pytest.raises(ValueError, match="AAPL"):
        compute_targets(demo_bars, tickers=["AAPL"], features=full)


def test_schema_and_row_keys(demo_bars):
    labels = {"ticker": pl.String, "date": pl.Date, "t1": pl.Date} | dict.fromkeys(
        PATTERN_NAMES, pl.Int8
    )
    plain = compute_targets(demo_bars, tickers=["AAPL", "SPY"])
    assert plain.schema == pl.Schema(labels)  # what sequences and the model consume
    impl = targets_with_events(demo_bars, tickers=["AAPL", "SPY"])
    assert impl.schema == pl.Schema(labels | dict.fromkeys(EVENT_COLUMNS, pl.Boolean))
    assert impl.select(list(labels)).equals(plain)
    n_in = demo_bars.filter(pl.col("ticker").is_in(["AAPL", "SPY"])).height
    assert impl.height == n_in
    keys = impl.select("ticker", "date")
    assert keys.equals(keys.sort("ticker", "date"))
    assert impl.select(pl.col(EVENT_COLUMNS).null_count().sum()).row(0) == (0, 0, 0, 0)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------
def random_panel(seed: int, n_days: int, n_tickers: int, p_gap: float, p_null: float):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=n_days)
    parts = []
    for i in range(n_tickers):
        df = ref.random_walk_bars(
            f"T{i}",
            dates,
            rng,
            start=float(rng.uniform(5, 500)),
            vol=float(rng.uniform(0.005, 0.04)),
        )
        parts.append(_holes(df, rng, p_gap, p_null))
    return pd.concat(parts, ignore_index=True)


def _holes(df: pd.DataFrame, rng: np.random.Generator, p_gap: float, p_null: float):
    keep = rng.random(len(df)) >= p_gap
    keep[0] = True
    df = df[keep].copy()
    u = rng.random(len(df))
    df.loc[df.index[u < p_null / 2], "close"] = np.nan
    df.loc[df.index[(u >= p_null / 2) & (u < p_null)], "volume"] = np.nan
    return df


panel_args = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n_days": st.integers(60, 260),
        "n_tickers": st.integers(1, 3),
        "p_gap": st.sampled_from([0.0, 0.03]),
        "p_null": st.sampled_from([0.0, 0.01, 0.05]),
    }
)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _replace_after(df: pd.DataFrame, cut: pd.Timestamp, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = df.copy()
    for t, g in df.groupby("ticker"):
        later = g.index[g["date"] > cut]
        if len(later):
            new = _holes(ref.random_walk_bars(t, g.loc[later, "date"], rng), rng, 0.0, 0.05)
            out.loc[later, list(ref.BAR_COLUMNS)] = new.reindex(later)[list(ref.BAR_COLUMNS)]
    return out


@SETTINGS
@given(args=panel_args, cut_frac=st.floats(0.0, 1.0), seed2=st.integers(0, 2**32 - 1))
def test_causality_bars_after_d_never_change_labels_with_t1_before_d(args, cut_frac, seed2):
    df = random_panel(**args)
    dates = np.sort(df["date"].unique())
    cut = pd.Timestamp(dates[int(cut_frac * (len(dates) - 1))])
    base = targets_with_events(ref.bars_to_polars(df))
    changed = targets_with_events(ref.bars_to_polars(_replace_after(df, cut, seed2)))
    truncated = targets_with_events(ref.bars_to_polars(df[df["date"] <= cut]))
    d = cut.date()
    assert base["t1"].equals(changed["t1"])  # same rows, same dates
    settled = base.filter(pl.col("t1") <= d)
    assert settled.equals(changed.filter(pl.col("t1") <= d))
    assert settled.equals(truncated.filter(pl.col("t1") <= d))
    # events at dates <= d depend on bars up to d only
    events = ["ticker", "date", *EVENT_COLUMNS]
    past = base.filter(pl.col("date") <= d).select(events)
    assert past.equals(changed.filter(pl.col("date") <= d).select(events))
    assert past.equals(truncated.select(events))


@SETTINGS
@given(args=panel_args, shuffle_seed=st.integers(0, 2**32 - 1))
def test_row_and_ticker_order_invariance(args, shuffle_seed):
    df = random_panel(**args)
    base = targets_with_events(ref.bars_to_polars(df))
    shuffled = df.sample(frac=1.0, random_state=shuffle_seed % 2**31)
    assert targets_with_events(ref.bars_to_polars(shuffled)).equals(base)
    # a ticker's targets depend on its own bars only
    for ticker in df["ticker"].unique():
        alone = targets_with_events(ref.bars_to_polars(df[df["ticker"] == ticker]))
        assert alone.equals(base.filter(pl.col("ticker") == ticker))


@SETTINGS
@given(args=panel_args, h=st.integers(1, 12))
def test_labels_null_wherever_t1_is_null_and_only_on_known_events(args, h):
    df = random_panel(**args)
    out = targets_with_events(ref.bars_to_polars(df), horizon=h)
    # t1 is null on exactly each ticker's last h rows, and is the date h rows later
    expected_t1 = out.select(pl.col("date").shift(-h).over("ticker"))["date"]
    assert out["t1"].equals(expected_t1.rename("t1"))
    no_t1 = out.filter(pl.col("t1").is_null())
    assert no_t1.select(pl.col(PATTERN_NAMES).null_count()).row(0) == (no_t1.height,) * 4
    for name in PATTERN_NAMES:
        labelled = out.filter(pl.col(name).is_not_null())
        assert labelled[f"{name}_event"].all(), name
        assert labelled["t1"].null_count() == 0, name
        assert set(labelled[name].unique()) <= {0, 1}


# ---------------------------------------------------------------------------
# edge cases, named after the failure they guard
# ---------------------------------------------------------------------------
def _bars(close, volume=None, ticker="AAA") -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    n = close.shape[0]
    volume = np.full(n, 1e6) if volume is None else np.asarray(volume, dtype=float)
    return pd.DataFrame(
        {"ticker": ticker, "date": pd.bdate_range("2020-01-01", periods=n), "open": close,
         "high": close * 1.01, "low": close * 0.99, "close": close, "volume": volume}
    )  # fmt: skip


def _trend_then_reversal(n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(5)
    steps = np.r_[0.01 + rng.normal(0, 0.002, n - 8), np.full(8, -0.03)]
    return 100 * np.exp(np.cumsum(steps))


def test_missing_close_inside_outcome_window_gives_null_label():
    close = _trend_then_reversal()
    full = targets_with_events(ref.bars_to_polars(_bars(close)))
    t = 29
    # an up-trend at t, the reversal inside t+1..t+5: a known label, 0
    assert full["momentum_persistence_event"][t] and full["momentum_persistence"][t] == 0
    holed = close.copy()
    holed[t + 3] = np.nan
    out = targets_with_events(ref.bars_to_polars(_bars(holed)))
    assert out["momentum_persistence_event"][t]  # the event is still recorded
    assert out["momentum_persistence"][t] is None
    assert out["t1"][t] == full["t1"][t]  # the row t+h exists: t1 is kept for purging
    # windows t-h..t+2 contain the hole; the row before them is unaffected
    assert out["momentum_persistence"][t - 3] == full["momentum_persistence"][t - 3]


def test_missing_outcome_row_is_not_bridged_by_the_next_row():
    # dropping a row shifts t+h to the next available row of the ticker (rows, not days)
    df = _bars(_trend_then_reversal()).drop(index=32).reset_index(drop=True)
    out = targets_with_events(ref.bars_to_polars(df))
    assert out["t1"][29] == df["date"][34].date()


def test_last_h_rows_have_null_t1_and_null_labels():
    close = _trend_then_reversal(45)
    out = targets_with_events(ref.bars_to_polars(_bars(close)), horizon=H)
    tail = out.tail(H)
    assert tail["t1"].null_count() == H
    assert tail.select(pl.col(PATTERN_NAMES).null_count()).row(0) == (H,) * 4
    assert out["t1"].head(out.height - H).null_count() == 0


def test_ticker_shorter_than_horizon_has_no_t1():
    out = targets_with_events(ref.bars_to_polars(_bars([10.0, 11.0, 12.0])), horizon=H)
    assert out.height == 3 and out["t1"].null_count() == 3


def test_constant_growth_zero_sd20_is_not_a_momentum_event():
    # r is exactly constant, so sd_20(r) = 0: a zero denominator, not an infinite z-score
    close = 2.0 ** np.arange(40)  # every ratio is exactly 2
    out = targets_with_events(ref.bars_to_polars(_bars(close)))
    assert not out["momentum_persistence_event"].any()


def test_flat_20_day_window_is_not_a_volume_divergence_event():
    close = np.r_[np.linspace(90, 100, 10), np.full(30, 100.0)]
    volume = np.r_[np.full(30, 2e6), np.full(10, 1e6)]  # falling volume: nv < 0
    out = targets_with_events(ref.bars_to_polars(_bars(close, volume)))
    nv_negative_and_flat = slice(30, 35)
    assert not out["volume_divergence_event"][nv_negative_and_flat].any()


def test_high_with_unchanged_close_five_days_later_is_label_0():
    close = np.r_[np.linspace(80, 100, 30), [99.0, 98.0, 99.0, 98.0, 100.0], np.full(5, 95.0)]
    volume = np.r_[np.full(29, 2e6), np.full(11, 1e6)]
    out = targets_with_events(ref.bars_to_polars(_bars(close, volume)))
    t = 29  # C_29 = 100 is the 20-day high, volume below its mean, C_34 = 100
    assert out["volume_divergence_event"][t]
    assert out["volume_divergence"][t] == 0
    # C_34 = 100 ties the earlier high: still a high; C_39 = 95 < 100 -> 1
    assert out["volume_divergence_event"][t + 5] and out["volume_divergence"][t + 5] == 1


@pytest.mark.parametrize("horizon", [0, -1, 2.5, True])
def test_bad_horizon_is_rejected_with_its_value(horizon):
    with pytest.raises(
        ValueError, match=rf"horizon must be a positive integer, got horizon={horizon!r}"
    ):
        targets_with_events(ref.bars_to_polars(_bars([1.0, 2.0])), horizon=horizon)


def test_unknown_ticker_is_named():
    with pytest.raises(ValueError, match="ticker\\(s\\) not in bars: ZZZ"):
        targets_with_events(ref.bars_to_polars(_bars([1.0, 2.0])), tickers=["ZZZ"])


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
def test_target_summary_counts_equal_naive_counts(demo_bars):
    targets = targets_with_events(demo_bars)
    summary = target_summary(targets)
    assert summary["pattern"].to_list() == list(PATTERN_NAMES)
    for row in summary.iter_rows(named=True):
        name = row["pattern"]
        labels = targets[name].to_list()
        events = int(sum(targets[f"{name}_event"].to_list()))
        labelled = sum(x is not None for x in labels)
        positives = sum(x == 1 for x in labels)
        assert (row["events"], row["labelled"], row["positives"]) == (events, labelled, positives)
        assert row["base_rate"] == pytest.approx(positives / labelled)
        assert labelled <= events and events > 0
    per_ticker = target_summary(targets, by_ticker=True)
    assert per_ticker.height == 4 * 34
    totals = per_ticker.group_by("pattern", maintain_order=True).agg(
        pl.col("events", "labelled", "positives").sum()
    )
    assert totals.equals(summary.select("pattern", "events", "labelled", "positives"))


def test_target_summary_of_no_labels_has_null_base_rate():
    out = targets_with_events(ref.bars_to_polars(_bars([10.0, 11.0, 12.0])))
    summary = target_summary(out)
    assert summary["labelled"].to_list() == [0] * 4
    assert summary["base_rate"].null_count() == 4


def test_target_summary_rejects_a_frame_without_label_columns():
    with pytest.raises(ValueError, match="targets lack column\\(s\\) momentum_persistence"):
        target_summary(pl.DataFrame({"ticker": ["A"]}))


def test_target_summary_without_event_columns_has_null_event_counts(demo_bars):
    plain = target_summary(compute_targets(demo_bars, tickers=["SPY"]))
    full = target_summary(targets_with_events(demo_bars, tickers=["SPY"]))
    assert plain["events"].null_count() == 4
    assert plain.drop("events").equals(full.drop("events"))


# ---------------------------------------------------------------------------
# CLI: engine data demo, then engine targets
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from typer.testing import CliRunner

    from engine.cli.app import app

    data_dir = tmp_path_factory.mktemp("data")
    result = CliRunner().invoke(app, ["data", "demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return data_dir


def _cli(*args: str):
    from typer.testing import CliRunner

    from engine.cli.app import app

    return CliRunner().invoke(app, ["targets", *args])


def _table_rows(output: str) -> dict[str, tuple[int, int, int, str]]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] in PATTERN_NAMES:
            rows[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]), cells[4])
    return rows


def test_cli_targets_table_counts_equal_target_summary(demo_dir, tmp_path):
    from engine.data.store import BarStore

    out = tmp_path / "targets.parquet"
    result = _cli("--tickers", "all", "--data-dir", str(demo_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    bars = BarStore(demo_dir).read_bars()
    expected = targets_with_events(bars)
    summary = target_summary(expected)
    printed = _table_rows(result.output)
    assert list(printed) == list(PATTERN_NAMES)
    for row in summary.iter_rows(named=True):
        counts = (row["events"], row["labelled"], row["positives"], f"{row['base_rate']:.4f}")
        assert printed[row["pattern"]] == counts
    assert "synthetic tickers: AAPL" in result.output
    # the file holds the label frame of the API (no event columns), written in full
    assert pl.read_parquet(out).equals(expected.drop(EVENT_COLUMNS))


def test_cli_targets_json_start_end_keep_rows_use_full_history_and_censor_late_labels(demo_dir):
    import json

    from engine.data.store import BarStore

    args = ["--tickers", "AAPL,SPY", "--data-dir", str(demo_dir), "--json"]
    result = _cli(*args, "--start", "2010-01-04", "--end", "2010-12-31")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["start"] == "2010-01-04" and payload["end"] == "2010-12-31"
    assert payload["tickers"] == ["AAPL", "SPY"] and payload["synthetic_tickers"] == ["AAPL"]
    full = targets_with_events(BarStore(demo_dir).read_bars(), tickers=["AAPL", "SPY"])
    kept = full.filter(pl.col("date").is_between(date(2010, 1, 4), date(2010, 12, 31)))
    # a label whose outcome window reaches past --end would read bars after it: null
    late = pl.col("t1") > date(2010, 12, 31)
    censored = kept.with_columns(
        pl.when(late).then(None).otherwise(pl.col(p)).alias(p) for p in PATTERN_NAMES
    )
    assert payload["patterns"] == target_summary(censored).to_dicts()
    assert payload["patterns"] != target_summary(kept).to_dicts()
    assert payload["rows"] == kept.height
    assert kept["t1"].max() > date(2010, 12, 31)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tickers", "FOO"], "tickers not in the data directory: FOO"),
        (["--start", "2012-01-01", "--end", "2011-01-01"], "is after --end"),
    ],
    ids=["unknown-ticker", "start-after-end"],
)
def test_cli_targets_bad_arguments_exit_1_with_message(demo_dir, args, message):
    result = _cli("--data-dir", str(demo_dir), *args)
    assert result.exit_code == 1
    assert message in result.output
