"""Regressions found by a review of the real-data path (issue 17), one section per finding."""

from __future__ import annotations

import datetime as dt
import pickle

import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.bars import BarsValidationError, check_bars
from engine.data.importer import import_bars
from engine.data.store import BarStore
from engine.serving.history import StoredHistory


def bars(dates, tickers=None, **columns) -> pl.DataFrame:
    n = len(dates)
    frame = {
        "ticker": tickers or ["AAPL"] * n,
        "date": dates,
        "open": [10.0] * n,
        "high": [11.0] * n,
        "low": [9.0] * n,
        "close": [10.5] * n,
        "volume": [1000.0] * n,
    }
    frame.update(columns)
    return pl.DataFrame(frame)


# ------------------------------------------- typed dates: null and implausible are refused

TYPED_BAD_DATES = [dt.date(2020, 1, 2), None, dt.date(2999, 1, 1)]


@pytest.mark.parametrize(
    "dates",
    [
        pytest.param(TYPED_BAD_DATES, id="Date"),
        pytest.param(
            [
                None if d is None else dt.datetime(d.year, d.month, d.day, 16)
                for d in TYPED_BAD_DATES
            ],
            id="Datetime",
        ),
    ],
)
def test_typed_null_and_implausible_dates_are_unparsable(dates):
    result = check_bars(bars(dates), source="long.parquet")
    assert result.bars["date"].to_list() == [dt.date(2020, 1, 2)]
    assert [(v.row, v.ticker, v.rule) for v in result.violations] == [
        (2, "AAPL", "unparsable_date"),
        (3, "AAPL", "unparsable_date"),
    ]
    assert [v.detail for v in result.violations] == ["date is empty", "date='2999-01-01'"]


def test_a_parquet_source_with_a_null_date_is_refused_naming_file_row_and_ticker(tmp_path):
    bars(TYPED_BAD_DATES).write_parquet(tmp_path / "long.parquet")
    store = BarStore(tmp_path / "data")
    with pytest.raises(BarsValidationError) as info:
        import_bars(tmp_path / "long.parquet", store)
    message = str(info.value)
    assert "long.parquet" in message and "row 2" in message and "AAPL" in message
    assert "unparsable_date" in message and "2999-01-01" in message
    assert store.tickers() == []


def test_store_write_refuses_a_typed_null_date(tmp_path):
    store = BarStore(tmp_path / "data")
    with pytest.raises(BarsValidationError, match="unparsable_date"):
        store.write(bars([dt.date(2020, 1, 2), None]))
    assert store.tickers() == []


# ------------------------------------------- repair widens only the repaired rows


def test_repair_keeps_rows_within_the_tolerance_bit_for_bit(tmp_path):
    noisy_high = 10.499999999999998  # below close=10.5 by ~2e-16 relative: tolerated
    frame = bars(
        [dt.date(2020, 1, 2), dt.date(2020, 1, 3), dt.date(2020, 1, 6)],
        open=[10.0, 10.0, 12.0],  # row 2's open lies above its high: repaired
        high=[noisy_high, 11.0, 11.0],
        low=[9.0, 9.0, 9.0],
        close=[10.5, 10.5, 10.5],
    )
    result = check_bars(frame, repair=True)
    assert result.tolerated == {"AAPL": 1}
    assert result.repaired["source_row"].to_list() == [3]
    assert result.bars["high"].to_list() == [noisy_high, 11.0, 12.0]
    assert result.bars["low"].to_list() == [9.0, 9.0, 9.0]

    src = tmp_path / "src"
    src.mkdir()
    frame.drop("ticker").write_csv(src / "SPY.csv")
    store = BarStore(tmp_path / "data")
    import_bars(src, store, on_bad_rows="repair")
    stored = store.read_bars(["SPY"])
    assert stored["high"].to_list() == [noisy_high, 11.0, 12.0]


# ------------------------------------------- POST /v1/bars keeps the import's OHLC tolerance


