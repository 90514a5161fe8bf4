"""Dates in bar sources: ISO ``YYYY-MM-DD`` by default, any strftime pattern on request.

A source whose dates are in another format (``01/04/1999``) would otherwise
give one ``unparsable_date`` violation per row. :func:`date_format_problem`
turns that into one message per source that names the expected format, shows
a sample and lists the common formats under which every date of the source
parses, so the user can pass ``--date-format`` at once.

A parsed date must lie in ``[1800-01-01, 2200-12-31]``: ``%m/%d/%Y`` reads
``01/04/99`` as the year 99, which is a wrong format, not a date.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from engine.data.violations import Violation

__all__ = [
    "COMMON_DATE_FORMATS",
    "EARLIEST_DATE",
    "ISO_DATE_FORMAT",
    "LATEST_DATE",
    "check_date_format",
    "date_exprs",
    "date_format_problem",
    "guess_date_formats",
]

ISO_DATE_FORMAT = "%Y-%m-%d"
EARLIEST_DATE = date(1800, 1, 1)
LATEST_DATE = date(2200, 12, 31)
#: Formats :func:`guess_date_formats` tries, most common first.
COMMON_DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y%m%d",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%Y-%m-%d %H:%M:%S",
    "%m/%d/%Y %H:%M",
)
_ISO_RE = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
#: A source whose share of unparsable dates exceeds this has a format problem.
_FORMAT_PROBLEM_SHARE = 0.5
#: ... and either a common format parses all of them or at least this many fail.
_FORMAT_PROBLEM_ROWS = 10
_GUESS_SAMPLE = 2000


def check_date_format(date_format: str | None) -> None:
    """Refuse a ``--date-format`` that is not a strftime pattern.

    Examples
    --------
    >>> check_date_format("%m/%d/%Y")
    >>> check_date_format("mm/dd/yyyy")
    Traceback (most recent call last):
    ...
    ValueError: --date-format must be a strftime pattern such as %m/%d/%Y, got 'mm/dd/yyyy'
    """
    if date_format is None:
        return
    if not isinstance(date_format, str) or "%" not in date_format:
        raise ValueError(
            f"--date-format must be a strftime pattern such as %m/%d/%Y, got {date_format!r}"
        )


def _plausible(parsed: pl.Expr) -> pl.Expr:
    return pl.when(parsed.is_between(EARLIEST_DATE, LATEST_DATE)).then(parsed)


def date_exprs(dtype: pl.DataType, date_format: str | None = None) -> tuple[pl.Expr, ...]:
    """(parsed date, text for messages, unparsable flag) of the ``date`` column.

    Date and Datetime columns are taken as they are. Text is read as ISO
    (a time part after the date is ignored), or with ``date_format``.

    Examples
    --------
    >>> f = pl.DataFrame({"date": ["2020-01-02", "01/02/2020", "1999-13-01"]})
    >>> parsed, _, bad = date_exprs(pl.String())
    >>> f.select(bad).to_series().to_list()
    [False, True, True]
    >>> parsed, _, bad = date_exprs(pl.String(), "%m/%d/%Y")
    >>> f.select(parsed).to_series().to_list()
    [None, datetime.date(2020, 1, 2), None]
    >>> typed = pl.DataFrame({"date": [date(2020, 1, 2), None, date(2999, 1, 1)]})
    >>> typed.select(date_exprs(pl.Date())[2]).to_series().to_list()
    [False, True, True]
    """
    col = pl.col("date")
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        # typed dates need no parsing, but may still be null or implausible (2999-01-01)
        day = col if dtype == pl.Date else col.dt.date()
        parsed = _plausible(day)
        return parsed, day.cast(pl.String), parsed.is_null()
    text = col.cast(pl.String).str.strip_chars()
    if date_format is None:
        shaped = text.str.contains(_ISO_RE)
        parsed = pl.when(shaped).then(
            text.str.slice(0, 10).str.to_date(ISO_DATE_FORMAT, strict=False)
        )
    else:
        parsed = text.str.to_date(date_format, strict=False)
    parsed = _plausible(parsed)
    return parsed, text, parsed.is_null()


def guess_date_formats(values: list[str]) -> list[str]:
    """The :data:`COMMON_DATE_FORMATS` under which every one of ``values`` parses.

    Examples
    --------
    >>> guess_date_formats(["01/04/1999", "12/31/1999"])
    ['%m/%d/%Y']
    >>> guess_date_formats(["01/04/1999", "02/05/1999"])  # ambiguous: both are listed
    ['%m/%d/%Y', '%d/%m/%Y']
    """
    texts = pl.Series("date", [v for v in values if v], dtype=pl.String).str.strip_chars()
    if texts.len() == 0:
        return []
    frame = texts.to_frame()
    out = []
    for fmt in COMMON_DATE_FORMATS:
        parsed = _plausible(pl.col("date").str.to_date(fmt, strict=False))
        if frame.select(parsed.is_not_null().all()).item():
            out.append(fmt)
    return out


def date_format_problem(
    prepared: pl.DataFrame,
    source: str,
    ticker: str | None,
    date_format: str | None,
) -> Violation | None:
    """One ``date_format`` violation when most of a source's dates do not parse.

    Parameters
    ----------
    prepared : pl.DataFrame
        The source with its raw ``date`` column and the per-row flag
        ``__f_unparsable_date``.
    source, ticker : str
        Named in the violation.
    date_format : str or None
        The format that was expected (None: ISO).

    Returns
    -------
    Violation or None
        A violation when more than half of the non-empty dates fail and
        either a common format parses every date or at least 10 fail; None
        otherwise (the failures are then reported row by row as
        ``unparsable_date``).
    """
    dtype = prepared.schema["date"]
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return None  # typed dates have no format: bad ones are reported row by row
    text = pl.col("date").cast(pl.String).str.strip_chars()
    given = prepared.filter(text.fill_null("") != "")
    if given.height == 0:
        return None
    failed = given.filter(pl.col("__f_unparsable_date"))
    if failed.height <= _FORMAT_PROBLEM_SHARE * given.height:
        return None
    sample_values = given.select(text).to_series().head(_GUESS_SAMPLE).to_list()
    guesses = [f for f in guess_date_formats(sample_values) if f != date_format]
    if not guesses and failed.height < _FORMAT_PROBLEM_ROWS:
        return None  # a few bad dates in a tiny source: reported row by row
    expected = (
        f"ISO dates (YYYY-MM-DD, {ISO_DATE_FORMAT})"
        if date_format is None
        else f"in the --date-format {date_format}"
    )
    sample = failed.select(text).item(0, 0)
    detail = f"{failed.height:,} of {given.height:,} dates are not {expected}, e.g. {sample!r}"
    if len(guesses) == 1:
        detail += f"; every date parses as {guesses[0]}: pass --date-format {guesses[0]}"
    elif guesses:
        detail += (
            f"; every date parses as any of {', '.join(guesses)} (ambiguous: check which "
            f"the source uses) and pass it as --date-format, e.g. --date-format {guesses[0]}"
        )
    else:
        detail += "; pass the source's pattern as --date-format, e.g. --date-format %m/%d/%Y"
    return Violation(source, ticker, None, None, "date_format", detail)
