"""The ``engine compare`` job: two runs' out-of-sample predictions, paired on their common rows.

Each source is a run directory, a model artifact directory or a
predictions file (:func:`engine.model.prediction_sources.resolve_prediction_source`);
both are checked as ``engine validate`` checks them (format, out-of-sample
guard), then joined on ``(ticker, date)``
(:func:`engine.evaluation.comparison.align_predictions`). The report holds

* **pooled**: per head, AUC, Brier and log loss of A and B and the paired
  date-block bootstrap interval and p-value of ``A - B``, Holm-adjusted over
  the heads per metric;
* **by window**: the same per test window (A's ``model_id``),
  Benjamini-Hochberg-adjusted over the windows and heads;
* **by regime**: the same per market regime of the row's date, trend (bull,
  bear, sideways) and volatility (high, low) of the market benchmark
  (:mod:`engine.evaluation.regimes`), Holm-adjusted over heads x labels;
  with the **coverage** table: test days of each window in each regime.

Regimes need the market benchmark's bars: the data directory recorded by
run A (or ``data_dir``). Without them the regime tables are left out and a
note says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.paths import resolve_data_dir
from engine.data.store import BarStore
from engine.data.universe import MARKET_BENCHMARK
from engine.evaluation.bootstrap import check_bootstrap_settings
from engine.evaluation.comparison import align_predictions, compare_frame
from engine.evaluation.regimes import REGIME_LABELS, label_rows, market_regimes, regime_coverage
from engine.model.json_values import json_rows
from engine.model.prediction_sources import resolve_prediction_source
from engine.model.run_files import RUN_FILE, check_predictions, read_json, read_predictions

__all__ = ["CompareReport", "run_compare_job"]


@dataclass
class CompareReport:
    """What :func:`run_compare_job` measured."""

    a: str
    b: str
    patterns: list[str]
    rows: int
    tickers: int
    first_date: str
    last_date: str
    pooled: pl.DataFrame
    by_window: pl.DataFrame
    windows: pl.DataFrame
    by_regime: dict[str, pl.DataFrame] | None
    coverage: pl.DataFrame | None
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (every table as a list of rows)."""
        return {
            "a": self.a,
            "b": self.b,
            "patterns": self.patterns,
            "common_rows": self.rows,
            "tickers": self.tickers,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "pooled": json_rows(self.pooled),
            "by_window": json_rows(self.by_window),
            "windows": json_rows(self.windows),
            "by_regime": None
            if self.by_regime is None
            else {dim: json_rows(frame) for dim, frame in self.by_regime.items()},
            "coverage": json_rows(self.coverage),
            "settings": self.settings,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "report": str(self.report) if self.report else None,
            "figures": [str(f) for f in self.figures],
        }


def _load(path: Path) -> tuple[pl.DataFrame, list[str], dict[str, Any], list[str]]:
    """Checked predictions, patterns, the run record (if any) and notes of one source."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (give a run directory, a model artifact "
                                "directory or a predictions file)")  # fmt: skip
    source = (
        resolve_prediction_source(model=path)
        if path.is_dir()
        else resolve_prediction_source(predictions=path)
    )
    frame, patterns = check_predictions(
        read_predictions(source.predictions), source.patterns, source=str(source.predictions),
        calendar=source.calendar, embargo_days=source.embargo_days,
    )  # fmt: skip
    run_file = (path if path.is_dir() else path.parent) / RUN_FILE
    record = read_json(run_file) if run_file.is_file() else {}
    return frame, patterns, record if isinstance(record, dict) else {}, source.notes


def _windows(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("model_id")
        .agg(
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
            pl.len().alias("rows"),
        )
        .sort("first_date")
    )


def _regimes(
    record: dict[str, Any], data_dir: Path | None
) -> tuple[pl.DataFrame | None, str | None]:
    """The market's regime labels, or None and the reason."""
    data = record.get("data") or {}
    market = data.get("market") or MARKET_BENCHMARK
    where = data_dir if data_dir is not None else data.get("data_dir")
    if where is None:
        return None, ("regimes left out: run A records no data directory; pass --data-dir "
                      f"with the bars of the market benchmark {market}")  # fmt: skip
    store = BarStore(resolve_data_dir(where))
    if market not in store.tickers():
        message = f"{store.data_dir} has no bars of the market benchmark {market}"
        if data_dir is not None:
            raise FileNotFoundError(f"{message}; regimes are computed from it")
        return None, f"regimes left out: {message}; pass --data-dir"
    return market_regimes(store.read_bars([market])), None


