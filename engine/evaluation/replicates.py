"""Bootstrap replicates of every skill statistic, row by row or by whole dates.

:func:`replicate_stats` computes every statistic of
:mod:`engine.evaluation.skill` (and its no-skill contrast) for each row of
multiplicities at once; :func:`date_replicate_stats` does the same from
per-date tables (:class:`DateTables`) when whole dates are drawn, and
:func:`date_block_length` gives the mean block length in dates. They serve
:func:`engine.evaluation.skill.evaluate`, which picks the per-date tables
when :func:`by_date_tables` says they fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.evaluation.bootstrap import block_length
from engine.evaluation.classification import ACCURACY_THRESHOLD, _entropy, _log_loss_terms

__all__ = [
    "DateTables",
    "by_date_tables",
    "date_block_length",
    "date_replicate_stats",
    "date_tables",
    "replicate_stats",
]

# A pooled group's (dates x dates) pair table is used while it holds at most
# this many cells (16 MB of float64: 1414 dates); its working arrays stay as small.
_PAIR_TABLE_CELLS = 2_000_000


def _row_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row terms whose (weighted) sums give every statistic but the AUC.

    Columns: 1, ``y``, correct call, ``(p - y)^2``, log-loss term, and
    ``pc``, ``pc^2``, ``pc * y`` with ``pc = p - mean(p)`` (moments of ``p``
    shifted by its sample mean: replicate means sit close to it, so their
    differences lose no precision).
    """
    pc = p - p.mean()
    correct = ((p >= ACCURACY_THRESHOLD) == (y == 1.0)).astype(np.float64)
    terms = (np.ones_like(y), y, correct, (p - y) ** 2, _log_loss_terms(y, p), pc, pc * pc, pc * y)
    return np.column_stack(terms)


def _stats(sums: np.ndarray, u: np.ndarray, varied: np.ndarray) -> dict[str, np.ndarray]:
    """Every statistic (and its no-skill contrast) from the sums of :func:`_row_terms`.

    ``sums`` is ``(B, 8)``; ``u`` the weighted count of right-ordered
    (event, non-event) pairs, ties 1/2; ``varied`` whether ``p`` takes more
    than one value in the replicate.
    """
    tot, n1, correct, squared, log_terms, s_p, s_pp, s_py = sums.T
    b = tot.size
    n0 = tot - n1
    rate = n1 / tot
    both = (n1 > 0) & (n0 > 0)
    auc_b = np.full(b, np.nan)
    auc_b[both] = u[both] / (n1[both] * n0[both])
    acc = correct / tot
    maj = np.maximum(rate, 1.0 - rate)
    bri = squared / tot
    ll = log_terms / tot
    # point-biserial: weighted Pearson correlation; the variance of a 0/1 y is rate (1 - rate)
    mean_pc = s_p / tot
    var_p = s_pp / tot - mean_pc**2
    cov_py = s_py / tot - mean_pc * rate
    ok = both & varied & (var_p > 0.0)
    pb = np.full(b, np.nan)
    pb[ok] = np.clip(cov_py[ok] / np.sqrt(var_p[ok] * rate[ok] * (1.0 - rate[ok])), -1.0, 1.0)
    return {
        "auc": auc_b,
        "accuracy": acc,
        "brier": bri,
        "log_loss": ll,
        "point_biserial": pb,
        # contrasts whose no-skill value is 0 and where larger means more skill
        "skill:auc": auc_b - 0.5,
        "skill:accuracy": acc - maj,
        "skill:brier": rate * (1.0 - rate) - bri,
        "skill:log_loss": _entropy(rate) - ll,
        "skill:point_biserial": pb,
    }


