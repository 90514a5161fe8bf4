"""A job that writes a run directory like ``engine train``'s and reports, for the tracking tests.

It imports no MLflow, so a test can check that untracked calls never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.tracking import tracked


@dataclass
class FakeReport:
    out: Path
    data_dir: str

    def to_dict(self):
        return {
            "out": str(self.out),
            "settings": {"seed": 3, "split": "walk-forward", "embargo_days": 5},
            "data": {"fingerprint": "f00d", "tickers": ["AAPL", "MSFT"], "data_dir": self.data_dir},
            "windows": [
                {"model_id": "wf00", "test_start": "2012-01-04",
                 "test_auc": {"momentum": 0.61, "coin": None}},
                {"model_id": "wf01", "test_start": "2013-01-04",
                 "test_auc": {"momentum": 0.52, "coin": 0.49}},
            ],
            "metrics": [{"pattern": "momentum", "auc": 0.57, "auc_ci_low": 0.51,
                         "auc_ci_high": 0.63}],
            "seconds": 1.25,
        }  # fmt: skip


@tracked("train")
def fake_job(data_dir: str, tickers: str = "all", *, seed: int = 0, out: Path, fail=False):
    """Writes a run directory like engine train's, then reports (or fails)."""
    (out / "models" / "wf00").mkdir(parents=True)
    (out / "report.html").write_text("<html></html>")
    (out / "run.json").write_text("{}")
    (out / "models" / "wf00" / "metadata.json").write_text("{}")
    (out / "models" / "wf00" / "model.keras").write_bytes(b"weights")
    pl.DataFrame({"x": [1, 2]}).write_parquet(out / "predictions.parquet")
    if fail:
        raise ValueError("no bars for NOPE")
    return FakeReport(out, data_dir)
