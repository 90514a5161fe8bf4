"""The ``engine targets`` job: stored bars in, a label file and a summary out.

Like ``engine features``, it loads the requested tickers together with the
benchmarks their features read, computes on the full stored history (so the
rolling windows are warm), then keeps the rows dated in ``[start, end]``. A
label whose outcome window reaches past ``end`` (``t1 > end``) would read bars
after ``end``: it is set to null (:func:`engine.labels.targets.censor_after`);
its ``t1`` stays, so purging still sees the span. The Parquet file holds the label frame of
:func:`engine.labels.targets.compute_targets` (no event columns) and is written
atomically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.loading import BarInputs, keep_dates, load_bars, synthetic_flags
from engine.data.store import BarStore
from engine.io import iso, write_parquet_atomic
from engine.labels.targets import (
    DEFAULT_HORIZON,
    EVENT_COLUMNS,
    censor_after,
    compute_targets,
    target_summary,
)

__all__ = ["TargetJobReport", "run_target_job"]


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
    prices: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the frame itself is not included)."""
        return {
            "rows": self.frame.height,
            "tickers": self.tickers,
            "horizon": self.horizon,
            "start": iso(self.frame.get_column("date").min()),
            "end": iso(self.frame.get_column("date").max()),
            "seconds": round(self.seconds, 3),
            "patterns": self.summary.to_dicts(),
            "synthetic_tickers": sorted(t for t, s in self.synthetic.items() if s),
            "prices": self.prices,
            "out": str(self.out) if self.out else None,
        }


def run_target_job(
    store: BarStore,
    tickers: str = "all",
    *,
    start: date | None = None,
    end: date | None = None,
    out: Path | None = None,
    horizon: int = DEFAULT_HORIZON,
    inputs: BarInputs | None = None,
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
    inputs : BarInputs, optional
        Price basis, market and sector map (``--prices``, ``--market``,
        ``--sector-map``); outcomes are measured on the chosen prices.

    Returns
    -------
    TargetJobReport
        The kept label frame, :func:`engine.labels.targets.target_summary` of the
        kept rows (events included), and which tickers are synthetic.

    Raises
    ------
    ValueError
        Empty store, unknown tickers, ``start > end`` or a bad ``horizon``.
    """
    began = time.perf_counter()
    loaded = load_bars(store, tickers, start, end, inputs, features=())
    wanted, bars = loaded.tickers, loaded.bars
    frame = compute_targets(
        bars, horizon=horizon, tickers=wanted, market=loaded.inputs.market,
        sector_map=loaded.sectors, with_events=True,
    )  # fmt: skip
    frame = censor_after(keep_dates(frame, start, end), end)
    report = TargetJobReport(
        frame=frame.drop(EVENT_COLUMNS),
        summary=target_summary(frame),
        tickers=wanted,
        horizon=horizon,
        seconds=time.perf_counter() - began,
        synthetic=synthetic_flags(store, wanted),
        prices=loaded.prices.to_dict(),
    )
    if out is not None:
        report.out = write_parquet_atomic(report.frame, Path(out))
    return report
