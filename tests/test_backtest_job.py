"""``engine backtest`` job end to end on a small store, against independent recomputations."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.backtest.meta_labeling import load_out_of_sample_confidence
from engine.backtest.run import run_backtest
from engine.backtest.signals import STRATEGY_HEADS, compute_signals
from engine.backtest.simulation import BacktestSettings
from engine.data.store import BarStore
from engine.jobs.backtest import run_backtest_job
from engine.labels.targets import CONFIDENCE_SUFFIX, PATTERN_NAMES
from engine.model.run_files import PREDICTION_KEYS, check_predictions
from kernels.backtest import ORDER_NO_PRICE, simulate_portfolio

TRADED = ("AAA", "BBB", "CCC", "DDD")
STORED = (*TRADED, "SPY")
N_DAYS = 300
N_PREDICTED = 150
STRATEGIES = ("momentum", "mean_reversion", "ma_cross")
FAST = {"n_null": 20, "n_boot": 50}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- data


def make_bars(seed: int = 0, tickers=STORED, n: int = N_DAYS) -> pl.DataFrame:
    """Random-walk OHLC bars on business days; DDD and SPY lack a few days."""
    rng = np.random.default_rng(seed)
    days = [d.date() for d in pd.bdate_range("2022-01-03", periods=n)]
    frames = []
    for ticker in tickers:
        close = 40.0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, n)))
        prev = np.r_[40.0, close[:-1]]
        open_ = prev * np.exp(rng.normal(0.0, 0.006, n))
        high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, n))
        low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, n))
        frame = pl.DataFrame({
            "ticker": ticker, "date": days, "open": open_, "high": high, "low": low,
            "close": close, "volume": rng.uniform(1e5, 1e6, n).round(),
        })  # fmt: skip
        if ticker == "DDD":  # missing bars inside the backtest span (and one on its first day)
            gone = {n - N_PREDICTED, n - 120, n - 119, n - 60, n - 20, n - 2}
            frame = frame.filter(~pl.int_range(pl.len()).is_in(list(gone)))
        if ticker == "SPY":
            frame = frame.filter(~pl.int_range(pl.len()).is_in([n - 100, n - 30]))
        frames.append(frame)
    return pl.concat(frames)


def make_predictions(
    bars: pl.DataFrame, seed: int = 1, tickers=TRADED, n_last: int = N_PREDICTED
) -> pl.DataFrame:
    """Out-of-sample predictions (two walk-forward models) on each bar of the last days."""
    rng = np.random.default_rng(seed)
    days = sorted(bars.get_column("date").unique().to_list())[-n_last:]
    half = days[len(days) // 2]
    rows = (
        bars.filter(pl.col("ticker").is_in(list(tickers)) & pl.col("date").is_in(days))
        .select("ticker", "date")
        .sort("date", "ticker")
    )
    second = pl.col("date") >= half
    first_day = pl.when(second).then(pl.lit(half)).otherwise(pl.lit(days[0]))
    frame = rows.with_columns(
        t1=pl.col("date") + pl.duration(days=7),
        model_id=pl.when(second).then(pl.lit("wf01")).otherwise(pl.lit("wf00")),
        train_end=first_day - pl.duration(days=15),
        embargo_end=first_day - pl.duration(days=3),
    )
    n = frame.height
    conf = {p + CONFIDENCE_SUFFIX: rng.uniform(size=n).astype(np.float32) for p in PATTERN_NAMES}
    outcome = {}
    for p in PATTERN_NAMES:
        y = rng.integers(0, 2, n).astype(np.float64)
        y[rng.uniform(size=n) < 0.2] = np.nan
        outcome[p] = pl.Series(y).fill_nan(None).cast(pl.Int8)
    return frame.with_columns(**conf).with_columns(**outcome)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, bars):
    directory = tmp_path_factory.mktemp("data")
    BarStore(directory).write(bars, source="test")
    return directory


@pytest.fixture(scope="module")
def predictions(bars) -> pl.DataFrame:
    return make_predictions(bars)


@pytest.fixture(scope="module")
def pred_path(tmp_path_factory, predictions):
    path = tmp_path_factory.mktemp("run") / "predictions.parquet"
    predictions.write_parquet(path)
    return path


def settings(**kwargs) -> BacktestSettings:
    return BacktestSettings(**{**FAST, **kwargs})


def test_fixture_is_a_training_run_predictions_file(predictions, bars):
    assert predictions.columns == [
        *PREDICTION_KEYS,
        *(p + CONFIDENCE_SUFFIX for p in PATTERN_NAMES),
        *PATTERN_NAMES,
    ]
    frame, patterns = check_predictions(predictions)
    assert patterns == list(PATTERN_NAMES) and frame.height == predictions.height
    assert predictions.get_column("model_id").n_unique() == 2


# --------------------------------------------------------------------------- reference


def reference(bars: pl.DataFrame, predictions: pl.DataFrame, s: BacktestSettings) -> dict:
    """The backtest recomputed: pandas pivots, the base signals, the kernel called directly.

    A ticker with no bar on a day strictly between its first and last bar keeps its last
    signal and confidence there (forward filled within the window: the backtest starts flat).
    """
    head = s.head or STRATEGY_HEADS[s.strategy]
    pred = predictions.to_pandas()
    tickers = sorted(pred["ticker"].unique())
    start, end = pred["date"].min(), pred["date"].max()
    traded = bars.filter(pl.col("ticker").is_in(tickers))
    sig = compute_signals(traded, s.strategy, long_only=s.long_only).to_pandas()
    b = traded.to_pandas()
    span = b[(b["date"] >= start) & (b["date"] <= end)]
    dates = sorted(span["date"].unique())

    def wide(frame, column):
        table = frame.pivot(index="date", columns="ticker", values=column)
        return table.reindex(index=dates, columns=tickers).astype("float64")

    open_, close = wide(span, "open"), wide(span, "close")
    history = sorted(b["date"].unique())
    one = b.assign(one=1.0).pivot(index="date", columns="ticker", values="one")
    has_bar = one.reindex(index=history, columns=tickers).notna()
    first, last = has_bar.idxmax(), has_bar[::-1].idxmax()
    day = pd.Series(history, index=history)
    inside = pd.DataFrame({t: (day > first[t]) & (day < last[t]) for t in tickers})
    missing = (inside & ~has_bar).loc[dates]
    signal = wide(sig, "signal")  # NaN where no bar
    signal = signal.ffill().where(missing, signal).fillna(0.0)
    conf = wide(pred, head + CONFIDENCE_SUFFIX)
    marked = conf.where(~(has_bar.loc[dates] & conf.isna()), -1.0)  # a bar without confidence
    conf = marked.ffill().where(missing, conf).replace(-1.0, np.nan)
    taken = (signal != 0.0) & (conf >= s.threshold)
    filtered = signal.where(taken, 0.0)
    cost = (s.costs_bps + s.slippage_bps) / 1e4

    def run(sig_table):
        arrays = [np.ascontiguousarray(t.to_numpy(), dtype=np.float64)
                  for t in (open_, close, sig_table)]  # fmt: skip
        return simulate_portfolio(*arrays, cost, s.fill == "close")

    return {
        "dates": np.array(pd.to_datetime(pd.Index(dates)).values.astype("datetime64[D]")),
        "tickers": tickers,
        "signal": signal.to_numpy(),
        "filtered": filtered.to_numpy(),
        "taken": taken.to_numpy(),
        "missing": missing.to_numpy(),
        # over the calendar's cells, held days included (the null's take rate counts these)
        "grid_take_rate": float(
            taken.to_numpy().sum() / ((signal != 0.0) & conf.notna()).to_numpy().sum()
        ),
        "unfiltered_run": run(signal),
        "filtered_run": run(filtered),
        "close": close.to_numpy(),
    }


def _taken_in_report(report) -> set[tuple[str, dt.date]]:
    return set(report.signals.filter("taken").select("ticker", "date").iter_rows())


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_end_to_end_matches_the_reference(pred_path, data_dir, bars, predictions, strategy, fill):
    s = settings(strategy=strategy, fill=fill, threshold=0.6)
    report = run_backtest_job(pred_path, s, data_dir=data_dir)
    ref = reference(bars, predictions, s)

    assert report.tickers == list(TRADED)
    np.testing.assert_array_equal(report.dates, ref["dates"])
    assert report.dates.shape[0] == N_PREDICTED
    for name in ("unfiltered", "filtered"):
        sim = getattr(report, name)
        r_ref, w_ref, to_ref, c_ref = ref[f"{name}_run"][:4]
        np.testing.assert_allclose(sim.returns, r_ref, rtol=0, atol=1e-14)
        np.testing.assert_allclose(sim.weights, w_ref, rtol=0, atol=1e-14)
        np.testing.assert_allclose(sim.turnover, to_ref, rtol=0, atol=1e-14)
        np.testing.assert_allclose(sim.costs, c_ref, rtol=0, atol=1e-14)
    assert report.unfiltered.turnover.sum() > 0 and report.filtered.turnover.sum() > 0
    assert not np.array_equal(report.unfiltered.returns, report.filtered.returns)

    # finite metrics, strict JSON
    text = json.dumps(report.to_dict(), allow_nan=False, default=str)
    assert json.loads(text)["settings"]["strategy"] == strategy
    assert set(report.metrics) == {"unfiltered", "filtered", "SPY"}
    for run_metrics in report.metrics.values():
        for key, value in run_metrics.items():
            if isinstance(value, float):
                assert math.isfinite(value), key
    for key in ("total_return", "sharpe", "max_drawdown", "turnover", "beta"):
        assert isinstance(report.metrics["filtered"][key], float), key

    # the filter takes exactly the non-zero signals with confidence >= threshold
    sig = report.signals
    conf = sig.get_column("confidence")
    assert conf.null_count() == 0  # every (ticker, day) with a bar has a prediction
    want = (sig.get_column("signal") != 0) & (conf >= 0.6)
    assert sig.get_column("taken").to_list() == want.to_list()
    assert (sig.filter("taken").get_column("confidence") >= 0.6).all()
    bar_taken = int(ref["taken"][~ref["missing"]].sum())  # the filter scores days with a bar
    assert report.filter["taken"] == int(want.sum()) == bar_taken > 0
    assert report.filter["signals"] == int((sig.get_column("signal") != 0).sum())

    # a non-zero filtered weight at the close of t + 1 needs a taken signal at t
    taken = _taken_in_report(report)
    w, orders = report.filtered.weights, report.filtered.orders
    dates = report.dates.astype(object)
    assert not w[0].any()
    held = 0
    for t in range(1, w.shape[0]):
        for i, ticker in enumerate(report.tickers):
            if orders[t, i] == ORDER_NO_PRICE:
                continue  # no price to trade at: the holding is carried
            expected = ref["filtered"][t - 1, i]
            assert np.sign(w[t, i]) == expected, (t, ticker)
            if w[t, i] != 0.0 and not ref["missing"][t - 1, i]:  # held: decided on a bar before
                held += 1
                assert (ticker, dates[t - 1]) in taken, (t, ticker)
    assert held > 0
    uw = report.unfiltered.weights
    priced = report.unfiltered.orders[1:] != ORDER_NO_PRICE
    np.testing.assert_array_equal(np.sign(uw[1:])[priced], ref["signal"][:-1][priced])


def test_missing_bars_leave_holdings_unpriced_not_traded(pred_path, data_dir):
    report = run_backtest_job(pred_path, settings(strategy="momentum"), data_dir=data_dir)
    d = report.tickers.index("DDD")
    assert (report.unfiltered.orders[:, d] == ORDER_NO_PRICE).sum() >= 1
    others = [i for i in range(len(report.tickers)) if i != d]
    assert not (report.unfiltered.orders[:, others] == ORDER_NO_PRICE).any()


def test_threshold_zero_is_the_unfiltered_strategy(pred_path, data_dir):
    report = run_backtest_job(pred_path, settings(threshold=0.0), data_dir=data_dir)
    np.testing.assert_array_equal(report.filtered.returns, report.unfiltered.returns)
    np.testing.assert_array_equal(report.filtered.weights, report.unfiltered.weights)
    assert report.filter["taken"] == report.filter["signals"] > 0
    assert report.filter["signals_without_confidence"] == 0
    assert report.filter["recall"] == 1.0
    assert report.sharpe_difference["estimate"] == pytest.approx(0.0, abs=1e-12)
    m = report.metrics
    assert {k: v for k, v in m["filtered"].items()} == {k: v for k, v in m["unfiltered"].items()}


def test_threshold_one_with_confidences_below_one_stays_flat(pred_path, data_dir, predictions):
    head = STRATEGY_HEADS["mean_reversion"] + CONFIDENCE_SUFFIX
    assert predictions.get_column(head).max() < 1.0
    report = run_backtest_job(
        pred_path, settings(strategy="mean_reversion", threshold=1.0), data_dir=data_dir
    )
    assert report.filter["taken"] == 0 and report.filter["signals"] > 0
    assert not report.filtered.returns.any()
    assert not report.filtered.weights.any()
    assert not report.filtered.turnover.any()
    assert report.metrics["filtered"]["total_return"] == 0.0
    assert report.metrics["filtered"]["trades"] == 0
    assert report.metrics["unfiltered"]["trades"] > 0
    assert report.null is None or report.null["taken_per_filter"] == 0


def test_higher_costs_never_increase_final_equity(pred_path, data_dir):
    finals = {"unfiltered": [], "filtered": []}
    for costs in (0.0, 2.0, 10.0, 50.0):
        report = run_backtest_job(
            pred_path, settings(strategy="momentum", costs_bps=costs, n_null=0), data_dir=data_dir
        )
        if costs == 0.0:
            assert not report.unfiltered.costs.any()
        for name in finals:
            finals[name].append(float(np.prod(1.0 + getattr(report, name).returns)))
    for name, values in finals.items():
        assert all(b < a for a, b in zip(values, values[1:], strict=False)), (name, values)
    # slippage is a cost like any other
    a = run_backtest_job(pred_path, settings(costs_bps=4.0, slippage_bps=6.0), data_dir=data_dir)
    b = run_backtest_job(pred_path, settings(costs_bps=10.0), data_dir=data_dir)
    np.testing.assert_array_equal(a.filtered.returns, b.filtered.returns)
    assert a.metrics["filtered"]["costs_paid"] > 0


def _comparable(report) -> dict:
    out = report.to_dict()
    for key in ("seconds", "predictions", "files", "data_dir", "synthetic_tickers"):
        out.pop(key, None)
    return out


def test_invariant_to_the_order_of_rows(pred_path, data_dir, predictions, tmp_path):
    s = settings(strategy="ma_cross", threshold=0.55)
    expected = run_backtest_job(pred_path, s, data_dir=data_dir)
    shuffled_path = tmp_path / "predictions.parquet"
    predictions.sample(fraction=1.0, shuffle=True, seed=3).write_parquet(shuffled_path)
    stored = BarStore(data_dir).read_bars()
    shuffled_bars = stored.sample(fraction=1.0, shuffle=True, seed=4)
    assert shuffled_bars.get_column("ticker").to_list() != stored.get_column("ticker").to_list()
    conf = load_out_of_sample_confidence(shuffled_path, s.pattern_head)
    got = run_backtest(shuffled_bars, conf.sample(fraction=1.0, shuffle=True, seed=5), s)
    assert _comparable(got) == _comparable(expected)
    np.testing.assert_array_equal(got.filtered.returns, expected.filtered.returns)
    np.testing.assert_array_equal(got.unfiltered.weights, expected.unfiltered.weights)
    assert got.signals.sort("ticker", "date").equals(expected.signals.sort("ticker", "date"))
    # also through the job, from the shuffled file
    job = run_backtest_job(shuffled_path, s, data_dir=data_dir)
    assert _comparable(job) == _comparable(expected)


# --------------------------------------------------------------------------- refusals


def test_an_in_sample_row_is_refused_naming_the_ticker(predictions, data_dir, tmp_path):
    day = predictions.get_column("date").sort()[200]
    hit = (pl.col("ticker") == "CCC") & (pl.col("date") == day)
    leaky = predictions.with_columns(
        embargo_end=pl.when(hit).then(pl.col("date")).otherwise(pl.col("embargo_end"))
    )
    path = tmp_path / "predictions.parquet"
    leaky.write_parquet(path)
    with pytest.raises(ValueError, match="in-sample") as info:
        run_backtest_job(path, settings(), data_dir=data_dir)
    assert "CCC" in str(info.value) and str(day) in str(info.value)


def test_predictions_on_a_single_day_are_refused_saying_so(predictions, data_dir, tmp_path):
    day = predictions.get_column("date").sort()[-1]
    path = tmp_path / "predictions.parquet"
    predictions.filter(pl.col("date") == day).write_parquet(path)
    with pytest.raises(ValueError, match="single day") as info:
        run_backtest_job(path, settings(), data_dir=data_dir)
    assert str(day) in str(info.value)


def test_a_ticker_without_bars_is_refused_naming_it(predictions, data_dir, tmp_path):
    extra = predictions.filter(pl.col("ticker") == "BBB").with_columns(ticker=pl.lit("ZZZ"))
    path = tmp_path / "predictions.parquet"
    pl.concat([predictions, extra]).write_parquet(path)
    with pytest.raises(ValueError, match="ZZZ"):
        run_backtest_job(path, settings(), data_dir=data_dir)
    with pytest.raises(ValueError, match="ZZZ"):
        run_backtest(
            BarStore(data_dir).read_bars(),
            load_out_of_sample_confidence(path, "momentum_persistence"),
            settings(),
        )


def test_an_empty_store_is_refused(pred_path, tmp_path):
    with pytest.raises(ValueError, match="no bars"):
        run_backtest_job(pred_path, settings(), data_dir=tmp_path / "empty")


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"strategy": "breakout"}, "momentum"),
        ({"costs_bps": -1.0}, "costs_bps"),
        ({"slippage_bps": float("nan")}, "slippage_bps"),
        ({"fill": "mid"}, "fill"),
        ({"head": "nope"}, "trend_exhaustion"),
        ({"horizon": 0}, "horizon"),
        ({"n_boot": 5}, "n_boot"),
        ({"n_null": -1}, "n_null"),
    ],
)
def test_settings_are_checked(kwargs, word):
    with pytest.raises(ValueError, match=word):
        BacktestSettings(**kwargs)


# --------------------------------------------------------------------------- report and metrics


@pytest.fixture(scope="module")
def written(pred_path, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "bt"
    report = run_backtest_job(
        pred_path, settings(strategy="momentum", threshold=0.5), data_dir=data_dir, report_dir=out
    )
    return report, out


def test_report_dir_holds_every_file(written):
    report, out = written
    names = {"report.html", "equity.png", "drawdown.png", "metrics.json", "daily.parquet",
             "signals.parquet"}  # fmt: skip
    assert {p.name for p in out.iterdir()} == names
    assert [p.split("/")[-1] for p in report.files][0] == "report.html"
    assert {p.split("/")[-1] for p in report.files} == names
    for png in ("equity.png", "drawdown.png"):
        assert (out / png).read_bytes().startswith(PNG_MAGIC)
    html = (out / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html and "momentum" in html

    def no_constant(value):
        raise AssertionError(f"not strict JSON: {value}")

    payload = json.loads((out / "metrics.json").read_text(), parse_constant=no_constant)
    assert payload["settings"] == report.settings.to_dict()
    assert payload["metrics"]["filtered"]["sharpe"] == report.metrics["filtered"]["sharpe"]
    assert payload["filter"] == report.filter
    assert payload["days"] == N_PREDICTED and payload["tickers"] == list(TRADED)
    assert pl.read_parquet(out / "daily.parquet").equals(report.daily())
    assert pl.read_parquet(out / "signals.parquet").equals(report.signals)


def _max_drawdown(r: np.ndarray) -> float:
    equity = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.r_[1.0, equity])[1:]
    return float((equity / peak - 1.0).min())


def test_metrics_agree_with_a_recomputation_from_the_daily_frame(written, bars):
    report, out = written
    daily = pl.read_parquet(out / "daily.parquet")
    assert daily.height == N_PREDICTED
    assert daily.get_column("date").to_list() == report.dates.astype(object).tolist()
    spy = daily.get_column("SPY_return").to_numpy()
    for name in ("unfiltered", "filtered"):
        m = report.metrics[name]
        r = daily.get_column(f"{name}_return").to_numpy()
        n = r.size
        approx = lambda x: pytest.approx(x, rel=1e-9, abs=1e-12)  # noqa: E731
        assert m["days"] == n
        assert m["start"] == str(report.dates[0]) and m["end"] == str(report.dates[-1])
        assert m["total_return"] == approx(np.prod(1.0 + r) - 1.0)
        assert m["annual_return"] == approx(np.prod(1.0 + r) ** (252 / n) - 1.0)
        assert m["annual_volatility"] == approx(r.std(ddof=1) * math.sqrt(252))
        assert m["sharpe"] == approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
        assert m["max_drawdown"] == approx(_max_drawdown(r))
        assert m["max_drawdown"] == approx(daily.get_column(f"{name}_drawdown").min())
        equity = daily.get_column(f"{name}_equity").to_numpy()
        np.testing.assert_allclose(equity, np.cumprod(1.0 + r), rtol=1e-12)
        assert m["turnover"] == approx(daily.get_column(f"{name}_turnover").mean() * 252)
        assert m["exposure"] == approx(daily.get_column(f"{name}_gross_exposure").mean())
        assert m["costs_paid"] == approx(daily.get_column(f"{name}_costs").sum())
        cov = np.cov(r, spy, ddof=1)
        assert m["beta"] == approx(cov[0, 1] / cov[1, 1])
        active = r - spy
        assert m["information_ratio"] == approx(active.mean() / active.std(ddof=1) * math.sqrt(252))
        sim = getattr(report, name)
        trades = np.isfinite(sim.trade_returns).sum() + np.isfinite(sim.open_trade_returns).sum()
        assert m["trades"] == trades
        assert m["trades_open_at_end"] == np.isfinite(sim.open_trade_returns).sum()
        w = sim.weights
        assert m["exposure"] == approx(np.abs(w).sum(axis=1).mean())
    # SPY: close-to-close returns over the calendar, forward-filled across its missing days
    spy_close = (
        pl.DataFrame({"date": daily.get_column("date")})
        .join(bars.filter(pl.col("ticker") == "SPY"), on="date", how="left")
        .sort("date")
        .get_column("close")
        .forward_fill()
        .to_numpy()
    )
    assert np.isfinite(spy_close).all()
    assert spy[0] == 0.0
    np.testing.assert_allclose(spy[1:], spy_close[1:] / spy_close[:-1] - 1.0, rtol=1e-12)
    assert report.metrics["SPY"]["total_return"] == pytest.approx(
        spy_close[-1] / spy_close[0] - 1.0, rel=1e-9
    )


def check_filter_scores(report, bars: pl.DataFrame, predictions: pl.DataFrame) -> None:
    """``report.filter`` recomputed with pandas from the bars, the signals and the file."""
    s = report.settings
    conf_col = s.pattern_head + CONFIDENCE_SUFFIX
    pred = predictions.to_pandas()[["ticker", "date", conf_col]]
    traded = bars.filter(pl.col("ticker").is_in(pred["ticker"].unique().tolist()))
    b = traded.to_pandas().sort_values(["ticker", "date"])
    b["move"] = np.log(b.groupby("ticker")["close"].shift(-s.horizon) / b["close"])
    sig = compute_signals(traded, s.strategy, long_only=s.long_only).to_pandas()
    frame = sig.merge(b[["ticker", "date", "move"]], on=["ticker", "date"])
    frame = frame[frame["date"].between(pred["date"].min(), pred["date"].max())]
    frame = frame.merge(pred, on=["ticker", "date"], how="left")
    active = frame[frame["signal"] != 0]
    candidates = active[active[conf_col].notna()]
    took = candidates[conf_col].astype("float64") >= s.threshold
    scored = candidates["move"].notna()
    taken = took[scored].to_numpy()
    good = (candidates["signal"] * candidates["move"] > 0)[scored].to_numpy()
    f = report.filter
    assert f["signals"] == len(active)
    assert f["signals_without_confidence"] == len(active) - len(candidates)
    assert f["taken"] == int(took.sum())
    assert f["n_signals"] == int(scored.sum())
    assert f["signals_without_outcome"] == len(candidates) - int(scored.sum())
    assert f["n_good"] == int(good.sum())
    assert f["base_rate"] == pytest.approx(good.mean())
    assert f["precision"] == pytest.approx(good[taken].mean())
    assert f["recall"] == pytest.approx(taken[good].mean())
    assert f["take_rate"] == pytest.approx(took.mean())


def test_filter_scores_agree_with_a_pandas_recomputation(written, bars, predictions):
    report, _ = written
    check_filter_scores(report, bars, predictions)
    assert report.filter["signals_without_outcome"] > 0  # the last days have no outcome yet
    assert report.filter["signals_without_confidence"] == 0


@pytest.mark.parametrize("strategy", ["momentum", "mean_reversion"])
def test_gappy_predictions_inside_the_bars(bars, predictions, data_dir, tmp_path, strategy):
    """Predictions over part of the bars, with (ticker, day)s missing: the span they cover
    is the calendar, signals without a confidence stay out of the filtered run and out of
    the filter's scores, and outcomes use the bars after the span."""
    days = predictions.get_column("date").unique().sort()
    keep = pl.col("date").is_between(days[10], days[-15])
    gappy = predictions.filter(keep).sample(fraction=0.75, seed=9).sort("date", "ticker")
    path = tmp_path / "predictions.parquet"
    gappy.write_parquet(path)
    s = settings(strategy=strategy, threshold=0.5)
    report = run_backtest_job(path, s, data_dir=data_dir)
    ref = reference(bars, gappy, s)
    assert str(report.dates[0]) == str(days[10]) and str(report.dates[-1]) == str(days[-15])
    np.testing.assert_array_equal(report.dates, ref["dates"])
    np.testing.assert_allclose(report.unfiltered.returns, ref["unfiltered_run"][0], atol=1e-14)
    np.testing.assert_allclose(report.filtered.returns, ref["filtered_run"][0], atol=1e-14)
    check_filter_scores(report, bars, gappy)
    f = report.filter
    assert f["signals_without_confidence"] > 0 and f["signals_without_outcome"] == 0
    assert any("no out-of-sample confidence" in note for note in report.notes)
    assert report.signals.filter(pl.col("confidence").is_null()).get_column("taken").sum() == 0
    assert report.null is not None
    assert report.null["take_rate_model"] == pytest.approx(ref["grid_take_rate"], abs=1e-12)
    assert report.null["take_rate_model"] == pytest.approx(f["take_rate"], abs=0.01)
    everything = run_backtest_job(
        path, settings(strategy=strategy, threshold=0.0), data_dir=data_dir
    )
    assert everything.filter["taken"] == f["signals"] - f["signals_without_confidence"]
    assert not np.array_equal(everything.filtered.returns, everything.unfiltered.returns)


