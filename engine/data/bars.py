"""The bars schema, column normalisation and vectorised validation.

A *bar* is one row per ``(ticker, date)`` with ``open, high, low, close > 0``,
``volume >= 0`` and an optional ``adj_close > 0``. Every rule a bar can break
has a stable short id (see :data:`RULES`) that appears in error messages,
import reports and the ``rejected/`` files, so scripts can rely on it.

Validation never loops over rows in Python: each rule is one Polars
expression over the whole frame. A :class:`Violation` names the source file,
the ticker, the 1-based data row (the header is not counted), the date and the
rule, so a user can open the file and find the line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

__all__ = [
    "ADJ_CLOSE",
    "BARS_SCHEMA",
    "CANONICAL_COLUMNS",
    "MAX_LISTED_VIOLATIONS",
    "PRICE_COLUMNS",
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

#: Canonical column order of a bars frame; ``adj_close`` is optional and comes last.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "ticker", "date", "open", "high", "low", "close", "volume", "adj_close",
)  # fmt: skip
ADJ_CLOSE = "adj_close"
#: Columns a bars frame must have (``ticker`` may instead come from the file name).
REQUIRED_COLUMNS: tuple[str, ...] = ("ticker", "date", "open", "high", "low", "close", "volume")
#: Columns that must be strictly positive when present.
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
_NUMERIC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "adj_close")

#: Dtypes of the canonical columns.
BARS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "adj_close": pl.Float64(),
}

#: Optional column holding the 1-based source row of each bar. When a frame
#: passed to :func:`check_bars` lacks it, rows are numbered by position.
ROW_COLUMN = "__row__"

#: A ticker becomes a file name, so it is restricted to a safe alphabet.
TICKER_PATTERN = r"^[A-Z0-9^][A-Z0-9.\-_^=]{0,31}$"

#: Rule id -> what the rule requires. The ids are stable.
RULES: dict[str, str] = {
    "missing_columns": "columns ticker (or a per-ticker file name), date, open, high, low, "
    "close and volume are required",
    "no_rows": "a source needs at least one data row",
    "invalid_ticker": f"a ticker must be non-empty and match {TICKER_PATTERN}",
    "ticker_mismatch": "a ticker column in a per-ticker file must equal the file's ticker",
    "unparsable_date": "date must be ISO YYYY-MM-DD (a time part after it is ignored)",
    "unparsable_number": "prices and volume must be decimal numbers",
    "missing_value": "prices and volume must not be empty, null or NaN",
    "infinite_value": "prices and volume must be finite",
    "non_positive_price": "open, high, low, close and adj_close must be > 0",
    "high_below_low": "high must be >= low",
    "high_below_open_close": "high must be >= max(open, close)",
    "low_above_open_close": "low must be <= min(open, close)",
    "negative_volume": "volume must be >= 0",
    "duplicate_date": "each (ticker, date) may appear once; the first occurrence is kept",
}
_ROW_RULES: tuple[str, ...] = tuple(r for r in RULES if r not in ("missing_columns", "no_rows"))

#: How many violations an error message lists before saying "and N more".
MAX_LISTED_VIOLATIONS = 10

_ALIASES: dict[str, str] = {
    "symbol": "ticker",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
}
_DATE_RE = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in one row (or, for ``missing_columns``, one source).

    Attributes
    ----------
    file : str
        The source the row came from (a path, or ``"<frame>"`` for in-memory data).
    ticker : str or None
        The row's ticker, ``None`` when it is empty.
    row : int or None
        1-based data row in the source (header not counted); ``None`` for
        source-level rules such as ``missing_columns``.
    date : str or None
        ISO date of the row, or the raw text when it could not be parsed.
    rule : str
        Stable rule id, a key of :data:`RULES`.
    detail : str
        The offending values, e.g. ``"volume=-5.0 < 0"``.
    """

    file: str
    ticker: str | None
    row: int | None
    date: str | None
    rule: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        """Return the violation as a JSON-friendly dict."""
        return {
            "file": self.file,
            "ticker": self.ticker,
            "row": self.row,
            "date": self.date,
            "rule": self.rule,
            "detail": self.detail,
        }


