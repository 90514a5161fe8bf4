"""Meta-labeling: out-of-sample confidences, signal outcomes and the filter."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backtest.meta_labeling import (
    DEFAULT_THRESHOLD,
    load_out_of_sample_confidence,
    meta_label,
    signal_outcomes,
)
from engine.labels.targets import CONFIDENCE_SUFFIX, PATTERN_NAMES
from engine.model.run_files import PREDICTION_KEYS

HEAD = "trend_exhaustion"
D0 = dt.date(2021, 3, 1)


def make_predictions(n_dates: int = 30, tickers=("BBB", "AAA"), seed: int = 0) -> pl.DataFrame:
    """A predictions frame in the training-run layout: two walk-forward models."""
    rng = np.random.default_rng(seed)
    rows = {c: [] for c in PREDICTION_KEYS}
    for i in range(n_dates):
        day = D0 + dt.timedelta(days=i)
        second = i >= n_dates // 2
        first_day = D0 + dt.timedelta(days=n_dates // 2 if second else 0)
        for ticker in tickers:
            rows["ticker"].append(ticker)
            rows["date"].append(day)
            rows["t1"].append(day + dt.timedelta(days=7))
            rows["model_id"].append("wf01" if second else "wf00")
            rows["train_end"].append(first_day - dt.timedelta(days=10))
            rows["embargo_end"].append(first_day - dt.timedelta(days=1))
    frame = pl.DataFrame(rows)
    n = frame.height
    cols = {}
    for p in PATTERN_NAMES:
        cols[p + CONFIDENCE_SUFFIX] = pl.Series(rng.uniform(size=n).astype(np.float32))
    for p in PATTERN_NAMES:
        y = rng.integers(0, 2, n).astype(np.float64)
        y[rng.uniform(size=n) < 0.3] = np.nan
        cols[p] = pl.Series(y).fill_nan(None).cast(pl.Int8)
    return frame.with_columns(**cols)


def write(frame: pl.DataFrame, tmp_path, name: str = "predictions.parquet"):
    path = tmp_path / name
    frame.write_parquet(path)
    return path


# --------------------------------------------------------------------------- loading


def test_loads_one_heads_confidence(tmp_path):
    frame = make_predictions()
    conf = load_out_of_sample_confidence(write(frame, tmp_path), HEAD)
    assert conf.columns == ["ticker", "date", "model_id", "embargo_end", "confidence"]
    assert conf.schema["confidence"] == pl.Float64
    assert conf.height == frame.height
    assert conf.equals(conf.sort("ticker", "date"))
    expected = frame.sort("ticker", "date").get_column(HEAD + CONFIDENCE_SUFFIX).cast(pl.Float64)
    np.testing.assert_array_equal(conf.get_column("confidence").to_numpy(), expected.to_numpy())
    other = load_out_of_sample_confidence(write(frame, tmp_path), "momentum_persistence")
    assert not np.array_equal(other["confidence"].to_numpy(), conf["confidence"].to_numpy())


def test_rows_without_a_confidence_are_dropped(tmp_path):
    frame = make_predictions().with_row_index("i")
    frame = frame.with_columns(
        pl.when(pl.col("i") % 4 == 0).then(None).otherwise(pl.col(HEAD + CONFIDENCE_SUFFIX))
        .alias(HEAD + CONFIDENCE_SUFFIX),
        pl.when(pl.col("i") % 4 == 0).then(None).otherwise(pl.col(HEAD)).alias(HEAD),
    ).drop("i")  # fmt: skip
    conf = load_out_of_sample_confidence(write(frame, tmp_path), HEAD)
    assert conf.height == frame.height - frame.height // 4 - (frame.height % 4 > 0)
    assert conf.get_column("confidence").null_count() == 0


@pytest.mark.parametrize("same_day", [True, False])
def test_in_sample_rows_are_refused_naming_ticker_date_and_model(tmp_path, same_day):
    frame = make_predictions().with_row_index("i")
    # one row of wf01 (dated 2021-03-20) whose model's embargo ends on / after its date
    leak_day = D0 + dt.timedelta(days=19)
    embargo = leak_day if same_day else leak_day + dt.timedelta(days=3)
    hit = (pl.col("ticker") == "BBB") & (pl.col("date") == leak_day)
    frame = frame.with_columns(
        embargo_end=pl.when(hit).then(pl.lit(embargo)).otherwise(pl.col("embargo_end"))
    ).drop("i")
    path = write(frame, tmp_path)
    with pytest.raises(ValueError, match="in-sample") as info:
        load_out_of_sample_confidence(path, HEAD)
    text = str(info.value)
    assert "BBB" in text and "2021-03-20" in text and "wf01" in text
    assert str(path) in text


def test_in_sample_refused_even_when_the_heads_confidence_is_null(tmp_path):
    frame = make_predictions()
    frame = frame.with_columns(
        embargo_end=pl.when(pl.col("date") == D0).then(pl.lit(D0)).otherwise("embargo_end"),
        **{
            HEAD + CONFIDENCE_SUFFIX: pl.when(pl.col("date") == D0)
            .then(None)
            .otherwise(pl.col(HEAD + CONFIDENCE_SUFFIX)),
            HEAD: pl.when(pl.col("date") == D0).then(None).otherwise(pl.col(HEAD)),
        },
    )
    with pytest.raises(ValueError, match="in-sample"):
        load_out_of_sample_confidence(write(frame, tmp_path), HEAD)


def test_a_day_scored_by_two_models_is_refused(tmp_path):
    frame = make_predictions()
    extra = frame.filter((pl.col("ticker") == "AAA") & (pl.col("date") == D0 + dt.timedelta(20)))
    extra = extra.with_columns(model_id=pl.lit("wf99"))
    path = write(pl.concat([frame, extra]), tmp_path)
    with pytest.raises(ValueError, match="duplicate") as info:
        load_out_of_sample_confidence(path, HEAD)
    assert "AAA" in str(info.value) and "2021-03-21" in str(info.value)


@pytest.mark.parametrize("value", [1.5, -0.01, float("nan")])
@pytest.mark.parametrize("with_outcome", [True, False])
def test_confidence_outside_unit_interval_is_refused(tmp_path, value, with_outcome):
    frame = make_predictions().with_row_index("i")
    conf = HEAD + CONFIDENCE_SUFFIX
    frame = frame.with_columns(
        pl.when(pl.col("i") == 7).then(pl.lit(value, dtype=pl.Float32)).otherwise(conf)
        .alias(conf),
        pl.when(pl.col("i") == 7).then(pl.lit(1 if with_outcome else None, dtype=pl.Int8))
        .otherwise(HEAD).alias(HEAD),
    ).drop("i")  # fmt: skip
    with pytest.raises(ValueError, match=r"\[0, 1\]") as info:
        load_out_of_sample_confidence(write(frame, tmp_path), HEAD)
    assert conf in str(info.value)


def test_the_bounds_of_the_unit_interval_are_accepted(tmp_path):
    frame = make_predictions().with_row_index("i")
    conf = HEAD + CONFIDENCE_SUFFIX
    frame = frame.with_columns(
        pl.when(pl.col("i") == 3).then(0.0).when(pl.col("i") == 4).then(1.0).otherwise(conf)
        .alias(conf)
    ).drop("i")  # fmt: skip
    out = load_out_of_sample_confidence(write(frame, tmp_path), HEAD)
    assert {0.0, 1.0} <= set(out.get_column("confidence").to_list())


def test_missing_file_and_missing_head(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_out_of_sample_confidence(tmp_path / "nope.parquet", HEAD)
    frame = make_predictions().drop(HEAD + CONFIDENCE_SUFFIX)
    with pytest.raises(ValueError, match=HEAD):
        load_out_of_sample_confidence(write(frame, tmp_path), HEAD)


# --------------------------------------------------------------------------- meta_label


def _signals(values, ticker="A"):
    days = [D0 + dt.timedelta(days=i) for i in range(len(values))]
    return pl.DataFrame(
        {"ticker": [ticker] * len(values), "date": days, "signal": values},
        schema={"ticker": pl.String, "date": pl.Date, "signal": pl.Int8},
    )


def _confidence(values, ticker="A"):
    days = [D0 + dt.timedelta(days=i) for i, v in enumerate(values) if v is not None]
    conf = [v for v in values if v is not None]
    return pl.DataFrame(
        {"ticker": [ticker] * len(conf), "date": days, "confidence": conf},
        schema={"ticker": pl.String, "date": pl.Date, "confidence": pl.Float64},
    )


def test_meta_label_takes_confident_nonzero_signals_boundary_included():
    sig = _signals([1, -1, 1, -1, 0, 1, -1, 1])
    conf = _confidence([0.6, 0.6, 0.59999, 0.9, 0.99, None, 1.0, 0.0])
    out = meta_label(sig, conf, 0.6).sort("date")
    assert out.get_column("taken").to_list() == [
        True, True, False, True, False, False, True, False,
    ]  # fmt: skip
    assert out.get_column("filtered_signal").to_list() == [1, -1, 0, -1, 0, 0, -1, 0]
    assert out.schema["filtered_signal"] == pl.Int8
    assert out.get_column("confidence").to_list()[5] is None
    assert out.get_column("signal").to_list() == sig.get_column("signal").to_list()
    assert meta_label(sig, conf).equals(meta_label(sig, conf, DEFAULT_THRESHOLD))
    assert DEFAULT_THRESHOLD == 0.6


def test_meta_label_never_takes_a_nan_confidence():
    # Polars sorts NaN above every number; a NaN must count as no confidence.
    sig = _signals([1, -1, 1])
    conf = _confidence([float("nan"), 0.7, float("nan")])
    out = meta_label(sig, conf, 0.6).sort("date")
    assert out.get_column("taken").to_list() == [False, True, False]
    assert out.get_column("filtered_signal").to_list() == [0, -1, 0]


def test_meta_label_thresholds_zero_and_one():
    sig = _signals([1, -1, 1, 0, -1])
    conf = _confidence([0.0, 0.3, None, 0.5, 1.0])
    zero = meta_label(sig, conf, 0.0).sort("date")
    assert zero.get_column("taken").to_list() == [True, True, False, False, True]
    one = meta_label(sig, conf, 1.0).sort("date")
    assert one.get_column("filtered_signal").to_list() == [0, 0, 0, 0, -1]


def test_meta_label_keeps_other_columns_and_matches_per_ticker():
    a = _signals([1, 1, 1], "A").with_columns(outcome=pl.Series([1, 0, None], dtype=pl.Int8))
    b = _signals([-1, -1, -1], "B").with_columns(outcome=pl.Series([0, 0, 1], dtype=pl.Int8))
    conf = pl.concat([_confidence([0.9, 0.1, 0.9], "A"), _confidence([0.1, 0.9, 0.1], "B")])
    out = meta_label(pl.concat([a, b]), conf, 0.5).sort("ticker", "date")
    assert out.get_column("outcome").to_list() == [1, 0, None, 0, 0, 1]
    assert out.get_column("filtered_signal").to_list() == [1, 0, 1, 0, -1, 0]


@pytest.mark.parametrize("threshold", [-0.1, 1.01, float("nan")])
def test_meta_label_refuses_a_threshold_outside_unit_interval(threshold):
    with pytest.raises(ValueError, match="threshold"):
        meta_label(_signals([1]), _confidence([0.5]), threshold)


@settings(max_examples=50, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from([-1, 0, 1]),
            st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1)),
        ),
        min_size=1,
        max_size=40,
    ),
    threshold=st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1)),
)
def test_meta_label_matches_a_plain_loop(data, threshold):
    sig = _signals([s for s, _ in data])
    conf = _confidence([c for _, c in data])
    out = meta_label(sig, conf, threshold).sort("date")
    taken = [s != 0 and c is not None and c >= threshold for s, c in data]
    assert out.get_column("taken").to_list() == taken
    assert out.get_column("filtered_signal").to_list() == [
        s if k else 0 for (s, _), k in zip(data, taken, strict=True)
    ]


# --------------------------------------------------------------------------- outcomes


def _bars(closes: dict[str, list]) -> pl.DataFrame:
    frames = []
    for ticker, close in closes.items():
        days = [D0 + dt.timedelta(days=i) for i in range(len(close))]
        frames.append(
            pl.DataFrame(
                {"ticker": [ticker] * len(close), "date": days, "close": close},
                schema={"ticker": pl.String, "date": pl.Date, "close": pl.Float64},
            )
        )
    return pl.concat(frames)


def test_signal_outcomes_match_a_hand_computation():
    bars = _bars({
        "A": [100.0, 101.0, 100.0, 99.0, 102.0, 103.0],
        "B": [50.0, 40.0, None, 45.0, 30.0, 60.0, 61.0],
    })  # fmt: skip
    sig = pl.concat([_signals([1, -1, -1, 0, -1, 1], "A"), _signals([1, 1, -1, -1, 1, 1, 1], "B")])
    out = signal_outcomes(bars, sig, horizon=2).sort("ticker", "date")
    assert out.columns == ["ticker", "date", "signal", "outcome"]
    assert out.schema["outcome"] == pl.Int8
    # A: t0 100 -> 100 is a zero move (0); t1 101 -> 99 short right (1); t2 100 -> 102
    # short wrong (0); t3 flat signal (null); t4, t5 no close two rows later (null)
    assert out.filter(pl.col("ticker") == "A").get_column("outcome").to_list() == [
        0, 1, 0, None, None, None,
    ]  # fmt: skip
    # B: t0 50 -> missing (null); t1 40 -> 45 long right (1); t2 missing close (null);
    # t3 45 -> 60 short wrong (0); t4 30 -> 61 long right (1); t5, t6 at the end (null)
    assert out.filter(pl.col("ticker") == "B").get_column("outcome").to_list() == [
        None, 1, None, 0, 1, None, None,
    ]  # fmt: skip


def test_signal_outcomes_rows_order_and_horizon():
    rng = np.random.default_rng(1)
    close = list(100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, 40))))
    bars = _bars({"A": close, "B": close[::-1]})
    sig = pl.concat([_signals([1, -1] * 20, "A"), _signals([-1, 1] * 20, "B")])
    for h in (1, 5):
        out = signal_outcomes(bars.sample(fraction=1.0, shuffle=True, seed=h), sig, horizon=h)
        out = out.sort("ticker", "date")
        for k, ticker in enumerate("AB"):
            c = np.asarray(close if ticker == "A" else close[::-1])
            s = np.asarray([1, -1] * 20) * (1 if ticker == "A" else -1)
            got = out.filter(pl.col("ticker") == ticker).get_column("outcome").to_list()
            assert got[-h:] == [None] * h
            want = [int(s[t] * math.log(c[t + h] / c[t]) > 0) for t in range(40 - h)]
            assert got[:-h] == want, (ticker, k, h)
    with pytest.raises(ValueError, match="horizon"):
        signal_outcomes(bars, sig, horizon=0)
