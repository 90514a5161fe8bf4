r"""Paired comparison of two models' out-of-sample predictions on the rows both cover.

Two runs are compared where both made a prediction: the ``(ticker, date)``
rows they have in common (:func:`align_predictions`). Per pattern head, on
the common rows with an outcome, each run gets its AUC, Brier score and log
loss, and the difference ``A - B`` gets a **paired date-block bootstrap**
interval and p-value (:func:`paired_differences`):

* **paired**: every replicate draws the same rows for both models, so the
  interval is that of the difference itself, which is far narrower than two
  overlapping intervals suggest when the models' errors move together;
* **date-block**: rows of one date stay together (tickers share that day's
  market), and dates are drawn in stationary-bootstrap blocks (arch's
  :class:`~arch.bootstrap.StationaryBootstrap`) of a data-driven mean length
  in dates, because labels overlap for 5 days and regimes last longer;
* **p-value**: two-sided, of "no difference", from the bootstrap distribution
  centred on the estimate,
  :math:`p = (1 + \#\{b : |d^*_b - \hat d| \ge |\hat d|\}) / (1 + B)`;
* **adjusted**: :func:`compare_frame` adds an adjusted p-value over the rows
  of a table, per metric (:mod:`engine.evaluation.multiple_testing`): Holm
  over the heads (or heads x regimes), so "some head differs" is not a
  prize for testing four of them; Benjamini-Hochberg for the many rows of
  the per-window table, read as a screen.

For AUC a positive difference means A ranks better; for Brier and log loss a
negative difference means A is better (lower). On two models with no real
difference the p-value is uniform: a test checks that about 5 % of noise
comparisons reject at 0.05.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 600
>>> y = (rng.uniform(size=n) < 0.5).astype(float)
>>> good = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)
>>> noise = rng.uniform(0.01, 0.99, n)
>>> dates = np.repeat(np.arange(200), 3)
>>> rows = paired_differences(y, good, noise, dates, n_boot=200, seed=0)
>>> auc = next(r for r in rows if r["metric"] == "auc")
>>> bool(auc["difference"] > 0 and auc["ci_low"] > 0 and auc["p_value"] < 0.05)
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from engine.evaluation.bootstrap import (
    block_length,
    check_bootstrap_settings,
    stationary_bootstrap_indices,
)
from engine.evaluation.classification import auc, brier, log_loss
from engine.evaluation.multiple_testing import CORRECTIONS, benjamini_hochberg, holm
from engine.labels.targets import CONFIDENCE_SUFFIX

__all__ = [
    "COMPARED_METRICS",
    "LOWER_IS_BETTER",
    "MIN_DATES",
    "ComparisonError",
    "align_predictions",
    "compare_frame",
    "paired_differences",
    "weighted_auc",
]

#: Metrics compared, in report order.
COMPARED_METRICS = ("auc", "brier", "log_loss")
#: Metrics where a lower value is better (a negative A - B favours A).
LOWER_IS_BETTER = frozenset({"brier", "log_loss"})
_EPS = 1e-15
#: Fewest distinct dates a difference is tested on; below it the row keeps its
#: estimates without an interval or p-value (a block bootstrap of a handful of
#: dates says nothing).
MIN_DATES = 20
_CHUNK_CELLS = 2_000_000


class ComparisonError(ValueError):
    """Two prediction sets that cannot be compared (no common rows, other heads, ...)."""


# --------------------------------------------------------------------------- alignment


def _span(frame: pl.DataFrame) -> str:
    dates = frame.get_column("date")
    return (
        f"{frame.height} rows, {frame.get_column('ticker').n_unique()} tickers, "
        f"{dates.min()} to {dates.max()}"
    )


def align_predictions(
    a: pl.DataFrame,
    b: pl.DataFrame,
    patterns_a: Sequence[str],
    patterns_b: Sequence[str],
    *,
    names: tuple[str, str] = ("A", "B"),
) -> tuple[pl.DataFrame, list[str]]:
    """The ``(ticker, date)`` rows both prediction frames cover, side by side.

    Parameters
    ----------
    a, b : polars.DataFrame
        Checked predictions (:func:`engine.model.run_files.check_predictions`).
    patterns_a, patterns_b : sequence of str
        Their pattern heads; the sets must be equal.
    names : (str, str)
        How errors name the two sources (their paths).

    Returns
    -------
    frame : polars.DataFrame
        ``ticker, date, model_id, model_id_b`` then per pattern ``<p>``
        (the outcome), ``<p>_a`` and ``<p>_b`` (the confidences), sorted by
        date then ticker.
    patterns : list of str
        In A's order.

    Raises
    ------
    ComparisonError
        Different pattern sets; a ``(ticker, date)`` predicted twice within
        one source; no common rows (naming both spans); outcomes that
        disagree on a common labelled row (different targets).
    """
    name_a, name_b = names
    if set(patterns_a) != set(patterns_b):
        raise ComparisonError(
            f"{name_a} and {name_b} predict different pattern sets: {name_a} has "
            f"{sorted(patterns_a)}, {name_b} has {sorted(patterns_b)}; compare runs trained on "
            "the same targets"
        )
    patterns = list(patterns_a)
    for name, frame in ((name_a, a), (name_b, b)):
        dup = frame.filter(pl.struct("ticker", "date").is_duplicated())
        if dup.height:
            row = dup.row(0, named=True)
            raise ComparisonError(
                f"{name} predicts ({row['ticker']}, {row['date']}) more than once ({dup.height} "
                "rows share their (ticker, date) with another: overlapping test periods); "
                "compare sources with one prediction per ticker and date"
            )

    def side(frame: pl.DataFrame, suffix: str, outcome: bool) -> pl.DataFrame:
        cols = [pl.col(p + CONFIDENCE_SUFFIX).alias(f"{p}_{suffix}") for p in patterns]
        if outcome:
            cols += [pl.col(p).alias(f"{p}_y{suffix}") for p in patterns]
        return frame.select("ticker", "date", pl.col("model_id").alias(f"model_id_{suffix}"), *cols)

    joined = side(a, "a", True).join(side(b, "b", True), on=["ticker", "date"], how="inner")
    if joined.height == 0:
        raise ComparisonError(
            f"{name_a} and {name_b} have no (ticker, date) row in common: {name_a} covers "
            f"{_span(a)}; {name_b} covers {_span(b)}"
        )
    for p in patterns:
        ya, yb = pl.col(f"{p}_ya"), pl.col(f"{p}_yb")
        bad = joined.filter(ya.is_not_null() & yb.is_not_null() & (ya != yb))
        if bad.height:
            row = bad.row(0, named=True)
            raise ComparisonError(
                f"{name_a} and {name_b} disagree on the outcome of {p!r} for {row['ticker']} "
                f"on {row['date']} ({row[f'{p}_ya']} vs {row[f'{p}_yb']}; {bad.height} rows "
                "differ): they were trained on different targets or data"
            )
    frame = joined.select(
        "ticker",
        "date",
        pl.col("model_id_a").alias("model_id"),
        "model_id_b",
        *[
            c
            for p in patterns
            for c in (
                pl.coalesce(f"{p}_ya", f"{p}_yb").alias(p),
                pl.col(f"{p}_a"),
                pl.col(f"{p}_b"),
            )
        ],
    ).sort("date", "ticker")
    return frame, patterns


# --------------------------------------------------------------------------- weighted metrics


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), int(uniq.size)


def weighted_auc(y: np.ndarray, codes: np.ndarray, k: int, w: np.ndarray) -> np.ndarray:
    """AUC of each row of multiplicities ``w`` (ties count 1/2), in O(B (n + k)).

    Parameters
    ----------
    y : ndarray of {0, 1}, shape (n,)
    codes : ndarray of int, shape (n,)
        Dense rank codes of the scores (equal scores share a code), ``0 .. k-1``.
    k : int
        Number of distinct scores.
    w : ndarray, shape (B, n)
        Row multiplicities of each replicate (a row of ones is the sample).

    Returns
    -------
    ndarray, shape (B,)
        NaN where a replicate lacks one of the classes.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1.0]); s = np.array([0.1, 0.4, 0.35, 0.8])
    >>> codes = np.unique(s, return_inverse=True)[1]
    >>> weighted_auc(y, codes, 4, np.ones((1, 4))).tolist()
    [0.75]
    """
    b = w.shape[0]
    offset = (np.arange(b) * k)[:, None]
    tallies = []
    for cls in (y == 0.0, y == 1.0):
        flat = (codes[cls][None, :] + offset).ravel()
        tallies.append(np.bincount(flat, weights=w[:, cls].ravel(), minlength=b * k).reshape(b, k))
    neg, pos = tallies
    below = np.cumsum(neg, axis=1) - neg
    n1, n0 = pos.sum(axis=1), neg.sum(axis=1)
    out = np.full(b, np.nan)
    ok = (n1 > 0) & (n0 > 0)
    out[ok] = (pos * (below + 0.5 * neg)).sum(axis=1)[ok] / (n1[ok] * n0[ok])
    return out


def _log_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return -(y * np.log(q) + (1.0 - y) * np.log1p(-q))


def _date_weights(codes: np.ndarray, n_dates: int, block: float, n_boot: int, seed: Any):
    """Row multiplicities of a stationary bootstrap of whole dates, in bounded chunks."""
    rows_per_chunk = max(1, _CHUNK_CELLS // max(codes.size, n_dates))
    for idx in stationary_bootstrap_indices(n_dates, block, n_boot, seed):
        for start in range(0, idx.shape[0], rows_per_chunk):
            part = idx[start : start + rows_per_chunk]
            r = part.shape[0]
            flat = (part + (np.arange(r) * n_dates)[:, None]).ravel()
            drawn = np.bincount(flat, minlength=r * n_dates).reshape(r, n_dates)
            yield drawn.astype(np.float64)[:, codes]


def _block(y, pa, pb, day, n_dates) -> float:
    """Mean block length in dates from per-date totals of the differences' influence terms."""
    dy = y - y.mean()
    terms = [
        (pa - y) ** 2 - (pb - y) ** 2,
        _log_terms(y, pa) - _log_terms(y, pb),
        dy,
        (pa - pb) * dy,
    ]
    totals = [np.bincount(day, weights=t - t.mean(), minlength=n_dates) for t in terms]
    return block_length(*totals)


