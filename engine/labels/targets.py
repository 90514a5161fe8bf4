"""Binary pattern-validation targets (SPEC section 4).

Each pattern is an **event** on some days and a binary **outcome** over the
next ``h`` rows of the same ticker (``h = 5`` by default). The event at day
``t`` uses bars up to ``t`` only, with fixed thresholds (never full-sample
quantiles, which leak the future); the outcome uses bars ``t+1 .. t+h`` only.
``t1``, the date of row ``t+h``, is the label end time used for purging.

Notation for one ticker, counting its own rows: ``C`` close, ``r_t =
ln(C_t / C_{t-1})``, ``R_n(t) = ln(C_t / C_{t-n})``, ``sd_n`` the rolling
sample standard deviation (ddof = 1) over the last ``n`` values, ``F(t) =
ln(C_{t+h} / C_t)`` the forward return. A rolling window holding a missing
value gives no value, hence no event.

Events (at ``t``) and the outcome that labels them 1:

* ``momentum_persistence``: ``abs(R_7) / (sd_20(r) * sqrt(7)) > 1``;
  1 when ``sign(F) == sign(R_7)``.
* ``volatility_regime``: ``abs(volatility_regime_change) > ln(1.5)``;
  1 when ``sqrt(mean(r^2 over t+1..t+h)) > sd_60(r)`` exactly when
  ``sd_10(r) > sd_60(r)`` (realised volatility lands on the same side).
* ``trend_exhaustion``: ``abs(trend_exhaustion) > 1``;
  1 when ``sign(F) == -sign(C_t - mean_20(C))``.
* ``volume_divergence``: ``C_t`` is a 20-day closing high or low (not both)
  and ``normalized_volume < 0``; 1 when ``F < 0`` after a high, ``F > 0``
  after a low.

Conventions (the contract the tests hold this module to):

* ``volatility_regime_change``, ``trend_exhaustion`` and ``normalized_volume``
  are taken from :func:`engine.features.build.compute_features`.
* A zero ``sd_20(r)`` is a zero denominator: no momentum event (SPEC
  section 3: a zero denominator without a named fallback gives NaN).
* "Same side" in ``volatility_regime`` means *strictly above* versus *not
  above*: realised volatility equal to ``sd_60`` counts as not above. An
  event implies ``sd_10 != sd_60``, so the predicted side is never a tie.
* A 20-day window whose closes are all equal is both a high and a low; it
  has no breakout direction, so it is **not** a ``volume_divergence`` event.
  A close that ties an earlier maximum (minimum) of the window is a high (low).
* A zero forward return has sign 0, which never equals a non-zero sign: the
  label is 0 (for ``volume_divergence`` too, since neither ``F < 0`` nor
  ``F > 0`` holds).
* A label is known only when rows ``t .. t+h`` all exist and all have a
  valid close (finite and positive). Otherwise the label is null, even on an
  event day; the ``<pattern>_event`` column (``with_events=True``) still
  records the event.
* A close that is null, NaN or non-positive is missing.

Examples
--------
>>> from engine.data.demo import generate_demo_universe
>>> bars = generate_demo_universe(seed=7).bars
>>> targets = compute_targets(bars, tickers=["SPY"], with_events=True)
>>> targets.columns[7:]
['momentum_persistence_event', 'volatility_regime_event', 'trend_exhaustion_event', \
'volume_divergence_event']
>>> target_summary(targets).get_column("pattern").to_list() == list(PATTERN_NAMES)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import polars as pl

from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import compute_features
from kernels.rolling import log_return, rolling_mean_std, rolling_min_max

__all__ = [
    "censor_after",
    "CONFIDENCE_SUFFIX",
    "DEFAULT_HORIZON",
    "EVENT_COLUMNS",
    "PATTERN_NAMES",
    "compute_targets",
    "target_summary",
]

#: One sigmoid head per pattern, in this order.
PATTERN_NAMES: tuple[str, ...] = (
    "momentum_persistence",
    "volatility_regime",
    "trend_exhaustion",
    "volume_divergence",
)
#: Boolean event flags that follow the label columns, one per pattern.
EVENT_COLUMNS: tuple[str, ...] = tuple(f"{name}_event" for name in PATTERN_NAMES)
#: The confidence column of pattern ``name`` in predictions and scores is
#: ``name + CONFIDENCE_SUFFIX``.
CONFIDENCE_SUFFIX = "_p"
DEFAULT_HORIZON = 5

#: Fixed event thresholds (SPEC section 4).
MOMENTUM_Z = 1.0
MOMENTUM_LAG = 7
MOMENTUM_WINDOW = 20
VOLATILITY_LOG_RATIO = math.log(1.5)
VOLATILITY_LONG_WINDOW = 60
TREND_Z = 1.0
EXTREMUM_WINDOW = 20

_FEATURES = ("volatility_regime_change", "trend_exhaustion", "normalized_volume")


def compute_targets(
    bars: pl.DataFrame,
    *,
    horizon: int = DEFAULT_HORIZON,
    tickers: Sequence[str] | None = None,
    market: str = MARKET_BENCHMARK,
    sector_map: Mapping[str, str] | None = None,
    with_events: bool = False,
    features: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Compute the four pattern events and their binary outcome labels.

    Parameters
    ----------
    bars : pl.DataFrame
        Long frame with ``ticker, date, open, high, low, close, volume``, in
        any row order, one row per (ticker, date). Nulls and NaN are missing.
    horizon : int
        ``h``: the outcome window is the ticker's next ``h`` rows.
    tickers : sequence of str, optional
        Tickers to return (default every ticker except ``VIX`` and ``VIX3M``,
        as :func:`engine.features.build.compute_features`).
    market : str
        Market benchmark, passed to ``compute_features``.
    sector_map : mapping, optional
        Sector benchmark overrides, passed to ``compute_features``.
    with_events : bool
        Also return one Boolean ``<pattern>_event`` column per pattern
        (``EVENT_COLUMNS``), true on event days whether or not the outcome is
        known yet; :func:`target_summary` needs them to count events.
    features : pl.DataFrame, optional
        The features of these ``bars`` already computed by
        :func:`engine.features.build.compute_features` over the same full
        history (any superset of the columns the events read:
        ``volatility_regime_change``, ``trend_exhaustion``,
        ``normalized_volume``). Passing them saves recomputing those three;
        ``market`` and ``sector_map`` are then not used.

    Returns
    -------
    pl.DataFrame
        One row per input row of the output tickers, sorted by ticker and
        date: ``ticker`` (String), ``date`` (Date), ``t1`` (Date of the
        ticker's row ``t+h``; null while that row does not exist), one Int8
        label per pattern in ``PATTERN_NAMES`` order (1/0 on event days whose
        outcome is known, null elsewhere), then the event columns (never
        null) if ``with_events``.

    Raises
    ------
    ValueError
        ``horizon`` is not a positive integer, or ``compute_features``
        rejects ``bars`` (missing columns, duplicates, unknown tickers).

    Notes
    -----
    Events at ``t`` depend on bars up to ``t`` only. A label depends on bars
    up to ``t1`` only, so replacing bars dated after ``d`` leaves every label
    with ``t1 <= d`` unchanged. The module docstring lists the conventions.

    Examples
    --------
    >>> from engine.data.demo import generate_demo_universe
    >>> bars = generate_demo_universe(seed=7).bars
    >>> targets = compute_targets(bars, tickers=["SPY"])
    >>> targets.columns[2:]
    ['t1', 'momentum_persistence', 'volatility_regime', 'trend_exhaustion', 'volume_divergence']
    >>> targets.filter(pl.col("t1").is_null()).height
    5
    """
    h = _check_horizon(horizon)
    if features is None:
        feats = compute_features(
            bars, list(_FEATURES), tickers=tickers, market=market, sector_map=sector_map
        )
    else:
        feats = _given_features(features, tickers)
    closes = bars.select(
        pl.col("ticker").cast(pl.String),
        pl.col("date").cast(pl.Date),
        pl.col("close").cast(pl.Float64),
    )
    panel = feats.join(closes, on=["ticker", "date"], how="left", validate="1:1",
                       maintain_order="left")  # fmt: skip

    close = _numpy(panel, "close")
    vrc = _numpy(panel, "volatility_regime_change")
    te = _numpy(panel, "trend_exhaustion")
    nv = _numpy(panel, "normalized_volume")
    n_rows = panel.height
    events = np.zeros((len(PATTERN_NAMES), n_rows), dtype=bool)
    labels = np.full((len(PATTERN_NAMES), n_rows), np.nan)
    has_t1 = np.zeros(n_rows, dtype=bool)
    for start, stop in _ticker_ranges(panel):
        rows = slice(start, stop)
        ev, lab, t1_ok = _ticker_targets(close[rows], vrc[rows], te[rows], nv[rows], h)
        events[:, rows] = ev
        labels[:, rows] = lab
        has_t1[rows] = t1_ok

    t1_index = np.where(has_t1, np.arange(n_rows) + h, 0)
    t1 = panel.get_column("date").gather(t1_index)
    return panel.select(
        "ticker",
        "date",
        pl.when(pl.Series(has_t1)).then(t1).otherwise(None).cast(pl.Date).alias("t1"),
        *(
            pl.Series(name, labels[i]).fill_nan(None).cast(pl.Int8)
            for i, name in enumerate(PATTERN_NAMES)
        ),
        *(pl.Series(name, events[i]) for i, name in enumerate(EVENT_COLUMNS) if with_events),
    )


