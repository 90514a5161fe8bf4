"""Null tests: break the link between features and outcomes, keep everything else.

Outcomes are permuted in blocks of consecutive calendar dates, with one
permutation shared by every ticker. Within a block the outcomes keep their
serial dependence, and on a date the tickers keep their cross-sectional
dependence; what is destroyed is only the alignment between the features
(and confidences) of date ``d`` and the outcomes of date ``d``. A pipeline
with honest validation must come out "no skill" on such data.

Examples
--------
>>> import datetime as dt
>>> import polars as pl
>>> days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(6)]
>>> frame = pl.DataFrame({"ticker": ["A"] * 6, "date": days, "y": [0, 1, 2, 3, 4, 5]})
>>> permute_outcomes(frame, ["y"], block=2, seed=0)["y"].to_list()
[4, 5, 0, 1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

__all__ = ["DEFAULT_NULL_BLOCK", "block_permutation", "block_permutations", "permute_outcomes"]

#: Default block: about one trading month, well above the 5-day label horizon.
DEFAULT_NULL_BLOCK = 20


def block_permutation(n: int, block: int, seed: int | np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` that moves every block of ``block`` positions.

    The positions are cut into consecutive blocks (the last may be shorter)
    and the blocks are reordered by a random *derangement*: no block stays
    in its place, so no position keeps its own value (a block left in place
    would carry its real outcomes into the null). ``order[i]`` is the
    position whose value lands at ``i``. With a single block nothing can
    move, which is an error.

    Parameters
    ----------
    n : int
        Number of positions.
    block : int
        Block length, at least 1.
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ValueError
        ``block < 1`` or fewer than two blocks.
    """
    if block < 1:
        raise ValueError(f"`block` must be at least 1, got `block={block}`")
    starts = np.arange(0, n, block)
    if starts.size < 2:
        raise ValueError(
            f"a block permutation needs at least two blocks: {n} dates in blocks of {block}"
        )
    rng = np.random.default_rng(seed)
    while True:  # rejection sampling: a uniform derangement after about e draws
        perm = rng.permutation(starts.size)
        if not np.any(perm == np.arange(starts.size)):
            break
    pieces = [np.arange(s, min(s + block, n)) for s in starts[perm]]
    order = np.concatenate(pieces).astype(np.int64)
    return order


def block_permutations(
    n: int, block: int, n_draws: int, seed: int | np.random.Generator
) -> np.ndarray:
    """``n_draws`` independent draws of :func:`block_permutation` from one generator.

    Draw ``k`` is the ``k``-th call of :func:`block_permutation` on
    ``numpy.random.default_rng(seed)``, so draw 0 is ``block_permutation(n,
    block, seed)``, the permutation :func:`permute_outcomes` applies with the
    same seed.

    Parameters
    ----------
    n, block : int
        As :func:`block_permutation`.
    n_draws : int
        Number of permutations, at least 1.
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (n_draws, n)
        Row ``k``: ``order[i]`` is the position whose value lands at ``i``.

    Raises
    ------
    ValueError
        ``n_draws < 1``, or what :func:`block_permutation` refuses.

    Examples
    --------
    >>> block_permutations(6, 2, 3, seed=0)
    array([[4, 5, 0, 1, 2, 3],
           [4, 5, 0, 1, 2, 3],
           [2, 3, 4, 5, 0, 1]])
    """
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"`n_draws` must be an integer >= 1, got `n_draws={n_draws}`")
    rng = np.random.default_rng(seed)
    return np.stack([block_permutation(n, block, rng) for _ in range(int(n_draws))])


def permute_outcomes(
    frame: pl.DataFrame,
    outcomes: Sequence[str],
    *,
    block: int = DEFAULT_NULL_BLOCK,
    seed: int | np.random.Generator = 0,
) -> pl.DataFrame:
    """Replace each outcome column by the outcomes of block-permuted dates.

    Parameters
    ----------
    frame : pl.DataFrame
        ``ticker``, ``date`` and the outcome columns (any other columns are
        kept unchanged).
    outcomes : sequence of str
        Columns to permute, all with the same date permutation.
    block : int
        Block length in calendar dates (the sorted unique dates of ``frame``).
    seed : int or numpy.random.Generator

    Raises
    ------
    ValueError
        Missing columns, a repeated (ticker, date), or fewer than two blocks.

    Returns
    -------
    pl.DataFrame
        Same rows and row order; the outcome of ``(ticker, d)`` becomes the
        original outcome of ``(ticker, pi(d))``, null where that ticker has
        no row on ``pi(d)``.
    """
    missing = [c for c in ("ticker", "date", *outcomes) if c not in frame.columns]
    if missing:
        raise ValueError(f"permute_outcomes: frame lacks columns {missing}")
    duplicated = frame.select("ticker", "date").is_duplicated()
    if duplicated.any():
        first = frame.filter(duplicated).row(0, named=True)
        raise ValueError(
            f"permute_outcomes needs one row per (ticker, date); {int(duplicated.sum())} rows "
            f"repeat one, first ticker {first['ticker']} date {first['date']}"
        )
    calendar = frame.get_column("date").unique().sort()
    order = block_permutation(calendar.len(), block, seed)
    mapping = pl.DataFrame({"date": calendar, "_source": calendar.gather(order)})
    source = frame.select("ticker", pl.col("date").alias("_source"), *outcomes)
    out = (
        frame.drop(outcomes)
        .with_row_index("_row")
        .join(mapping, on="date", how="left")
        .join(source, on=["ticker", "_source"], how="left")
        .sort("_row")
    )
    return out.select(frame.columns)