def test_shifted_null_is_seeded_and_reports_take_rate_and_turnover(
    pred_path, data_dir, bars, predictions
):
    s = settings(strategy="momentum", n_null=15, seed=3)
    a = run_backtest_job(pred_path, s, data_dir=data_dir)
    b = run_backtest_job(pred_path, s, data_dir=data_dir)
    assert a.null is not None and a.null == b.null
    assert a.null["n"] == 15
    # over the calendar's cells, DDD's held days included
    grid_take_rate = reference(bars, predictions, s)["grid_take_rate"]
    assert a.null["take_rate_model"] == pytest.approx(grid_take_rate, abs=1e-12)
    assert a.null["take_rate_model"] == pytest.approx(a.filter["take_rate"], abs=0.01)
    assert a.null["turnover_model"] == pytest.approx(a.metrics["filtered"]["turnover"], rel=1e-12)
    assert 0.0 <= a.null["take_rate_median"] <= 1.0 and a.null["turnover_median"] >= 0.0
    assert 1 / 16 <= a.null["p_value"] <= 1.0
    assert a.null["sharpe_low"] <= a.null["sharpe_median"] <= a.null["sharpe_high"]
    assert a.sharpe_difference == b.sharpe_difference
    none = run_backtest_job(pred_path, settings(n_null=0), data_dir=data_dir)
    assert none.null is None