def _given_features(features: pl.DataFrame, tickers: Sequence[str] | None) -> pl.DataFrame:
    """The event inputs from a precomputed feature frame, sorted by (ticker, date)."""
    missing = [c for c in ("ticker", "date", *_FEATURES) if c not in features.columns]
    if missing:
        raise ValueError(f"`features` lacks the columns {missing} that the pattern events read")
    feats = features.select("ticker", "date", *_FEATURES)
    if tickers is not None:
        absent = sorted(set(tickers) - set(feats.get_column("ticker").unique().to_list()))
        if absent:
            raise ValueError(f"`features` has no rows for ticker(s) {', '.join(absent)}")
        feats = feats.filter(pl.col("ticker").is_in(list(tickers)))
    return feats.sort("ticker", "date")


def censor_after(targets: pl.DataFrame, end: date | None) -> pl.DataFrame:
    """Null every label whose outcome window reaches past ``end`` (``t1 > end``).

    A sample dated on or before ``end`` still has a label computed from bars
    after ``end`` when its ``t1`` lies beyond it; a run restricted to
    ``--end`` must not learn from, or be scored on, those bars. ``t1`` itself
    is kept, so purging still sees the whole label span. Event columns are
    left as they are: an event at ``t`` depends on bars up to ``t`` only.

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pl.DataFrame({
    ...     "ticker": ["A", "A"], "date": [dt.date(2020, 1, 2), dt.date(2020, 1, 6)],
    ...     "t1": [dt.date(2020, 1, 9), dt.date(2020, 1, 13)],
    ...     "momentum_persistence": [1, 0],
    ... }).with_columns(pl.col("momentum_persistence").cast(pl.Int8))
    >>> censor_after(frame, dt.date(2020, 1, 10))["momentum_persistence"].to_list()
    [1, None]
    """
    if end is None:
        return targets
    labels = [c for c in PATTERN_NAMES if c in targets.columns]
    late = pl.col("t1").is_not_null() & (pl.col("t1") > end)
    return targets.with_columns(
        pl.when(late).then(None).otherwise(pl.col(c)).cast(targets.schema[c]).alias(c)
        for c in labels
    )


