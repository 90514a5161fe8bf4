"""Stationary block bootstrap of time series: block length, resampling indices, intervals.

Samples that sit close in time are dependent (overlapping label windows,
smooth model outputs, volatility clusters), so an i.i.d. bootstrap gives
intervals that are too narrow. Everything here resamples with the stationary
bootstrap of Politis & Romano (1994) as implemented in
:class:`arch.bootstrap.StationaryBootstrap`, with a data-driven mean block
length from :func:`arch.bootstrap.optimal_block_length` (Politis & White
2004, with the Patton, Politis & White 2009 correction).

:func:`block_length` (the mean block length of one or more series),
:func:`stationary_bootstrap_indices` (resampling index matrices, to apply
to one series or jointly to several), :func:`bootstrap_interval` (the
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
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"`n` must be an integer >= 1, got `n={n}`")
    if not (math.isfinite(block) and block >= 1.0):
        raise ValueError(f"`block` must be a finite number >= 1, got `block={block}`")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"`n_boot` must be an integer >= 1, got `n_boot={n_boot}`")
    return _index_chunks(int(n), float(block), int(n_boot), seed)


def _index_chunks(n: int, block: float, n_boot: int, seed) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    bs = StationaryBootstrap(block, np.arange(n), seed=rng)
    rows = max(1, _CHUNK_CELLS // n)
    buf: list[np.ndarray] = []
    for pos, _ in bs.bootstrap(n_boot):
        buf.append(pos[0])
        if len(buf) == rows:
            yield np.vstack(buf)
            buf = []
    if buf:
        yield np.vstack(buf)


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