def run_compare_job(
    run_a: Path,
    run_b: Path,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    data_dir: Path | None = None,
    report_dir: Path | None = None,
) -> CompareReport:
    """Compare two sources of out-of-sample predictions: the ``engine compare`` job.

    Parameters
    ----------
    run_a, run_b : Path
        Run directories, model artifact directories or predictions files.
    n_boot : int
        Bootstrap replicates of every interval (at least 10).
    seed : int
    level : float
        Interval coverage.
    data_dir : Path, optional
        Bars of the market benchmark for the regimes (default: run A's data directory).
    report_dir : Path, optional
        Write ``report.html``, the figures and ``comparison.json`` there.

    Returns
    -------
    CompareReport

    Raises
    ------
    ValueError
        Bad settings; a source that is not a predictions source or fails its
        checks; sources with different pattern sets, no common rows, a
        ``(ticker, date)`` twice, or different outcomes
        (:class:`engine.evaluation.comparison.ComparisonError`).
    FileNotFoundError
        A missing source, or a given ``data_dir`` without the market's bars.
    """
    began = time.perf_counter()
    check_bootstrap_settings(n_boot, level)
    a, patterns_a, record_a, notes_a = _load(run_a)
    b, patterns_b, _, notes_b = _load(run_b)
    frame, patterns = align_predictions(a, b, patterns_a, patterns_b,
                                        names=(str(run_a), str(run_b)))  # fmt: skip
    options = {"n_boot": n_boot, "seed": seed, "level": level}
    pooled = compare_frame(frame, patterns, adjust="holm", **options)
    by_window = compare_frame(frame, patterns, by=["model_id"], adjust="bh", **options)
    notes = [f"A: {n}" for n in notes_a] + [f"B: {n}" for n in notes_b]
    unmatched = {"A": a.height - frame.height, "B": b.height - frame.height}
    for side, n in unmatched.items():
        if n:
            notes.append(f"{side} has {n} predictions the other lacks; they are not compared")
    regimes, why = _regimes(record_a, data_dir)
    by_regime = coverage = None
    if why:
        notes.append(why)
    if regimes is not None:
        labelled = label_rows(frame, regimes)
        by_regime = {
            dim: compare_frame(
                labelled.filter(pl.col(dim).is_not_null()),
                patterns,
                by=[dim],
                adjust="holm",
                **options,
            )  # fmt: skip
            for dim in REGIME_LABELS
        }
        coverage = regime_coverage(labelled)
        unknown = labelled.filter(pl.col("trend").is_null() | pl.col("volatility").is_null())
        if unknown.height:
            notes.append(f"{unknown.height} common rows fall on dates without a regime label "
                         "(benchmark warm-up or no bar that day)")  # fmt: skip
    dates = frame.get_column("date")
    report = CompareReport(
        a=str(run_a), b=str(run_b), patterns=patterns, rows=frame.height,
        tickers=frame.get_column("ticker").n_unique(), first_date=str(dates.min()),
        last_date=str(dates.max()), pooled=pooled, by_window=by_window,
        windows=_windows(frame), by_regime=by_regime, coverage=coverage,
        settings=options, notes=notes,
    )  # fmt: skip
    if report_dir is not None:
        from engine.reports.comparison import write_compare_report

        report.report, report.figures = write_compare_report(report, Path(report_dir))
    report.seconds = time.perf_counter() - began
    return report