def format_violation(v: Violation) -> str:
    """Render a violation as one line naming file, row, ticker, date and rule.

    Examples
    --------
    >>> format_violation(Violation("AAPL.csv", "AAPL", 3, "2020-01-03", "negative_volume",
    ...                            "volume=-5.0 < 0"))
    'AAPL.csv: row 3, ticker AAPL, date 2020-01-03: negative_volume (volume=-5.0 < 0)'
    """
    where = [f"row {v.row}"] if v.row is not None else []
    if v.ticker is not None:
        where.append(f"ticker {v.ticker}")
    if v.row is not None:
        where.append(f"date {v.date if v.date not in (None, '') else '<empty>'}")
    loc = f"{v.file}: {', '.join(where)}" if where else v.file
    return f"{loc}: {v.rule} ({v.detail})"


class BarsValidationError(ValueError):
    """Bars broke one or more rules; ``.violations`` holds every one of them.

    The message starts with a one-line summary, then lists up to
    :data:`MAX_LISTED_VIOLATIONS` violations (file, row, ticker, date, rule)
    and says how many more there are.

    Parameters
    ----------
    violations : sequence of Violation
        Every violation found (must not be empty).
    headline : str, optional
        Replaces the default first line.
    hint : str, optional
        Appended as the last line (e.g. how to drop bad rows instead).
    """

    def __init__(
        self,
        violations: Sequence[Violation],
        headline: str | None = None,
        hint: str | None = None,
    ) -> None:
        violations = list(violations)
        if not violations:
            raise ValueError("BarsValidationError needs at least one violation, got none")
        self.violations: list[Violation] = violations
        files = sorted({v.file for v in violations})
        shown_files = ", ".join(files[:3])
        if len(files) > 3:
            shown_files += f" and {len(files) - 3} more"
        counts: dict[str, int] = {}
        for v in violations:
            counts[v.rule] = counts.get(v.rule, 0) + 1
        by_rule = ", ".join(f"{rule}: {n}" for rule, n in counts.items())
        if headline is None:
            headline = (
                f"invalid bars in {shown_files}: {len(violations)} "
                f"violation{'s' if len(violations) != 1 else ''} ({by_rule})"
            )
        lines = [headline]
        lines += ["  " + format_violation(v) for v in violations[:MAX_LISTED_VIOLATIONS]]
        if len(violations) > MAX_LISTED_VIOLATIONS:
            lines.append(f"  ... and {len(violations) - MAX_LISTED_VIOLATIONS} more violations")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


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
        cast to text), preceded by ``source_file``, ``source_row``, ``ticker``,
        ``rules`` (``;``-separated ids) and ``details``.
    """

    bars: pl.DataFrame
    violations: list[Violation]
    rejected: pl.DataFrame

    @property
    def ok(self) -> bool:
        """Whether no rule was broken."""
        return not self.violations


def _normal_name(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return _ALIASES.get(key, key)


def normalise_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Rename columns to canonical names, case-insensitively and ignoring spaces.

    ``"Adj Close"``, ``"adj_close"`` and ``"AdjClose"`` all become ``adj_close``;
    ``"Symbol"`` becomes ``ticker``. Other columns keep their (normalised) name.

    Parameters
    ----------
    frame : pl.DataFrame
        Any frame.

    Returns
    -------
    pl.DataFrame
        The same data with renamed columns.

    Raises
    ------
    ValueError
        If two columns map to the same name (e.g. ``Close`` and ``close``).

    Examples
    --------
    >>> df = pl.DataFrame({c: [] for c in "Date,Open,High,Low,Close,Adj Close,Volume".split(",")})
    >>> normalise_columns(df).columns
    ['date', 'open', 'high', 'low', 'close', 'adj_close', 'volume']
    """
    mapping = {c: (c if c == ROW_COLUMN else _normal_name(c)) for c in frame.columns}
    seen: dict[str, str] = {}
    for original, new in mapping.items():
        if new in seen:
            raise ValueError(
                f"columns {seen[new]!r} and {original!r} both normalise to {new!r}; "
                "keep only one of them"
            )
        seen[new] = original
    return frame.rename(mapping)


