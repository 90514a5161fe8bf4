"""A base strategy backtested unfiltered and filtered by a head's out-of-sample confidence.

Data flow: base signals from the bars -> meta-labeling at the threshold ->
a (days, tickers) grid, where a ticker with no bar on a day inside its
trading span keeps its last signal and confidence
(:mod:`engine.backtest.missing_bars`) -> the simulation run twice, on the unfiltered and
the filtered signals, over the same calendar (the span the predictions
cover) -> metrics, the filter's precision and recall, the Sharpe
difference with a paired bootstrap interval, a null of the same filter shifted off
the prices (:mod:`engine.backtest.null`), and each run's probabilistic and
deflated Sharpe ratio (:mod:`engine.backtest.inference`).

:func:`deflate_together` deflates the runs of several backtests as one
selection (the pipeline's strategies, several prediction files).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.backtest.filter_metrics import filter_scores, sharpe_difference
from engine.backtest.inference import probabilistic_sharpe, sharpe_inference
from engine.backtest.meta_labeling import meta_label, signal_outcomes
from engine.backtest.missing_bars import hold_through_missing_bars, missing_inside_span
from engine.backtest.null import shifted_filter_null
from engine.backtest.signals import compute_signals
from engine.backtest.simulation import (
    BacktestSettings,
    PriceGrid,
    Simulation,
    benchmark_returns,
    simulate,
)
from engine.backtest.summary import summarize
from engine.data.universe import MARKET_BENCHMARK

__all__ = ["RUNS", "BacktestProgress", "BacktestReport", "deflate_together", "run_backtest"]

#: ``progress(stage)``: a short description of the stage starting now.
BacktestProgress = Callable[[str], None]
#: The runs of one backtest, each a trial of the deflated Sharpe ratio.
RUNS = ("unfiltered", "filtered")


@dataclass
class BacktestReport:
    """Everything ``engine backtest`` measured; :meth:`to_dict` is its JSON."""

    settings: BacktestSettings
    source: str
    tickers: list[str]
    dates: np.ndarray
    benchmark: np.ndarray | None
    unfiltered: Simulation
    filtered: Simulation
    metrics: dict[str, dict[str, Any]]
    filter: dict[str, Any]
    sharpe_difference: dict[str, Any]
    null: dict[str, Any] | None
    signals: pl.DataFrame
    inference: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays)."""
        return {
            "settings": self.settings.to_dict(),
            "predictions": self.source,
            "tickers": self.tickers,
            "start": str(self.dates[0]),
            "end": str(self.dates[-1]),
            "days": int(self.dates.shape[0]),
            "metrics": self.metrics,
            "filter": self.filter,
            "sharpe_difference": self.sharpe_difference,
            "null": self.null,
            "sharpe_inference": self.inference,
            **self.info,
            "notes": self.notes,
            "seconds": self.seconds,
            "files": self.files,
        }

    def run_returns(self) -> dict[str, np.ndarray]:
        """Daily returns of the unfiltered and the filtered run."""
        return {"unfiltered": self.unfiltered.returns, "filtered": self.filtered.returns}

    def deflate(self, inference: dict[str, Any], names: dict[str, str], trials: str) -> None:
        """Take this report's PSR and DSR from a :func:`sharpe_inference` of several runs.

        ``names`` maps each run of this report to its name in ``inference``;
        ``trials`` says what the ``N`` trials were.
        """
        shared = {k: v for k, v in inference.items() if k not in ("psr", "dsr")}
        own = {run: (inference["psr"][name], inference["dsr"][name]) for run, name in names.items()}
        self.inference = {
            **shared,
            "trials": trials,
            "psr": {run: psr for run, (psr, _) in own.items()},
            "dsr": {run: dsr for run, (_, dsr) in own.items()},
        }
        for run, (psr, dsr) in own.items():
            self.metrics[run]["psr"] = psr
            self.metrics[run]["dsr"] = dsr

    def daily(self) -> pl.DataFrame:
        """Per day: return, equity, drawdown, turnover, costs and exposure of each run."""
        columns: dict[str, Any] = {"date": pl.Series(self.dates).cast(pl.Date)}
        runs = {"unfiltered": self.unfiltered.returns, "filtered": self.filtered.returns}
        if self.benchmark is not None:
            runs[MARKET_BENCHMARK] = self.benchmark
        for name, returns in runs.items():
            equity = np.cumprod(1.0 + returns)
            columns[f"{name}_return"] = returns
            columns[f"{name}_equity"] = equity
            columns[f"{name}_drawdown"] = equity / np.maximum.accumulate(
                np.maximum(equity, 1.0)) - 1.0  # fmt: skip
        for name, run in (("unfiltered", self.unfiltered), ("filtered", self.filtered)):
            columns[f"{name}_turnover"] = run.turnover
            columns[f"{name}_costs"] = run.costs
            columns[f"{name}_gross_exposure"] = np.abs(run.weights).sum(axis=1)
        return pl.DataFrame(columns)


