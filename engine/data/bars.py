"""Validation of bars: every rule as one vectorised Polars expression.

The schema (columns, dtypes, header normalisation) is :mod:`engine.data.schema`;
its names are re-exported here.

A *bar* is one row per ``(ticker, date)`` with ``open, high, low, close > 0``,
``volume >= 0`` and an optional ``adj_close > 0``. Every rule a bar can break
has a stable short id (see :data:`RULES`) that appears in error messages,
import reports and the ``rejected/`` files, so scripts can rely on it.

Validation never loops over rows in Python: each rule is one Polars
expression over the whole frame. A :class:`Violation` names the source file,
the ticker, the 1-based data row (the header is not counted), the date and the
rule, so a user can open the file and find the line.

Real prices carry float noise: an adjusted high can sit below the close by
2e-16 relative. The three OHLC ordering rules therefore hold within a
relative tolerance (:data:`OHLC_TOLERANCE`, 1e-9 by default). Bars inside the
tolerance are stored *as given*, not clipped, and counted
(:attr:`BarsCheck.tolerated`). With ``repair=True``, a row whose only faults
are the ordering rules is kept with its high and low widened to contain open
and close (``high = max(high, open, close)``, ``low = min(low, open, close)``);
:attr:`BarsCheck.repaired` holds each such row with its original values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from engine.data.dates import check_date_format, date_exprs, date_format_problem
from engine.data.schema import (
    ADJ_CLOSE,
    BARS_SCHEMA,
    CANONICAL_COLUMNS,
    NUMERIC_COLUMNS,
    PRICE_COLUMNS,
    REQUIRED_COLUMNS,
    ROW_COLUMN,
    empty_bars,
    normalise_columns,
)
from engine.data.violations import (
    MAX_LISTED_VIOLATIONS,
    BarsValidationError,
    Violation,
    format_violation,
)

__all__ = [
    "ADJ_CLOSE",
    "BARS_SCHEMA",
    "CANONICAL_COLUMNS",
    "MAX_LISTED_VIOLATIONS",
    "OHLC_TOLERANCE",
    "PRICE_COLUMNS",
    "REPAIRABLE_RULES",
    "REQUIRED_COLUMNS",
    "ROW_COLUMN",
    "RULES",
    "TICKER_PATTERN",
    "BarsCheck",
    "BarsValidationError",
    "Violation",
    "check_bars",
    "empty_bars",
    "format_violation",
    "normalise_columns",
    "require_valid_bars",
    "validate_bars",
]

#: A ticker becomes a file name, so it is restricted to a safe alphabet.
TICKER_PATTERN = r"^[A-Z0-9^][A-Z0-9.\-_^=]{0,31}$"

#: Rule id -> what the rule requires. The ids are stable.
RULES: dict[str, str] = {
    "missing_columns": "columns ticker (or a per-ticker file name), date, open, high, low, "
    "close and volume are required",
    "no_rows": "a source needs at least one data row",
    "invalid_ticker": f"a ticker must be non-empty and match {TICKER_PATTERN}",
    "ticker_mismatch": "a ticker column in a per-ticker file must equal the file's ticker",
    "date_format": "most dates of a source must parse (ISO YYYY-MM-DD, or --date-format)",
    "unparsable_date": "date must be ISO YYYY-MM-DD (a time part after it is ignored) or "
    "in the --date-format given, between 1800 and 2200",
    "unparsable_number": "prices and volume must be decimal numbers",
    "missing_value": "prices and volume must not be empty, null or NaN",
    "infinite_value": "prices and volume must be finite",
    "non_positive_price": "open, high, low, close and adj_close must be > 0",
    "high_below_low": "high must be >= low (within the relative OHLC tolerance)",
    "high_below_open_close": "high must be >= max(open, close) (within the tolerance)",
    "low_above_open_close": "low must be <= min(open, close) (within the tolerance)",
    "negative_volume": "volume must be >= 0",
    "duplicate_date": "each (ticker, date) may appear once; the first occurrence that "
    "breaks no other rule is kept",
}
_SOURCE_RULES = ("missing_columns", "no_rows", "date_format")
_ROW_RULES: tuple[str, ...] = tuple(r for r in RULES if r not in _SOURCE_RULES)
#: The OHLC ordering rules: checked within :data:`OHLC_TOLERANCE`, fixed by ``repair``.
REPAIRABLE_RULES: tuple[str, ...] = (
    "high_below_low",
    "high_below_open_close",
    "low_above_open_close",
)
#: Default relative tolerance of the OHLC ordering rules: ``high >= max(open, close)``
#: holds when ``high >= max(open, close) * (1 - tolerance)``, and so on.
OHLC_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BarsCheck:
    """Result of :func:`check_bars`.

    Attributes
    ----------
    bars : pl.DataFrame
        The rows that broke no rule, in canonical schema, sorted by (ticker, date).
    violations : list of Violation
        Every violation, ordered by source row then rule.
    rejected : pl.DataFrame
        The rows that broke at least one rule, exactly as given (all columns
        cast to text), preceded by ``source_file``, ``source_row``, ``ticker``
        (upper-cased; as given when it is invalid), ``rules`` (``;``-separated
        ids) and ``details``.
    repairs : list of Violation
        With ``repair=True``: the ordering violations of the rows that were
        repaired and kept (they are not in ``violations``).
    repaired : pl.DataFrame
        One row per repaired bar: ``source_file, source_row, ticker, date,
        rules, details``, the original ``open, high, low, close`` and the
        stored ``repaired_high, repaired_low``.
    tolerated : dict of str to int
        Kept rows per ticker whose OHLC order holds only within the
        tolerance; they are stored as given.
    """

    bars: pl.DataFrame
    violations: list[Violation]
    rejected: pl.DataFrame
    repairs: list[Violation] = field(default_factory=list)
    repaired: pl.DataFrame = field(default_factory=pl.DataFrame)
    tolerated: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no rule was broken."""
        return not self.violations