def test_long_only_and_head_override(pred_path, data_dir, predictions, bars):
    s = settings(strategy="momentum", long_only=True, head="volatility_regime", threshold=0.4)
    report = run_backtest_job(pred_path, s, data_dir=data_dir)
    assert report.settings.to_dict()["head"] == "volatility_regime"
    assert (report.unfiltered.weights >= 0).all() and (report.filtered.weights >= 0).all()
    assert (report.unfiltered.weights > 0).any()
    assert (report.signals.get_column("signal") >= 0).all()
    ref = reference(bars, predictions, s)
    np.testing.assert_allclose(report.filtered.returns, ref["filtered_run"][0], atol=1e-14)
    assert report.filter["taken"] == int(ref["taken"][~ref["missing"]].sum())


def test_without_spy_there_is_no_benchmark(pred_path, data_dir):
    stored = BarStore(data_dir).read_bars().filter(pl.col("ticker") != "SPY")
    conf = load_out_of_sample_confidence(pred_path, "momentum_persistence")
    report = run_backtest(stored, conf, settings())
    assert report.benchmark is None and "SPY" not in report.metrics
    assert report.metrics["filtered"]["beta"] is None
    assert any("SPY" in note for note in report.notes)
    assert "SPY_return" not in report.daily().columns


# --------------------------------------------------------------------------- causality