def replicate_stats(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, codes: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """All statistics (and their no-skill contrasts) for each row of multiplicities ``w``.

    ``w[b, i]`` is how often row ``i`` enters replicate ``b`` (a row of ones is
    the sample itself); ``codes`` are the dense codes of ``p`` (``k`` values).
    Every statistic is that of the multiset of rows the weights describe.
    Cost ``O(B (n + k))``.
    """
    b = w.shape[0]
    # AUC by counting, per replicate, the (weighted) non-events below each
    # distinct confidence value
    offset = (np.arange(b) * k)[:, None]
    counts = []
    for cls in (y == 0.0, y == 1.0):
        cc = codes[cls][None, :] + offset
        tally = np.bincount(cc.ravel(), weights=w[:, cls].ravel(), minlength=b * k)
        counts.append(tally.reshape(b, k))
    neg, posc = counts
    below = np.cumsum(neg, axis=1) - neg
    u = (posc * (below + 0.5 * neg)).sum(axis=1)
    # exact constancy test: p takes one value in the replicate when one code is drawn
    varied = np.count_nonzero(neg + posc, axis=1) > 1
    return _stats(w @ _row_terms(y, p), u, varied)


@dataclass(frozen=True)
class DateTables:
    """Per-date summaries of rows in date order, enough for every replicate statistic.

    Attributes
    ----------
    totals : numpy.ndarray
        ``(D, 8)`` per-date sums of :func:`_row_terms`.
    pairs : numpy.ndarray
        ``(D, D)``: ``pairs[d, e]`` counts the (event on date ``d``, non-event
        on date ``e``) pairs whose confidences are ordered right, ties 1/2.
    low, high : numpy.ndarray
        Smallest and largest code of ``p`` on each date.
    """

    totals: np.ndarray
    pairs: np.ndarray
    low: np.ndarray
    high: np.ndarray


def date_tables(
    y: np.ndarray, p: np.ndarray, day: np.ndarray, n_dates: int, codes: np.ndarray, k: int
) -> DateTables:
    """Per-date sums of the row terms and the date-by-date AUC pair counts.

    ``day`` holds each row's date code (rows in date order), ``codes`` the
    rank code of each confidence among ``k`` distinct values.
    """
    terms = _row_terms(y, p)
    totals = np.column_stack([np.bincount(day, weights=t, minlength=n_dates) for t in terms.T])
    # pairs, a band of non-event dates [e0, e1) at a time: tally the band's
    # non-events by (date, code), count those below each code (ties 1/2),
    # read the counts at each event's code and sum them by the event's date
    neg = y == 0.0
    neg_day, neg_code = day[neg], codes[neg]  # in date order
    event_day, event_code = day[~neg], codes[~neg]
    dates, first = np.unique(event_day, return_index=True)
    pairs = np.zeros((n_dates, n_dates))
    width = max(1, _PAIR_TABLE_CELLS // max(k, event_code.size))
    for e0 in range(0, n_dates, width):
        e1 = min(n_dates, e0 + width)
        lo, hi = np.searchsorted(neg_day, [e0, e1])
        cells = (neg_day[lo:hi] - e0) * k + neg_code[lo:hi]
        tally = np.bincount(cells, minlength=(e1 - e0) * k).reshape(e1 - e0, k)
        ordered = (np.cumsum(tally, axis=1) - 0.5 * tally)[:, event_code]
        pairs[dates, e0:e1] = np.add.reduceat(ordered, first, axis=1).T
    starts = np.searchsorted(day, np.arange(n_dates))
    low = np.minimum.reduceat(codes, starts)
    high = np.maximum.reduceat(codes, starts)
    return DateTables(totals, pairs, low, high)


def date_replicate_stats(tables: DateTables, counts: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`replicate_stats` of the rows of dates drawn ``counts[b, d]`` times each.

    Cost ``O(B D^2)`` (one matrix product), against ``O(B n)`` row by row.
    """
    u = np.einsum("bd,bd->b", counts @ tables.pairs, counts)
    drawn = counts > 0.0
    lo = np.where(drawn, tables.low, np.iinfo(np.int64).max).min(axis=1)
    hi = np.where(drawn, tables.high, -1).max(axis=1)
    return _stats(counts @ tables.totals, u, hi > lo)


def by_date_tables(n: int, n_dates: int) -> bool:
    """Whether replicates go through :class:`DateTables` (dates of several rows, a small table)."""
    return n >= 4 * n_dates and n_dates * n_dates <= _PAIR_TABLE_CELLS


def date_block_length(y: np.ndarray, p: np.ndarray, day: np.ndarray, n_dates: int) -> float:
    """Mean block length in dates: block length of per-date totals of centred influence terms.

    Which terms, and why totals: :func:`evaluate`, Notes.
    """
    dp = p - p.mean()
    dy = y - y.mean()
    sq = (p - y) ** 2
    terms = (dy, dp, sq - sq.mean(), dp * dy - (dp * dy).mean())
    totals = [np.bincount(day, weights=t, minlength=n_dates) for t in terms]
    return block_length(*totals)