def empty_bars(with_adj_close: bool = False) -> pl.DataFrame:
    """Return an empty frame in the canonical bars schema.

    Examples
    --------
    >>> empty_bars().columns
    ['ticker', 'date', 'open', 'high', 'low', 'close', 'volume']
    """
    cols = [c for c in CANONICAL_COLUMNS if with_adj_close or c != ADJ_CLOSE]
    return pl.DataFrame(schema={c: BARS_SCHEMA[c] for c in cols})


# --------------------------------------------------------------------------- parsing


def _date_exprs(dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Return (parsed date, text for messages, unparsable flag) for the date column."""
    col = pl.col("date")
    if dtype == pl.Date:
        return col, col.cast(pl.String), pl.lit(False)
    if isinstance(dtype, pl.Datetime):
        return col.dt.date(), col.dt.date().cast(pl.String), pl.lit(False)
    text = col.cast(pl.String).str.strip_chars()
    shaped = text.str.contains(_DATE_RE)
    parsed = pl.when(shaped).then(text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
    return parsed, text, parsed.is_null()


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
    frame: pl.DataFrame, ticker: str | None
) -> tuple[pl.DataFrame, dict[str, pl.Expr]]:
    """Parse a normalised frame and flag every rule.

    Returns the frame with parsed private columns, one ``__f_<rule>`` flag per
    rule and ``__bad``, plus the detail expression of each rule. Details are
    only evaluated on the bad rows (see :func:`_explain`), which keeps a clean
    million-row frame cheap.
    """
    schema = frame.schema
    numerics = [c for c in _NUMERIC_COLUMNS if c in schema]
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
    date, date_text, bad_date = _date_exprs(schema["date"])
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
        lambda c: pl.lit(f"{c} is ")
        + pl.when(v[c].is_nan()).then(pl.lit("NaN")).otherwise(pl.lit("empty")),
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
    high_below_low = (hi < lo).fill_null(False)
    flags["high_below_low"] = high_below_low
    details["high_below_low"] = pl.concat_str(
        pl.lit("high="), _fmt(hi), pl.lit(" < low="), _fmt(lo)
    )
    top, bottom = pl.max_horizontal(op, cl), pl.min_horizontal(op, cl)
    both = op.is_not_null() & cl.is_not_null()
    flags["high_below_open_close"] = both & (hi < top) & ~high_below_low
    details["high_below_open_close"] = pl.concat_str(
        pl.lit("high="), _fmt(hi), pl.lit(" < max(open, close)="), _fmt(top)
    )
    flags["low_above_open_close"] = both & (lo > bottom) & ~high_below_low
    details["low_above_open_close"] = pl.concat_str(
        pl.lit("low="), _fmt(lo), pl.lit(" > min(open, close)="), _fmt(bottom)
    )
    flags["negative_volume"] = x["volume"] < 0
    details["negative_volume"] = pl.concat_str(pl.lit("volume="), _fmt(x["volume"]), pl.lit(" < 0"))
    keyed = pl.col("__ticker").is_not_null() & pl.col("__date").is_not_null()
    first = pl.col(ROW_COLUMN).min().over(["__ticker", "__date"])
    frame = frame.with_columns(pl.when(keyed).then(first).alias("__first_row"))
    flags["duplicate_date"] = pl.col(ROW_COLUMN) != pl.col("__first_row")
    details["duplicate_date"] = pl.concat_str(
        pl.lit("first seen at row "), pl.col("__first_row").cast(pl.String)
    )
    flags.setdefault("ticker_mismatch", pl.lit(False))
    details.setdefault("ticker_mismatch", pl.lit(None, dtype=pl.String))

    frame = frame.with_columns(
        [flags[r].fill_null(False).alias(f"__f_{r}") for r in _ROW_RULES]
    ).with_columns(pl.any_horizontal([pl.col(f"__f_{r}") for r in _ROW_RULES]).alias("__bad"))
    return frame, details


def _explain(prepared: pl.DataFrame, details: dict[str, pl.Expr]) -> pl.DataFrame:
    """Return the bad rows with text, detail, ``__rules`` and ``__details`` columns."""
    bad = prepared.filter(pl.col("__bad"))
    bad = bad.with_columns([e.alias(k) for k, e in details.items() if k.startswith("__")])
    bad = bad.with_columns(
        [details[r].alias(f"__d_{r}") for r in _ROW_RULES]
    )
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
    frame: pl.DataFrame, source: str = "<frame>", ticker: str | None = None
) -> BarsCheck:
    """Validate bars against every rule and split them into good and rejected rows.

    Parameters
    ----------
    frame : pl.DataFrame
        Bars with any header spelling (see :func:`normalise_columns`). ``date``
        may be Date, Datetime or ISO text; prices and volume may be numbers or
        text (text that is not a number is reported as ``unparsable_number``).
        A ``__row__`` column, if present, gives each row's 1-based source row.
    source : str, default "<frame>"
        Name of the source, used in every violation.
    ticker : str, optional
        The ticker of a per-ticker source; then no ``ticker`` column is needed.

    Returns
    -------
    BarsCheck
        Good rows in canonical schema (sorted by ticker, date), violations and
        the rejected raw rows.

    Raises
    ------
    BarsValidationError
        Only for ``missing_columns``: without the columns no row can be checked.
    ValueError
        If two headers normalise to the same column.

    Examples
    --------
    >>> df = pl.DataFrame({"ticker": ["A", "A"], "date": ["2020-01-02", "2020-01-03"],
    ...                    "open": [1.0, 1.0], "high": [2.0, 0.5], "low": [0.5, 0.4],
    ...                    "close": [1.5, 1.0], "volume": [10.0, 10.0]})
    >>> result = check_bars(df, source="demo.csv")
    >>> result.bars.height, [v.rule for v in result.violations]
    (1, ['high_below_open_close'])
    """
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"frame must be a polars DataFrame, got {type(frame).__name__}")
    frame = normalise_columns(frame)
    missing = _missing_columns(frame, source, ticker)
    if missing is not None:
        raise BarsValidationError([missing])
    original = [c for c in frame.columns if c != ROW_COLUMN]
    prepared, details = _prepare(frame, ticker)
    bad = _explain(prepared, details)
    violations = _violations(bad, source)

    out_cols = [c for c in CANONICAL_COLUMNS if c != ADJ_CLOSE or ADJ_CLOSE in frame.columns]
    good = prepared.filter(~pl.col("__bad")).select(
        [pl.col("__ticker").alias("ticker"), pl.col("__date").alias("date")]
        + [pl.col(f"__x_{c}").alias(c) for c in out_cols[2:]]
    )
    good = good.cast({c: BARS_SCHEMA[c] for c in out_cols}).sort(["ticker", "date"])
    rejected = bad.select(
        pl.lit(source).alias("source_file"),
        pl.col(ROW_COLUMN).alias("source_row"),
        pl.col("__ticker").alias("ticker"),
        pl.col("__rules").alias("rules"),
        pl.col("__details").alias("details"),
        *[pl.col(c).cast(pl.String).alias(f"{c}") for c in original if c != "ticker"],
    )
    return BarsCheck(bars=good, violations=violations, rejected=rejected)


def validate_bars(
    frame: pl.DataFrame, source: str = "<frame>", ticker: str | None = None
) -> list[Violation]:
    """Return every rule the bars break (an empty list when they are valid).

    See :func:`check_bars` for the parameters. ``missing_columns`` is returned
    as a single violation instead of raised.

    Examples
    --------
    >>> df = pl.DataFrame({"ticker": ["A"], "date": ["2020-01-02"], "open": [1.0],
    ...                    "high": [2.0], "low": [0.5], "close": [1.5], "volume": [-1.0]})
    >>> [(v.row, v.rule) for v in validate_bars(df)]
    [(1, 'negative_volume')]
    """
    try:
        return check_bars(frame, source=source, ticker=ticker).violations
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

