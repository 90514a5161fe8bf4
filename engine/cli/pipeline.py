"""``engine pipeline``: every stage from demo data to backtests, in one run directory."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from engine.cli.options import (
    DataDirOption,
    DeterministicOption,
    JsonOption,
    MarketOption,
    MinTrainSequencesOption,
    NoTrackOption,
    PricesOption,
    SectorMapOption,
    TrackingUriOption,
    bar_inputs,
    bar_store,
    out_option,
    overwrite_option,
    resume_option,
    seed_option,
    tracking_from,
)
from engine.cli.output import call_or_exit, error_console, format_or_dash, print_json, wide_console
from engine.cli.progress import pipeline_progress

__all__ = ["pipeline_command"]

OutOption = out_option("Output directory (default <data-dir>/runs/pipeline-<timestamp>).")
OverwriteOption = overwrite_option("Replace the files of an earlier pipeline in --out.")
SeedOption = seed_option("Training, bootstrap, null seed.")


def pipeline_command(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Smoke run of every stage: 6 tickers from 2011, 2 epochs "
            "(a few minutes on 2 cores; not meant to show skill).",
        ),
    ] = False,
    out: OutOption = None,
    overwrite: OverwriteOption = False,
    resume: resume_option(
        "Continue an interrupted pipeline in --out: a finished training run there "
        "with the same settings and bars is reused, an interrupted one continued; the "
        "other stages run again."
    ) = False,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            show_default=False,
            help="Most epochs per window (default 25; --quick 2).",
        ),
    ] = None,
    seed: SeedOption = 0,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            min=1,
            help="Train the model with seeds --seed to --seed + N - 1, backtest each, and "
            "state the filter's verdict only where every seed agrees.",
        ),
    ] = 1,
    deterministic: DeterministicOption = False,
    min_train_sequences: MinTrainSequencesOption = None,
    prices: PricesOption = None,
    market: MarketOption = None,
    sector_map: SectorMapOption = None,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run everything: demo data, features, targets, walk-forward training, ONNX, backtests."""
    from engine.jobs.pipeline import FULL, QUICK, run_pipeline
    from engine.reports.pipeline import identical_books

    settings = QUICK if quick else FULL
    inputs = call_or_exit(bar_inputs, prices, market, sector_map)
    if min_train_sequences is None:  # 2000; a --quick smoke run keeps every window
        min_train_sequences = settings.min_train_sequences
    settings = call_or_exit(replace, settings, seed=seed, epochs=epochs or settings.epochs,
                            deterministic=deterministic, seeds=seeds, prices=inputs.prices,
                            market=inputs.market, sector_map=dict(inputs.sector_map),
                            min_train_sequences=min_train_sequences)  # fmt: skip
    store = bar_store(data_dir)
    if out is None:
        out = store.data_dir / "runs" / f"pipeline-{datetime.now():%Y%m%d-%H%M%S}"
    err = error_console()
    try:
        report = call_or_exit(run_pipeline, store, out, settings, overwrite=overwrite,
                              resume=resume, progress=pipeline_progress(err),
                              tracking=tracking_from(store.data_dir, tracking_uri,
                                                     no_track))  # fmt: skip
    except KeyboardInterrupt:
        err.print(f"interrupted: finished stages' files are kept in {out}; --resume --out "
                  f"{out} continues", style="bold red", markup=False)  # fmt: skip
        raise typer.Exit(code=130) from None
    if as_json:
        print_json(report.to_dict())
        return
    console = wide_console()
    table = Table(title="pipeline", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("result", overflow="fold")
    table.add_column("seconds", justify="right", no_wrap=True)
    for row in report.summary_rows():
        table.add_row(*row)
    console.print(table)
    bt = Table(title="backtests (out-of-sample; Sharpe annualised)", box=box.SIMPLE_HEAD,
               pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))  # fmt: skip
    for name in ("strategy", "Sharpe\nunfiltered", "Sharpe\nfiltered", "difference\n[95 % CI]",
                 "null p", "take\nrate", "precision\n(base)"):  # fmt: skip
        bt.add_column(name, justify="left" if name == "strategy" else "right",
                      no_wrap=name == "strategy", overflow="fold")  # fmt: skip
    heads: dict[str, list[str]] = {}
    for strategy, row in report.stages["backtest"]["strategies"].items():
        heads.setdefault(row["head"], []).append(strategy)
        d = row["sharpe_difference"]
        diff = format_or_dash(d["estimate"], "+.3f")
        if d["ci_low"] is not None:
            diff += f"\n[{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
        bt.add_row(
            strategy,
            format_or_dash(row["sharpe_unfiltered"], ".3f"),
            format_or_dash(row["sharpe_filtered"], ".3f"),
            diff,
            format_or_dash(row["null_p_value"], ".3f"),
            format_or_dash(row["take_rate"], ".1%"),
            f"{format_or_dash(row['precision'], '.3f')}\n"
            f"({format_or_dash(row['base_rate'], '.3f')})",
        )
    console.print(bt)
    filters = "; ".join(f"{' and '.join(names)} by {head}" for head, names in heads.items())
    console.print(f"filtered by the head's confidence: {filters}", markup=False)
    for line in identical_books(report.backtests):
        console.print(line, style="yellow", markup=False)
    _print_inference(report.stages["backtest"], console)
    console.print(f"report: {report.report}", markup=False)
    if settings.smoke:
        console.print("smoke run (--quick): it shows that every stage runs; its figures are "
                      "not evidence of skill", style="yellow", markup=False)  # fmt: skip


def _print_inference(stage: dict[str, Any], console: Console) -> None:
    """PSR and DSR of each strategy's runs with N and V; the filter across seeds, if several."""
    from engine.backtest.inference import inference_line
    from engine.reports.backtest import robustness_lines

    table = Table(title="Sharpe inference (PSR: true Sharpe > 0; DSR: deflated)",
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    for name in ("strategy", "PSR unfiltered", "PSR filtered", "DSR unfiltered", "DSR filtered"):
        table.add_column(name, justify="left" if name == "strategy" else "right", no_wrap=True)
    for strategy, row in stage["strategies"].items():
        table.add_row(strategy, *(format_or_dash(row[key], ".3f") for key in (
            "psr_unfiltered", "psr_filtered", "dsr_unfiltered", "dsr_filtered")))  # fmt: skip
    console.print(table)
    console.print(inference_line(stage["sharpe_inference"]), markup=False)
    seeds = stage.get("seeds")
    if not seeds:
        return
    across = Table(title=f"the filter across {len(seeds['seeds'])} seeds (min / median / max)",
                   box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    for name in ("strategy", "filtered Sharpe", "difference", "verdict"):
        across.add_column(name, justify="right" if name in ("filtered Sharpe", "difference")
                          else "left", no_wrap=name != "verdict")  # fmt: skip
    for strategy, r in seeds["strategies"].items():
        spread = r["spread"]
        across.add_row(
            strategy,
            " / ".join(format_or_dash(spread["sharpe_filtered"][k], ".2f") for k in
                       ("min", "median", "max")),
            " / ".join(format_or_dash(spread["difference"][k], "+.2f") for k in
                       ("min", "median", "max")),
            r["verdict"],
        )  # fmt: skip
    console.print(across)
    first = next(iter(seeds["strategies"].values()))
    console.print(robustness_lines(first, paths=False)[-1], markup=False)  # the rule
