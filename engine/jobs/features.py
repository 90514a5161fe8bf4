"""The ``engine features`` job: stored bars in, a feature file and a summary out.

It loads the requested tickers together with the benchmarks their features
need (market, sector, volatility indices), computes on the full stored
history so warm-up windows are filled from real data, then keeps the rows in
``[start, end]``. The output file is written atomically, with the manifest
beside it as ``<out>.manifest.json``.
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
from engine.features.build import ProgressCallback, build_features
from engine.features.files import warm_up_rows, write_feature_file
from engine.io import iso

__all__ = ["FeatureJobReport", "run_feature_job"]


@dataclass
class FeatureJobReport:
    """What ``run_feature_job`` produced."""

    frame: pl.DataFrame
    manifest: dict[str, Any]
    seconds: float
    warm_up_rows: dict[str, int]
    synthetic: dict[str, bool]
    out: Path | None = None
    manifest_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the frame itself is not included)."""
        return {
            "rows": self.frame.height,
            "tickers": self.manifest["tickers"],
            "features": self.manifest["feature_names"],
            "start": iso(self.frame.get_column("date").min()),
            "end": iso(self.frame.get_column("date").max()),
            "seconds": round(self.seconds, 3),
            "warm_up_rows": self.warm_up_rows,
            "synthetic_tickers": sorted(t for t, s in self.synthetic.items() if s),
            "vix_variant": self.manifest["vix_variant"],
            "vix_variant_reason": self.manifest["vix_variant_reason"],
            "prices": self.manifest.get("prices"),
            "market": self.manifest.get("market"),
            "out": str(self.out) if self.out else None,
            "manifest": str(self.manifest_path) if self.manifest_path else None,
            "fingerprint": self.manifest["fingerprint"],
        }


def run_feature_job(
    store: BarStore,
    tickers: str = "all",
    *,
    start: date | None = None,
    end: date | None = None,
    out: Path | None = None,
    features: list[str] | None = None,
    progress: ProgressCallback | None = None,
    inputs: BarInputs | None = None,
) -> FeatureJobReport:
    """Compute features for stored tickers and optionally write them to Parquet.

    Parameters
    ----------
    store : BarStore
        Where the bars live.
    tickers : str
        ``"all"``, a named list or a comma-separated list (``parse_tickers``).
    start, end : date, optional
        Rows kept in the output (inclusive). Earlier history still feeds the
        rolling windows, so the first kept rows are not warm-up nulls.
    out : Path, optional
        Parquet file to write (atomically), with ``<out>.manifest.json``.
    features : list of str, optional
        Subset of ``FEATURE_NAMES``.
    progress : callable, optional
        ``progress(done, total)`` in tickers.
    inputs : BarInputs, optional
        Price basis, market and sector map (``--prices``, ``--market``,
        ``--sector-map``); recorded in the manifest.

    Returns
    -------
    FeatureJobReport
    """
    began = time.perf_counter()
    loaded = load_bars(store, tickers, start, end, inputs, features=features)
    wanted = loaded.tickers
    result = build_features(
        loaded.bars,
        features,
        tickers=wanted,
        market=loaded.inputs.market,
        sector_map=loaded.sectors,
        progress=progress,
    )
    frame = keep_dates(result.frame, start, end)
    manifest = result.manifest.to_dict() | loaded.info()
    synthetic = synthetic_flags(store, wanted)
    manifest["synthetic_tickers"] = sorted(t for t, s in synthetic.items() if s)
    manifest["start"] = iso(frame.get_column("date").min())
    manifest["end"] = iso(frame.get_column("date").max())
    report = FeatureJobReport(
        frame=frame,
        manifest=manifest,
        seconds=time.perf_counter() - began,
        warm_up_rows=warm_up_rows(frame),
        synthetic=synthetic,
    )
    if out is not None:
        report.out, report.manifest_path = write_feature_file(frame, manifest, Path(out))
    return report
