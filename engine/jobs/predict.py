"""The ``engine predict`` job: latest scores for stored tickers from an ONNX model.

Reads each requested ticker's full stored history (up to ``as_of``) together
with the benchmarks the model's features read, scores every ticker's latest
window with :class:`export.scorer.PatternScorer`, and optionally writes the
scores atomically (Parquet or CSV by the file's suffix).

The full history is used so that the features equal the ones computed in
training (rolling GARCH depends on where the history starts). A score dated
on or before the model's ``embargo_end`` is in-sample: its window overlaps
the data the model learned from or was selected on. The report lists such
tickers; it does not hide them.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.loading import benchmark_inputs, synthetic_flags
from engine.data.store import BarStore
from engine.data.universe import VIX3M_TICKER, VIX_TICKER, parse_tickers
from engine.io import atomic_write_bytes
from export.scorer import PatternScorer

__all__ = ["PredictReport", "run_predict_job"]

_FORMATS = (".parquet", ".csv")


@dataclass
class PredictReport:
    """What :func:`run_predict_job` scored and wrote."""

    model: Path
    model_id: str
    quantization: str
    tickers: list[str]
    as_of: date | None
    scores: pl.DataFrame
    embargo_end: str | None
    in_sample: list[str]
    synthetic_tickers: list[str]
    out: Path | None
    providers: list[str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with the scores as records."""
        return {
            "model": str(self.model),
            "model_id": self.model_id,
            "quantization": self.quantization,
            "tickers": self.tickers,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "embargo_end": self.embargo_end,
            "in_sample": self.in_sample,
            "synthetic_tickers": self.synthetic_tickers,
            "providers": self.providers,
            "out": str(self.out) if self.out else None,
            "seconds": round(self.seconds, 3),
            "scores": self.scores.with_columns(pl.col("date").cast(pl.String)).to_dicts(),
        }


def _inputs(scorer: PatternScorer, wanted: list[str], available: list[str]) -> list[str]:
    """``wanted`` and the stored benchmarks the model's features read."""
    extra = {scorer.market, *scorer.sector_map.values()}
    if scorer.vix_variant in ("vix_vix3m", "vix_mean60"):
        extra |= {VIX_TICKER, VIX3M_TICKER}
    return sorted(set(benchmark_inputs(wanted, available)) | (extra & set(available)))


def run_predict_job(
    store: BarStore,
    model: str | Path,
    tickers: str = "all",
    *,
    as_of: date | None = None,
    out: str | Path | None = None,
    intra_op_threads: int | None = None,
) -> PredictReport:
    """Score the latest window of each stored ticker.

    Parameters
    ----------
    store : BarStore
    model : path
        An ONNX file written by ``engine export-onnx``.
    tickers : str
        ``"all"``, a named list or a comma list.
    as_of : date, optional
        Score with bars up to and including this date (default: all bars).
    out : path, optional
        Write the scores here, as Parquet (``.parquet``) or CSV (``.csv``).
    intra_op_threads : int, optional
        See :meth:`PatternScorer.load`.

    Returns
    -------
    PredictReport

    Raises
    ------
    ValueError
        Unknown tickers, an empty store, a bad ``out`` suffix, or anything
        :meth:`PatternScorer.score_bars` refuses (too short a history, a
        missing benchmark).
    """
    began = time.perf_counter()
    if out is not None and Path(out).suffix.lower() not in _FORMATS:
        raise ValueError(f"--out must end in .parquet or .csv, got {out}")
    scorer = PatternScorer.load(model, intra_op_threads=intra_op_threads)
    available = store.tickers()
    if not available:
        raise ValueError(
            f"no bars in {store.data_dir}; run `engine data demo` or `engine data import PATH`"
        )
    wanted = parse_tickers(tickers, available)
    bars = store.read_bars(_inputs(scorer, wanted, available), end=as_of)
    scores = scorer.score_bars(bars, tickers=wanted)
    embargo_end = (scorer.metadata.get("split") or {}).get("embargo_end")
    in_sample = []
    if embargo_end:
        cut = date.fromisoformat(embargo_end)
        in_sample = scores.filter(pl.col("date") <= cut).get_column("ticker").to_list()
    written = None
    if out is not None:
        written = Path(out)
        buffer = io.BytesIO()
        if written.suffix.lower() == ".csv":
            scores.write_csv(buffer)
        else:
            scores.write_parquet(buffer)
        atomic_write_bytes(written, buffer.getvalue())
    return PredictReport(
        model=Path(model),
        model_id=scorer.model_id,
        quantization=str(scorer.metadata.get("quantization", "none")),
        tickers=wanted,
        as_of=as_of,
        scores=scores,
        embargo_end=embargo_end,
        in_sample=in_sample,
        synthetic_tickers=sorted(t for t, s in synthetic_flags(store, wanted).items() if s),
        out=written,
        providers=scorer.providers,
        seconds=time.perf_counter() - began,
    )