def _replicates(y, pa, pb, w, ca, ka, cb, kb) -> dict[str, np.ndarray]:
    tot = w.sum(axis=1)
    return {
        "auc": weighted_auc(y, ca, ka, w) - weighted_auc(y, cb, kb, w),
        "brier": (w @ ((pa - y) ** 2 - (pb - y) ** 2)) / tot,
        "log_loss": (w @ (_log_terms(y, pa) - _log_terms(y, pb))) / tot,
    }


def paired_differences(
    y: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
    dates: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_dates: int = MIN_DATES,
) -> list[dict[str, Any]]:
    """AUC, Brier and log loss of A and B and their paired date-block bootstrap differences.

    Parameters
    ----------
    y : array of {0, 1}, shape (n,)
        Outcomes of the labelled common rows.
    pa, pb : array of float in [0, 1], shape (n,)
        The two models' confidences on the same rows.
    dates : array, shape (n,)
        Each row's date, non-decreasing (rows of a date together).
    n_boot : int
        Replicates (at least 10).
    seed : int
    level : float
        Coverage of the percentile interval.
    min_dates : int
        Fewest distinct dates to bootstrap (:data:`MIN_DATES`); with fewer the
        interval and p-value are None.

    Returns
    -------
    list of dict
        One per metric of :data:`COMPARED_METRICS`: ``metric, n, n_dates,
        base_rate, a, b, difference`` (``a - b``), ``ci_low, ci_high,
        p_value, block`` (mean block length in dates), ``n_boot`` (replicates
        with a defined statistic). AUC is None for both runs (and its
        difference untested) when the rows hold one class only.

    Raises
    ------
    ValueError
        Bad settings, mismatched lengths, dates out of order, fewer than 2 rows.
    """
    check_bootstrap_settings(n_boot, level)
    y, pa, pb = (np.asarray(v, dtype=np.float64) for v in (y, pa, pb))
    if not (y.shape == pa.shape == pb.shape == np.shape(dates)) or y.ndim != 1 or y.size < 2:
        raise ValueError(
            f"`y`, `pa`, `pb` and `dates` must be 1-D of one length >= 2, got {y.shape}, "
            f"{pa.shape}, {pb.shape}, {np.shape(dates)}"
        )
    d = np.asarray(dates)
    if np.any(d[1:] < d[:-1]):
        raise ValueError("`dates` must be non-decreasing (sort the rows by date)")
    day = np.concatenate([[0], np.cumsum(d[1:] != d[:-1])]).astype(np.int64)
    n_dates = int(day[-1]) + 1
    both = 0 < y.sum() < y.size
    point = {
        "auc": (auc(y, pa), auc(y, pb)) if both else (None, None),
        "brier": (brier(y, pa), brier(y, pb)),
        "log_loss": (log_loss(y, pa), log_loss(y, pb)),
    }
    block = _block(y, pa, pb, day, n_dates) if n_dates > 1 else 1.0
    ca, ka = _dense_codes(pa)
    cb, kb = _dense_codes(pb)
    reps: dict[str, list[np.ndarray]] = {m: [] for m in COMPARED_METRICS}
    if n_dates >= max(min_dates, 2):
        for w in _date_weights(day, n_dates, block, n_boot, seed):
            for m, values in _replicates(y, pa, pb, w, ca, ka, cb, kb).items():
                reps[m].append(values)
    alpha = (1.0 - level) / 2.0
    out = []
    for m in COMPARED_METRICS:
        a, b = point[m]
        row: dict[str, Any] = {
            "metric": m, "n": int(y.size), "n_dates": n_dates, "base_rate": float(y.mean()),
            "a": a, "b": b, "difference": None if a is None else a - b,
            "ci_low": None, "ci_high": None, "p_value": None, "block": block, "n_boot": 0,
        }  # fmt: skip
        draws = np.concatenate(reps[m]) if reps[m] else np.empty(0)
        draws = draws[np.isfinite(draws)]
        if row["difference"] is not None and draws.size >= 10:
            diff = row["difference"]
            lo, hi = np.quantile(draws, [alpha, 1.0 - alpha])
            extreme = np.count_nonzero(np.abs(draws - diff) >= abs(diff))
            row.update(ci_low=float(lo), ci_high=float(hi), n_boot=int(draws.size),
                       p_value=float((1 + extreme) / (1 + draws.size)))  # fmt: skip
        out.append(row)
    return out


