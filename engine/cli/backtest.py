"""``engine backtest``: a base strategy with and without the model's out-of-sample filter."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from engine.cli.options import (
    JsonOption,
    NoTrackOption,
    TrackingUriOption,
    n_boot_option,
    report_option,
    seed_option,
    tracking_from,
    training_data_dir_option,
)
from engine.cli.output import call_or_exit, print_json, wide_console

__all__ = ["FillChoice", "StrategyChoice", "backtest_command"]

SeedOption = seed_option("Bootstrap and null seed.")
NBootOption = n_boot_option("Bootstrap replicates (Sharpe difference).")
ReportOption = report_option(
    "Write report.html, equity/drawdown PNGs, metrics.json, daily.parquet "
    "and signals.parquet to this directory."
)
DataDirOption = training_data_dir_option("Data directory with the bars")


class StrategyChoice(StrEnum):
    """Base strategies ``engine backtest`` filters."""

    momentum = "momentum"
    mean_reversion = "mean_reversion"
    ma_cross = "ma_cross"


class FillChoice(StrEnum):
    """Where a decision taken at the close of t is filled on t+1."""

    open = "open"
    close = "close"


def backtest_command(
    predictions: Annotated[
        list[Path],
        typer.Option(
            "--predictions",
            show_default=False,
            help="predictions.parquet of a training run (out-of-sample only). Repeat it "
            "with the runs of other training seeds to see whether the filter's verdict "
            "holds across them.",
        ),
    ],
    strategy: Annotated[
        StrategyChoice,
        typer.Option(
            "--strategy",
            help="momentum: sign of the 20-day return; mean_reversion: "
            "Bollinger position beyond +/-1; ma_cross: 10/50-day moving averages.",
        ),
    ] = StrategyChoice.momentum,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="Take a signal when its head's confidence is at least this.",
        ),
    ] = 0.6,
    costs_bps: Annotated[
        float, typer.Option("--costs-bps", min=0.0, help="Costs in bps of traded notional.")
    ] = 5.0,
    slippage_bps: Annotated[
        float, typer.Option("--slippage-bps", min=0.0, help="Extra slippage in bps per fill.")
    ] = 0.0,
    fill: Annotated[
        FillChoice,
        typer.Option("--fill", help="Fill a close-of-t decision at t+1's open or close."),
    ] = FillChoice.open,
    long_only: Annotated[bool, typer.Option("--long-only", help="Drop short signals.")] = False,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            show_default=False,
            help="Pattern head that filters (default: momentum and ma_cross -> "
            "momentum_persistence, mean_reversion -> trend_exhaustion).",
        ),
    ] = None,
    n_null: Annotated[
        int,
        typer.Option("--n-null", min=0, help="Shifted-confidence filters in the null (0: none)."),
    ] = 200,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            show_default=False,
            help="Strategy/head/threshold variants you tried in all: the N of the deflated "
            "Sharpe ratio (default: the runs of this backtest).",
        ),
    ] = None,
    n_boot: NBootOption = 1000,
    seed: SeedOption = 0,
    report: ReportOption = None,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Backtest a base strategy with and without the model's out-of-sample filter."""
    from engine.jobs.backtest import BacktestSettings, run_backtest_files, run_backtest_job

    settings = call_or_exit(BacktestSettings, strategy=strategy.value, threshold=threshold,
                            costs_bps=costs_bps, slippage_bps=slippage_bps, fill=fill.value,
                            long_only=long_only, head=head, n_boot=n_boot, n_null=n_null,
                            seed=seed, trials=trials)  # fmt: skip
    tracking = tracking_from(data_dir, tracking_uri, no_track)
    if len(predictions) > 1:
        series = call_or_exit(run_backtest_files, predictions, settings, data_dir=data_dir,
                              report_dir=report, tracking=tracking)  # fmt: skip
        if as_json:
            print_json(series.to_dict())
            return
        _print_seed_backtests(series, wide_console())
        return
    result = call_or_exit(run_backtest_job, predictions[0], settings, data_dir=data_dir,
                          report_dir=report, tracking=tracking)  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    _print_backtest(result, wide_console())


def _print_backtest(report: Any, console: Console) -> None:
    """Print the settings line, the metrics table, the comparisons and the notes."""
    from engine.reports.backtest import comparison_lines

    s = report.settings
    console.print(
        f"{s.strategy} on {len(report.tickers)} tickers, {report.dates[0]} to {report.dates[-1]} "
        f"({report.dates.shape[0]:,} days); fill at the next {s.fill}, costs {s.costs_bps:g} bps "
        f"+ slippage {s.slippage_bps:g} bps; {'long only' if s.long_only else 'long/short'}; "
        "annualised with 252 days, zero risk-free rate",
        markup=False,
    )
    console.print(_backtest_table(report, "out-of-sample backtest"))
    for line in comparison_lines(report):
        console.print(line, markup=False)
    for note in report.notes:
        console.print(f"note: {note}", style="yellow", markup=False)
    if report.info.get("synthetic_tickers"):
        console.print(f"synthetic tickers: {len(report.info['synthetic_tickers'])} of "
                      f"{len(report.tickers)}", markup=False)  # fmt: skip
    if report.files:
        console.print(f"wrote {report.files[0]} (and {len(report.files) - 1} more files)",
                      markup=False)  # fmt: skip


def _backtest_table(report: Any, title: str) -> Table:
    """The metrics of the unfiltered and filtered strategy, one row per metric."""
    from engine.reports.backtest import metric_rows

    columns, rows = metric_rows(report)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for k, name in enumerate(columns):
        table.add_column(name, justify="left" if k == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _print_seed_backtests(series: Any, console: Console) -> None:
    """Print the per-file table, the spread, the verdict with its rule, and N and V."""
    from engine.backtest.inference import inference_line
    from engine.reports.backtest import robustness_lines, robustness_rows

    s = series.settings
    first = series.reports[0]
    console.print(
        f"{s.strategy} filtered by {s.pattern_head} on {len(series.reports)} prediction files; "
        f"fill at the next {s.fill}, costs {s.costs_bps:g} bps + slippage {s.slippage_bps:g} "
        f"bps; {'long only' if s.long_only else 'long/short'}; {first.dates[0]} to "
        f"{first.dates[-1]} in file 1; Sharpe annualised",
        markup=False,
    )
    columns, rows = robustness_rows(series.robustness)
    table = Table(title="filter across prediction files", box=box.SIMPLE_HEAD, pad_edge=False)
    for k, name in enumerate(columns):
        table.add_column(name, justify="left" if k in (0, len(columns) - 1) else "right",
                         no_wrap=True)  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in robustness_lines(series.robustness):
        console.print(line, markup=False)
    console.print(inference_line(series.inference), markup=False)
    for label, report in zip(series.labels, series.reports, strict=True):
        for note in report.notes:
            console.print(f"note (file {label}): {note}", style="yellow", markup=False)
    if series.files:
        console.print(f"wrote {series.files[0]} (and {len(series.files) - 1} more files)",
                      markup=False)  # fmt: skip
