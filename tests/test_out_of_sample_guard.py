"""The out-of-sample guard is recomputed from train_end and the embargo, never read from the file.

A predictions file states each model's ``train_end`` and ``embargo_end``.
The guard every consumer applies is ``train_end`` plus ``embargo_days``
trading days of the bar calendar (business days when no bar calendar is
known); rows on or before it and files whose ``embargo_end`` understates it
are refused. The reference below counts days in a plain Python loop.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backtest.meta_labeling import load_out_of_sample_confidence
from engine.backtest.simulation import BacktestSettings
from engine.data.store import BarStore
from engine.jobs.backtest import run_backtest_job
from engine.jobs.validate import run_validate_job
from engine.labels.targets import CONFIDENCE_SUFFIX, PATTERN_NAMES
from engine.model.artifacts import ARTIFACT_FORMAT, sha256_file
from engine.model.out_of_sample import DEFAULT_EMBARGO_DAYS, bar_calendar, embargo_guard
from engine.model.prediction_sources import resolve_prediction_source
from engine.model.run_files import check_predictions

DAY = dt.timedelta(days=1)
#: Weekdays on which the test exchange is closed.
HOLIDAYS = {dt.date(2021, 5, 31), dt.date(2021, 7, 5), dt.date(2021, 9, 6), dt.date(2021, 9, 7)}


def naive_guard(train_end: dt.date, k: int, trading_days: list[dt.date] | None) -> dt.date:
    """The k-th trading day strictly after train_end (weekdays without a calendar)."""
    if k == 0:
        return train_end
    if trading_days is not None:
        return [d for d in trading_days if d > train_end][k - 1]
    day, count = train_end, 0
    while count < k:
        day += DAY
        count += day.weekday() < 5
    return day


def trading_days(start=dt.date(2021, 1, 4), end=dt.date(2021, 12, 31)) -> list[dt.date]:
    days, day = [], start
    while day <= end:
        if day.weekday() < 5 and day not in HOLIDAYS:
            days.append(day)
        day += DAY
    return days


CALENDAR = trading_days()


def make_bars(tickers=("AAA", "BBB", "SPY"), days=CALENDAR, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for ticker in tickers:
        close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        frames.append(
            pl.DataFrame(
                {
                    "ticker": ticker,
                    "date": days,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": 1e6,
                }
            )  # fmt: skip
        )
    return pl.concat(frames)


def make_predictions(
    train_end: dt.date,
    embargo_end: dt.date,
    first: dt.date,
    last: dt.date,
    tickers=("AAA", "BBB"),
    model_id: str = "wf00",
    seed: int = 0,
) -> pl.DataFrame:
    """One model's predictions on every trading day of [first, last]."""
    rng = np.random.default_rng(seed)
    days = [d for d in CALENDAR if first <= d <= last]
    rows = [(t, d) for d in days for t in tickers]
    n = len(rows)
    frame = pl.DataFrame({
        "ticker": [t for t, _ in rows], "date": [d for _, d in rows],
        "t1": [d + 7 * DAY for _, d in rows], "model_id": model_id,
        "train_end": train_end, "embargo_end": embargo_end,
    })  # fmt: skip
    cols = {}
    for p in PATTERN_NAMES:
        y = (rng.uniform(size=n) < 0.4).astype(np.float64)
        cols[p + CONFIDENCE_SUFFIX] = pl.Series(rng.uniform(size=n))
        cols[p] = pl.Series(y).cast(pl.Int8)
    return frame.with_columns(**cols)


# ------------------------------------------------------------------------ the guard itself


@settings(max_examples=80, deadline=None)
@given(
    offset=st.integers(0, 200),
    k=st.integers(0, 15),
    holes=st.sets(st.integers(0, 259), max_size=40),
)
def test_embargo_guard_counts_trading_days_of_the_calendar(offset, k, holes):
    days = [d for i, d in enumerate(CALENDAR) if i not in holes]
    train_end = dt.date(2021, 1, 6) + offset * DAY  # any day, weekends and holes included
    got = embargo_guard(np.array([train_end], "datetime64[D]"), k, np.array(days, "datetime64[D]"))
    assert got[0].astype(dt.date) == naive_guard(train_end, k, days)


@settings(max_examples=80, deadline=None)
@given(offset=st.integers(0, 400), k=st.integers(0, 15))
def test_embargo_guard_without_a_calendar_counts_weekdays(offset, k):
    train_end = dt.date(2020, 1, 1) + offset * DAY
    got = embargo_guard(np.array([train_end], "datetime64[D]"), k)
    assert got[0].astype(dt.date) == naive_guard(train_end, k, None)


