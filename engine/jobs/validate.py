"""The ``engine validate`` job: out-of-sample metrics, a null test and an overfitting monitor.

Input is one of

* a **run directory** of :mod:`engine.jobs.train` (``run.json``): its
  ``predictions.parquet`` and the ``history.csv`` of every finished window,
  each window's artifact checksums verified first;
* one **model artifact** directory (``metadata.json``,
  :mod:`engine.model.artifacts`): checksums verified, then its
  ``test_predictions.parquet`` and ``history.csv``;
* a bare **predictions file** (no training histories, so no overfitting
  monitor).

The job resolves that input (:func:`engine.model.prediction_sources.resolve_prediction_source`),
validates it (:func:`engine.evaluation.validation.validate_predictions`: metrics
with intervals, the optional null test, calibration, the overfitting monitor)
and, with ``report_dir``, writes ``report.html`` and its PNG figures
(:func:`engine.reports.validation.write_report`).

Per-regime metrics and the walk-forward regime coverage need the bars of the
market benchmark: they are read from ``data_dir`` if given, else from the
data directory that the run's ``run.json`` (or the artifact's
``metadata.json``) records. Where the run records the fingerprint of its
bars, the directory's bars must match it
(:func:`engine.features.trained_bars.trained_bars_fingerprint`): a
``data_dir`` that does not is refused; a recorded directory whose bars have
changed since is not used, and a note says so. A bare predictions file
without ``data_dir``, or a data directory without the benchmark, is validated
without regimes, and a note says so.

Examples
--------
>>> import datetime as dt, tempfile
>>> from pathlib import Path
>>> import numpy as np, polars as pl
>>> rng = np.random.default_rng(0)
>>> n = 240
>>> y = (rng.uniform(size=n) < 0.5).astype(np.int8)
>>> p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.15, n), 0, 1)
>>> days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n)]
>>> frame = pl.DataFrame({
...     "ticker": "AAA", "date": days, "t1": days, "model_id": "wf00",
...     "train_end": dt.date(2020, 12, 1), "embargo_end": dt.date(2020, 12, 8),
...     "breakout_p": p.astype(np.float32), "breakout": y,
... })
>>> path = Path(tempfile.mkdtemp()) / "predictions.parquet"
>>> frame.write_parquet(path)
>>> report = run_validate_job(predictions=path, n_boot=50)
>>> report.metrics.select("pattern", "n").rows()
[('breakout', 240)]
>>> bool(report.metrics["auc"][0] > 0.6), report.overfitting is None
(True, True)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.paths import resolve_data_dir
from engine.data.store import BarStore
from engine.data.universe import MARKET_BENCHMARK
from engine.evaluation.diagnostics import DEFAULT_OVERFIT_TOLERANCE, DEFAULT_OVERFIT_WINDOW
from engine.evaluation.permutation import DEFAULT_N_NULL
from engine.evaluation.regimes import market_regimes
from engine.evaluation.validation import check_validation_settings, validate_predictions
from engine.evaluation.validation_report import ValidateReport
from engine.features.trained_bars import trained_bars_fingerprint
from engine.labels.permutations import DEFAULT_NULL_BLOCK
from engine.model.artifacts import METADATA_FILE
from engine.model.prediction_sources import PredictionSource, resolve_prediction_source
from engine.model.run_files import RUN_FILE, read_json
from engine.reports.validation import write_report
from engine.tracking import tracked

__all__ = ["ValidateReport", "run_validate_job"]


def _regimes(
    source: PredictionSource, data_dir: Path | None = None
) -> tuple[pl.DataFrame | None, str | None]:
    """The market's regime labels from ``data_dir`` or the source's, and a note or None.

    Without regimes the note says why; with them, it says when ``data_dir``
    could not be checked (nothing recorded to check it against).

    Raises
    ------
    ValueError
        ``data_dir`` holds bars other than those the run records the fingerprint of.
    """
    record: Any = None
    if source.kind == "run":
        record = read_json(source.path / RUN_FILE)
    elif source.kind == "model" and (source.path / METADATA_FILE).is_file():
        record = read_json(source.path / METADATA_FILE)
    data = record.get("data") if isinstance(record, dict) else None
    data = data if isinstance(data, dict) else {}
    market = data.get("market") or MARKET_BENCHMARK
    if data_dir is None and not data.get("data_dir"):
        return None, (
            "regimes absent: no data directory is recorded for these predictions, so the "
            f"market benchmark {market} has no bars here (--data-dir gives one)"
        )
    store = BarStore(resolve_data_dir(data_dir if data_dir is not None else data["data_dir"]))
    mismatch = _fingerprint_mismatch(store, data, source.path)
    if mismatch and data_dir is not None:
        raise ValueError(f"--data-dir {data_dir}: {mismatch}; pass the run's data directory")
    if mismatch:
        return None, f"regimes absent: {mismatch} (--data-dir with the run's bars gives them)"
    if market not in store.tickers():
        return (
            None,
            f"regimes absent: {store.data_dir} has no bars of the market benchmark {market}",
        )
    unchecked = None
    if data_dir is not None and not data.get("fingerprint"):
        unchecked = (
            f"regimes from {market} in {store.data_dir}: no fingerprint is recorded for these "
            "predictions to check those bars against"
        )
    return market_regimes(store.read_bars([market])), unchecked


def _fingerprint_mismatch(store: BarStore, data: dict[str, Any], source: Path) -> str | None:
    """Why ``store`` does not hold the bars ``data`` records, or None (also if none recorded)."""
    recorded = data.get("fingerprint")
    if not recorded:
        return None
    try:
        found = trained_bars_fingerprint(store, data)
    except ValueError as exc:
        return f"{exc} (the run: {source})"
    if found == recorded:
        return None
    return (
        f"the bars in {store.data_dir} differ from the bars {source} was trained on "
        f"(fingerprint mismatch: {found[:12]}... here, {recorded[:12]}... recorded)"
    )


@tracked("validate")
def run_validate_job(
    model: Path | None = None,
    predictions: Path | None = None,
    *,
    by_ticker: bool = False,
    null: bool = False,
    null_block: int = DEFAULT_NULL_BLOCK,
    n_null: int = DEFAULT_N_NULL,
    n_boot: int = 1000,
    seed: int = 0,
    report_dir: Path | None = None,
    data_dir: Path | None = None,
    overfit_window: int = DEFAULT_OVERFIT_WINDOW,
    overfit_tolerance: float = DEFAULT_OVERFIT_TOLERANCE,
) -> ValidateReport:
    """Validate out-of-sample predictions: the ``engine validate`` job.

    Parameters
    ----------
    model : Path, optional
        A training run directory (``run.json``; every window's artifact is
        checksum-verified and its ``history.csv`` read) or one model artifact
        directory (``metadata.json``; verified, then its
        ``test_predictions.parquet`` and ``history.csv``).
    predictions : Path, optional
        A predictions Parquet file (format of
        :data:`engine.model.run_files.PREDICTION_KEYS` then ``<pattern>_p`` and
        ``<pattern>`` per pattern). Has no histories: no overfitting monitor.
        Give exactly one of ``model`` and ``predictions``.
    by_ticker, null, null_block, n_null, n_boot, seed, overfit_window, overfit_tolerance
        See :func:`engine.evaluation.validation.validate_predictions`.
    report_dir : Path, optional
        Write ``report.html`` and the PNG figures there
        (:func:`engine.reports.validation.write_report`).
    data_dir : Path, optional
        Where the market benchmark's bars for the regimes are (default: the
        data directory the run records); checked against the run's
        fingerprint where it records one.

    Returns
    -------
    ValidateReport
        With ``report`` and ``figures`` set when ``report_dir`` is given;
        ``seconds`` covers the whole job.

    Raises
    ------
    ValueError
        A setting out of range (checked first); both or neither of ``model`` /
        ``predictions``; a file that is not a predictions file; missing or
        malformed columns; in-sample rows (on or before ``train_end`` plus the
        embargo on the bar calendar, or ``date <= embargo_end``); an
        understated ``embargo_end``; a checksum mismatch
        (:class:`engine.model.artifacts.ArtifactError`); ``data_dir`` with
        bars other than the run's (fingerprint mismatch).
    FileNotFoundError
        A missing path, predictions file or history.
    """
    began = time.perf_counter()
    check_validation_settings(
        null_block=null_block,
        n_null=n_null,
        n_boot=n_boot,
        overfit_window=overfit_window,
        overfit_tolerance=overfit_tolerance,
    )
    source = resolve_prediction_source(model, predictions)
    regimes, why = _regimes(source, Path(data_dir) if data_dir is not None else None)
    if why:  # why regimes are absent, or that data_dir is unchecked
        source.notes.append(why)
    report = validate_predictions(
        source,
        by_ticker=by_ticker,
        null=null,
        null_block=null_block,
        n_null=n_null,
        n_boot=n_boot,
        seed=seed,
        overfit_window=overfit_window,
        overfit_tolerance=overfit_tolerance,
        regimes=regimes,
    )
    if report_dir is not None:
        report.report, report.figures = write_report(report, Path(report_dir))
    report.seconds = time.perf_counter() - began
    return report