def target_summary(targets: pl.DataFrame, *, by_ticker: bool = False) -> pl.DataFrame:
    """Count each pattern's events, labelled events and positives.

    Parameters
    ----------
    targets : pl.DataFrame
        Output of :func:`compute_targets` (any row subset of it), best with
        ``with_events=True``; without the event columns ``events`` is null.
    by_ticker : bool
        Also split the counts by ticker.

    Returns
    -------
    pl.DataFrame
        ``[ticker,] pattern, events, labelled, positives, base_rate`` with one
        row per pattern (per ticker), patterns in ``PATTERN_NAMES`` order.
        ``events`` counts event days, ``labelled`` those whose outcome is
        known, ``positives`` the labels equal to 1 and ``base_rate`` is
        ``positives / labelled`` (null when nothing is labelled).

    Raises
    ------
    ValueError
        If ``targets`` lacks a label column (or ``ticker`` when
        ``by_ticker``).

    Examples
    --------
    >>> targets = pl.DataFrame(
    ...     {"ticker": ["A"] * 3, "momentum_persistence": [1, 0, None],
    ...      "momentum_persistence_event": [True, True, True]},
    ...     schema_overrides={"momentum_persistence": pl.Int8},
    ... )
    >>> for name in PATTERN_NAMES[1:]:
    ...     targets = targets.with_columns(
    ...         pl.lit(None, pl.Int8).alias(name), pl.lit(False).alias(f"{name}_event"))
    >>> target_summary(targets).row(0)
    ('momentum_persistence', 3, 2, 1, 0.5)
    """
    needed = [*PATTERN_NAMES, *(["ticker"] if by_ticker else [])]
    missing = [c for c in needed if c not in targets.columns]
    if missing:
        raise ValueError(
            f"targets lack column(s) {', '.join(missing)}; pass the output of compute_targets"
        )
    keys = ["ticker"] if by_ticker else []
    parts = []
    for name in PATTERN_NAMES:
        label = pl.col(name)
        event = f"{name}_event"
        counts = [
            (pl.col(event).sum() if event in targets.columns else pl.lit(None))
            .cast(pl.Int64)
            .alias("events"),
            label.is_not_null().sum().cast(pl.Int64).alias("labelled"),
            (label == 1).sum().cast(pl.Int64).alias("positives"),
        ]
        frame = (
            targets.group_by(keys, maintain_order=True).agg(counts)
            if keys
            else targets.select(counts)
        )
        parts.append(frame.with_columns(pl.lit(name).alias("pattern")))
    out = pl.concat(parts, how="vertical").with_columns(
        pl.when(pl.col("labelled") > 0)
        .then(pl.col("positives") / pl.col("labelled"))
        .otherwise(None)
        .alias("base_rate")
    )
    order = pl.col("pattern").replace_strict(
        list(PATTERN_NAMES), list(range(len(PATTERN_NAMES))), return_dtype=pl.Int32
    )
    out = out.sort([*keys, order]) if keys else out
    return out.select(*keys, "pattern", "events", "labelled", "positives", "base_rate")


