"""Meta-labeling: take a base signal only when the model is confident in it.

A base strategy (:mod:`engine.backtest.signals`) proposes a direction for every
(ticker, day); the pattern head matched to the strategy gives its
out-of-sample confidence for the same (ticker, day), computed from the
20 days of features ending that day. The **filtered** strategy keeps a
signal when that confidence reaches the threshold and stays flat otherwise
(Lopez de Prado, *Advances in Financial Machine Learning*, ch. 3.6: the
primary model picks the side, the secondary model only the size, here 0 or
1).

Only out-of-sample confidences are accepted: the predictions go through
:func:`engine.model.run_files.check_predictions`, which refuses any row dated
on or before its model's guard, recomputed as ``train_end`` plus the
embargo on the bar calendar (never read from the file's ``embargo_end``),
naming the ticker, date and model.

To score the filter the way the meta-labeling literature does, each
candidate signal (non-zero, with a confidence) gets an outcome: 1 when the
close ``horizon`` days later moved in the signal's direction, 0 otherwise
(null when those bars do not exist yet). Precision, recall and F1 of the
taken signals are computed against these outcomes; the share of good
signals among all candidates (the precision of taking everything) is the
base rate the filter must beat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from engine.data.panel import sorted_panel
from engine.labels.targets import DEFAULT_HORIZON
from engine.model.run_files import CONFIDENCE_SUFFIX, check_predictions, read_predictions

__all__ = [
    "DEFAULT_THRESHOLD",
    "head_confidence",
    "load_out_of_sample_confidence",
    "meta_label",
    "signal_outcomes",
]

#: SPEC section 9: a signal is taken when its head's confidence is at least this.
DEFAULT_THRESHOLD = 0.6


def load_out_of_sample_confidence(
    path: str | Path,
    head: str,
    *,
    calendar: np.ndarray | None = None,
    embargo_days: int | None = None,
) -> pl.DataFrame:
    """One head's out-of-sample confidence per (ticker, date) from a predictions file.

    Parameters
    ----------
    path : path
        A predictions Parquet file written by ``engine train``.
    head : str
        A pattern name; the file needs ``<head>`` and ``<head>_p`` columns.
    calendar, embargo_days : optional
        The bar calendar and the run's embargo of the out-of-sample guard
        (:func:`engine.model.run_files.check_predictions`; default business
        days and the engine's default embargo).

    Returns
    -------
    polars.DataFrame
        ``ticker``, ``date``, ``model_id``, ``embargo_end``, ``confidence``
        (Float64), sorted by ticker and date.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a predictions file, in-sample rows (on or before ``train_end``
        plus the embargo, or ``date <= embargo_end``), an ``embargo_end``
        earlier than ``train_end`` plus the embargo, a confidence outside
        [0, 1], or a (ticker, date) scored by two models.
    """
    path = Path(path)
    frame, _ = check_predictions(
        read_predictions(path),
        [head],
        source=str(path),
        calendar=calendar,
        embargo_days=embargo_days,
    )
    return head_confidence(frame, head, source=str(path))


def head_confidence(frame: pl.DataFrame, head: str, *, source: str) -> pl.DataFrame:
    """One head's confidence per (ticker, date) from a frame that passed ``check_predictions``.

    Parameters
    ----------
    frame : polars.DataFrame
        Predictions already checked by
        :func:`engine.model.run_files.check_predictions` (out-of-sample rows only).
    head : str
        A pattern name with a ``<head>_p`` column.
    source : str
        Named in error messages.

    Returns
    -------
    polars.DataFrame
        As :func:`load_out_of_sample_confidence`.
    """
    conf = pl.col(head + CONFIDENCE_SUFFIX)
    bad = frame.filter(conf.is_not_null() & (conf.is_nan() | (conf < 0.0) | (conf > 1.0)))
    if bad.height:
        t, d, v = bad.select("ticker", "date", head + CONFIDENCE_SUFFIX).row(0)
        raise ValueError(
            f"{source}: confidence column {head + CONFIDENCE_SUFFIX!r} must lie in [0, 1]; "
            f"{bad.height} rows do not, first: ticker {t}, date {d}, value {v}"
        )
    frame = frame.select(
        "ticker", "date", "model_id", "embargo_end", conf.alias("confidence")
    ).filter(pl.col("confidence").is_not_null())
    return sorted_panel(frame, f"{source} (one prediction per ticker and date)")


def signal_outcomes(bars: pl.DataFrame, signals: pl.DataFrame, horizon: int = DEFAULT_HORIZON):
    """Whether each signal's direction was right ``horizon`` rows later.

    Parameters
    ----------
    bars : polars.DataFrame
        ``ticker``, ``date``, ``close``.
    signals : polars.DataFrame
        ``ticker``, ``date``, ``signal`` (from :func:`engine.backtest.signals.compute_signals`).
    horizon : int
        Rows (trading days) ahead, default the targets' horizon.

    Returns
    -------
    polars.DataFrame
        ``signals`` with ``outcome`` (Int8): 1 when ``signal * ln(C_{t+h} /
        C_t) > 0``, 0 when not (a zero move is 0), null for a flat signal or
        when ``C_{t+h}`` does not exist.
    """
    if horizon < 1:
        raise ValueError(f"`horizon` must be >= 1, got `horizon={horizon}`")
    close = pl.col("close")
    forward = (
        sorted_panel(bars.select("ticker", "date", "close"), "bars")
        .with_columns(move=(close.shift(-horizon) / close).log().over("ticker"))
        .select("ticker", "date", "move")
    )
    joined = signals.join(forward, on=["ticker", "date"], how="left", maintain_order="left")
    good = pl.col("signal").cast(pl.Float64) * pl.col("move") > 0.0
    outcome = (
        pl.when((pl.col("signal") == 0) | pl.col("move").is_null() | pl.col("move").is_nan())
        .then(None)
        .otherwise(good.cast(pl.Int8))
    )
    return joined.with_columns(outcome=outcome.cast(pl.Int8)).drop("move")


def meta_label(
    signals: pl.DataFrame, confidence: pl.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> pl.DataFrame:
    """Join base signals with the head's confidence and decide which are taken.

    Parameters
    ----------
    signals : polars.DataFrame
        ``ticker``, ``date``, ``signal`` (and optionally ``outcome``).
    confidence : polars.DataFrame
        From :func:`load_out_of_sample_confidence`.
    threshold : float
        A signal is taken when ``confidence >= threshold``.

    Returns
    -------
    polars.DataFrame
        ``signals`` plus ``confidence`` (null where the model gave none),
        ``taken`` (bool: a non-zero signal with ``confidence >= threshold``)
        and ``filtered_signal`` (Int8: the signal where taken, else 0).

    Examples
    --------
    >>> import datetime as dt
    >>> d = [dt.date(2020, 1, 1), dt.date(2020, 1, 2), dt.date(2020, 1, 3)]
    >>> sig = pl.DataFrame({"ticker": ["A"] * 3, "date": d, "signal": [1, -1, 1]},
    ...                    schema_overrides={"signal": pl.Int8})
    >>> conf = pl.DataFrame({"ticker": ["A"] * 2, "date": d[:2], "confidence": [0.7, 0.5]})
    >>> meta_label(sig, conf, 0.6).get_column("filtered_signal").to_list()
    [1, 0, 0]
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"`threshold` must lie in [0, 1], got `threshold={threshold}`")
    joined = signals.join(
        confidence.select("ticker", "date", "confidence"),
        on=["ticker", "date"],
        how="left",
        maintain_order="left",
    )
    # NaN sorts above every number in Polars: treat it as no confidence, never as a high one.
    confident = (pl.col("confidence").fill_nan(None) >= threshold).fill_null(False)
    taken = (pl.col("signal") != 0) & confident
    return joined.with_columns(taken=taken).with_columns(
        filtered_signal=pl.when("taken").then(pl.col("signal")).otherwise(0).cast(pl.Int8)
    )
