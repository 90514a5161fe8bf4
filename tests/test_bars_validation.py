"""Unit and property tests for engine.data.bars (schema, normalisation, validation rules)."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data.bars import (
    BARS_SCHEMA,
    MAX_LISTED_VIOLATIONS,
    RULES,
    BarsValidationError,
    Violation,
    check_bars,
    format_violation,
    normalise_columns,
    require_valid_bars,
    validate_bars,
)

DATES = [dt.date(2020, 1, d) for d in (2, 3, 6, 7, 8, 9, 10)]


def good_frame(n: int = 5, ticker: str = "AAPL") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": [ticker] * n,
            "date": [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)],
            "open": [10.0 + i for i in range(n)],
            "high": [11.5 + i for i in range(n)],
            "low": [9.0 + i for i in range(n)],
            "close": [10.5 + i for i in range(n)],
            "volume": [1000.0 * (i + 1) for i in range(n)],
        }
    )


def with_value(frame: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    """Set ``column`` at 0-based ``row`` (casting the column to text if needed)."""
    values = frame[column].to_list()
    values[row] = value
    dtype = frame.schema[column]
    if isinstance(value, str) and dtype != pl.String:
        text = [None if v is None else str(v) for v in values]
        return frame.with_columns(pl.Series(column, text))
    return frame.with_columns(pl.Series(column, values, dtype=dtype))


# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"],
            ["date", "open", "high", "low", "close", "adj_close", "volume"],
            id="yahoo",
        ),
        pytest.param(
            [" TICKER ", "DATE", "adj_close"], ["ticker", "date", "adj_close"], id="spaces"
        ),
        pytest.param(
            ["Symbol", "AdjClose", "Adj-Close2"],
            ["ticker", "adj_close", "adj_close2"],
            id="aliases",
        ),
    ],
)
def test_normalise_columns(header, expected):
    frame = pl.DataFrame({h: [] for h in header})
    assert normalise_columns(frame).columns == expected


def test_normalise_columns_rejects_two_headers_for_one_column():
    frame = pl.DataFrame({"Close": [1.0], "close": [2.0]})
    with pytest.raises(ValueError, match=r"'Close' and 'close' both normalise to 'close'"):
        normalise_columns(frame)


# ------------------------------------------------------------------ parsing


def test_valid_frame_has_no_violations_and_canonical_schema():
    frame = good_frame().sample(fraction=1.0, shuffle=True, seed=3)  # unsorted input
    result = check_bars(frame)
    assert result.ok
    assert result.bars.schema == pl.Schema({c: BARS_SCHEMA[c] for c in result.bars.columns})
    assert result.bars.columns == ["ticker", "date", "open", "high", "low", "close", "volume"]
    assert result.bars["date"].is_sorted()
    assert result.rejected.height == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2020-01-02", dt.date(2020, 1, 2), id="iso"),
        pytest.param(" 2020-01-02 ", dt.date(2020, 1, 2), id="padded"),
        pytest.param("2020-01-02 16:00:00", dt.date(2020, 1, 2), id="datetime"),
        pytest.param("2020-01-02T16:00:00Z", dt.date(2020, 1, 2), id="iso-datetime-utc"),
        pytest.param("2020-01-02T16:00:00-05:00", dt.date(2020, 1, 2), id="iso-datetime-offset"),
    ],
)
def test_date_strings_parse(text, expected):
    frame = good_frame(1).with_columns(pl.lit(text).alias("date"))
    assert require_valid_bars(frame)["date"].to_list() == [expected]


@pytest.mark.parametrize(
    "text", ["2020-02-30", "02/01/2020", "2020-1-2", "20200102", "yesterday", ""]
)
def test_bad_date_strings_are_unparsable(text):
    frame = good_frame(2).with_columns(pl.Series("date", ["2020-01-01", text]))
    violations = validate_bars(frame, source="x.csv")
    assert [(v.row, v.rule) for v in violations] == [(2, "unparsable_date")]
    assert violations[0].date == text


def test_datetime_dtype_is_truncated_to_date():
    frame = good_frame(2).with_columns(
        pl.Series("date", [dt.datetime(2020, 1, 2, 9, 30), dt.datetime(2020, 1, 3, 16)])
    )
    assert require_valid_bars(frame)["date"].to_list() == [dt.date(2020, 1, 2), dt.date(2020, 1, 3)]


def test_integer_volume_and_text_numbers_are_cast():
    frame = good_frame(2).with_columns(
        pl.Series("volume", [1, 2], dtype=pl.Int64), pl.Series("open", [" 10.0", "1.1e1"])
    )
    out = require_valid_bars(frame)
    assert out.schema["volume"] == pl.Float64 and out["open"].to_list() == [10.0, 11.0]


# ------------------------------------------------------------------ one test per rule

RULE_CASES = [
    pytest.param("open", "abc", "unparsable_number", "open='abc'", id="unparsable_number"),
    pytest.param("close", "", "missing_value", "close is empty", id="missing_value-empty"),
    pytest.param("close", None, "missing_value", "close is empty", id="missing_value-null"),
    pytest.param("volume", math.nan, "missing_value", "volume is NaN", id="missing_value-nan"),
    pytest.param("high", math.inf, "infinite_value", "high=inf", id="infinite_value"),
    pytest.param("low", 0.0, "non_positive_price", "low=0.0 <= 0", id="zero-price"),
    pytest.param("low", -1.0, "non_positive_price", "low=-1.0 <= 0", id="negative-price"),
    pytest.param(
        "high",
        10.6,
        "high_below_open_close",
        "high=10.6 < max(open, close)=10.5",
        id="high_below_open_close",
    ),
    pytest.param(
        "low",
        10.2,
        "low_above_open_close",
        "low=10.2 > min(open, close)=10.0",
        id="low_above_open_close",
    ),
    pytest.param("volume", -5.0, "negative_volume", "volume=-5.0 < 0", id="negative_volume"),
]


@pytest.mark.parametrize(("column", "value", "rule", "detail"), RULE_CASES)
def test_each_rule_is_reported_at_its_row(column, value, rule, detail):
    frame = good_frame(1)
    frame = pl.concat([frame, frame.with_columns(pl.col("date") + dt.timedelta(days=1))])
    frame = frame.with_columns(
        pl.lit(10.0).alias("open"),
        pl.lit(10.5).alias("close"),
        pl.lit(11.0).alias("high"),
        pl.lit(9.0).alias("low"),
    )
    if column == "high" and rule == "high_below_open_close":
        frame = frame.with_columns(pl.lit(10.8).alias("close"))
        detail = "high=10.6 < max(open, close)=10.8"
    frame = with_value(frame, 1, column, value)
    violations = validate_bars(frame, source="f.csv")
    assert [(v.file, v.ticker, v.row, v.date, v.rule) for v in violations] == [
        ("f.csv", "AAPL", 2, "2020-01-02", rule)
    ]
    assert violations[0].detail == detail
    assert rule in RULES


def test_high_below_low_is_named_explicitly():
    frame = with_value(with_value(good_frame(3), 2, "high", 9.5), 2, "low", 10.0)
    frame = with_value(with_value(frame, 2, "open", 9.7), 2, "close", 9.8)
    violations = validate_bars(frame)
    assert [(v.row, v.rule, v.detail) for v in violations] == [
        (3, "high_below_low", "high=9.5 < low=10.0")
    ]


def test_duplicate_date_keeps_the_first_occurrence():
    frame = good_frame(3)
    frame = pl.concat([frame, frame[0:1].with_columns(pl.lit(99.0).alias("volume"))])
    result = check_bars(frame, source="f.csv")
    assert [(v.row, v.rule, v.detail) for v in result.violations] == [
        (4, "duplicate_date", "first seen at row 1")
    ]
    assert result.bars.height == 3
    assert result.bars.filter(pl.col("date") == dt.date(2020, 1, 1))["volume"].item() == 1000.0


def test_same_date_for_two_tickers_is_not_a_duplicate():
    frame = pl.concat([good_frame(3, "AAPL"), good_frame(3, "MSFT")])
    assert validate_bars(frame) == []


def test_missing_columns_names_every_missing_column():
    frame = good_frame().drop("volume", "low")
    violations = validate_bars(frame, source="f.csv", ticker="AAPL")
    assert [v.rule for v in violations] == ["missing_columns"]
    assert violations[0].detail.startswith("missing low, volume; found ticker, date, open")
    expected = r"f\.csv: ticker AAPL: missing_columns \(missing low, volume"
    with pytest.raises(BarsValidationError, match=expected):
        check_bars(frame, source="f.csv", ticker="AAPL")


def test_missing_ticker_column_explains_the_two_source_shapes():
    with pytest.raises(BarsValidationError, match=r"missing ticker.*directory of per-ticker files"):
        require_valid_bars(good_frame().drop("ticker"), source="long.csv")


@pytest.mark.parametrize(
    ("ticker", "rule"),
    [
        ("", "invalid_ticker"),
        (None, "invalid_ticker"),
        ("A/B", "invalid_ticker"),
        ("..", "invalid_ticker"),
    ],
)
def test_bad_tickers_in_a_long_frame(ticker, rule):
    odd = good_frame(1).with_columns(pl.lit(ticker, pl.String).alias("ticker"))
    frame = pl.concat([good_frame(2), odd])
    assert [(v.row, v.rule) for v in validate_bars(frame)] == [(3, rule)]


def test_lower_case_tickers_are_upper_cased():
    assert require_valid_bars(good_frame(2, " aapl "))["ticker"].unique().to_list() == ["AAPL"]


def test_ticker_column_must_match_the_per_ticker_file():
    frame = with_value(good_frame(3), 1, "ticker", "MSFT")
    violations = validate_bars(frame, source="AAPL.csv", ticker="AAPL")
    assert [(v.row, v.rule, v.ticker) for v in violations] == [(2, "ticker_mismatch", "AAPL")]


def test_one_row_breaking_two_rules_reports_both_in_rule_order():
    frame = with_value(with_value(good_frame(2), 1, "volume", -1.0), 1, "open", -2.0)
    rules = [v.rule for v in validate_bars(frame)]
    assert rules == ["non_positive_price", "negative_volume"]
    rejected = check_bars(frame).rejected
    assert rejected["rules"].to_list() == ["non_positive_price;negative_volume"]


def test_row_column_overrides_positions():
    frame = with_value(good_frame(3), 2, "volume", -1.0).with_columns(
        pl.Series("__row__", [10, 12, 15])
    )
    assert [v.row for v in validate_bars(frame)] == [15]


def test_adj_close_is_checked_when_present():
    frame = good_frame(2).with_columns(pl.Series("Adj Close", [1.0, -1.0]))
    assert [(v.row, v.rule) for v in validate_bars(frame)] == [(2, "non_positive_price")]


# ------------------------------------------------------------------ error message


def test_error_message_lists_ten_and_counts_the_rest():
    frame = good_frame(25).with_columns(pl.lit(-1.0).alias("volume"))
    with pytest.raises(BarsValidationError) as info:
        require_valid_bars(frame, source="big.csv")
    message = str(info.value)
    assert message.splitlines()[0] == "invalid bars in big.csv: 25 violations (negative_volume: 25)"
    assert message.count("negative_volume (") == MAX_LISTED_VIOLATIONS
    assert message.splitlines()[-1].strip() == "... and 15 more violations"
    assert len(info.value.violations) == 25
    assert isinstance(info.value, ValueError)


def test_format_violation_without_row():
    v = Violation("a.csv", None, None, None, "no_rows", "no data rows")
    assert format_violation(v) == "a.csv: no_rows (no data rows)"


def test_validation_error_needs_violations():
    with pytest.raises(ValueError, match="needs at least one violation"):
        BarsValidationError([])


# ------------------------------------------------------------------ properties

# (column, bad value, rule) — each breaks exactly one rule on a bar with
# open=10, high=12, low=9, close=11, volume=100.
PLANTS = [
    ("open", "x1", "unparsable_number"),
    ("close", "", "missing_value"),
    ("volume", "NaN", "missing_value"),
    ("open", "0", "non_positive_price"),
    ("high", "10.5", "high_below_open_close"),
    ("low", "10.5", "low_above_open_close"),
    ("high", "8", "high_below_low"),
    ("volume", "-1", "negative_volume"),
    ("date", "2020-02-31", "unparsable_date"),
]


@st.composite
def text_frames_with_plants(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    base = {
        "ticker": ["T"] * n,
        "date": [(dt.date(2000, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(n)],
        "open": ["10"] * n,
        "high": ["12"] * n,
        "low": ["9"] * n,
        "close": ["11"] * n,
        "volume": ["100"] * n,
    }
    rows = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 6)))
    planted = {}
    for row in rows:
        column, value, rule = draw(st.sampled_from(PLANTS))
        base[column][row] = value
        planted[row + 1] = rule
    order = draw(st.permutations(range(n)))
    frame = pl.DataFrame(base).with_row_index("__row__", offset=1)[list(order)]
    return frame, planted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_frames_with_plants())
def test_planted_violations_are_found_at_their_rows(case):
    frame, planted = case
    result = check_bars(frame, source="p.csv")
    assert {v.row: v.rule for v in result.violations} == planted
    assert len(result.violations) == len(planted)
    assert result.bars.height == frame.height - len(planted)
    assert sorted(result.rejected["source_row"].to_list()) == sorted(planted)
    assert result.bars["date"].is_sorted()


@settings(max_examples=100, deadline=None)
@given(
    opens=st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=30),
    data=st.data(),
)
def test_valid_random_bars_pass_and_any_single_plant_fails(opens, data):
    n = len(opens)
    closes = [data.draw(st.floats(min_value=0.01, max_value=1e6)) for _ in range(n)]
    highs = [max(o, c) * 1.01 for o, c in zip(opens, closes, strict=True)]
    lows = [min(o, c) * 0.99 for o, c in zip(opens, closes, strict=True)]
    frame = pl.DataFrame(
        {
            "ticker": ["Z"] * n,
            "date": [dt.date(2001, 1, 1) + dt.timedelta(days=i) for i in range(n)],
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": [0.0] * n,
        }
    )
    assert validate_bars(frame) == []
    row = data.draw(st.integers(0, n - 1))
    column = data.draw(st.sampled_from(["open", "high", "low", "close", "volume"]))
    bad = data.draw(st.sampled_from([math.nan, -1.0, math.inf, None]))
    planted = with_value(frame, row, column, bad)
    violations = validate_bars(planted)
    assert violations, f"planted {column}={bad} at row {row + 1} passed"
    assert {v.row for v in violations} == {row + 1}
