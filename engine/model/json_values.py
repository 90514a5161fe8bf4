"""JSON-ready values: the scalars run files, reports and ``--json`` output write.

:func:`json_value` turns a NumPy, date or path scalar into what JSON holds,
:func:`json_rows` a table into rows of such values, and :func:`row_text`
names a row's values in an error message.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

__all__ = ["json_rows", "json_value", "row_text"]


def json_value(value: Any) -> Any:
    """A JSON-ready scalar: floats rounded to 6 digits (non-finite -> None), dates as ISO."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float | np.floating):
        v = float(value)
        return round(v, 6) if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def json_rows(frame: pl.DataFrame | None) -> list[dict[str, Any]] | None:
    """A table as a list of rows of :func:`json_value` values (``None`` stays ``None``).

    Examples
    --------
    >>> import polars as pl
    >>> json_rows(pl.DataFrame({"pattern": ["breakout"], "auc": [0.61234567]}))
    [{'pattern': 'breakout', 'auc': 0.612346}]
    """
    if frame is None:
        return None
    return [{k: json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def row_text(row: dict[str, Any]) -> str:
    """A row as ``key value`` pairs for an error message, values as :func:`json_value`.

    Examples
    --------
    >>> import datetime as dt
    >>> row_text({"ticker": "A", "date": dt.date(2021, 6, 1), "p": 0.1234567})
    'ticker A, date 2021-06-01, p 0.123457'
    """
    return ", ".join(f"{k} {json_value(row[k])}" for k in row)
