"""engine.data.importer and engine.data.store: sources, rules, drop policy, atomic writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path

import polars as pl
import pytest

from engine.data.bars import BarsValidationError
from engine.data.importer import INVALID_TICKER_FILE, discover_sources, import_bars
from engine.data.store import BarStore
from engine.io import atomic_write_bytes

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume"
GOOD_ROWS = [
    "2020-01-02,10,11,9,10.5,10.4,1000",
    "2020-01-03,10.5,11.5,10,11,10.9,1100",
    "2020-01-06,11,12,10.5,11.5,11.4,1200",
    "2020-01-07,11.5,12.5,11,12,11.9,1300",
]


def write_csv(path: Path, rows: list[str], header: str = YAHOO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def snapshot(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (relative path -> digest)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def store(tmp_path: Path) -> BarStore:
    """A data directory that already holds MSFT, so 'unchanged' is meaningful."""
    s = BarStore(tmp_path / "data")
    import_bars(write_csv(tmp_path / "seed" / "MSFT.csv", GOOD_ROWS), s)
    assert s.tickers() == ["MSFT"]
    return s


def bad_file(tmp_path: Path, line: str, at: int = 2) -> Path:
    """AAPL.csv whose data row ``at + 1`` (0-based ``at``) is replaced by ``line``."""
    rows = list(GOOD_ROWS)
    rows[at] = line
    return write_csv(tmp_path / "src" / "AAPL.csv", rows)


# ------------------------------------------------------------------ one test per rule

RULE_LINES = [
    pytest.param(
        "2020-13-45,11,12,10.5,11.5,11.4,1200",
        "unparsable_date",
        "2020-13-45",
        "date='2020-13-45'",
        id="unparsable_date",
    ),
    pytest.param(
        "2020-01-06,11,12,abc,11.5,11.4,1200",
        "unparsable_number",
        "2020-01-06",
        "low='abc'",
        id="unparsable_number",
    ),
    pytest.param(
        "2020-01-06,11,12,10.5,,11.4,1200",
        "missing_value",
        "2020-01-06",
        "close is empty",
        id="empty_value",
    ),
    pytest.param(
        "2020-01-06,11,12,10.5,NaN,11.4,1200",
        "missing_value",
        "2020-01-06",
        "close is NaN",
        id="nan_value",
    ),
    pytest.param(
        "2020-01-03,11,12,10.5,11.5,11.4,1200",
        "duplicate_date",
        "2020-01-03",
        "first seen at row 2",
        id="duplicate_date",
    ),
    pytest.param(
        "2020-01-06,11,12,0,11.5,11.4,1200",
        "non_positive_price",
        "2020-01-06",
        "low=0.0 <= 0",
        id="zero_price",
    ),
    pytest.param(
        "2020-01-06,11,12,10.5,11.5,-11.4,1200",
        "non_positive_price",
        "2020-01-06",
        "adj_close=-11.4 <= 0",
        id="negative_price",
    ),
    pytest.param(
        "2020-01-06,11,11.2,10.5,11.5,11.4,1200",
        "high_below_open_close",
        "2020-01-06",
        "high=11.2 < max(open, close)=11.5",
        id="high_below_open_close",
    ),
    pytest.param(
        "2020-01-06,11,12,11.2,11.5,11.4,1200",
        "low_above_open_close",
        "2020-01-06",
        "low=11.2 > min(open, close)=11.0",
        id="low_above_open_close",
    ),
    pytest.param(
        "2020-01-06,11,10,10.5,10.2,10.2,1200",
        "high_below_low",
        "2020-01-06",
        "high=10.0 < low=10.5",
        id="high_below_low",
    ),
    pytest.param(
        "2020-01-06,11,12,10.5,11.5,11.4,-1",
        "negative_volume",
        "2020-01-06",
        "volume=-1.0 < 0",
        id="negative_volume",
    ),
]


@pytest.mark.parametrize(("line", "rule", "date", "detail"), RULE_LINES)
def test_each_rule_refuses_the_import_and_leaves_the_data_dir_unchanged(
    tmp_path, store, line, rule, date, detail
):
    src = bad_file(tmp_path, line)
    before = snapshot(store.data_dir)
    expected = rf"{re.escape(str(src))}: row 3, ticker AAPL, date {re.escape(date)}: {rule} "
    with pytest.raises(BarsValidationError, match=expected) as info:
        import_bars(src.parent, store)
    assert detail in str(info.value)
    assert [(v.row, v.rule) for v in info.value.violations] == [(3, rule)]
    assert "--on-bad-rows drop" in str(info.value)
    assert snapshot(store.data_dir) == before
    assert store.tickers() == ["MSFT"]


def test_missing_columns_refuses_even_with_drop(tmp_path, store):
    src = write_csv(
        tmp_path / "src" / "AAPL.csv",
        [r.rsplit(",", 1)[0] for r in GOOD_ROWS],
        header="Date,Open,High,Low,Close,Adj Close",
    )
    before = snapshot(store.data_dir)
    for policy in ("error", "drop"):
        with pytest.raises(
            BarsValidationError,
            match=rf"{re.escape(str(src))}: ticker AAPL: "
            r"missing_columns \(missing volume; found date",
        ):
            import_bars(src.parent, store, on_bad_rows=policy)
    assert snapshot(store.data_dir) == before


def test_every_violation_of_every_file_is_reported(tmp_path, store):
    bad_file(tmp_path, "2020-01-06,11,12,10.5,11.5,11.4,-1")
    write_csv(tmp_path / "src" / "NVDA.csv", ["2020-01-02,1,1,1,1,1,x", *GOOD_ROWS[1:]])
    with pytest.raises(BarsValidationError) as info:
        import_bars(tmp_path / "src", store)
    assert [(Path(v.file).name, v.row, v.rule) for v in info.value.violations] == [
        ("AAPL.csv", 3, "negative_volume"),
        ("NVDA.csv", 1, "unparsable_number"),
    ]


def test_empty_file_is_refused(tmp_path, store):
    src = write_csv(tmp_path / "src" / "AAPL.csv", [])
    with pytest.raises(BarsValidationError, match=r"AAPL\.csv: ticker AAPL: no_rows"):
        import_bars(src.parent, store, on_bad_rows="drop")


# ------------------------------------------------------------------ sources


def test_yahoo_header_imports(tmp_path):
    store = BarStore(tmp_path / "data")
    src = write_csv(tmp_path / "src" / "aapl.csv", GOOD_ROWS)
    report = import_bars(src.parent, store)
    assert report.write.rows == {"AAPL": 4} and report.tickers == ["AAPL"]
    bars = store.read_bars()
    assert bars.columns == ["ticker", "date", "open", "high", "low", "close", "volume", "adj_close"]
    assert bars["date"].to_list() == [dt.date(2020, 1, d) for d in (2, 3, 6, 7)]
    assert bars.row(0) == ("AAPL", dt.date(2020, 1, 2), 10.0, 11.0, 9.0, 10.5, 1000.0, 10.4)
    meta = store.metadata()["tickers"]["AAPL"]
    assert meta["synthetic"] is False and meta["source"] == str(src.resolve())
    assert meta["role"] == "security" and meta["rows"] == 4
    assert (meta["first_date"], meta["last_date"]) == ("2020-01-02", "2020-01-07")
    assert meta["sha256"] == hashlib.sha256(store.bars_path("AAPL").read_bytes()).hexdigest()
    assert store.verify() == []


def test_long_file_with_ticker_column_imports_unsorted(tmp_path):
    rows = [f"{t},{r}" for r in reversed(GOOD_ROWS) for t in ("vix", "SPY")]
    src = write_csv(tmp_path / "long.csv", rows, header="Ticker," + YAHOO)
    store = BarStore(tmp_path / "data")
    report = import_bars(src, store)
    assert report.write.rows == {"SPY": 4, "VIX": 4}
    bars = store.read_bars()
    assert bars["ticker"].to_list() == ["SPY"] * 4 + ["VIX"] * 4
    assert bars.filter(pl.col("ticker") == "VIX")["date"].is_sorted()
    assert store.metadata()["tickers"]["VIX"]["role"] == "volatility_index"
    assert pl.read_parquet(store.bars_path("SPY"))["date"].is_sorted()


def test_long_parquet_file_imports(tmp_path):
    frame = pl.DataFrame(
        {
            "symbol": ["A", "B"],
            "date": [dt.datetime(2020, 1, 2, 16), dt.datetime(2020, 1, 2, 16)],
            "open": [1, 2],
            "high": [1, 2],
            "low": [1, 2],
            "close": [1, 2],
            "volume": [0, 5],
        }
    )
    frame.write_parquet(tmp_path / "long.parquet")
    store = BarStore(tmp_path / "data")
    import_bars(tmp_path / "long.parquet", store)
    out = store.read_bars()
    assert out["ticker"].to_list() == ["A", "B"]
    assert out["date"].to_list() == [dt.date(2020, 1, 2)] * 2
    assert out.schema["volume"] == pl.Float64


def test_single_file_without_ticker_column_is_a_per_ticker_file(tmp_path):
    src = write_csv(tmp_path / "qqq.csv", GOOD_ROWS)
    report = import_bars(src, BarStore(tmp_path / "data"))
    assert report.write.rows == {"QQQ": 4}


def test_file_name_that_is_not_a_ticker_is_refused(tmp_path):
    src = write_csv(tmp_path / "my prices.csv", GOOD_ROWS)
    expected = r"cannot use the file name of .*'MY PRICES' does not match"
    with pytest.raises(ValueError, match=expected):
        import_bars(src, BarStore(tmp_path / "data"))


def test_mixed_csv_and_parquet_directory_imports(tmp_path):
    src = tmp_path / "src"
    write_csv(src / "AAPL.csv", GOOD_ROWS)
    pl.DataFrame(
        {
            "Date": ["2020-01-02"],
            "Open": [5.0],
            "High": [6.0],
            "Low": [4.0],
            "Close": [5.5],
            "Volume": [7],
        }
    ).write_parquet(src / "msft.parquet")
    (src / ".DS_Store.csv").write_text("garbage")
    (src / "notes.txt").write_text("ignored")
    store = BarStore(tmp_path / "data")
    report = import_bars(src, store)
    assert report.write.rows == {"AAPL": 4, "MSFT": 1}
    bars = store.read_bars()
    assert bars.filter(pl.col("ticker") == "MSFT")["adj_close"].to_list() == [None]
    assert "adj_close" not in pl.read_parquet(store.bars_path("MSFT")).columns


def test_directory_without_sources_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no \.csv or \.parquet files in directory .*empty"):
        import_bars(tmp_path / "empty", BarStore(tmp_path / "data"))


def test_two_files_for_one_ticker_are_refused(tmp_path):
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    write_csv(tmp_path / "src" / "aapl.CSV", GOOD_ROWS)
    with pytest.raises(ValueError, match=r"same ticker \(AAPL: AAPL\.csv, aapl\.CSV\)"):
        discover_sources(tmp_path / "src")


def test_missing_path_and_bad_suffix_and_bad_policy(tmp_path):
    with pytest.raises(FileNotFoundError, match="import path does not exist"):
        import_bars(tmp_path / "nope", BarStore(tmp_path / "data"))
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"suffix '\.xlsx' is not one of \.csv, \.parquet"):
        import_bars(tmp_path / "a.xlsx", BarStore(tmp_path / "data"))
    with pytest.raises(ValueError, match=r"--on-bad-rows must be one of error, drop, repair"):
        import_bars(tmp_path, BarStore(tmp_path / "data"), on_bad_rows="skip")


def test_blank_lines_are_skipped_but_rows_keep_their_numbers(tmp_path, store):
    path = tmp_path / "src" / "AAPL.csv"
    path.parent.mkdir()
    lines = [YAHOO, GOOD_ROWS[0], "", GOOD_ROWS[1], "2020-01-08,1,1,1,1,1,-3"]
    path.write_text("\n".join(lines) + "\n")
    expected = r"AAPL\.csv: row 4, ticker AAPL, date 2020-01-08"
    with pytest.raises(BarsValidationError, match=expected):
        import_bars(path.parent, store)


# ------------------------------------------------------------------ --on-bad-rows drop


def test_drop_counts_rules_and_saves_exactly_the_dropped_rows(tmp_path, store):
    rows = [
        "2020-01-02,10,11,9,10.5,10.4,1000",  # 1 good
        "2020-01-03,10,11,9,10.5,10.4,-5",  # 2 negative_volume
        "2020-01-06,10,11,9,10.5,10.4,1000",  # 3 good
        "2020-01-03,10,11,9,10.5,10.4,2000",  # 4 kept: the date's first good row
        "2020-01-07,10,9.5,9,10.5,10.4,1000",  # 5 high_below_open_close
        "2020-01-08,x,11,9,10.5,10.4,1000",  # 6 unparsable_number
        "not-a-date,10,11,9,10.5,10.4,1000",  # 7 unparsable_date
        "2020-01-09,10,11,9,10.5,10.4,1000",  # 8 good
        "2020-01-06,10,11,9,10.5,10.4,3000",  # 9 duplicate of 3
        "2020-01-10,10,11,9,10.5,10.4,-1",  # 10 negative_volume
    ]
    src = write_csv(tmp_path / "src" / "AAPL.csv", rows)
    report = import_bars(src.parent, store, on_bad_rows="drop")

    assert report.dropped_by_rule == {
        "duplicate_date": 1,
        "high_below_open_close": 1,
        "negative_volume": 2,
        "unparsable_date": 1,
        "unparsable_number": 1,
    }
    assert report.dropped_rows == {"AAPL": 6} and report.total_dropped == 6
    assert [(v.row, v.rule) for v in report.dropped] == [
        (2, "negative_volume"), (5, "high_below_open_close"),
        (6, "unparsable_number"), (7, "unparsable_date"), (9, "duplicate_date"),
        (10, "negative_volume"),
    ]  # fmt: skip
    kept = store.read_bars(["AAPL"])
    assert kept["date"].to_list() == [dt.date(2020, 1, d) for d in (2, 3, 6, 9)]
    assert kept["volume"].to_list() == [1000.0, 2000.0, 1000.0, 1000.0]

    rejected_path = store.rejected_dir / "AAPL.csv"
    assert report.write.rejected_files == {"AAPL": rejected_path}
    rejected = pl.read_csv(rejected_path, infer_schema=False)
    assert rejected["source_row"].to_list() == ["2", "5", "6", "7", "9", "10"]
    assert set(rejected["source_file"]) == {str(src.resolve())}
    raw = rejected.select(["date", "open", "high", "low", "close", "adj_close", "volume"])
    assert [",".join(r) for r in raw.rows()] == [rows[i - 1] for i in (2, 5, 6, 7, 9, 10)]
    assert rejected["rules"][0] == "negative_volume"
    assert store.metadata()["tickers"]["AAPL"]["extra"] == {
        "rejected_rows": 6,
        "ohlc_tolerance": 1e-9,
        "tolerated_rows": 0,
    }
    assert "dropped 6 bad rows" in report.summary()


def test_drop_with_nothing_bad_writes_no_rejected_file(tmp_path):
    store = BarStore(tmp_path / "data")
    report = import_bars(
        write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS).parent, store, on_bad_rows="drop"
    )
    assert report.total_dropped == 0 and report.dropped == []
    assert not store.rejected_dir.exists()


def test_drop_refuses_a_ticker_whose_rows_are_all_bad(tmp_path, store):
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    write_csv(tmp_path / "src" / "ZM.csv", ["2020-01-02,1,1,1,1,1,-1", "2020-01-03,0,1,1,1,1,1"])
    before = snapshot(store.data_dir)
    expected = r"every row of ZM breaks a rule; nothing was imported"
    with pytest.raises(BarsValidationError, match=expected):
        import_bars(tmp_path / "src", store, on_bad_rows="drop")
    assert snapshot(store.data_dir) == before


def test_drop_in_a_long_file_keeps_rows_with_bad_tickers_aside(tmp_path):
    rows = [f"AAPL,{r}" for r in GOOD_ROWS] + [f",{GOOD_ROWS[0]}", f"A/B,{GOOD_ROWS[0]}"]
    src = write_csv(tmp_path / "long.csv", rows, header="ticker," + YAHOO)
    store = BarStore(tmp_path / "data")
    report = import_bars(src, store, on_bad_rows="drop")
    assert report.write.rows == {"AAPL": 4}
    assert report.dropped_rows == {f"{INVALID_TICKER_FILE}.long": 2}
    assert report.dropped_by_rule == {"invalid_ticker": 2}
    orphan = pl.read_csv(store.rejected_dir / f"{INVALID_TICKER_FILE}.long.csv", infer_schema=False)
    assert orphan["source_row"].to_list() == ["5", "6"]


# ------------------------------------------------------------------ overwrite


def test_reimport_is_refused_without_overwrite_and_reported_with_it(tmp_path, store):
    src = write_csv(tmp_path / "src" / "MSFT.csv", GOOD_ROWS[:2])
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    before = snapshot(store.data_dir)
    with pytest.raises(FileExistsError) as info:
        import_bars(src.parent, store)
    message = str(info.value)
    assert "1 ticker already in" in message and "MSFT" in message and "AAPL" not in message
    assert str(store.data_dir) in message and "--overwrite" in message
    assert snapshot(store.data_dir) == before  # AAPL was not written either

    report = import_bars(src.parent, store, overwrite=True)
    assert report.write.replaced == {"MSFT": (4, 2)}
    assert report.write.rows == {"AAPL": 4, "MSFT": 2}
    assert "replaced: MSFT (4 -> 2 rows)" in report.summary()
    assert store.read_bars(["MSFT"]).height == 2


def test_overwrite_removes_a_stale_rejected_file(tmp_path):
    store = BarStore(tmp_path / "data")
    bad = bad_file(tmp_path, "2020-01-06,11,12,10.5,11.5,11.4,-1")
    import_bars(bad.parent, store, on_bad_rows="drop")
    assert (store.rejected_dir / "AAPL.csv").exists()
    write_csv(bad, GOOD_ROWS)
    import_bars(bad.parent, store, overwrite=True)
    assert not (store.rejected_dir / "AAPL.csv").exists()
    assert "rejected_rows" not in store.metadata()["tickers"]["AAPL"]["extra"]


# ------------------------------------------------------------------ atomic writes


def _no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("target", ["write_parquet", "os.replace", "os.fsync"])
def test_crash_during_write_leaves_old_files_intact_and_no_temp_files(
    tmp_path, store, monkeypatch, target
):
    src = write_csv(tmp_path / "src" / "MSFT.csv", GOOD_ROWS[:1])
    before = snapshot(store.data_dir)

    def boom(*args, **kwargs):
        raise OSError(f"simulated crash in {target}")

    if target == "write_parquet":
        monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    elif target == "os.replace":
        monkeypatch.setattr("engine.data.store.os.replace", boom)
    else:
        monkeypatch.setattr("engine.data.store.os.fsync", boom)
    with pytest.raises(OSError, match="simulated crash"):
        import_bars(src.parent, store, overwrite=True)
    assert snapshot(store.data_dir) == before
    assert _no_temp_files(store.data_dir)
    monkeypatch.undo()
    assert store.read_bars(["MSFT"]).height == 4 and store.verify() == []


def test_crash_after_partial_renames_keeps_every_file_whole(tmp_path, store, monkeypatch):
    """Renames are staged; a crash mid-way may mix versions but never leaves a torn file."""
    write_csv(tmp_path / "src" / "MSFT.csv", GOOD_ROWS[:1])
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS[:3])
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("simulated crash on second rename")
        real_replace(src, dst)

    monkeypatch.setattr("engine.data.store.os.replace", flaky)
    with pytest.raises(OSError, match="second rename"):
        import_bars(tmp_path / "src", store, overwrite=True)
    assert _no_temp_files(store.data_dir)
    for path in store.bars_dir.iterdir():
        pl.read_parquet(path)  # every file is a complete parquet file
    assert json.loads(store.metadata_path.read_text())["tickers"].keys() == {"MSFT"}


def test_atomic_write_bytes_replaces_whole_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def fail(*args):
        raise OSError("simulated rename failure")

    monkeypatch.setattr("engine.data.store.os.replace", fail)
    with pytest.raises(OSError, match="simulated rename failure"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


# ------------------------------------------------------------------ store API


def test_read_bars_filters_and_names_unknown_tickers(tmp_path, store):
    import_bars(write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS).parent, store)
    out = store.read_bars(["MSFT", "AAPL"], start=dt.date(2020, 1, 3), end=dt.date(2020, 1, 6))
    assert out["ticker"].to_list() == ["AAPL", "AAPL", "MSFT", "MSFT"]
    assert set(out["date"]) == {dt.date(2020, 1, 3), dt.date(2020, 1, 6)}
    expected = r"unknown tickers: NOPE, ZZZ \(not in .*stored: AAPL, MSFT\)"
    with pytest.raises(ValueError, match=expected):
        store.read_bars(["ZZZ", "AAPL", "NOPE"])
    expected = r"start must be <= end, got start=2020-01-07, end=2020-01-02"
    with pytest.raises(ValueError, match=expected):
        store.read_bars(start=dt.date(2020, 1, 7), end=dt.date(2020, 1, 2))
    assert store.read_bars([]).height == 0


def test_empty_store_read_says_how_to_get_data(tmp_path):
    with pytest.raises(ValueError, match=r"no bars in .*engine data demo"):
        BarStore(tmp_path / "nothing").read_bars()


def test_write_validates_and_records_info_and_store_info(tmp_path):
    store = BarStore(tmp_path / "data")
    bars = pl.DataFrame(
        {
            "ticker": ["VIX", "AAPL"],
            "date": [dt.date(2020, 1, 2)] * 2,
            "open": [1.0, 2.0],
            "high": [1.0, 2.0],
            "low": [1.0, 2.0],
            "close": [1.0, 2.0],
            "volume": [0.0, 1.0],
        }
    )
    info = {"AAPL": {"synthetic": True, "source": "model", "beta": 1.2}}
    report = store.write(bars, info, store_info={"demo_seed": 3})
    meta = store.metadata()
    assert meta["store"] == {"demo_seed": 3}
    assert meta["tickers"]["AAPL"]["extra"] == {"beta": 1.2}
    assert meta["tickers"]["AAPL"]["synthetic"] is True
    assert meta["tickers"]["VIX"]["role"] == "volatility_index"
    assert report.rows == {"AAPL": 1, "VIX": 1}
    text = store.metadata_path.read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    bad = bars.with_columns(pl.lit("ZM").alias("ticker"), pl.lit(-1.0).alias("volume"))[:1]
    expected = r"<frame>: row 1, ticker ZM, date 2020-01-02: negative_volume"
    with pytest.raises(BarsValidationError, match=expected):
        store.write(bad)
    with pytest.raises(ValueError, match=r"info given for tickers not in the bars: MSFT"):
        store.write(bars, {"MSFT": {}}, overwrite=True)
    expected = r"info\['AAPL'\]\['synthetic'\] must be a bool, got 'yes'"
    with pytest.raises(ValueError, match=expected):
        store.write(bars, {"AAPL": {"synthetic": "yes"}}, overwrite=True)


def test_same_data_gives_byte_identical_store(tmp_path):
    src = write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    import_bars(src.parent, a)
    import_bars(src.parent, b)
    assert snapshot(a.data_dir) == snapshot(b.data_dir)


def test_corrupt_metadata_is_reported(tmp_path):
    store = BarStore(tmp_path)
    store.metadata_path.write_text("{not json")
    with pytest.raises(ValueError, match=r"metadata\.json is not valid JSON"):
        store.tickers()
