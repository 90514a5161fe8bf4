"""Feature files: a feature frame as Parquet with its manifest beside it.

``<out>`` holds the frame, ``<out>.manifest.json`` the manifest (feature
order, ``vix_term_structure`` variant, data fingerprint, package versions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from engine.features.build import FEATURE_NAMES
from engine.io import atomic_write_bytes, write_parquet_atomic

__all__ = ["warm_up_rows", "write_feature_file"]


def warm_up_rows(frame: pl.DataFrame) -> dict[str, int]:
    """Per ticker, the leading rows where at least one feature is null."""
    names = [c for c in frame.columns if c in FEATURE_NAMES]
    complete = pl.all_horizontal(pl.col(n).is_not_null() for n in names)
    counts = (
        frame.with_columns(complete=complete)
        .group_by("ticker", maintain_order=True)
        .agg(
            pl.when(pl.col("complete").any())
            .then(pl.col("complete").arg_max())
            .otherwise(pl.len())
            .alias("warm_up")
        )
    )
    return dict(counts.iter_rows())


def write_feature_file(
    frame: pl.DataFrame, manifest: dict[str, Any], out: Path
) -> tuple[Path, Path]:
    """Write ``frame`` to ``out`` (Parquet) and the manifest beside it, both atomically.

    Returns
    -------
    tuple of Path
        ``out`` and ``<out>.manifest.json``.
    """
    write_parquet_atomic(frame, out)
    manifest_path = out.with_name(out.name + ".manifest.json")
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return out, manifest_path
