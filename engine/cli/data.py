"""``engine data import|demo|list``: the OHLCV bars in the data directory."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    WideOption,
    bar_store,
    overwrite_option,
    seed_option,
)
from engine.cli.output import call_or_exit, print_json, stdout_console
from engine.data.bars import OHLC_TOLERANCE
from engine.data.importer import import_bars, import_demo

__all__ = ["OnBadRows", "demo_command", "import_command", "list_command"]

OverwriteOption = overwrite_option("Replace tickers that are already stored.")
SeedOption = seed_option("Seed of the synthetic tickers.")


class OnBadRows(StrEnum):
    """What ``engine data import`` does with rows that break a rule."""

    error = "error"
    drop = "drop"
    repair = "repair"


def import_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A directory of per-ticker files (AAPL.csv, MSFT.parquet) or one long "
            "CSV/Parquet file with a ticker column.",
            show_default=False,
        ),
    ],
    on_bad_rows: Annotated[
        OnBadRows,
        typer.Option(
            "--on-bad-rows",
            help="error: refuse the import on any bad row; drop: drop bad rows, count them "
            "and save them to <data-dir>/rejected/<TICKER>.csv; repair: keep rows whose only "
            "fault is a high or low that does not contain open and close, widen high and low "
            "to contain them, and save the originals to <data-dir>/repaired/<TICKER>.csv "
            "(other bad rows are still refused).",
        ),
    ] = OnBadRows.error,
    date_format: Annotated[
        str | None,
        typer.Option(
            "--date-format",
            show_default=False,
            help="strftime pattern of the dates, e.g. %m/%d/%Y (default: ISO YYYY-MM-DD).",
        ),
    ] = None,
    ohlc_tolerance: Annotated[
        float,
        typer.Option(
            "--ohlc-tolerance",
            min=0.0,
            max=0.5,
            help="Relative tolerance of the high/low/open/close order: float noise within it "
            "is accepted and the prices are stored as given.",
        ),
    ] = OHLC_TOLERANCE,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import OHLCV bars into the data directory (validated; atomic writes)."""
    report = call_or_exit(
        import_bars,
        path,
        bar_store(data_dir),
        on_bad_rows=on_bad_rows.value,
        overwrite=overwrite,
        tolerance=ohlc_tolerance,
        date_format=date_format,
    )
    if as_json:
        print_json(report.to_dict())
    else:
        typer.echo(report.summary())


def demo_command(
    seed: SeedOption = 7,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the embedded demo universe (real SPY/QQQ/VIX + seeded synthetic tickers)."""
    report = call_or_exit(import_demo, bar_store(data_dir), seed=seed, overwrite=overwrite)
    if as_json:
        print_json({**report.to_dict(), "seed": seed})
    else:
        typer.echo(f"demo universe (seed {seed}): {report.summary()}")


def list_command(
    data_dir: DataDirOption = None, wide: WideOption = False, as_json: JsonOption = False
) -> None:
    """List the stored tickers: dates, rows, synthetic flag, role and source."""
    store = bar_store(data_dir)
    rows = call_or_exit(store.listing)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(
            f"no bars in {store.data_dir}; run `engine data demo` or `engine data import PATH`"
        )
        return
    # Sources are long and shared by many tickers: the table shows a number,
    # and each source is written once under it (in full in the table with --wide).
    sources = list(dict.fromkeys(str(r["source"]) for r in rows))
    table = Table(title=f"bars in {store.data_dir}", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (
        ("ticker", "left"),
        ("first date", "left"),
        ("last date", "left"),
        ("rows", "right"),
        ("synthetic", "left"),
        ("role", "left"),
        ("source", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "role")
    for r in rows:
        source = str(r["source"])
        table.add_row(
            r["ticker"],
            str(r["first_date"]),
            str(r["last_date"]),
            str(r["rows"]),
            "yes" if r["synthetic"] else "no",
            str(r["role"]).replace("_", " "),
            source if wide else f"[{sources.index(source) + 1}]",
        )
    console = Console(highlight=False, width=400) if wide else stdout_console()
    console.print(table)
    if not wide:
        for number, source in enumerate(sources, start=1):
            console.print(f"[{number}] {source}", markup=False)