def test_embargo_guard_past_the_end_of_the_calendar_keeps_counting_weekdays():
    days = np.array(CALENDAR, "datetime64[D]")
    train_end = CALENDAR[-2]  # 2021-12-30: one trading day left in the calendar
    got = embargo_guard(np.array([train_end], "datetime64[D]"), 5, days)[0].astype(dt.date)
    assert got == naive_guard(CALENDAR[-1], 4, None) == dt.date(2022, 1, 6)


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 220), k=st.integers(0, 10))
def test_an_honest_embargo_end_always_passes(offset, k):
    """The training run's own embargo end (engine.model.runs) is never refused."""
    from engine.model.run_windows import _embargo_end

    calendar = np.array(CALENDAR, "datetime64[D]")
    train_end = calendar[offset]
    honest = _embargo_end(calendar, train_end, k)
    for cal in (calendar, None):  # with the bar calendar, and in business days
        assert embargo_guard(np.array([train_end]), k, cal)[0] <= honest


# ------------------------------------------------------------------------ check_predictions


def test_rows_before_train_end_are_refused_whatever_embargo_end_says():
    """The issue's case: embargo_end claims the rows are out of sample; train_end says not."""
    frame = make_predictions(
        train_end=dt.date(2021, 6, 30),
        embargo_end=dt.date(2021, 5, 31),  # a lie: before train_end
        first=dt.date(2021, 6, 1),
        last=dt.date(2021, 8, 31),
    )
    with pytest.raises(ValueError, match="in-sample") as info:
        check_predictions(frame, source="leaky.parquet")
    text = str(info.value)
    for part in ("leaky.parquet", "ticker AAA", "date 2021-06-01", "model_id wf00",
                 "train_end 2021-06-30", "5 business days"):  # fmt: skip
        assert part in text, text


def test_an_understated_embargo_end_is_refused():
    """Every row is after the recomputed guard, but the file's embargo_end is earlier."""
    frame = make_predictions(
        train_end=dt.date(2021, 6, 1),
        embargo_end=dt.date(2021, 6, 2),  # 1 day of embargo instead of 5
        first=dt.date(2021, 6, 15),
        last=dt.date(2021, 8, 31),
    )
    with pytest.raises(ValueError, match="embargo_end") as info:
        check_predictions(frame, source="short.parquet")
    text = str(info.value)
    assert "wf00" in text and "2021-06-02" in text and "2021-06-08" in text, text


def test_the_bar_calendar_is_stricter_than_business_days():
    """Holidays inside the embargo push the guard later; only the calendar knows them."""
    # train_end Fri 2021-09-03; Mon 6 and Tue 7 are closed: 5 weekdays end Fri 2021-09-10,
    # 5 trading days (Wed 8, Thu 9, Fri 10, Mon 13, Tue 14) end Tue 2021-09-14
    train_end = dt.date(2021, 9, 3)
    by_calendar = naive_guard(train_end, 5, CALENDAR)
    by_weekday = naive_guard(train_end, 5, None)
    assert (by_weekday, by_calendar) == (dt.date(2021, 9, 10), dt.date(2021, 9, 14))
    frame = make_predictions(train_end, by_weekday, dt.date(2021, 9, 13), dt.date(2021, 10, 29))
    calendar = np.array(CALENDAR, "datetime64[D]")
    checked, _ = check_predictions(frame)  # business days: 2021-09-13 is out of sample
    assert checked.height == frame.height
    with pytest.raises(ValueError, match=r"in-sample.*date 2021-09-13.*2021-09-14"):
        check_predictions(frame, calendar=calendar, embargo_days=5)
    # the honest file (embargo_end on the calendar) passes both ways
    honest = make_predictions(train_end, by_calendar, dt.date(2021, 9, 15), dt.date(2021, 10, 29))
    assert check_predictions(honest, calendar=calendar, embargo_days=5)[0].height == honest.height
    # a longer recorded embargo is honoured
    with pytest.raises(ValueError, match="in-sample"):
        check_predictions(honest, calendar=calendar, embargo_days=8)


def test_default_embargo_is_the_engines():
    from engine.model.runs import RunSettings

    assert DEFAULT_EMBARGO_DAYS == RunSettings().embargo_days


# ------------------------------------------------------------------------ jobs


def write_store(root: Path) -> Path:
    data_dir = root / "data"
    BarStore(data_dir).write(make_bars(), source="test")
    return data_dir


def write_run(root: Path, frame: pl.DataFrame, data_dir: Path | None, embargo_days=5) -> Path:
    """A run directory whose run.json records the settings and data the guard needs."""
    out = root / "run"
    windows = []
    for model_id in frame.get_column("model_id").unique().sort().to_list():
        artifact = out / "models" / model_id
        artifact.mkdir(parents=True)
        pl.DataFrame(
            {"epoch": [1, 2], "train_loss": [0.7, 0.6], "val_loss": [0.7, 0.65]}
        ).write_csv(artifact / "history.csv")
        frame.filter(pl.col("model_id") == model_id).write_parquet(
            artifact / "test_predictions.parquet"
        )
        files = {p.name: sha256_file(p) for p in sorted(artifact.iterdir())}
        metadata = {"model_id": model_id, "pattern_names": list(PATTERN_NAMES),
                    "format": ARTIFACT_FORMAT, "files": files}  # fmt: skip
        (artifact / "metadata.json").write_text(json.dumps(metadata))
        windows.append({"model_id": model_id, "artifact": f"models/{model_id}"})
    frame.write_parquet(out / "predictions.parquet")
    run = {
        "status": "complete",
        "pattern_names": list(PATTERN_NAMES),
        "settings": {"embargo_days": embargo_days},
        "data": {"data_dir": str(data_dir) if data_dir else None, "tickers": ["AAA", "BBB"]},
        "windows": windows,
    }
    (out / "run.json").write_text(json.dumps(run))
    return out


