"""Holding through missing bars: a ticker with no bar on a day it traded keeps its last signal.

A signal exists only on a ticker's bars. A ticker that traded on day ``t``
but whose row is missing from the store (a gap in the vendor's data, not a
halt the engine knows of) would otherwise get signal 0 that day: the
portfolio would exit on the next fill and re-enter a day later, paying
costs twice and re-weighting every other position twice.

Instead, on a day inside the ticker's **trading span** (strictly between its
first and its last stored bar) that has no bar of the ticker, the value of
the ticker's last bar is carried: the base signal for the unfiltered run,
and the base signal with the confidence, so the filter's decision, for the
filtered run. Before its first bar and after its last one a ticker is not
trading, and nothing is carried. The backtest starts flat, so a ticker with
no bar on the first day of the calendar has nothing to hold: it enters on
its next bar, once, like every other ticker. The (ticker, day)s held with a
position are counted in the report (``held_through_missing_bars``).

The kernel itself is unchanged: on a missing bar it has no price, so the
held position is neither traded nor marked that day (:mod:`kernels.backtest`).

Examples
--------
>>> import numpy as np
>>> values = np.array([[1.0], [0.0], [0.0], [-1.0]])
>>> missing = np.array([[False], [True], [True], [False]])
>>> hold_through_missing_bars(values, missing).ravel().tolist()
[1.0, 1.0, 1.0, -1.0]
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["hold_through_missing_bars", "missing_inside_span"]


def missing_inside_span(bars: pl.DataFrame, tickers: list[str], dates: np.ndarray) -> np.ndarray:
    """Where each ticker has no bar on a calendar day strictly inside its trading span.

    Parameters
    ----------
    bars : polars.DataFrame
        ``ticker`` and ``date`` of every stored bar (the whole history: the
        span runs from a ticker's first to its last bar, also outside
        ``dates``).
    tickers : list of str
    dates : ndarray of datetime64[D]
        The backtest calendar.

    Returns
    -------
    ndarray of bool, shape (days, tickers)

    Examples
    --------
    >>> import datetime as dt
    >>> d = [dt.date(2024, 1, k) for k in (2, 3, 4, 5)]
    >>> bars = pl.DataFrame({"ticker": ["A", "A", "A", "B", "B"],
    ...                      "date": [d[0], d[2], d[3], d[0], d[1]]})
    >>> missing_inside_span(bars, ["A", "B"], np.array(d, dtype="datetime64[D]")).tolist()
    [[False, False], [True, False], [False, False], [False, False]]
    """
    days = np.asarray(dates, dtype="datetime64[D]")
    out = np.zeros((days.shape[0], len(tickers)), dtype=bool)
    kept = bars.filter(pl.col("ticker").is_in(tickers)).select("ticker", "date")
    for (ticker,), frame in kept.group_by("ticker"):
        held = frame.get_column("date").to_numpy().astype("datetime64[D]")
        inside = (days > held.min()) & (days < held.max())
        out[:, tickers.index(ticker)] = inside & ~np.isin(days, held)
    return out


def hold_through_missing_bars(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``values`` with each missing cell replaced by the ticker's value on the day before.

    Parameters
    ----------
    values : ndarray, shape (days, tickers)
        A signal or a confidence on the backtest calendar.
    missing : ndarray of bool, shape (days, tickers)
        From :func:`missing_inside_span`.

    Returns
    -------
    ndarray
        A new array; runs of missing days carry the value of the last bar.
        A missing first day keeps its own value (the backtest starts flat).
    """
    out = np.array(values, dtype=np.float64, copy=True)
    for t in range(1, out.shape[0]):
        out[t] = np.where(missing[t], out[t - 1], out[t])
    return out
