"""Stationary block bootstrap of time series and of date panels: block length, resamples, intervals.

Samples that sit close in time are dependent (overlapping label windows,
smooth model outputs, volatility clusters), so an i.i.d. bootstrap gives
intervals that are too narrow. Everything here resamples with the stationary
bootstrap of Politis & Romano (1994) as implemented in
:class:`arch.bootstrap.StationaryBootstrap`, with a data-driven mean block
length from :func:`arch.bootstrap.optimal_block_length` (Politis & White
2004, with the Patton, Politis & White 2009 correction).

Rows of one date are dependent too when they are several tickers of a panel
(a market factor moves them together), so a panel is resampled by whole
dates: :func:`date_bootstrap_weights` draws stationary-bootstrap blocks of
dates and takes every row of each drawn date.

:func:`block_length` (the mean block length of one or more series),
:func:`stationary_bootstrap_indices` (resampling index matrices, to apply
to one series or jointly to several), :func:`date_bootstrap_weights` (row
multiplicities of a date-clustered resample) and :func:`date_draw_counts`
(the same draws as counts per date), :func:`date_codes` (the dense date
index of rows in date order), :func:`bootstrap_interval` (the
percentile interval of a statistic of one series),
:func:`check_bootstrap_settings` (the checks of ``n_boot`` and ``level``
that every bootstrap here makes).

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal(200)
>>> est, lo, hi = bootstrap_interval(x, n_boot=100, seed=0)
>>> bool(lo < est < hi)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from arch.bootstrap import StationaryBootstrap, optimal_block_length

__all__ = [
    "block_length",
    "bootstrap_interval",
    "check_bootstrap_settings",
    "date_bootstrap_weights",
    "date_codes",
    "date_draw_counts",
    "stationary_bootstrap_indices",
]

# Replicate matrices are built in chunks of at most this many cells (~16 MB float64).
_CHUNK_CELLS = 2_000_000


def block_length(*series, max_length: float | None = None) -> float:
    """Data-driven mean block length for the stationary bootstrap.

    Runs :func:`arch.bootstrap.optimal_block_length` on each non-constant
    series and returns the largest ``"stationary"`` estimate, clipped to
    ``[1, max_length]`` (default ``n / 2``). Taking the maximum is the
    conservative choice: a block that is too short under-states the variance
    (intervals too narrow, p-values too small); one that is too long only
    costs some efficiency.

    Parameters
    ----------
    *series : array_like
        1-D series of equal length ``n``, in time order.
    max_length : float, optional
        Upper clip; default ``n / 2``.

    Returns
    -------
    float
        Mean block length (1.0 when every series is constant or ``n < 10``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> iid = rng.standard_normal(1000)
    >>> ar = np.zeros(1000)
    >>> for t in range(1, 1000):
    ...     ar[t] = 0.9 * ar[t - 1] + iid[t]
    >>> block_length(iid) < block_length(ar)
    True
    """
    cols = [np.asarray(s, dtype=np.float64) for s in series]
    if not cols:
        raise ValueError("`block_length` needs at least one series")
    n = cols[0].size
    if any(c.shape != (n,) for c in cols):
        raise ValueError("`series` must be 1-D and of equal length")
    cap = n / 2.0 if max_length is None else float(max_length)
    cols = [c for c in cols if np.ptp(c) > 0.0]
    if n < 10 or not cols:
        return 1.0
    est = optimal_block_length(np.column_stack(cols))["stationary"].to_numpy()
    est = est[np.isfinite(est)]
    if est.size == 0:
        return 1.0
    return float(min(max(1.0, est.max()), max(1.0, cap)))


def stationary_bootstrap_indices(n: int, block: float, n_boot: int, seed=0) -> Iterator[np.ndarray]:
    """Stationary-bootstrap resampling indices, in chunks of replicates.

    Draws ``n_boot`` resamples of the positions ``0 .. n - 1`` with
    :class:`arch.bootstrap.StationaryBootstrap` (Politis & Romano 1994:
    blocks of consecutive positions with geometric lengths of mean
    ``block``, wrapping around the end) and yields them as ``(rows, n)``
    integer matrices, one row per replicate, so that a statistic can be
    computed row-wise on ``x[idx]``. Chunks hold at most about two million
    cells (16 MB of float64 once used to index a series), so memory stays
    bounded for long series and many replicates. Apply the same matrix to
    several aligned series to resample them jointly (a paired bootstrap).

    Parameters
    ----------
    n : int
        Length of the series to resample (at least 1).
    block : float
        Mean block length (at least 1; :func:`block_length` estimates one).
    n_boot : int
        Number of replicates (at least 1); the chunks hold ``n_boot`` rows in all.
    seed : int or numpy.random.Generator, default 0
        ``np.random.default_rng(seed)`` is passed as ``seed=`` to arch, so the
        same seed gives the same indices.

    Returns
    -------
    iterator of numpy.ndarray
        ``(rows, n)`` integer matrices, replicates in arch's draw order.

    Raises
    ------
    ValueError
        On a bad ``n``, ``block`` or ``n_boot``, at the call (not at the
        first ``next``).

    Examples
    --------
    >>> import numpy as np
    >>> chunks = list(stationary_bootstrap_indices(5, 2.0, 3, seed=0))
    >>> [c.shape for c in chunks]
    [(3, 5)]
    >>> bool(((chunks[0] >= 0) & (chunks[0] < 5)).all())
    True
    """
    _check_draw(n, block, n_boot)
    return _index_chunks(int(n), float(block), int(n_boot), seed, max(1, _CHUNK_CELLS // int(n)))


def _check_draw(n, block, n_boot) -> None:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"`n` must be an integer >= 1, got `n={n}`")
    if not (math.isfinite(block) and block >= 1.0):
        raise ValueError(f"`block` must be a finite number >= 1, got `block={block}`")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"`n_boot` must be an integer >= 1, got `n_boot={n_boot}`")


def _index_chunks(n: int, block: float, n_boot: int, seed, rows: int) -> Iterator[np.ndarray]:
    """Draw positions ``0 .. n - 1`` with arch, stacked ``rows`` replicates at a time."""
    rng = np.random.default_rng(seed)
    bs = StationaryBootstrap(block, np.arange(n), seed=rng)
    buf: list[np.ndarray] = []
    for pos, _ in bs.bootstrap(n_boot):
        buf.append(pos[0])
        if len(buf) == rows:
            yield np.vstack(buf)
            buf = []
    if buf:
        yield np.vstack(buf)


def date_codes(dates) -> np.ndarray:
    """Dense date index ``0 .. D - 1`` of each row, for rows in date order.

    Parameters
    ----------
    dates : array_like
        1-D labels that can be compared (dates, datetimes, integers, strings),
        non-decreasing: every row of a date sits next to the others, oldest
        date first.

    Returns
    -------
    numpy.ndarray
        ``int64`` codes; ``codes[-1] + 1`` is the number of dates ``D``.

    Raises
    ------
    ValueError
        If ``dates`` is empty or not 1-D, or a row's date is older than the
        one before it (naming the row and both dates).

    Examples
    --------
    >>> date_codes(["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-05"])
    array([0, 0, 1, 2])
    """
    d = np.asarray(dates)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"`dates` must be a non-empty 1-D array, got shape {d.shape}")
    later = d[1:] != d[:-1]
    ordered = np.asarray(d[1:] >= d[:-1], dtype=bool)
    if not ordered.all():
        i = int(np.flatnonzero(~ordered)[0]) + 1
        raise ValueError(
            f"`dates` must be in date order (non-decreasing): row {i} has date {d[i]} "
            f"after row {i - 1} with date {d[i - 1]}"
        )
    codes = np.zeros(d.size, dtype=np.int64)
    codes[1:] = np.cumsum(np.asarray(later, dtype=np.int64))
    return codes


def date_bootstrap_weights(dates, block: float, n_boot: int, seed=0) -> Iterator[np.ndarray]:
    """Stationary bootstrap of whole dates, as row multiplicities, in chunks of replicates.

    For a panel (several rows, e.g. tickers, per date) the unit of resampling
    is the date: rows of one date share the market of that day, so they must
    stay together. Each replicate draws ``D`` date positions with
    :class:`arch.bootstrap.StationaryBootstrap` over the date index (blocks of
    consecutive dates with geometric lengths of mean ``block``, wrapping around
    the end) and takes every row of each drawn date. The replicate is returned
    as the multiplicity of each row: ``w[b, i]`` is the number of times the
    date of row ``i`` was drawn in replicate ``b``.

    Parameters
    ----------
    dates : array_like
        Date of each row, rows in date order (see :func:`date_codes`).
    block : float
        Mean block length **in dates** (at least 1).
    n_boot : int
        Number of replicates (at least 1).
    seed : int or numpy.random.Generator, default 0
        ``np.random.default_rng(seed)`` is passed as ``seed=`` to arch.

    Returns
    -------
    iterator of numpy.ndarray
        ``(rows, n)`` float64 multiplicity matrices, one row per replicate, at
        most about two million cells each (16 MB), ``n_boot`` rows in all.

    Raises
    ------
    ValueError
        On bad ``dates``, ``block`` or ``n_boot``, at the call.

    Notes
    -----
    **Multiplicities, not gathered rows.** Replicates draw dates of unequal
    row counts, so the gathered resamples (the rows of each drawn date,
    concatenated) have unequal lengths. Any statistic that is a function of
    the multiset of resampled rows (means, rates, rank counts, correlations)
    is the same function of the rows weighted by their multiplicities, so the
    weights carry the whole resample in a fixed ``(B, n)`` shape: chunks stay
    bounded and statistics are row-wise matrix products. The date draws are
    those of ``stationary_bootstrap_indices(D, block, n_boot, seed)``; with one
    row per date, ``w[b]`` counts how often each row appears in that draw, so
    the date bootstrap of a single series is the plain stationary bootstrap.

    Examples
    --------
    >>> import numpy as np
    >>> dates = np.array([0, 0, 0, 1, 2, 2])          # 3 dates, 6 rows
    >>> w = np.vstack(list(date_bootstrap_weights(dates, 1.0, 4, seed=0)))
    >>> w.shape
    (4, 6)
    >>> bool((w[:, 0] == w[:, 1]).all() and (w[:, 4] == w[:, 5]).all())   # dates stay whole
    True
    >>> bool((w[:, [0, 3, 4]].sum(axis=1) == 3).all())     # each replicate draws 3 dates
    True
    """
    codes = date_codes(dates)
    n_dates = int(codes[-1]) + 1
    _check_draw(n_dates, block, n_boot)
    return _weight_chunks(codes, n_dates, float(block), int(n_boot), seed)


def _weight_chunks(
    codes: np.ndarray, n_dates: int, block: float, n_boot: int, seed
) -> Iterator[np.ndarray]:
    rows = max(1, _CHUNK_CELLS // codes.size)
    for idx in _index_chunks(n_dates, block, n_boot, seed, rows):
        yield _draw_counts(idx, n_dates)[:, codes]


def date_draw_counts(n_dates: int, block: float, n_boot: int, seed=0) -> Iterator[np.ndarray]:
    """How often each date is drawn by the stationary bootstrap of dates, in chunks of replicates.

    The per-date form of :func:`date_bootstrap_weights` (``w = counts[:, codes]``
    with the rows' :func:`date_codes`): statistics built from per-date totals
    need only these ``(B, D)`` counts, not the ``(B, n)`` row weights.

    Parameters
    ----------
    n_dates : int
        Number of dates ``D`` (at least 1).
    block : float
        Mean block length in dates (at least 1).
    n_boot : int
        Number of replicates (at least 1).
    seed : int or numpy.random.Generator, default 0
        As in :func:`date_bootstrap_weights`, which makes the same draws.

    Returns
    -------
    iterator of numpy.ndarray
        ``(rows, D)`` float64 matrices, at most about two million cells each;
        every row sums to ``D``.

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.vstack(list(date_draw_counts(4, 2.0, 3, seed=0)))
    >>> counts.shape, counts.sum(axis=1).tolist()
    ((3, 4), [4.0, 4.0, 4.0])
    """
    _check_draw(n_dates, block, n_boot)
    rows = max(1, _CHUNK_CELLS // int(n_dates))
    chunks = _index_chunks(int(n_dates), float(block), int(n_boot), seed, rows)
    return (_draw_counts(idx, int(n_dates)) for idx in chunks)


def _draw_counts(idx: np.ndarray, n_dates: int) -> np.ndarray:
    """Row ``b`` of the result counts the occurrences of each date in row ``b`` of ``idx``."""
    r = idx.shape[0]
    flat = (idx + (np.arange(r) * n_dates)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n_dates).reshape(r, n_dates).astype(np.float64)


def bootstrap_interval(
    x,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    n_boot: int = 1000,
    seed=0,
    level: float = 0.95,
    block: float | None = None,
) -> tuple[float, float, float]:
    """Stationary-bootstrap percentile interval of a statistic of one time series.

    The same machinery as :func:`evaluate`, exposed for single series (e.g.
    daily strategy returns, or its coverage check on a known process).

    Parameters
    ----------
    x : array_like
        1-D series in time order.
    statistic : callable, optional
        Maps a ``(B, n)`` matrix of resampled series to ``B`` values (row-wise);
        default the mean, ``lambda m: m.mean(axis=1)``.
    n_boot : int, default 1000
        Bootstrap replicates.
    seed : int or numpy.random.Generator, default 0
        Passed through ``np.random.default_rng`` to arch.
    level : float, default 0.95
        Two-sided coverage of the percentile interval.
    block : float, optional
        Mean block length; default :func:`block_length` of ``x``.

    Returns
    -------
    (estimate, low, high) : tuple of float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(3).standard_normal(300) + 1.0
    >>> est, lo, hi = bootstrap_interval(x, n_boot=200, seed=0)
    >>> bool(lo < 1.0 < hi)
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError("`x` must be a finite 1-D series with at least 2 values")
    check_bootstrap_settings(n_boot, level)
    stat = statistic if statistic is not None else (lambda m: m.mean(axis=1))
    blk = block_length(x) if block is None else float(block)
    est = float(stat(x[None, :])[0])
    chunks = stationary_bootstrap_indices(x.size, blk, n_boot, seed)
    reps = np.concatenate([stat(x[idx]) for idx in chunks])
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return est, float(lo), float(hi)


def check_bootstrap_settings(n_boot: int, level: float) -> None:
    """Validate a replicate count (an integer >= 10) and an interval level (in (0, 1)).

    Raises
    ------
    ValueError
        Naming the argument and its value.

    Examples
    --------
    >>> check_bootstrap_settings(1000, 0.95)
    >>> check_bootstrap_settings(5, 0.95)
    Traceback (most recent call last):
    ...
    ValueError: `n_boot` must be an integer >= 10, got `n_boot=5`
    """
    if int(n_boot) != n_boot or n_boot < 10:
        raise ValueError(f"`n_boot` must be an integer >= 10, got `n_boot={n_boot}`")
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must lie in (0, 1), got `level={level}`")
