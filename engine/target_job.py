"""The ``engine targets`` job: stored bars in, a label file and a summary out.

Like ``engine features``, it loads the requested tickers together with the
benchmarks their features read, computes on the full stored history (so the
rolling windows are warm and the last kept rows can still see their outcome
window), then keeps the rows dated in ``[start, end]``. A label kept near
``end`` may therefore use bars after ``end``: its ``t1`` says so, and purging
uses it. The Parquet file holds the label frame of
:func:`engine.targets.compute_targets` (no event columns) and is written
atomically.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.feature_job import _benchmarks
from engine.store import BarStore, atomic_write_bytes
from engine.targets import DEFAULT_HORIZON, EVENT_COLUMNS, compute_targets, target_summary
from engine.universe import parse_tickers

__all__ = ["TargetJobReport", "run_target_job", "target_inputs"]


@dataclass
class TargetJobReport:
    """What ``run_target_job`` produced."""

    frame: pl.DataFrame
    summary: pl.DataFrame
    tickers: list[str]
    horizon: int
    seconds: float
    synthetic: dict[str, bool]
    out: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the frame itself is not included)."""
        return {
            "rows": self.frame.height,
            "tickers": self.tickers,
            "horizon": self.horizon,
            "start": _iso(self.frame.get_column("date").min()),
            "end": _iso(self.frame.get_column("date").max()),
            "seconds": round(self.seconds, 3),
            "patterns": self.summary.to_dicts(),
            "synthetic_tickers": sorted(t for t, s in self.synthetic.items() if s),
            "out": str(self.out) if self.out else None,
        }


def target_inputs(wanted: list[str], available: list[str]) -> list[str]:
    """Tickers to load for the targets of ``wanted``: them and their benchmarks.

    Parameters
    ----------
    wanted : list of str
        Output tickers.
    available : list of str
        Tickers in the store.

    Returns
    -------
    list of str
        Sorted union of ``wanted`` and the benchmarks the store holds.

    Examples
    --------
    >>> target_inputs(["AAPL"], ["AAPL", "MSFT", "SPY", "XLK", "VIX"])
    ['AAPL', 'SPY', 'VIX', 'XLK']
    """
    return sorted(set(wanted) | _benchmarks(wanted, available))


def run_target_job(
    store: BarStore,
    tickers: str = "all",
    *,
    start: date | None = None,
    end: date | None = None,
    out: Path | None = None,
    horizon: int = DEFAULT_HORIZON,
) -> TargetJobReport:
    """Compute pattern targets for stored tickers and optionally write them to Parquet.

    Parameters
    ----------
    store : BarStore
        Where the bars live.
    tickers : str
        ``"all"``, a named list or a comma-separated list (``parse_tickers``).
    start, end : date, optional
        Rows (event dates ``t``) kept in the output, inclusive. Earlier
        history warms the windows; later bars still resolve the outcomes.
    out : Path, optional
        Parquet file to write atomically.
    horizon : int
        Outcome horizon ``h`` in rows.

    Returns
    -------
    TargetJobReport
        The kept label frame, :func:`engine.targets.target_summary` of the
        kept rows (events included), and which tickers are synthetic.

    Raises
    ------
    ValueError
        Empty store, unknown tickers, ``start > end`` or a bad ``horizon``.
    """
    if start is not None and end is not None and start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    began = time.perf_counter()
    available = store.tickers()
    if not available:
        raise ValueError(
            f"no bars in {store.data_dir}; run `engine data demo` or `engine data import PATH`"
        )
    wanted = parse_tickers(tickers, available)
    bars = store.read_bars(target_inputs(wanted, available))
    frame = compute_targets(bars, horizon=horizon, tickers=wanted, with_events=True)
    if start is not None:
        frame = frame.filter(pl.col("date") >= start)
    if end is not None:
        frame = frame.filter(pl.col("date") <= end)
    meta = store.metadata().get("tickers", {})
    report = TargetJobReport(
        frame=frame.drop(EVENT_COLUMNS),
        summary=target_summary(frame),
        tickers=wanted,
        horizon=horizon,
        seconds=time.perf_counter() - began,
        synthetic={t: bool(meta.get(t, {}).get("synthetic", False)) for t in wanted},
    )
    if out is not None:
        buffer = io.BytesIO()
        report.frame.write_parquet(buffer)
        atomic_write_bytes(Path(out), buffer.getvalue())
        report.out = Path(out)
    return report


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
