"""The ``engine backtest`` job: load predictions and bars, backtest one strategy, report.

The work is :func:`engine.backtest.run.run_backtest`; this job finds the
bars (the training run's data directory by default), checks that they are
the bars the model was trained on, and writes the report.
:func:`run_backtest_files` backtests several prediction files (e.g.
training seeds) and states the filter's verdict only where they all agree
(:mod:`engine.backtest.robustness`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.backtest.meta_labeling import load_out_of_sample_confidence
from engine.backtest.robustness import SeedBacktests, combine_seed_backtests
from engine.backtest.run import BacktestProgress, BacktestReport, run_backtest
from engine.backtest.simulation import DEFAULT_COSTS_BPS, BacktestSettings
from engine.data.loading import synthetic_flags
from engine.data.paths import resolve_data_dir
from engine.data.prices import PriceBasis, apply_basis
from engine.data.store import BarStore
from engine.data.universe import MARKET_BENCHMARK
from engine.features.trained_bars import trained_bars_fingerprint
from engine.model.out_of_sample import bar_calendar, embargo_days_of
from engine.model.run_files import RUN_FILE
from engine.tracking import tracked

__all__ = [
    "DEFAULT_COSTS_BPS",
    "BacktestReport",
    "BacktestSettings",
    "SeedBacktests",
    "run_backtest_files",
    "run_backtest_job",
]


def _run_record(predictions: Path) -> dict[str, Any]:
    """The ``run.json`` beside a run's predictions (or {})."""
    run_file = predictions.parent / RUN_FILE
    if not run_file.is_file():
        return {}
    try:
        record = json.loads(run_file.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


@tracked("backtest")
def run_backtest_job(
    predictions: str | Path,
    settings: BacktestSettings | None = None,
    *,
    data_dir: str | Path | None = None,
    report_dir: str | Path | None = None,
    progress: BacktestProgress | None = None,
) -> BacktestReport:
    """``engine backtest``: load the predictions and bars, backtest, optionally write a report.

    Parameters
    ----------
    predictions : path
        ``predictions.parquet`` of a training run (or any file with the same
        columns).
    settings : BacktestSettings, optional
    data_dir : path, optional
        Where the bars are (default: the training run's data directory from
        the ``run.json`` beside the predictions, else ``$ENGINE_DATA_DIR`` or
        the default directory).
    report_dir : path, optional
        Write ``report.html``, the figures, ``metrics.json``,
        ``daily.parquet`` and ``signals.parquet`` there.
    progress : callable, optional

    Returns
    -------
    BacktestReport
    """
    settings = settings or BacktestSettings()
    predictions = Path(predictions)
    say = progress or (lambda stage: None)
    say("predictions")
    run = _run_record(predictions)
    run_data = dict(run.get("data") or {})
    if data_dir is None and run_data.get("data_dir"):
        data_dir = run_data["data_dir"]
    store = BarStore(resolve_data_dir(data_dir))
    # the out-of-sample guard: train_end + the run's embargo on the bar calendar of the store
    embargo_days = embargo_days_of(run)
    run_tickers = run_data.get("tickers")
    calendar = bar_calendar(store.data_dir, list(run_tickers) if run_tickers else None)
    confidence = load_out_of_sample_confidence(
        predictions, settings.pattern_head, calendar=calendar, embargo_days=embargo_days
    )
    available = store.tickers()
    if not available:
        raise ValueError(f"no bars in {store.data_dir}; pass --data-dir with the training bars")
    tickers = sorted(confidence.get_column("ticker").unique().to_list())
    lacking = [t for t in tickers if t not in available]
    if lacking:
        raise ValueError(
            f"{predictions} scores tickers with no bars in {store.data_dir}: {lacking}"
        )
    read = sorted(set(tickers) | ({MARKET_BENCHMARK} & set(available)))
    # trade on the price basis the model was trained on (adjusted OHLC by default)
    bars = apply_basis(store.read_bars(read), PriceBasis.from_dict(run_data.get("prices")), read)
    report = run_backtest(bars, confidence, settings, source=str(predictions), progress=say)
    report.info["data_dir"] = str(store.data_dir)
    report.info["synthetic_tickers"] = sorted(
        t for t, synthetic in synthetic_flags(store, tickers).items() if synthetic
    )
    if run_data.get("fingerprint") and run_data.get("tickers"):
        try:  # the run's tickers and benchmarks on its price basis, as training read them
            match = trained_bars_fingerprint(store, run_data) == run_data["fingerprint"]
        except ValueError:  # the store lacks some of the run's tickers
            match = False
        report.info["fingerprint_match"] = match
        if not match:
            report.notes.append(
                f"the bars in {store.data_dir} differ from the bars the model was trained on "
                "(fingerprint mismatch): prices and predictions may not line up"
            )
    if report_dir is not None:
        from engine.reports.backtest import write_backtest_report

        say("report")
        report.files = [str(p) for p in write_backtest_report(report, Path(report_dir))]
    return report


@tracked("backtest")
def run_backtest_files(
    predictions: Sequence[str | Path],
    settings: BacktestSettings | None = None,
    *,
    data_dir: str | Path | None = None,
    report_dir: str | Path | None = None,
    progress: BacktestProgress | None = None,
) -> SeedBacktests:
    """``engine backtest`` on several prediction files: each backtested, then compared.

    Each file goes through :func:`run_backtest_job` (its own ``run.json``,
    bars and out-of-sample guard). Their runs are then deflated as one
    selection (``N``: ``settings.trials`` or every run of every file) and
    the filter's verdict is stated only where every file agrees
    (:func:`engine.backtest.robustness.seed_robustness`).

    Parameters
    ----------
    predictions : sequence of path
        At least two distinct prediction files (e.g. one per training seed).
    settings : BacktestSettings, optional
    data_dir : path, optional
        As :func:`run_backtest_job`, for every file.
    report_dir : path, optional
        Write ``report.html`` and ``metrics.json`` (the comparison) there,
        and each file's report to ``<report_dir>/<k>/`` (``k`` from 1).
    progress : callable, optional

    Returns
    -------
    SeedBacktests
    """
    settings = settings or BacktestSettings()
    paths = [Path(p) for p in predictions]
    if len(paths) < 2:
        raise ValueError(f"give at least 2 prediction files to compare, got {len(paths)}")
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise ValueError(f"{path} is given twice (as {seen[key]}): each file counts once")
        seen[key] = path
    say = progress or (lambda stage: None)
    reports = []
    for k, path in enumerate(paths, start=1):
        say(f"file {k} of {len(paths)}: {path}")
        reports.append(run_backtest_job(path, settings, data_dir=data_dir, progress=progress))
    labels = [str(k) for k in range(1, len(paths) + 1)]
    series = combine_seed_backtests(reports, labels, settings)
    if report_dir is not None:
        from engine.reports.backtest import write_seed_report

        say("report")
        series.files = [str(p) for p in write_seed_report(series, Path(report_dir))]
    return series
