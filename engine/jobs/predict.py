"""The ``engine predict`` job: latest scores for stored tickers from an ONNX model.

Reads each requested ticker's full stored history (up to ``as_of``) together
with the benchmarks the model's features read, scores every ticker's latest
window with :class:`export.scorer.PatternScorer`, and optionally writes the
scores atomically (Parquet or CSV by the file's suffix).

The full history is used so that the features equal the ones computed in
training (rolling GARCH depends on where the history starts). The model pins
its price basis, market and sector map: ``--prices`` and ``--market`` may
only confirm them, and ``--sector-map`` adds sectors for tickers the model
does not map. ``--model`` may name a directory holding one ONNX file. A score dated
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
from engine.tracking.settings import Tracking
from export.onnx_files import resolve_onnx_file
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
    prices: dict[str, Any] | None = None
    market: str | None = None

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
            "prices": self.prices,
            "market": self.market,
            "out": str(self.out) if self.out else None,
            "seconds": round(self.seconds, 3),
            "scores": self.scores.with_columns(pl.col("date").cast(pl.String)).to_dicts(),
        }


def _inputs(
    scorer: PatternScorer, wanted: list[str], available: list[str], sectors: dict[str, str]
) -> list[str]:
    """``wanted`` and the stored benchmarks the model's features read."""
    extra = {scorer.market, *scorer.sector_map.values(), *sectors.values()}
    if scorer.vix_variant in ("vix_vix3m", "vix_mean60"):
        extra |= {VIX_TICKER, VIX3M_TICKER}
    return sorted(
        set(benchmark_inputs(wanted, available, scorer.market)) | (extra & set(available))
    )


def _check_pins(scorer: PatternScorer, prices: str | None, market: str | None) -> None:
    """``--prices`` and ``--market`` may confirm the model's choices, not change them."""
    if prices is not None and prices != scorer.prices.mode:
        raise ValueError(
            f"--prices {prices}: the model was trained on {scorer.prices.mode} prices and "
            "scores only on them; drop --prices or train a model on the other basis"
        )
    if market is not None and market.upper() != scorer.market:
        raise ValueError(
            f"--market {market}: the model was trained with the market {scorer.market}; "
            "drop --market or train a model with the other market"
        )


def run_predict_job(
    store: BarStore,
    model: str | Path,
    tickers: str = "all",
    *,
    as_of: date | None = None,
    out: str | Path | None = None,
    intra_op_threads: int | None = None,
    prices: str | None = None,
    market: str | None = None,
    sector_map: dict[str, str] | None = None,
    registry_uri: str | None = None,
) -> PredictReport:
    """Score the latest window of each stored ticker.

    Parameters
    ----------
    store : BarStore
    model : path or str
        An ONNX file written by ``engine export-onnx``, a directory holding
        exactly one (a model artifact after the export), or a registered
        version: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
    registry_uri : str, optional
        The registry of a ``models:/`` reference (default
        ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<data-dir>/mlflow.db``).
    tickers : str
        ``"all"``, a named list or a comma list.
    as_of : date, optional
        Score with bars up to and including this date (default: all bars).
    out : path, optional
        Write the scores here, as Parquet (``.parquet``) or CSV (``.csv``).
    intra_op_threads : int, optional
        See :meth:`PatternScorer.load`.
    prices, market : str, optional
        Must equal the model's price basis and market when given.
    sector_map : dict of str to str, optional
        Sector ETFs of tickers the model's sector map lacks.

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
    if str(model).startswith("models:"):  # the registry; its file's SHA-256 is checked
        registry = Tracking(uri=registry_uri, data_dir=store.data_dir).resolve().uri
        scorer = PatternScorer.load(str(model), intra_op_threads, tracking_uri=registry)
    else:
        model = resolve_onnx_file(model)
        scorer = PatternScorer.load(model, intra_op_threads=intra_op_threads)
    _check_pins(scorer, prices, market)
    available = store.tickers()
    if not available:
        raise ValueError(
            f"no bars in {store.data_dir}; run `engine data demo` or `engine data import PATH`"
        )
    wanted = parse_tickers(tickers, available)
    sectors = dict(sector_map or {})
    bars = store.read_bars(_inputs(scorer, wanted, available, sectors), end=as_of)
    scores = scorer.score_bars(bars, tickers=wanted, sector_map=sectors)
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
        prices=scorer.prices.to_dict(),
        market=scorer.market,
    )