@pytest.fixture
def holiday_leak() -> pl.DataFrame:
    """Out of sample in business days, in-sample on the bar calendar (2021-09-13)."""
    return make_predictions(
        dt.date(2021, 9, 3), dt.date(2021, 9, 10), dt.date(2021, 9, 13), dt.date(2021, 11, 30)
    )


def test_validate_uses_the_runs_bar_calendar_and_embargo(tmp_path, holiday_leak):
    data_dir = write_store(tmp_path)
    run = write_run(tmp_path, holiday_leak, data_dir)
    source = resolve_prediction_source(run)
    assert source.embargo_days == 5
    np.testing.assert_array_equal(source.calendar, np.array(CALENDAR, "datetime64[D]"))
    with pytest.raises(ValueError, match=r"in-sample.*ticker AAA, date 2021-09-13, model_id wf00"):
        run_validate_job(run, n_boot=20)
    # the bare file beside the run also finds run.json, hence the calendar
    with pytest.raises(ValueError, match="in-sample"):
        run_validate_job(predictions=run / "predictions.parquet", n_boot=20)


def test_validate_of_a_bare_file_falls_back_to_business_days_and_says_so(tmp_path, holiday_leak):
    path = tmp_path / "predictions.parquet"
    holiday_leak.write_parquet(path)
    report = run_validate_job(predictions=path, n_boot=20)
    assert report.rows == holiday_leak.height
    assert any("business days" in n and "5" in n for n in report.notes), report.notes


def test_validate_without_the_runs_bars_falls_back_and_says_so(tmp_path, holiday_leak):
    run = write_run(tmp_path, holiday_leak, tmp_path / "moved")
    report = run_validate_job(run, n_boot=20)
    assert any("business days" in n for n in report.notes), report.notes


def test_validate_honours_the_runs_recorded_embargo(tmp_path):
    data_dir = write_store(tmp_path)
    frame = make_predictions(  # honest for 5 days, not for 10
        dt.date(2021, 6, 1), naive_guard(dt.date(2021, 6, 1), 5, CALENDAR),
        dt.date(2021, 6, 9), dt.date(2021, 9, 30),
    )  # fmt: skip
    ok = write_run(tmp_path / "a", frame, data_dir, embargo_days=5)
    assert run_validate_job(ok, n_boot=20).rows == frame.height
    strict = write_run(tmp_path / "b", frame, data_dir, embargo_days=10)
    with pytest.raises(ValueError, match="in-sample"):
        run_validate_job(strict, n_boot=20)


def test_backtest_refuses_rows_before_train_end(tmp_path):
    data_dir = write_store(tmp_path)
    frame = make_predictions(
        dt.date(2021, 6, 30), dt.date(2021, 5, 31), dt.date(2021, 6, 1), dt.date(2021, 11, 30)
    )
    path = tmp_path / "predictions.parquet"
    frame.write_parquet(path)
    with pytest.raises(ValueError, match=r"in-sample.*ticker AAA, date 2021-06-01, model_id wf00"):
        run_backtest_job(path, BacktestSettings(n_null=10, n_boot=20), data_dir=data_dir)
    with pytest.raises(ValueError, match="in-sample"):
        load_out_of_sample_confidence(path, "momentum_persistence")


def test_backtest_uses_the_bar_calendar(tmp_path, holiday_leak):
    data_dir = write_store(tmp_path)
    run = write_run(tmp_path, holiday_leak, data_dir)
    with pytest.raises(ValueError, match=r"in-sample.*date 2021-09-13"):
        run_backtest_job(run / "predictions.parquet", BacktestSettings(n_null=10, n_boot=20))
    # without run.json, the store given is still the bar calendar
    bare = tmp_path / "bare.parquet"
    holiday_leak.write_parquet(bare)
    with pytest.raises(ValueError, match=r"in-sample.*date 2021-09-13"):
        run_backtest_job(bare, BacktestSettings(n_null=10, n_boot=20), data_dir=data_dir)


def test_bar_calendar_of_a_store(tmp_path):
    data_dir = write_store(tmp_path)
    np.testing.assert_array_equal(
        bar_calendar(data_dir, ["AAA"]), np.array(CALENDAR, "datetime64[D]")
    )
    assert bar_calendar(data_dir, ["AAA", "ZZZ"]) is None  # a ticker without bars: unknown
    assert bar_calendar(tmp_path / "nowhere", ["AAA"]) is None
    assert bar_calendar(None, ["AAA"]) is None
