"""Sector maps from a file: ticker -> sector ETF, for ``--sector-map FILE``.

Two formats are read, by suffix:

* TOML (``.toml``): ``TICKER = "ETF"`` pairs, at the top level or under a
  ``[sector_map]`` table::

      [sector_map]
      JPM = "XLF"
      XOM = "XLE"

* CSV (``.csv``): a header with ``ticker`` and ``sector`` columns (``etf``,
  ``sector_etf`` and ``benchmark`` are accepted for ``sector``)::

      ticker,sector
      JPM,XLF
      XOM,XLE

Tickers and ETFs are upper-cased and must be valid tickers; a ticker listed
twice is refused. Tickers the file does not list keep the default rule
(stocks -> ``XLK``, ETFs -> the market), see
:func:`engine.data.universe.sector_benchmark_map`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tomllib
from pathlib import Path

from engine.data.bars import TICKER_PATTERN

__all__ = ["SECTOR_COLUMN_NAMES", "read_sector_map"]

#: Accepted names of the sector ETF column of a CSV map.
SECTOR_COLUMN_NAMES: tuple[str, ...] = ("sector", "etf", "sector_etf", "benchmark")


def read_sector_map(path: str | os.PathLike[str]) -> dict[str, str]:
    r"""Read a ticker -> sector ETF map from a TOML or CSV file.

    Parameters
    ----------
    path : path-like
        A ``.toml`` or ``.csv`` file (see the module docstring).

    Returns
    -------
    dict of str to str
        Upper-cased ticker -> upper-cased sector ETF, sorted by ticker.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Another suffix, a malformed file, a missing column, an invalid or
        repeated ticker, or an empty ETF; the message names the file and the
        line or key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "sectors.csv"
    >>> _ = f.write_text("ticker,sector\njpm,XLF\nXOM,xle\n")
    >>> read_sector_map(f)
    {'JPM': 'XLF', 'XOM': 'XLE'}
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--sector-map file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        pairs = _toml_pairs(path)
    elif suffix == ".csv":
        pairs = _csv_pairs(path)
    else:
        raise ValueError(
            f"--sector-map {path}: the file must be .toml or .csv (ticker -> sector ETF), "
            f"got {path.suffix or 'no suffix'}"
        )
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for where, ticker, etf in pairs:
        ticker, etf = ticker.strip().upper(), etf.strip().upper()
        for role, value in (("ticker", ticker), ("sector ETF", etf)):
            if not re.match(TICKER_PATTERN, value):
                raise ValueError(
                    f"--sector-map {path}, {where}: {role} {value!r} is not a valid ticker"
                )
        if ticker in out:
            raise ValueError(
                f"--sector-map {path}, {where}: {ticker} is listed twice "
                f"(first at {seen[ticker]}); keep one"
            )
        out[ticker], seen[ticker] = etf, where
    if not out:
        raise ValueError(f"--sector-map {path} maps no ticker")
    return dict(sorted(out.items()))


def _toml_pairs(path: Path) -> list[tuple[str, str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--sector-map {path} is not valid TOML: {exc}") from None
    if set(data) == {"sector_map"} and isinstance(data["sector_map"], dict):
        data = data["sector_map"]
    pairs = []
    for key, value in data.items():
        if not isinstance(value, str):
            raise ValueError(
                f"--sector-map {path}, key {key!r}: the value must be a sector ETF ticker "
                f'such as "XLK", got {value!r}'
            )
        pairs.append((f"key {key!r}", key, value))
    return pairs


def _csv_pairs(path: Path) -> list[tuple[str, str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--sector-map {path} is not UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    sector_col = next((c for c in SECTOR_COLUMN_NAMES if c in header), None)
    if "ticker" not in header or sector_col is None:
        raise ValueError(
            f"--sector-map {path}: the header must name a ticker and a sector column "
            f"(ticker,sector), got {','.join(header) or 'an empty file'}"
        )
    t, s = header.index("ticker"), header.index(sector_col)
    pairs = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(t, s):
            raise ValueError(f"--sector-map {path}, line {line}: expected ticker,sector")
        pairs.append((f"line {line}", row[t], row[s]))
    return pairs
