"""The bars schema: canonical columns, their dtypes and header normalisation.

A *bar* is one row per ``(ticker, date)`` with ``open, high, low, close > 0``,
``volume >= 0`` and an optional ``adj_close > 0``. Sources spell headers many
ways (``Adj Close``, ``adjclose``, ``Symbol``); :func:`normalise_columns`
maps them to the canonical names. The rules bars must meet live in
:mod:`engine.data.bars`.
"""

from __future__ import annotations

import re

import polars as pl

__all__ = [
    "ADJ_CLOSE",
    "BARS_SCHEMA",
    "CANONICAL_COLUMNS",
    "NUMERIC_COLUMNS",
    "PRICE_COLUMNS",
    "REQUIRED_COLUMNS",
    "ROW_COLUMN",
    "empty_bars",
    "normalise_columns",
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
NUMERIC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "adj_close")

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

_ALIASES: dict[str, str] = {
    "symbol": "ticker",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
}


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
