"""``engine features`` and ``engine targets``: the model's inputs and labels from stored bars."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    MarketOption,
    PricesOption,
    SectorMapOption,
    TickersOption,
    as_date,
    bar_inputs,
    bar_store,
    end_option,
    out_option,
    start_option,
)
from engine.cli.output import (
    add_columns,
    call_or_exit,
    format_or_dash,
    print_json,
    stdout_console,
)
from engine.data.prices import PriceBasis
from engine.jobs.features import run_feature_job
from engine.jobs.targets import run_target_job
from engine.labels.targets import DEFAULT_HORIZON

__all__ = ["features_command", "targets_command"]

FeaturesStartOption = start_option(
    "First date kept (history before it still warms up the windows)."
)
FeaturesEndOption = end_option("Last date kept.")
FeaturesOutOption = out_option("Write the features to this Parquet file (atomically).")
TargetsStartOption = start_option(
    "First event date kept (history before it still warms up the windows)."
)
TargetsEndOption = end_option(
    "Last event date kept (later bars still resolve its outcome; see t1)."
)
TargetsOutOption = out_option("Write the labels to this Parquet file (atomically).")


def features_command(
    tickers: TickersOption = "all",
    start: FeaturesStartOption = None,
    end: FeaturesEndOption = None,
    out: FeaturesOutOption = None,
    features: Annotated[
        str | None,
        typer.Option(
            "--features", help="Comma list of features (default: all 17).", show_default=False
        ),
    ] = None,
    prices: PricesOption = None,
    market: MarketOption = None,
    sector_map: SectorMapOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the 17 causal pattern features for stored tickers."""
    names = [f.strip() for f in features.split(",") if f.strip()] if features else None
    inputs = call_or_exit(bar_inputs, prices, market, sector_map)
    with Progress(
        TextColumn("features"), BarColumn(), MofNCompleteColumn(), TextColumn("tickers"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True, disable=as_json,
    ) as bar:  # fmt: skip
        task = bar.add_task("features", total=None)
        report = call_or_exit(
            run_feature_job,
            bar_store(data_dir),
            tickers,
            start=as_date(start),
            end=as_date(end),
            out=out,
            features=names,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            inputs=inputs,
        )
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    console.print(
        f"{summary['rows']} rows x {len(summary['features'])} features for "
        f"{len(summary['tickers'])} tickers, {summary['start']} to {summary['end']}, "
        f"in {summary['seconds']:.2f} s"
    )
    console.print(
        f"vix_term_structure variant: {summary['vix_variant']} ({summary['vix_variant_reason']})",
        markup=False,
    )
    console.print(
        f"{PriceBasis.from_dict(summary['prices']).describe()}; market {summary['market']}",
        markup=False,
    )
    if summary["synthetic_tickers"]:
        console.print(f"synthetic tickers: {', '.join(summary['synthetic_tickers'])}")
    table = Table(title="warm-up rows (leading rows with a null feature)")
    table.add_column("ticker")
    table.add_column("warm-up rows", justify="right")
    for ticker, rows in summary["warm_up_rows"].items():
        table.add_row(ticker, str(rows))
    console.print(table)
    if report.out:
        console.print(f"wrote {report.out} and {report.manifest_path}", markup=False)


def targets_command(
    tickers: TickersOption = "all",
    start: TargetsStartOption = None,
    end: TargetsEndOption = None,
    out: TargetsOutOption = None,
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, help="Outcome horizon in trading days (rows).")
    ] = DEFAULT_HORIZON,
    prices: PricesOption = None,
    market: MarketOption = None,
    sector_map: SectorMapOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the pattern-validation targets (events and 5-day outcome labels)."""
    inputs = call_or_exit(bar_inputs, prices, market, sector_map)
    report = call_or_exit(
        run_target_job,
        bar_store(data_dir),
        tickers,
        start=as_date(start),
        end=as_date(end),
        out=out,
        horizon=horizon,
        inputs=inputs,
    )
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    console.print(
        f"{summary['rows']} rows for {len(summary['tickers'])} tickers, "
        f"{summary['start']} to {summary['end']}, horizon {summary['horizon']} days, "
        f"in {summary['seconds']:.2f} s"
    )
    console.print(PriceBasis.from_dict(summary["prices"]).describe(), markup=False)
    if summary["synthetic_tickers"]:
        console.print(f"synthetic tickers: {', '.join(summary['synthetic_tickers'])}")
    table = Table(title="pattern events and base rates")
    add_columns(
        table,
        [("pattern", "left"), ("events", "right"), ("labelled", "right"),
         ("positives", "right"), ("base rate", "right")],
        no_wrap=True,
    )  # fmt: skip
    for row in summary["patterns"]:
        table.add_row(
            row["pattern"], str(row["events"]), str(row["labelled"]), str(row["positives"]),
            format_or_dash(row["base_rate"], ".4f"),
        )  # fmt: skip
    console.print(table)
    if report.out:
        console.print(f"wrote {report.out}", markup=False)