def test_append_after_an_import_with_a_custom_tolerance(tmp_path):
    days = [dt.date(2020, 1, 2), dt.date(2020, 1, 3)]
    # high below close by 1e-7 relative: inside --ohlc-tolerance 1e-6, outside the default
    frame = bars(days, high=[10.5 * (1 - 1e-7), 11.0]).drop("ticker")
    src = tmp_path / "src"
    src.mkdir()
    frame.write_csv(src / "SPY.csv")
    store = BarStore(tmp_path / "data")
    import_bars(src, store, tolerance=1e-6)
    stored = store.read_bars(["SPY"])

    history = StoredHistory(store)
    good = bars([dt.date(2020, 1, 6)], tickers=["SPY"]).with_columns(pl.col("date").cast(str))
    report = history.append(good)
    assert report.appended == {"SPY": 1}
    after = store.read_bars(["SPY"])
    assert after.head(2).equals(stored)  # the imported bars are stored as they were
    assert store.metadata()["tickers"]["SPY"]["extra"]["ohlc_tolerance"] == 1e-6

    # the appended rows themselves are judged by the default rule, numbered as sent
    noisy = bars(
        [dt.date(2020, 1, 7), dt.date(2020, 1, 8)],
        tickers=["SPY"] * 2,
        high=[11.0, 10.5 * (1 - 1e-7)],
    ).with_columns(pl.col("date").cast(str))
    with pytest.raises(BarsValidationError) as info:
        history.append(noisy)
    assert [(v.row, v.rule) for v in info.value.violations] == [(2, "high_below_open_close")]
    assert store.read_bars(["SPY"]).height == 3


# ------------------------------------------- BarStore.write: one ticker whatever its case


def test_store_write_sees_tickers_that_differ_only_in_case_as_one(tmp_path):
    store = BarStore(tmp_path / "data")
    frame = bars(
        [dt.date(2020, 1, 2)] * 2 + [dt.date(2020, 1, 3)], tickers=["aapl", " AAPL", "aapl"]
    )
    with pytest.raises(BarsValidationError) as info:
        store.write(frame)
    assert [(v.row, v.ticker, v.rule) for v in info.value.violations] == [
        (2, "AAPL", "duplicate_date")
    ]
    assert store.tickers() == []
    store.write(frame.slice(1))
    assert store.read_bars()["date"].to_list() == [dt.date(2020, 1, 2), dt.date(2020, 1, 3)]


# ------------------------------------------- rows without a valid ticker are kept per source

HEADER = "ticker,date,open,high,low,close,volume"


def test_rows_with_invalid_tickers_from_two_imports_are_both_kept(tmp_path):
    store = BarStore(tmp_path / "data")
    good = "2020-01-02,10,11,9,10.5,1000"
    first = tmp_path / "first.csv"
    first.write_text(f"{HEADER}\nAAPL,{good}\na/b,{good}\n")
    second = tmp_path / "second.csv"
    second.write_text(f"{HEADER}\nMSFT,{good}\n,{good}\nbad ticker!,{good}\n")
    import_bars(first, store, on_bad_rows="drop")
    report = import_bars(second, store, on_bad_rows="drop")
    assert report.dropped_rows == {"_invalid_ticker.second": 2}

    def kept(name):
        path = store.rejected_dir / f"_invalid_ticker.{name}.csv"
        return pl.read_csv(path, infer_schema=False).select("source_row", "ticker").rows()

    assert kept("first") == [("2", "a/b")]
    assert kept("second") == [("2", None), ("3", "bad ticker!")]
    assert store.tickers() == ["AAPL", "MSFT"]


# ------------------------------------------- duplicate dates: the first *good* row is kept