@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize("strategy", ["momentum", "mean_reversion"])
def test_truncating_the_future_leaves_the_past_unchanged(pred_path, data_dir, strategy, fill):
    """Decisions at the close of t fill on t + 1: data after d cannot move anything up to d.

    Truncated after d, the calendar ends on d; day d's return comes from the fill of
    the decision of d - 1 (open or close of d) and the marks at the close of d, all of
    which the truncated data still hold, so every day up to and including d agrees.
    """
    s = settings(strategy=strategy, fill=fill, threshold=0.5, n_null=0)
    stored = BarStore(data_dir).read_bars()
    conf = load_out_of_sample_confidence(pred_path, s.pattern_head)
    full = run_backtest(stored, conf, s)
    days = full.dates.astype(object)
    for k in (10, 60, 111, N_PREDICTED - 2):
        d = days[k]
        cut = run_backtest(stored.filter(pl.col("date") <= d), conf.filter(pl.col("date") <= d), s)
        np.testing.assert_array_equal(cut.dates, full.dates[: k + 1])
        for name in ("unfiltered", "filtered"):
            a, b = getattr(cut, name), getattr(full, name)
            np.testing.assert_array_equal(a.returns, b.returns[: k + 1])
            np.testing.assert_array_equal(a.weights, b.weights[: k + 1])
            np.testing.assert_array_equal(a.turnover, b.turnover[: k + 1])
            np.testing.assert_array_equal(a.costs, b.costs[: k + 1])
        columns = ["ticker", "date", "signal", "confidence", "taken", "filtered_signal"]
        head = full.signals.filter(pl.col("date") <= d).select(columns).sort("ticker", "date")
        assert cut.signals.select(columns).sort("ticker", "date").equals(head)
        np.testing.assert_array_equal(cut.benchmark, full.benchmark[: k + 1])