def run_backtest(
    bars: pl.DataFrame,
    confidence: pl.DataFrame,
    settings: BacktestSettings | None = None,
    *,
    source: str = "predictions",
    progress: BacktestProgress | None = None,
) -> BacktestReport:
    """Backtest ``settings.strategy`` unfiltered and filtered by ``confidence``.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars of every ticker in ``confidence`` (and ``SPY`` for the
        benchmark statistics, if available), with history before the first
        prediction so the signals are warmed up.
    confidence : polars.DataFrame
        From :func:`engine.backtest.meta_labeling.load_out_of_sample_confidence`.
    settings : BacktestSettings, optional
    source : str
        Named in the report.
    progress : callable, optional
        Called with the name of each stage.

    Returns
    -------
    BacktestReport
    """
    started = time.perf_counter()
    settings = settings or BacktestSettings()
    say = progress or (lambda stage: None)
    if confidence.height == 0:
        raise ValueError(f"{source} holds no out-of-sample confidence for {settings.pattern_head}")
    tickers = sorted(confidence.get_column("ticker").unique().to_list())
    stored = set(bars.get_column("ticker").unique().to_list())
    lacking = [t for t in tickers if t not in stored]
    if lacking:
        raise ValueError(f"{source} scores tickers with no bars in the data directory: {lacking}")
    start = confidence.get_column("date").min()
    end = confidence.get_column("date").max()
    if start == end:
        raise ValueError(
            f"{source} covers a single day ({start}); a backtest needs predictions on at "
            "least 2 trading days"
        )

    say("signals")
    traded_bars = bars.filter(pl.col("ticker").is_in(tickers))
    signals = compute_signals(traded_bars, settings.strategy, long_only=settings.long_only)
    signals = signal_outcomes(traded_bars, signals, settings.horizon)
    signals = meta_label(signals, confidence, settings.threshold)
    signals = signals.filter(pl.col("date").is_between(start, end))

    say("simulation")
    grid = PriceGrid.of(bars, tickers, start, end)
    missing = missing_inside_span(traded_bars, tickers, grid.dates)

    signal = hold_through_missing_bars(grid.signal_array(signals, "signal"), missing)
    filtered_signal = hold_through_missing_bars(
        grid.signal_array(signals, "filtered_signal"), missing
    )
    confidence_grid = hold_through_missing_bars(grid.value_array(signals, "confidence"), missing)
    unfiltered = simulate(grid.open, grid.close, signal, settings)
    filtered = simulate(grid.open, grid.close, filtered_signal, settings)

    say("metrics")
    returns = {"unfiltered": unfiltered.returns, "filtered": filtered.returns}
    inference = sharpe_inference(returns, settings.trials)
    benchmark = benchmark_returns(bars, grid.dates)
    metrics = {
        "unfiltered": unfiltered.metrics(grid.dates, benchmark),
        "filtered": filtered.metrics(grid.dates, benchmark),
    }
    if benchmark is not None:
        metrics[MARKET_BENCHMARK] = summarize(benchmark, grid.dates, benchmark=None)
        metrics[MARKET_BENCHMARK].update(psr=probabilistic_sharpe(benchmark), dsr=None)
    for name, values in (("unfiltered", signal), ("filtered", filtered_signal)):
        metrics[name]["held_through_missing_bars"] = int((missing & (values != 0)).sum())
    active = signals.filter(pl.col("signal") != 0)
    candidates = active.filter(pl.col("confidence").is_not_null())
    scored = candidates.filter(pl.col("outcome").is_not_null())
    scores = filter_scores(
        scored.get_column("taken").to_numpy(), scored.get_column("outcome").to_numpy() == 1
    )
    scores.update(
        signals=int(active.height),
        signals_without_confidence=int(active.height - candidates.height),
        signals_without_outcome=int(candidates.height - scored.height),
        taken=int(candidates.get_column("taken").sum()),
        take_rate=float(candidates.get_column("taken").mean()) if candidates.height else None,
    )
    diff, low, high = sharpe_difference(
        filtered.returns, unfiltered.returns, n_boot=settings.n_boot, seed=settings.seed
    )
    difference = {"estimate": diff, "ci_low": low, "ci_high": high, "level": 0.95}
    say("shifted-confidence null")
    null = shifted_filter_null(
        grid, signal, confidence_grid, settings, metrics["filtered"]["sharpe"],
    )  # fmt: skip

    notes = []
    if scores["signals_without_confidence"]:
        notes.append(
            f"{scores['signals_without_confidence']} signals have no out-of-sample confidence "
            "(no prediction for that ticker and day): the filtered strategy stays flat there"
        )
    if missing.any():
        notes.append(
            f"{int(missing.sum())} (ticker, day)s inside a ticker's trading span have no bar: "
            "the last signal and confidence were held there instead of exiting and re-entering "
            f"({metrics['unfiltered']['held_through_missing_bars']} held with a position "
            f"unfiltered, {metrics['filtered']['held_through_missing_bars']} filtered)"
        )
    if benchmark is None:
        notes.append(f"no {MARKET_BENCHMARK} bars: beta and information ratio are not reported")
    report = BacktestReport(
        settings=settings,
        source=source,
        tickers=tickers,
        dates=grid.dates,
        benchmark=benchmark,
        unfiltered=unfiltered,
        filtered=filtered,
        metrics=metrics,
        filter=scores,
        sharpe_difference=difference,
        null=null,
        signals=signals,
        notes=notes,
    )
    trials = "declared" if settings.trials is not None else "the unfiltered and filtered runs"
    report.deflate(inference, {run: run for run in RUNS}, trials)
    report.seconds = time.perf_counter() - started
    return report


def deflate_together(
    reports: Sequence[BacktestReport], trials: str, n_trials: int | None = None
) -> dict[str, Any]:
    """Deflate the runs of several backtests as one selection; update each report.

    ``N`` is ``n_trials`` (default: every unfiltered and filtered run of
    ``reports``) and ``V`` comes from all of them
    (:func:`engine.backtest.inference.sharpe_inference`); each report's
    ``inference`` and its runs' ``psr`` and ``dsr`` metrics are replaced.

    Parameters
    ----------
    reports : sequence of BacktestReport
    trials : str
        What the ``N`` trials were, for the reports' one line.
    n_trials : int, optional

    Returns
    -------
    dict
        The shared inference, its ``psr`` and ``dsr`` keyed ``"<index>/<run>"``.
    """
    runs = {f"{i}/{run}": r for i, report in enumerate(reports)
            for run, r in report.run_returns().items()}  # fmt: skip
    inference = sharpe_inference(runs, n_trials)
    for i, report in enumerate(reports):
        report.deflate(inference, {run: f"{i}/{run}" for run in RUNS}, trials)
    return inference