@pytest.mark.parametrize("repair", [False, True])
def test_a_bad_row_before_the_real_one_does_not_lose_the_date(repair):
    day = dt.date(2020, 1, 3)
    frame = pl.DataFrame(
        {  # a Yahoo "null" line, then the real bar of the same date, then a true duplicate
            "ticker": ["SPY"] * 4,
            "date": ["2020-01-02", "2020-01-03", "2020-01-03", "2020-01-03"],
            "open": ["10", "null", "10", "10"],
            "high": ["11", "null", "11", "11"],
            "low": ["9", "null", "9", "9"],
            "close": ["10.5", "null", "10.5", "10.5"],
            "volume": ["1000", "null", "1000", "1000"],
        }
    )
    result = check_bars(frame, repair=repair)
    assert result.bars["date"].to_list() == [dt.date(2020, 1, 2), day]
    by_row = {(v.row, v.rule) for v in result.violations}
    assert (2, "unparsable_number") in by_row and (4, "duplicate_date") in by_row
    assert (2, "duplicate_date") not in by_row and all(r != 3 for r, _ in by_row)


def test_a_repairable_row_first_is_kept_only_when_repairing():
    frame = bars(
        [dt.date(2020, 1, 2)] * 2, open=[12.0, 10.0]
    )  # row 1: open above high (repairable); row 2: a clean bar of the same date
    dropped = check_bars(frame)
    assert dropped.bars["open"].to_list() == [10.0]
    assert {(v.row, v.rule) for v in dropped.violations} == {(1, "high_below_open_close")}
    repaired = check_bars(frame, repair=True)
    assert repaired.bars["open"].to_list() == [12.0]
    assert [(v.row, v.rule) for v in repaired.violations] == [(2, "duplicate_date")]


# ------------------------------------------- BarStore pickles (Ray, multiprocessing)


def test_a_store_survives_a_pickle_round_trip_even_while_locked(tmp_path):
    store = BarStore(tmp_path / "data")
    store.write(bars([dt.date(2020, 1, 2)]))
    with store.lock():
        copy = pickle.loads(pickle.dumps(store))
    assert copy.data_dir == store.data_dir
    assert copy.read_bars().equals(store.read_bars())
    with copy.lock():  # the copy does not believe it holds the original's lock
        copy.write(bars([dt.date(2020, 1, 3)], tickers=["MSFT"]))
    assert store.tickers() == ["AAPL", "MSFT"]


# ------------------------------------------- a missing benchmark names the flag that picks another


@pytest.mark.parametrize(
    ("feature", "missing", "flag"),
    [
        ("vix_term_structure", "SPY", "--market TICKER"),
        ("sector_relative_strength", "XLK", "--sector-map FILE"),
    ],
)
def test_a_missing_benchmark_names_the_flag(tmp_path, feature, missing, flag):
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(30)]
    store = BarStore(tmp_path / "data")
    store.write(bars(days, tickers=["AAPL"] * len(days)))
    args = ["features", "--tickers", "AAPL", "--features", feature]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(store.data_dir)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert missing in message and flag in message
    assert "Traceback" not in result.output


# ------------------------------------------- Yahoo's ^VIX.csv is the index VIX


def test_yahoo_index_file_names_are_stored_as_the_engines_tickers(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    frame = bars([dt.date(2020, 1, 2), dt.date(2020, 1, 3)]).drop("ticker")
    for name in ("^VIX", "^vix3m", "SPY"):
        frame.write_csv(src / f"{name}.csv")
    store = BarStore(tmp_path / "data")
    report = import_bars(src, store)
    assert store.tickers() == ["SPY", "VIX", "VIX3M"]
    roles = {t: e["role"] for t, e in store.metadata()["tickers"].items()}
    assert roles == {"SPY": "security", "VIX": "volatility_index", "VIX3M": "volatility_index"}
    assert report.renamed == {"^VIX.csv": "VIX", "^vix3m.csv": "VIX3M"}
    assert "^VIX.csv as VIX" in report.summary()

    frame.write_csv(src / "VIX.csv")  # both spellings of one index: refused, not merged
    with pytest.raises(ValueError, match=r"same ticker \(VIX: VIX.csv, \^VIX.csv\)"):
        import_bars(src, store, overwrite=True)
