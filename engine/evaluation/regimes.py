r"""Causal market regimes: a trend and a volatility label for every date, from data up to t.

A model that works only in bull markets, or only when volatility is low,
should say so. Each date of the market benchmark (``SPY`` by default) gets
two labels, both computed from its closes up to and including that date
(:func:`market_regimes`):

* **trend** from the 120-day log return
  :math:`R_{120}(t) = \ln(C_t / C_{t-120})` against one standard deviation
  of a 120-day return at the recent daily volatility,
  :math:`s(t) = \mathrm{sd}_{120}(r)\,\sqrt{120}` (sample sd, ddof 1, of the
  last 120 daily log returns): ``bull`` when :math:`R_{120} > s`, ``bear``
  when :math:`R_{120} < -s`, else ``sideways``. A move counts as a trend
  when it is larger than one sd of what the market's own noise would give
  over the same horizon.
* **volatility** from the 60-day realised volatility
  :math:`v(t) = \mathrm{sd}_{60}(r)\sqrt{252}` against its expanding median
  (the median of :math:`v` over every date up to t): ``high`` when
  :math:`v(t)` is above it, else ``low``. The median needs at least
  ``min_history`` (252) values of :math:`v`, so the label starts about
  15 months into the series.

Dates without enough history get null labels, never a guess. Because every
input is trailing, the labels of a date never change when later bars
arrive; a property test truncates the series at random dates and checks it.

:func:`regime_coverage` counts, per walk-forward window, the test days in
each regime: a model tested on 12 months of one bull market has said
nothing about bear markets.

Examples
--------
>>> import datetime as dt, numpy as np, polars as pl
>>> days = [dt.date(2000, 1, 3) + dt.timedelta(days=i) for i in range(600)]
>>> close = np.exp(np.cumsum(np.full(600, 0.002)) + 0.01 * np.sin(np.arange(600)))
>>> labels = market_regimes(pl.DataFrame({"date": days, "close": close}))
>>> labels.get_column("trend").drop_nulls().unique().to_list()
['bull']
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

__all__ = [
    "REGIME_LABELS",
    "TREND_LABELS",
    "VOLATILITY_LABELS",
    "label_rows",
    "market_regimes",
    "regime_coverage",
]

TREND_LABELS = ("bull", "bear", "sideways")
VOLATILITY_LABELS = ("high", "low")
#: Regime dimension -> its labels, in report order.
REGIME_LABELS = {"trend": TREND_LABELS, "volatility": VOLATILITY_LABELS}
TRADING_DAYS = 252


def _rolling_sd(r: np.ndarray, n: int) -> np.ndarray:
    """Sample sd (ddof 1) of the last ``n`` values; NaN until ``n`` finite values exist.

    A plain loop over each window (two-pass mean and sum of squares), so the
    value at t depends on ``r[t-n+1..t]`` alone and never on how much
    history precedes it.
    """
    out = np.full(r.size, np.nan)
    for t in range(n - 1, r.size):
        window = r[t - n + 1 : t + 1]
        if np.all(np.isfinite(window)):
            out[t] = window.std(ddof=1)
    return out


def _expanding_median(v: np.ndarray, min_history: int) -> np.ndarray:
    """Median of the finite values of ``v[..t]``; NaN until ``min_history`` of them."""
    out = np.full(v.size, np.nan)
    seen: list[float] = []
    for t, value in enumerate(v):
        if math.isfinite(value):
            bisect.insort(seen, float(value))
        k = len(seen)
        if k >= min_history:
            out[t] = seen[k // 2] if k % 2 else 0.5 * (seen[k // 2 - 1] + seen[k // 2])
    return out


def _labels(labels: np.ndarray, known: np.ndarray) -> pl.Series:
    """String labels, null where ``known`` is false."""
    return pl.Series(labels.tolist(), dtype=pl.String).zip_with(
        pl.Series(known), pl.Series([None] * labels.size, dtype=pl.String)
    )


def market_regimes(
    bars: pl.DataFrame,
    *,
    trend_days: int = 120,
    volatility_days: int = 60,
    min_history: int = TRADING_DAYS,
) -> pl.DataFrame:
    """Trend and volatility regime of every date of one benchmark, from closes up to that date.

    Parameters
    ----------
    bars : polars.DataFrame
        ``date`` and ``close`` of one security (the market benchmark), one
        row per trading day; sorted here.
    trend_days : int
        Horizon of the trend return and of the sd it is judged against.
    volatility_days : int
        Window of the realised volatility.
    min_history : int
        Realised-volatility values the expanding median needs.

    Returns
    -------
    polars.DataFrame
        ``date, trend_return, trend_band, trend, volatility_value,
        volatility_median, volatility`` (labels null during warm-up).

    Raises
    ------
    ValueError
        Missing columns, repeated dates, non-positive closes or bad windows.
    """
    for name, value in (("trend_days", trend_days), ("volatility_days", volatility_days),
                        ("min_history", min_history)):  # fmt: skip
        if isinstance(value, bool) or int(value) != value or value < 2:
            raise ValueError(f"`{name}` must be an integer >= 2, got `{name}={value}`")
    missing = [c for c in ("date", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"benchmark bars lack column(s) {missing} (have {bars.columns})")
    bars = bars.select("date", "close").sort("date")
    if bars.get_column("date").is_duplicated().any():
        raise ValueError("benchmark bars repeat a date; give one row per trading day")
    close = bars.get_column("close").cast(pl.Float64).to_numpy()
    if np.any(~(close > 0.0)):
        raise ValueError("benchmark closes must be positive numbers")
    logc = np.log(close)
    r = np.full(close.size, np.nan)
    r[1:] = np.diff(logc)
    trend = np.full(close.size, np.nan)
    trend[trend_days:] = logc[trend_days:] - logc[:-trend_days]
    band = _rolling_sd(r, trend_days) * math.sqrt(trend_days)
    vol = _rolling_sd(r, volatility_days) * math.sqrt(TRADING_DAYS)
    median = _expanding_median(vol, min_history)
    ok_t = np.isfinite(trend) & np.isfinite(band)
    trend_label = np.where(trend > band, "bull", np.where(trend < -band, "bear", "sideways"))
    ok_v = np.isfinite(vol) & np.isfinite(median)
    vol_label = np.where(vol > median, "high", "low")
    return pl.DataFrame(
        {
            "date": bars.get_column("date"),
            "trend_return": pl.Series(trend).fill_nan(None),
            "trend_band": pl.Series(band).fill_nan(None),
            "trend": _labels(trend_label, ok_t),
            "volatility_value": pl.Series(vol).fill_nan(None),
            "volatility_median": pl.Series(median).fill_nan(None),
            "volatility": _labels(vol_label, ok_v),
        }
    )


def label_rows(frame: pl.DataFrame, regimes: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the ``trend`` and ``volatility`` of each row's date (null if unknown).

    A row dated on a day the benchmark did not trade takes no label: the
    join is exact on date, never a nearby day.
    """
    labels = regimes.select("date", "trend", "volatility")
    clash = [c for c in ("trend", "volatility") if c in frame.columns]
    return frame.drop(clash).join(labels, on="date", how="left")


