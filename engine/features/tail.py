"""Tail mode: the last rows of each ticker's features, from its full history, cheaply.

Serving needs the last 20 feature rows of each ticker, not all of them.
:func:`tail_features` computes exactly those rows, equal to
:func:`engine.features.build.compute_features` over the full history
followed by ``group_by("ticker").tail(rows)``, at a cost that grows with
``rows`` and the window lengths, not with the history:

* every ticker is cut to a window of its own rows that starts far enough
  back for the longest rolling window (``price_level``'s 252 days);
  ``garch_vol_ratio`` gets a longer window of its own, back to the GARCH fit
  that governs the first output row (up to 1,000 returns, on the refit grid
  anchored at the ticker's first bar: the kernel is told how many valid
  returns precede the window, so it refits at the same dates as the full
  computation and only at those the output rows need);
* the window starts on the grid on which the rolling kernels restart their
  running sums exactly (every ``ROLLING_ANCHOR`` rows from the ticker's
  first bar), two grid steps early, so that every running statistic is in
  the same state as in the full computation by the first output row: the
  values are equal bit for bit, not merely close;
* benchmarks are cut the same way, from the first date a ticker window
  reads.

The ``vix_term_structure`` variant ``"auto"`` is decided from the full
history's first date, as the full computation decides it.

Examples
--------
>>> from engine.data.demo import generate_demo_universe
>>> from engine.features.build import compute_features
>>> bars = generate_demo_universe(seed=7).bars
>>> tail = compute_features_tail(bars, 3, ["price_level"], tickers=["AAPL", "MSFT"])
>>> full = compute_features(bars, ["price_level"], tickers=["AAPL", "MSFT"])
>>> tail.equals(full.group_by("ticker", maintain_order=True).tail(3))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import polars as pl

from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import FEATURE_NAMES, FeaturePlan, feature_values, plan_features
from engine.features.source import SortedBars, day_number
from kernels.garch import GARCH_MAX_WINDOW, GARCH_REFIT_EVERY
from kernels.rolling import ROLLING_ANCHOR

__all__ = [
    "FEATURE_LOOKBACK",
    "GARCH_LOOKBACK",
    "TailArrays",
    "compute_features_tail",
    "tail_arrays",
    "tail_features",
    "tail_start",
]

#: Rows before an output row that its non-GARCH features read: ``price_level``'s
#: 252-day range reads the row and the 251 before it; the next longest chain,
#: ``market_beta_instability`` (sd_60 of 20-day betas of returns), reads 79.
FEATURE_LOOKBACK = 251
#: Rows before an output row that its GARCH forecast reads: the governing fit is
#: at most ``GARCH_REFIT_EVERY - 1`` rows earlier and uses up to
#: ``GARCH_MAX_WINDOW`` returns, the first of which reads the close before it.
GARCH_LOOKBACK = GARCH_REFIT_EVERY - 1 + GARCH_MAX_WINDOW
_GARCH = "garch_vol_ratio"


def tail_start(first_out: int, lookback: int, anchor: int = ROLLING_ANCHOR) -> int:
    """The row where a tail computation of rows ``first_out..`` starts.

    On the rolling kernels' restart grid (a multiple of ``anchor``), at
    least two grid steps before ``first_out - lookback``: a running
    statistic restarts exactly on the grid, and a statistic of another
    statistic (a rolling sd of rolling betas) needs one more step.

    Examples
    --------
    >>> tail_start(5_000, 251, anchor=128)
    4480
    >>> tail_start(300, 251, anchor=128)
    0
    """
    return max(0, ((first_out - lookback) // anchor - 2) * anchor)


def compute_features_tail(
    bars: pl.DataFrame,
    rows: int,
    features: Sequence[str] | None = None,
    *,
    tickers: Sequence[str] | None = None,
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
    as_of: date | None = None,
) -> pl.DataFrame:
    """The last ``rows`` feature rows of each ticker, as the full computation gives them.

    Parameters
    ----------
    bars : pl.DataFrame
        As for :func:`engine.features.build.compute_features`: every
        ticker's full history and its benchmarks.
    rows : int
        Rows per ticker (a ticker with fewer gets all of its rows).
    features, tickers, market, sector_map, vix_variant
        As for :func:`engine.features.build.compute_features`.
    as_of : datetime.date, optional
        Use bars dated on or before this day only (default: all).

    Returns
    -------
    pl.DataFrame
        Equal to ``compute_features(bars up to as_of, ...)`` followed by
        ``group_by("ticker", maintain_order=True).tail(rows)``.

    Raises
    ------
    ValueError
        ``rows < 1``, and whatever ``compute_features`` refuses.
    """
    source = SortedBars.of(bars)
    return tail_features(
        source,
        rows,
        features,
        tickers=tickers,
        market=market,
        sector_map=sector_map,
        vix_variant=vix_variant,
        as_of=as_of,
    )


def tail_features(
    source: SortedBars,
    rows: int,
    features: Sequence[str] | None = None,
    *,
    tickers: Sequence[str] | None = None,
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
    as_of: date | None = None,
) -> pl.DataFrame:
    """:func:`compute_features_tail` over bars already sorted (a server's copy of the store)."""
    tail = tail_arrays(
        source,
        rows,
        features,
        tickers=tickers,
        market=market,
        sector_map=sector_map,
        vix_variant=vix_variant,
        as_of=as_of,
    )
    frame = pl.DataFrame(
        {
            "ticker": pl.Series(tail.tickers, dtype=pl.String).gather(
                np.repeat(np.arange(len(tail.lengths)), tail.lengths)
            ),
            "date": pl.Series(tail.days, dtype=pl.Int32).cast(pl.Date),
        }
    )
    return frame.with_columns(
        pl.Series(name, tail.values[k], nan_to_null=True) for k, name in enumerate(tail.names)
    )


@dataclass(frozen=True)
class TailArrays:
    """The tail mode's rows as arrays (what a server turns into model input directly).

    Attributes
    ----------
    tickers : list of str
        Output tickers, sorted.
    lengths : list of int
        Rows of each ticker (``rows``, or fewer for a short history).
    days : ndarray of int32
        Dates as days since the epoch, ticker after ticker.
    names : list of str
        Features, in ``FEATURE_NAMES`` order.
    values : ndarray, shape (len(names), sum(lengths))
        The features, NaN where missing.
    """

    tickers: list[str]
    lengths: list[int]
    days: np.ndarray
    names: list[str]
    values: np.ndarray


def tail_arrays(
    source: SortedBars,
    rows: int,
    features: Sequence[str] | None = None,
    *,
    tickers: Sequence[str] | None = None,
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
    vix_variant: str = "auto",
    as_of: date | None = None,
) -> TailArrays:
    """:func:`tail_features` as arrays, without building a Polars frame."""
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise ValueError(f"`rows` must be a positive integer, got `rows={rows!r}`")
    day = None if as_of is None else day_number(as_of)
    stops = {t: source.stop_at(t, day) for t in source.tickers}
    present = [t for t, stop in stops.items() if stop > 0]
    plan = plan_features(
        source, features, tickers, market, sector_map, vix_variant, available=present
    )
    keep = {t: min(int(rows), stops[t]) for t in plan.tickers}
    columns: dict[str, np.ndarray] = {}
    others = [name for name in plan.names if name != _GARCH]
    if others:  # the short windows of the rolling features
        short = replace(plan, names=others)
        columns.update(_tail_columns(source, short, stops, keep, FEATURE_LOOKBACK))
    if _GARCH in plan.names:  # the long windows of the GARCH fits
        garch = replace(plan, names=[_GARCH], variant=None)
        columns.update(_tail_columns(source, garch, stops, keep, GARCH_LOOKBACK))
    days = np.concatenate([source.days_of(t)[stops[t] - keep[t] : stops[t]] for t in plan.tickers])
    return TailArrays(
        tickers=list(plan.tickers),
        lengths=[keep[t] for t in plan.tickers],
        days=days,
        names=list(plan.names),
        values=np.stack([columns[name] for name in plan.names]),
    )


def _tail_columns(
    source: SortedBars,
    plan: FeaturePlan,
    stops: dict[str, int],
    keep: dict[str, int],
    lookback: int,
) -> dict[str, np.ndarray]:
    """The planned features on the last ``keep[t]`` rows before ``stops[t]`` of each ticker."""
    windows: dict[str, tuple[int, int]] = {}
    n = len(plan.tickers)
    run0 = np.zeros(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.int64)
    for i, ticker in enumerate(plan.tickers):
        stop = stops[ticker]
        first_out = stop - keep[ticker]  # the ticker's first output row
        start = tail_start(first_out, lookback)
        windows[ticker] = (start, stop)
        first[i] = first_out - start
        if _GARCH in plan.names:
            run0[i] = _valid_run_through(source.column(ticker, "close"), start)
    panel = source.windows(windows)
    bench = _benchmark_windows(source, plan, panel, stops)
    values = feature_values(plan, panel, bench, garch_run0=run0, garch_first=first)
    index = np.concatenate(
        [np.arange(panel.ranges[t][1] - keep[t], panel.ranges[t][1]) for t in plan.tickers]
    )
    return {name: values[FEATURE_NAMES.index(name)][index] for name in plan.names}


def _benchmark_windows(
    source: SortedBars, plan: FeaturePlan, panel: SortedBars, stops: dict[str, int]
) -> SortedBars:
    """Each benchmark cut from early enough before the first date a ticker window holds."""
    needed = plan.benchmarks()
    if not needed or panel.height == 0:
        return source.windows({})
    first_day = int(panel.days.min())
    windows = {}
    for ticker in needed:
        row = int(np.searchsorted(source.days_of(ticker), first_day, side="left"))
        windows[ticker] = (tail_start(row, FEATURE_LOOKBACK), stops[ticker])
    return source.windows(windows)


def _valid_run_through(close: np.ndarray, row: int) -> int:
    """Consecutive valid log returns ending at ``row``, its own included (0 for row 0).

    A return at row ``t`` is valid, as in the kernel's ``log_return``, when
    the closes at ``t - 1`` and ``t`` are both positive (and not both
    infinite, which gives NaN); row 0 has none. This vectorised scan of the
    closes up to ``row`` locates the refit grid of the current run; no
    floating-point work is done on those rows.

    Examples
    --------
    >>> _valid_run_through(np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0]), 5)
    2
    >>> _valid_run_through(np.array([1.0, 2.0, 3.0]), 2)
    2
    >>> _valid_run_through(np.array([1.0, 2.0, 3.0]), 0)
    0
    """
    if row < 1:
        return 0
    head = close[: row + 1]
    positive = head > 0.0
    infinite = np.isinf(head)
    valid = positive[1:] & positive[:-1] & ~(infinite[1:] & infinite[:-1])
    bad = np.flatnonzero(~valid)  # valid[i] is the return at row i + 1
    if bad.shape[0] == 0:
        return row
    return row - 1 - int(bad[-1])
