"""Long (ticker, date) panels: sorting, key checks and per-ticker row ranges.

Every panel the engine handles (bars, features, targets) is one row per
(ticker, date), sorted by ticker then date. ``sorted_panel`` establishes that
cheaply (it sorts only unsorted input and finds duplicates among adjacent
rows) and ``ticker_ranges`` turns the sorted ticker column into row ranges,
so that a ticker's rows are a slice instead of a string filter.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["sorted_panel", "ticker_ranges"]


def sorted_panel(frame: pl.DataFrame, what: str = "frame") -> pl.DataFrame:
    """Return ``frame`` sorted by (ticker, date); raise on null or duplicate keys.

    Parameters
    ----------
    frame : pl.DataFrame
        Holds ``ticker`` and ``date`` columns.
    what : str
        Name used in error messages (``"bars"``, ``"features"``...).

    Raises
    ------
    ValueError
        A missing key column, a null key, or a (ticker, date) seen twice; the
        message shows up to five duplicates.

    Examples
    --------
    >>> import datetime as dt
    >>> f = pl.DataFrame({"ticker": ["B", "A"], "date": [dt.date(2020, 1, 1)] * 2})
    >>> sorted_panel(f).get_column("ticker").to_list()
    ['A', 'B']
    """
    for key in ("ticker", "date"):
        if key not in frame.columns:
            raise ValueError(f"{what} lack the key column {key!r}")
    null_keys = frame.select(pl.any_horizontal(pl.col("ticker", "date").is_null()).sum()).item()
    if null_keys:
        raise ValueError(f"{what} hold {null_keys} rows with a null ticker or date")
    ticker, day = pl.col("ticker"), pl.col("date")
    same = ticker == ticker.shift(1)
    in_order = (ticker > ticker.shift(1)) | (same & (day >= day.shift(1)))
    if not frame.select(in_order.slice(1).all()).item():
        frame = frame.sort("ticker", "date")
    duplicated = frame.filter(same & (day == day.shift(1)))
    if duplicated.height:
        shown = ", ".join(f"{t} {d}" for t, d in duplicated.select("ticker", "date").head(5).rows())
        raise ValueError(
            f"{what} hold {duplicated.height} rows with a duplicate (ticker, date), e.g. {shown}; "
            "each (ticker, date) must appear once"
        )
    return frame


def ticker_ranges(frame: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """Row range ``(start, stop)`` of each ticker in a frame sorted by ticker.

    Examples
    --------
    >>> ticker_ranges(pl.DataFrame({"ticker": ["A", "A", "B"]}))
    {'A': (0, 2), 'B': (2, 3)}
    """
    runs = frame.get_column("ticker").rle()
    lengths = runs.struct.field("len").to_numpy()
    stops = np.cumsum(lengths)
    return {
        t: (int(b - n), int(b))
        for t, n, b in zip(runs.struct.field("value").to_list(), lengths, stops, strict=True)
    }