def test_only_the_traded_tickers_make_the_calendar(pred_path, data_dir):
    stored = BarStore(data_dir).read_bars()
    conf = load_out_of_sample_confidence(pred_path, "momentum_persistence")
    base = run_backtest(stored, conf, settings(n_null=0))
    saturday = dt.date(2022, 11, 5)  # inside the span, a day no traded ticker has
    assert saturday.weekday() == 5 and base.dates[0] < np.datetime64(saturday) < base.dates[-1]
    columns = ["ticker", "date", "open", "high", "low", "close", "volume"]
    extra = pl.DataFrame(
        {"ticker": ["XXX"], "date": [saturday], **{c: [1.0] for c in columns[2:]}}
    ).cast(stored.select(columns).schema)
    more = pl.concat([stored.select(extra.columns), extra])
    got = run_backtest(more, conf, settings(n_null=0))
    np.testing.assert_array_equal(got.dates, base.dates)
    np.testing.assert_array_equal(got.filtered.returns, base.filtered.returns)


def test_a_fill_at_the_open_never_sees_that_days_close(pred_path, data_dir):
    """Changing the closes from day d on (the opens kept) cannot move the fills at the open
    of d: they execute the decisions of d - 1. Returns before d stay the same too."""
    stored = BarStore(data_dir).read_bars()
    conf = load_out_of_sample_confidence(pred_path, "momentum_persistence")
    s = settings(strategy="momentum", fill="open", threshold=0.3, n_null=0)
    full = run_backtest(stored, conf, s)
    rng = np.random.default_rng(2)
    for k in (5, 40, 99, N_PREDICTED - 1):
        d = full.dates.astype(object)[k]
        shock = np.exp(rng.normal(0.0, 0.2, stored.height))
        later = pl.col("date") >= d
        moved = stored.with_columns(close=pl.when(later).then(pl.col("close") * shock)
                                    .otherwise(pl.col("close")))  # fmt: skip
        got = run_backtest(moved, conf, s)
        for name in ("unfiltered", "filtered"):
            a, b = getattr(got, name), getattr(full, name)
            np.testing.assert_array_equal(a.returns[:k], b.returns[:k])
            np.testing.assert_array_equal(a.turnover[: k + 1], b.turnover[: k + 1])
            np.testing.assert_array_equal(a.costs[: k + 1], b.costs[: k + 1])
            np.testing.assert_array_equal(a.orders[: k + 1], b.orders[: k + 1])
        assert not np.array_equal(got.unfiltered.returns[k:], full.unfiltered.returns[k:])