# --------------------------------------------------------------------------- parsing


def _number_exprs(name: str, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Return (parsed float, raw text, unparsable flag) for a numeric column."""
    col = pl.col(name)
    if dtype.is_numeric():
        value = col.cast(pl.Float64)
        return value, value.cast(pl.String), pl.lit(False)
    text = col.cast(pl.String).str.strip_chars()
    value = text.cast(pl.Float64, strict=False)
    unparsable = text.is_not_null() & (text != "") & value.is_null()
    return value, text, unparsable


def _fmt(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def _joined(parts: list[pl.Expr], sep: str = ", ") -> pl.Expr:
    if not parts:
        return pl.lit(None, dtype=pl.String)
    out = pl.concat_str(parts, separator=sep, ignore_nulls=True)
    return pl.when(out != "").then(out)


def _prepare(
    frame: pl.DataFrame,
    ticker: str | None,
    *,
    tolerance: float,
    date_format: str | None,
    repair: bool,
) -> tuple[pl.DataFrame, dict[str, pl.Expr]]:
    """Parse a normalised frame and flag every rule.

    Returns the frame with parsed private columns, one ``__f_<rule>`` flag per
    rule, ``__bad`` (the row is refused), ``__fix`` (the row is kept after a
    repair) and ``__tol`` (its OHLC order holds only within the tolerance),
    plus the detail expression of each rule. Details are only evaluated on
    the bad and repaired rows (see :func:`_explain`), which keeps a clean
    million-row frame cheap.
    """
    schema = frame.schema
    numerics = [c for c in NUMERIC_COLUMNS if c in schema]
    prices = [c for c in PRICE_COLUMNS if c in schema]

    if ROW_COLUMN not in schema:
        frame = frame.with_row_index(ROW_COLUMN, offset=1)
    frame = frame.with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))

    flags: dict[str, pl.Expr] = {}
    details: dict[str, pl.Expr] = {}

    # ---- stage 1: parse into private columns
    exprs: list[pl.Expr] = []
    if ticker is not None:
        exprs.append(pl.lit(ticker, dtype=pl.String).alias("__ticker"))
        flags["invalid_ticker"] = pl.lit(not re.match(TICKER_PATTERN, ticker))
        details["invalid_ticker"] = pl.lit(f"ticker={ticker!r}")
        if "ticker" in schema:
            given = pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase()
            flags["ticker_mismatch"] = given.is_not_null() & (given != "") & (given != ticker)
            details["ticker_mismatch"] = pl.concat_str(
                pl.lit("ticker column says "),
                pl.col("ticker").cast(pl.String),
                pl.lit(f", file is for {ticker}"),
            )
    else:
        raw = pl.col("ticker").cast(pl.String).str.strip_chars()
        norm = raw.str.to_uppercase()
        exprs.append(pl.when(norm != "").then(norm).alias("__ticker"))
        flags["invalid_ticker"] = ~norm.fill_null("").str.contains(TICKER_PATTERN)
        details["invalid_ticker"] = (
            pl.when(raw.fill_null("") == "")
            .then(pl.lit("ticker is empty"))
            .otherwise(pl.concat_str(pl.lit("ticker='"), raw, pl.lit("'")))
        )
    date, date_text, bad_date = date_exprs(schema["date"], date_format)
    exprs.append(date.alias("__date"))
    flags["unparsable_date"] = bad_date
    details["unparsable_date"] = (
        pl.when(date_text.fill_null("") == "")
        .then(pl.lit("date is empty"))
        .otherwise(pl.concat_str(pl.lit("date='"), date_text, pl.lit("'")))
    )
    details["__date_text"] = pl.coalesce(pl.col("__date").cast(pl.String), date_text)
    for c in numerics:
        value, text, unparsable = _number_exprs(c, schema[c])
        exprs += [value.alias(f"__v_{c}"), unparsable.alias(f"__u_{c}")]
        details[f"__t_{c}"] = text
    frame = frame.with_columns(exprs)

    # ---- stage 2: finite values (NaN/inf -> null: Polars orders NaN above every number)
    v = {c: pl.col(f"__v_{c}") for c in numerics}
    frame = frame.with_columns([pl.when(v[c].is_finite()).then(v[c]).alias(f"__x_{c}") for c in v])
    x = {c: pl.col(f"__x_{c}") for c in numerics}

    def per_column(rule: str, cols: list[str], flag, detail) -> None:
        col_flags = [flag(c).fill_null(False) for c in cols]
        flags[rule] = pl.any_horizontal(col_flags) if col_flags else pl.lit(False)
        details[rule] = _joined(
            [pl.when(f).then(detail(c)) for f, c in zip(col_flags, cols, strict=True)]
        )

    per_column(
        "unparsable_number",
        numerics,
        lambda c: pl.col(f"__u_{c}"),
        lambda c: pl.concat_str(pl.lit(f"{c}='"), pl.col(f"__t_{c}"), pl.lit("'")),
    )
    per_column(
        "missing_value",
        numerics,
        lambda c: ~pl.col(f"__u_{c}") & (v[c].is_null() | v[c].is_nan()),
        lambda c: (
            pl.lit(f"{c} is ")
            + pl.when(v[c].is_nan()).then(pl.lit("NaN")).otherwise(pl.lit("empty"))
        ),
    )
    per_column(
        "infinite_value",
        numerics,
        lambda c: v[c].is_infinite(),
        lambda c: pl.concat_str(pl.lit(f"{c}="), _fmt(v[c])),
    )
    per_column(
        "non_positive_price",
        prices,
        lambda c: x[c] <= 0,
        lambda c: pl.concat_str(pl.lit(f"{c}="), _fmt(x[c]), pl.lit(" <= 0")),
    )
    # candle-shape rules only look at prices that are themselves valid (finite, > 0),
    # so one bad value gives one violation
    hi, lo, op, cl = (pl.when(x[c] > 0).then(x[c]) for c in ("high", "low", "open", "close"))
    # relative tolerance: float noise in adjusted prices is not a broken bar
    below, above = 1.0 - tolerance, 1.0 + tolerance
    high_below_low = (hi < lo * below).fill_null(False)
    flags["high_below_low"] = high_below_low
    details["high_below_low"] = pl.concat_str(
        pl.lit("high="), _fmt(hi), pl.lit(" < low="), _fmt(lo)
    )
    top, bottom = pl.max_horizontal(op, cl), pl.min_horizontal(op, cl)
    both = op.is_not_null() & cl.is_not_null()
    flags["high_below_open_close"] = both & (hi < top * below) & ~high_below_low
    details["high_below_open_close"] = pl.concat_str(
        pl.lit("high="), _fmt(hi), pl.lit(" < max(open, close)="), _fmt(top)
    )
    flags["low_above_open_close"] = both & (lo > bottom * above) & ~high_below_low
    strict_order_broken = ((hi < lo) | (both & ((hi < top) | (lo > bottom)))).fill_null(False)
    details["low_above_open_close"] = pl.concat_str(
        pl.lit("low="), _fmt(lo), pl.lit(" > min(open, close)="), _fmt(bottom)
    )
    flags["negative_volume"] = x["volume"] < 0
    details["negative_volume"] = pl.concat_str(pl.lit("volume="), _fmt(x["volume"]), pl.lit(" < 0"))
    flags.setdefault("ticker_mismatch", pl.lit(False))
    # the first occurrence kept is the first row that would be kept otherwise: a bad row
    # (e.g. Yahoo's "null" line) before the real one is refused for its own fault only
    faults = [flags[r].fill_null(False) for r in flags if r not in REPAIRABLE_RULES]
    kept = ~pl.any_horizontal(faults)
    if not repair:
        kept = kept & ~pl.any_horizontal([flags[r].fill_null(False) for r in REPAIRABLE_RULES])
    keyed = pl.col("__ticker").is_not_null() & pl.col("__date").is_not_null() & kept
    first = pl.col(ROW_COLUMN).filter(keyed).min().over(["__ticker", "__date"])
    frame = frame.with_columns(pl.when(keyed).then(first).alias("__first_row"))
    flags["duplicate_date"] = pl.col(ROW_COLUMN) != pl.col("__first_row")
    details["duplicate_date"] = pl.concat_str(
        pl.lit("first seen at row "), pl.col("__first_row").cast(pl.String)
    )
    details.setdefault("ticker_mismatch", pl.lit(None, dtype=pl.String))

    any_flag = pl.any_horizontal([pl.col(f"__f_{r}") for r in _ROW_RULES])
    others = [pl.col(f"__f_{r}") for r in _ROW_RULES if r not in REPAIRABLE_RULES]
    fixable = pl.any_horizontal([pl.col(f"__f_{r}") for r in REPAIRABLE_RULES])
    fix = (fixable & ~pl.any_horizontal(others)) if repair else pl.lit(False)
    frame = (
        frame.with_columns([flags[r].fill_null(False).alias(f"__f_{r}") for r in _ROW_RULES])
        .with_columns(fix.alias("__fix"))
        .with_columns((any_flag & ~pl.col("__fix")).alias("__bad"))
        .with_columns((strict_order_broken & ~any_flag).alias("__tol"))
    )
    return frame, details


def _explain(
    prepared: pl.DataFrame, details: dict[str, pl.Expr], which: str = "__bad"
) -> pl.DataFrame:
    """Return the rows flagged ``which`` with text, detail, ``__rules`` and ``__details``."""
    bad = prepared.filter(pl.col(which))
    bad = bad.with_columns([e.alias(k) for k, e in details.items() if k.startswith("__")])
    bad = bad.with_columns([details[r].alias(f"__d_{r}") for r in _ROW_RULES])
    flags = [pl.col(f"__f_{r}") for r in _ROW_RULES]
    return bad.with_columns(
        _joined(
            [pl.when(f).then(pl.lit(r)) for f, r in zip(flags, _ROW_RULES, strict=True)], ";"
        ).alias("__rules"),
        _joined(
            [pl.when(pl.col(f"__f_{r}")).then(pl.col(f"__d_{r}")) for r in _ROW_RULES], "; "
        ).alias("__details"),
    )


def _violations(bad: pl.DataFrame, source: str) -> list[Violation]:
    if bad.height == 0:
        return []
    parts = []
    for order, rule in enumerate(_ROW_RULES):
        parts.append(
            bad.filter(pl.col(f"__f_{rule}")).select(
                pl.col(ROW_COLUMN).alias("row"),
                pl.col("__ticker").alias("ticker"),
                pl.col("__date_text").alias("date"),
                pl.lit(rule).alias("rule"),
                pl.lit(order).alias("order"),
                pl.col(f"__d_{rule}").fill_null("").alias("detail"),
            )
        )
    table = pl.concat(parts).sort(["row", "order"])
    return [
        Violation(source, t, r, d, rule, det)
        for r, t, d, rule, det in zip(
            table["row"].to_list(),
            table["ticker"].to_list(),
            table["date"].to_list(),
            table["rule"].to_list(),
            table["detail"].to_list(),
            strict=True,
        )
    ]


def _missing_columns(frame: pl.DataFrame, source: str, ticker: str | None) -> Violation | None:
    required = [c for c in REQUIRED_COLUMNS if not (c == "ticker" and ticker is not None)]
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return None
    found = [c for c in frame.columns if c != ROW_COLUMN]
    detail = f"missing {', '.join(missing)}; found {', '.join(found) or 'no columns'}"
    if "ticker" in missing:
        detail += (
            "; a single file needs a ticker column (or import a directory of per-ticker "
            "files named like AAPL.csv)"
        )
    return Violation(source, ticker, None, None, "missing_columns", detail)


def check_bars(
    frame: pl.DataFrame,
    source: str = "<frame>",
    ticker: str | None = None,
    *,
    tolerance: float = OHLC_TOLERANCE,
    date_format: str | None = None,
    repair: bool = False,
) -> BarsCheck:
    """Validate bars against every rule and split them into good and rejected rows.

    Parameters
    ----------
    frame : pl.DataFrame
        Bars with any header spelling (see :func:`normalise_columns`). ``date``
        may be Date, Datetime or text (ISO, or ``date_format``); prices and
        volume may be numbers or text (text that is not a number is reported
        as ``unparsable_number``). A ``__row__`` column, if present, gives
        each row's 1-based source row.
    source : str, default "<frame>"
        Name of the source, used in every violation.
    ticker : str, optional
        The ticker of a per-ticker source; then no ``ticker`` column is needed.
    tolerance : float, default OHLC_TOLERANCE (1e-9)
        Relative tolerance of the OHLC ordering rules. Bars within it are
        kept as given (not clipped) and counted in ``tolerated``.
    date_format : str, optional
        strftime pattern of text dates (e.g. ``"%m/%d/%Y"``); default ISO.
    repair : bool, default False
        Keep rows whose only faults are the ordering rules, with high and
        low widened to contain open and close (see :class:`BarsCheck`).

    Returns
    -------
    BarsCheck
        Good (and repaired) rows in canonical schema, sorted by (ticker,
        date); violations; the rejected raw rows; the repairs.

    Raises
    ------
    BarsValidationError
        Only for source-level rules, when no row can be checked:
        ``missing_columns``, and ``date_format`` when more than half of the
        dates do not parse (one message naming the expected format, a
        sample and the formats under which every date parses).
    ValueError
        Two headers that normalise to the same column, a negative
        ``tolerance`` or a ``date_format`` that is not a strftime pattern.

    Examples
    --------
    >>> df = pl.DataFrame({"ticker": ["A", "A"], "date": ["2020-01-02", "2020-01-03"],
    ...                    "open": [1.0, 1.0], "high": [2.0, 0.5], "low": [0.5, 0.4],
    ...                    "close": [1.5, 1.0], "volume": [10.0, 10.0]})
    >>> result = check_bars(df, source="demo.csv")
    >>> result.bars.height, [v.rule for v in result.violations]
    (1, ['high_below_open_close'])
    >>> fixed = check_bars(df, source="demo.csv", repair=True)
    >>> fixed.bars.get_column("high").to_list(), len(fixed.repairs)
    ([2.0, 1.0], 1)
    """
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"frame must be a polars DataFrame, got {type(frame).__name__}")
    if not (isinstance(tolerance, int | float) and 0 <= tolerance < 1):
        raise ValueError(f"the OHLC tolerance must be in [0, 1), got {tolerance!r}")
    check_date_format(date_format)
    frame = normalise_columns(frame)
    missing = _missing_columns(frame, source, ticker)
    if missing is not None:
        raise BarsValidationError([missing])
    original = [c for c in frame.columns if c != ROW_COLUMN]
    prepared, details = _prepare(
        frame, ticker, tolerance=float(tolerance), date_format=date_format, repair=repair
    )
    problem = date_format_problem(prepared, source, ticker, date_format)
    if problem is not None:
        raise BarsValidationError([problem])
    bad = _explain(prepared, details)
    violations = _violations(bad, source)

    out_cols = [c for c in CANONICAL_COLUMNS if c != ADJ_CLOSE or ADJ_CLOSE in frame.columns]
    value = {c: pl.col(f"__x_{c}") for c in out_cols[2:]}
    if repair:  # only repaired rows are widened: rows within the tolerance stay as given
        fix = pl.col("__fix")
        hi = pl.max_horizontal(value["high"], value["open"], value["close"])
        lo = pl.min_horizontal(value["low"], value["open"], value["close"])
        value["high"] = pl.when(fix).then(hi).otherwise(value["high"])
        value["low"] = pl.when(fix).then(lo).otherwise(value["low"])
    good = prepared.filter(~pl.col("__bad")).select(
        [pl.col("__ticker").alias("ticker"), pl.col("__date").alias("date")]
        + [e.alias(c) for c, e in value.items()]
    )
    good = good.cast({c: BARS_SCHEMA[c] for c in out_cols}).sort(["ticker", "date"])
    given_ticker = pl.col("__ticker")
    if ticker is None:  # an invalid ticker is kept as given: it cannot be normalised
        raw = pl.col("ticker").cast(pl.String)
        given_ticker = pl.when(pl.col("__f_invalid_ticker")).then(raw).otherwise(given_ticker)
    rejected = bad.select(
        pl.lit(source).alias("source_file"),
        pl.col(ROW_COLUMN).alias("source_row"),
        given_ticker.alias("ticker"),
        pl.col("__rules").alias("rules"),
        pl.col("__details").alias("details"),
        *[pl.col(c).cast(pl.String).alias(f"{c}") for c in original if c != "ticker"],
    )
    fixed = _explain(prepared, details, "__fix")
    repaired = fixed.select(
        pl.lit(source).alias("source_file"),
        pl.col(ROW_COLUMN).alias("source_row"),
        pl.col("__ticker").alias("ticker"),
        pl.col("__date").alias("date"),
        pl.col("__rules").alias("rules"),
        pl.col("__details").alias("details"),
        *[pl.col(f"__x_{c}").alias(c) for c in ("open", "high", "low", "close")],
        value["high"].alias("repaired_high"),
        value["low"].alias("repaired_low"),
    )
    kept_in_tolerance = prepared.filter(pl.col("__tol") & ~pl.col("__bad"))
    tolerated = dict(kept_in_tolerance.group_by("__ticker").len().iter_rows())
    return BarsCheck(
        bars=good,
        violations=violations,
        rejected=rejected,
        repairs=_violations(fixed, source),
        repaired=repaired,
        tolerated=tolerated,
    )


def validate_bars(
    frame: pl.DataFrame,
    source: str = "<frame>",
    ticker: str | None = None,
    *,
    tolerance: float = OHLC_TOLERANCE,
    date_format: str | None = None,
) -> list[Violation]:
    """Return every rule the bars break (an empty list when they are valid).

    See :func:`check_bars` for the parameters. The source-level rules
    (``missing_columns``, ``date_format``) are returned as a single
    violation instead of raised.

    Examples
    --------
    >>> df = pl.DataFrame({"ticker": ["A"], "date": ["2020-01-02"], "open": [1.0],
    ...                    "high": [2.0], "low": [0.5], "close": [1.5], "volume": [-1.0]})
    >>> [(v.row, v.rule) for v in validate_bars(df)]
    [(1, 'negative_volume')]
    """
    try:
        return check_bars(
            frame, source=source, ticker=ticker, tolerance=tolerance, date_format=date_format
        ).violations
    except BarsValidationError as exc:
        return list(exc.violations)


def require_valid_bars(
    frame: pl.DataFrame,
    source: str = "<frame>",
    ticker: str | None = None,
) -> pl.DataFrame:
    """Return the bars in canonical schema sorted by (ticker, date), or raise.

    Raises
    ------
    BarsValidationError
        If any rule is broken; the message names file, row, ticker, date and rule.

    Examples
    --------
    >>> df = pl.DataFrame({"ticker": ["B", "A"], "date": ["2020-01-02", "2020-01-02"],
    ...                    "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0],
    ...                    "close": [1.0, 1.0], "volume": [0.0, 0.0]})
    >>> require_valid_bars(df)["ticker"].to_list()
    ['A', 'B']
    """
    result = check_bars(frame, source=source, ticker=ticker)
    if result.violations:
        raise BarsValidationError(result.violations)
    return result.bars