def regime_coverage(
    frame: pl.DataFrame,
    *,
    by: str = "model_id",
    dimensions: Sequence[str] = ("trend", "volatility"),
) -> pl.DataFrame:
    """Test days per window in each regime (a date counts once, whatever its tickers).

    Parameters
    ----------
    frame : polars.DataFrame
        Rows with ``by``, ``date`` and the regime columns (:func:`label_rows`).
    by : str
        The window column.
    dimensions : sequence of str
        Regime dimensions to count.

    Returns
    -------
    polars.DataFrame
        ``by, first_date, last_date, days``, then ``<dimension>:<label>`` day
        counts (and ``<dimension>:unknown`` for dates without a label), one
        row per window in date order, and a final ``all`` row.

    Examples
    --------
    >>> import datetime as dt
    >>> d = [dt.date(2020, 1, k) for k in (2, 3, 6)]
    >>> f = pl.DataFrame({"model_id": ["wf00"] * 3, "date": d,
    ...                   "trend": ["bull", "bull", "bear"], "volatility": ["low"] * 3})
    >>> regime_coverage(f).row(0)[:6]
    ('wf00', datetime.date(2020, 1, 2), datetime.date(2020, 1, 6), 3, 2, 1)
    """
    days = frame.select(by, "date", *dimensions).unique(subset=[by, "date"])
    counts = []
    for dim in dimensions:
        for label in (*REGIME_LABELS[dim], None):
            name = f"{dim}:{label or 'unknown'}"
            hit = pl.col(dim).is_null() if label is None else pl.col(dim) == label
            counts.append(hit.sum().cast(pl.Int64).alias(name))
    summary = [
        pl.col("date").min().alias("first_date"),
        pl.col("date").max().alias("last_date"),
        pl.len().cast(pl.Int64).alias("days"),
        *counts,
    ]
    per_window = days.group_by(by).agg(summary).sort("first_date")
    dates = days.unique(subset=["date"])
    total = dates.select(pl.lit("all").alias(by), *summary)
    return pl.concat([per_window, total.cast(per_window.schema)])