def test_the_runs_data_dir_and_fingerprint_are_used(predictions, data_dir, tmp_path):
    from engine.data.loading import benchmark_inputs
    from engine.features.build import bars_fingerprint

    store = BarStore(data_dir)
    wanted = benchmark_inputs(list(TRADED), store.tickers())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "predictions.parquet"
    predictions.write_parquet(path)
    data = {"data_dir": str(data_dir), "tickers": list(TRADED),
            "fingerprint": bars_fingerprint(store.read_bars(wanted))}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps({"status": "complete", "data": data}))
    report = run_backtest_job(path, settings(n_null=0))  # no data_dir: the run's
    assert report.info["data_dir"] == str(data_dir)
    assert report.info["fingerprint_match"] is True
    assert not any("fingerprint" in note for note in report.notes)

    (run_dir / "run.json").write_text(json.dumps({"data": {**data, "fingerprint": "0" * 64}}))
    report = run_backtest_job(path, settings(n_null=0))
    assert report.info["fingerprint_match"] is False
    assert any("fingerprint mismatch" in note for note in report.notes)


def test_a_run_trained_on_adjusted_prices_is_backtested_on_them(bars, predictions, tmp_path):
    """engine backtest trades on the price basis recorded in run.json, as the pipeline does."""
    from engine.data.prices import apply_prices

    days = predictions.get_column("date").unique().sort()
    ex_date = days[days.len() // 2]
    # one 10 % dividend on every traded ticker, inside the backtest period: closes before
    # the ex-date are scaled down by 0.9, so held positions see a different return there
    factor = pl.when(pl.col("date") < ex_date).then(0.9).otherwise(1.0)
    with_adj = bars.with_columns(
        adj_close=pl.when(pl.col("ticker").is_in(list(TRADED)))
        .then(pl.col("close") * factor)
        .otherwise(pl.col("close"))
    )
    data_dir = tmp_path / "data"
    BarStore(data_dir).write(with_adj, source="test")
    adjusted, basis = apply_prices(with_adj, "adjusted")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "predictions.parquet"
    predictions.write_parquet(path)
    data = {"data_dir": str(data_dir), "prices": basis.to_dict()}
    (run_dir / "run.json").write_text(json.dumps({"status": "complete", "data": data}))
    got = run_backtest_job(path, settings(n_null=0))
    conf = load_out_of_sample_confidence(path, "momentum_persistence")
    want = run_backtest(adjusted.drop("adj_close"), conf, settings(n_null=0))
    raw = run_backtest(bars, conf, settings(n_null=0))
    np.testing.assert_allclose(got.unfiltered.returns, want.unfiltered.returns, atol=1e-14)
    assert not np.allclose(got.unfiltered.returns, raw.unfiltered.returns, atol=1e-6)
