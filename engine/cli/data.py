"""``engine data import|demo|list``: the OHLCV bars in the data directory."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    bar_store,
    overwrite_option,
    seed_option,
)
from engine.cli.output import call_or_exit, print_json, stdout_console
from engine.data.importer import import_bars, import_demo

__all__ = ["OnBadRows", "demo_command", "import_command", "list_command"]

OverwriteOption = overwrite_option("Replace tickers that are already stored.")
SeedOption = seed_option("Seed of the synthetic tickers.")


class OnBadRows(StrEnum):
    """What ``engine data import`` does with rows that break a rule."""

    error = "error"
    drop = "drop"


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
            "and save them to <data-dir>/rejected/<TICKER>.csv.",
        ),
    ] = OnBadRows.error,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import OHLCV bars into the data directory (validated; atomic writes)."""
    report = call_or_exit(
        import_bars, path, bar_store(data_dir), on_bad_rows=on_bad_rows.value, overwrite=overwrite
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


def list_command(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
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
    table = Table(title=f"bars in {store.data_dir}")
    for name, justify in (
        ("ticker", "left"),
        ("first date", "left"),
        ("last date", "left"),
        ("rows", "right"),
        ("synthetic", "left"),
        ("role", "left"),
        ("source", "left"),
    ):
        fold = name == "source"
        table.add_column(name, justify=justify, overflow="fold", no_wrap=not fold)
    for r in rows:
        table.add_row(
            r["ticker"],
            str(r["first_date"]),
            str(r["last_date"]),
            str(r["rows"]),
            "yes" if r["synthetic"] else "no",
            str(r["role"]),
            str(r["source"]),
        )
    stdout_console().print(table)
