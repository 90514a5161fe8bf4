"""The ``engine drift`` job: a window of stored bars against a model's reference distributions.

The model is an ONNX file or a registered version (``models:/NAME@ALIAS``,
``models:/NAME/VERSION``); its metadata pins the features (VIX variant,
market, sector map) and carries the reference distributions stored at
training. The window's windows are scored with the model itself
(:class:`export.scorer.PatternScorer`), so head drift is the drift of what
the model serves. See :mod:`engine.monitoring.drift` for what is measured
and :mod:`engine.monitoring.psi` for the thresholds and the minimum window.
The AUC leaves out the windows dated on or before the model's
``embargo_end`` (a window reaching into training, or the default window of a
model refitted through the latest bar), and the report counts them.

Exit codes (``engine drift``): 0 when the ``--fail-on`` level is not
reached, 3 when it is; 1 and 2 stay for errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl

from engine.data.loading import benchmark_inputs, synthetic_flags
from engine.data.store import BarStore
from engine.data.universe import VIX3M_TICKER, VIX_TICKER, parse_tickers
from engine.monitoring.drift import DriftResult, measure_drift, months_before, window_sequences
from engine.monitoring.reference import read_reference
from engine.tracking import tracked

__all__ = ["FAIL_EXIT_CODE", "DriftReport", "resolve_model", "run_drift_job"]

#: Exit code of ``engine drift`` when the ``--fail-on`` level is reached.
FAIL_EXIT_CODE = 3
FailOn = Literal["warn", "drift"]
_LEVEL = {"ok": 0, "insufficient": 0, "warn": 1, "drift": 2}


@dataclass
class DriftReport:
    """What :func:`run_drift_job` measured."""

    model: str
    model_id: str
    registered: dict[str, Any] | None
    result: DriftResult
    fail_on: str | None
    synthetic_tickers: list[str]
    report: Path | None = None
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """True when the status reaches the ``fail_on`` level."""
        if self.fail_on is None:
            return False
        return _LEVEL[self.result.status] >= _LEVEL[self.fail_on]

    @property
    def exit_code(self) -> int:
        """0, or :data:`FAIL_EXIT_CODE` when :attr:`failed`."""
        return FAIL_EXIT_CODE if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (every row, the AUC table, the verdict)."""
        registered = None
        if self.registered:
            registered = {k: self.registered.get(k) for k in ("name", "version", "aliases")}
        return {
            **self.result.to_dict(),
            "model": {"source": self.model, "model_id": self.model_id, "registered": registered},
            "fail_on": self.fail_on,
            "failed": self.failed,
            "exit_code": self.exit_code,
            "synthetic_tickers": self.synthetic_tickers,
            "report": str(self.report) if self.report else None,
            "files": self.files,
            "seconds": round(self.seconds, 3),
        }


def resolve_model(model: str | Path) -> str:
    """A model reference as ``PatternScorer.load`` takes it: a ``models:/`` URI or an ONNX file.

    An artifact directory stands for the ``model.onnx`` exported into it.

    Raises
    ------
    FileNotFoundError
        No such file, or a directory with no exported ``model.onnx``.
    """
    text = str(model)
    if text.startswith("models:"):
        return text
    path = Path(model)
    if path.is_dir():
        if (path / "model.onnx").is_file():
            return str(path / "model.onnx")
        raise FileNotFoundError(
            f"{path} holds no model.onnx; export it first (`engine export-onnx --model {path}`) "
            "or pass a models:/NAME@ALIAS reference"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist (an ONNX file or models:/NAME@ALIAS)")
    return text


@tracked("drift")
def run_drift_job(
    store: BarStore,
    model: str | Path,
    *,
    start: date | None = None,
    end: date | None = None,
    tickers: str | None = None,
    months: int = 6,
    fail_on: FailOn | None = None,
    report_dir: Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    registry_uri: str | None = None,
) -> DriftReport:
    """Measure drift of a window of stored bars against a model: the ``engine drift`` job.

    Parameters
    ----------
    store : BarStore
    model : str or path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, an ONNX file, or an
        artifact directory holding its exported ``model.onnx``.
    start, end : date, optional
        Window of the windows' last days (default: the ``months`` months
        ending on the latest stored bar of the tickers).
    tickers : str, optional
        ``"all"``, a named list or a comma list (default: the model's
        training tickers that are stored).
    months : int
        Window length when ``start`` is not given.
    fail_on : {"warn", "drift"}, optional
        The level at which :attr:`DriftReport.exit_code` is 3.
    report_dir : Path, optional
        Write the HTML report, ``drift.json`` and the histograms there.
    n_boot, seed : int
        Bootstrap of the AUC intervals.
    registry_uri : str, optional
        The MLflow registry of a ``models:/`` reference.

    Raises
    ------
    ValueError
        Unknown tickers; a window with no data
        (:class:`engine.monitoring.drift.DriftError`); a model without
        reference distributions (:class:`engine.monitoring.reference.ReferenceError`);
        an unknown model, alias or version or a file whose checksum differs
        from the registry's (:class:`export.scorer.ScoringError`).
    """
    from export.scorer import PatternScorer

    began = time.perf_counter()
    if fail_on not in (None, "warn", "drift"):
        raise ValueError(f"--fail-on must be 'warn' or 'drift', got {fail_on!r}")
    if months < 1:
        raise ValueError(f"--months must be at least 1, got {months}")
    source = resolve_model(model)
    scorer = PatternScorer.load(source, tracking_uri=registry_uri)
    metadata = scorer.metadata
    read_reference(metadata, source=scorer.source)  # an old model fails before any work
    available = store.tickers()
    if not available:
        raise ValueError(f"no bars in {store.data_dir}; run `engine data demo` or import bars")
    if tickers is None:
        trained = [t for t in metadata.get("tickers", []) if t in available]
        if not trained:
            raise ValueError(
                f"none of the model's training tickers {metadata.get('tickers', [])} is stored "
                f"in {store.data_dir}; pass --tickers"
            )
        wanted = sorted(trained)
    else:
        wanted = parse_tickers(tickers, available)
    extra = {scorer.market, *scorer.sector_map.values()}
    if scorer.vix_variant in ("vix_vix3m", "vix_mean60"):
        extra |= {VIX_TICKER, VIX3M_TICKER}
    bars = store.read_bars(
        sorted(set(benchmark_inputs(wanted, available)) | (extra & set(available)))
    )
    own = bars.filter(pl.col("ticker").is_in(wanted))
    if own.height == 0:
        raise ValueError(f"no bars for {', '.join(wanted)} in {store.data_dir}")
    last = own.get_column("date").max()
    end = end or last
    start = start or months_before(end, months) + timedelta(days=1)
    seqs = window_sequences(bars, metadata, wanted, start, end)
    confidence = scorer.score(seqs.X)
    result = measure_drift(
        metadata,
        seqs,
        confidence,
        start=start,
        end=end,
        n_boot=n_boot,
        seed=seed,
        source=scorer.source,
    )
    report = DriftReport(
        model=scorer.source,
        model_id=scorer.model_id,
        registered=scorer.registered,
        result=result,
        fail_on=fail_on,
        synthetic_tickers=sorted(t for t, s in synthetic_flags(store, wanted).items() if s),
    )
    result.info["data_dir"] = str(store.data_dir)
    result.info["model"] = {"source": scorer.source, "model_id": scorer.model_id}
    if report_dir is not None:
        from engine.monitoring.report import write_drift_report

        files = write_drift_report(result, report_dir)
        report.report = files[0]
        report.files = [str(f) for f in files]
    report.seconds = time.perf_counter() - began
    return report