# --------------------------------------------------------------------------- tables


def _groups(
    frame: pl.DataFrame, by: Sequence[str]
) -> Iterator[tuple[dict[str, Any], pl.DataFrame]]:
    if not by:
        yield {}, frame
        return
    for key, part in frame.group_by(list(by), maintain_order=True):
        yield dict(zip(by, key, strict=True)), part


def compare_frame(
    frame: pl.DataFrame,
    patterns: Sequence[str],
    *,
    by: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    adjust: str = "holm",
) -> pl.DataFrame:
    """Paired differences per head (and per group of ``by``) from :func:`align_predictions`.

    Parameters
    ----------
    frame : polars.DataFrame
        From :func:`align_predictions`, sorted by date (any ``by`` columns added).
    patterns : sequence of str
    by : sequence of str
        Group columns (``model_id`` for a per-window table, ``regime`` ...).
    n_boot, seed, level
        See :func:`paired_differences`.
    adjust : {"holm", "bh", "none"}
        ``p_value_adj``: Holm's (family-wise error rate) or Benjamini-
        Hochberg's (false discovery rate) adjustment over the table's rows,
        separately per metric; ``none`` leaves it null.

    Returns
    -------
    polars.DataFrame
        ``*by, pattern, metric, n, n_dates, base_rate, a, b, difference,
        ci_low, ci_high, p_value, p_value_adj, block, n_boot``. Groups with
        fewer than two labelled rows of a head are left out.
    """
    if adjust not in (*CORRECTIONS, "none"):
        raise ValueError(f"`adjust` must be one of {[*CORRECTIONS, 'none']}, got {adjust!r}")
    rows: list[dict[str, Any]] = []
    for key, part in _groups(frame, by):
        for pattern in patterns:
            labelled = part.filter(pl.col(pattern).is_not_null()).sort("date")
            if labelled.height < 2:
                continue
            y = labelled.get_column(pattern).to_numpy().astype(np.float64)
            pa = labelled.get_column(f"{pattern}_a").to_numpy()
            pb = labelled.get_column(f"{pattern}_b").to_numpy()
            dates = labelled.get_column("date").to_numpy()
            for row in paired_differences(y, pa, pb, dates, n_boot=n_boot, seed=seed, level=level):
                rows.append({**key, "pattern": pattern, **row})
    schema = {c: frame.schema[c] for c in by}
    if not rows:
        return pl.DataFrame(schema={**schema, "pattern": pl.String, "metric": pl.String})
    out = pl.DataFrame(rows, infer_schema_length=None)
    adjusted = np.full(out.height, np.nan)
    if adjust != "none":
        method = holm if adjust == "holm" else benjamini_hochberg
        metric = out.get_column("metric").to_numpy()
        raw = out.get_column("p_value").cast(pl.Float64).fill_null(np.nan).to_numpy()
        for m in COMPARED_METRICS:
            sel = metric == m
            adjusted[sel] = method(raw[sel])
    out = out.with_columns(pl.Series("p_value_adj", adjusted).fill_nan(None))
    order = [*by, "pattern", "metric", "n", "n_dates", "base_rate", "a", "b", "difference",
             "ci_low", "ci_high", "p_value", "p_value_adj", "block", "n_boot"]  # fmt: skip
    return out.select(order)