# ---------------------------------------------------------------- internals


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got horizon={horizon!r}")
    return int(horizon)


def _numpy(frame: pl.DataFrame, name: str) -> np.ndarray:
    series = frame.get_column(name).cast(pl.Float64).fill_null(np.nan)
    return np.ascontiguousarray(series.to_numpy(), dtype=np.float64)


def _ticker_ranges(frame: pl.DataFrame) -> list[tuple[int, int]]:
    """Row ranges of each ticker in a frame sorted by ticker."""
    lengths = frame.get_column("ticker").rle().struct.field("len").to_numpy()
    stops = np.cumsum(lengths)
    return [(int(b - n), int(b)) for b, n in zip(stops, lengths, strict=True)]


def _mean_std(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    mean = np.empty_like(x)
    std = np.empty_like(x)
    rolling_mean_std(x, window, mean, std)
    return mean, std


def _min_max(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.empty_like(x)
    hi = np.empty_like(x)
    rolling_min_max(x, window, lo, hi)
    return lo, hi


def _ticker_targets(
    close: np.ndarray, vrc: np.ndarray, te: np.ndarray, nv: np.ndarray, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events, labels (NaN = null) and the ``t1``-exists mask of one ticker's rows."""
    n = close.shape[0]
    valid = np.isfinite(close) & (close > 0.0)
    c = np.ascontiguousarray(np.where(valid, close, np.nan))

    # --- events: bars up to t only
    r = log_return(c, 1)
    r7 = log_return(c, MOMENTUM_LAG)
    _, sd20 = _mean_std(r, MOMENTUM_WINDOW)
    _, sd60 = _mean_std(r, VOLATILITY_LONG_WINDOW)
    lo20, hi20 = _min_max(c, EXTREMUM_WINDOW)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(r7) / (sd20 * math.sqrt(MOMENTUM_LAG))
    high = c == hi20
    low = c == lo20
    events = np.stack(
        [
            (sd20 > 0.0) & (z > MOMENTUM_Z),
            np.abs(vrc) > VOLATILITY_LOG_RATIO,
            np.abs(te) > TREND_Z,
            (high != low) & (nv < 0.0),
        ]
    )

    # --- outcomes: bars t+1 .. t+h only
    has_t1 = np.arange(n) + h < n
    m = max(n - h, 0)  # rows with a row t+h
    known = np.zeros(n, dtype=bool)
    forward = np.full(n, np.nan)
    realised_above = np.zeros(n, dtype=bool)
    if m:
        count = np.concatenate([[0], np.cumsum(valid)])
        known[:m] = count[h + 1 :] - count[:m] == h + 1  # closes t .. t+h all valid
        forward[:m] = np.log(c[h:] / c[:m])
        r2 = np.lib.stride_tricks.sliding_window_view(r[1:] * r[1:], h)  # r_{t+1..t+h}
        realised_above[:m] = np.sqrt(r2.mean(axis=1)) > sd60[:m]
    f_sign = np.sign(forward)
    outcomes = np.stack(
        [
            f_sign == np.sign(r7),
            realised_above == (vrc > 0.0),
            f_sign == -np.sign(te),
            np.where(high, forward < 0.0, forward > 0.0),
        ]
    )
    labels = np.where(events & known, outcomes.astype(np.float64), np.nan)
    return events, labels, has_t1
