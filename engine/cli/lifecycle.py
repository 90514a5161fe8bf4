"""``engine drift`` and ``engine retrain``: watch a served model, and replace it when earned.

``engine drift`` exits 0 when the ``--fail-on`` level is not reached and 3
when it is (1 and 2 stay for errors), so a scheduler can act on it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    NoTrackOption,
    TrackingUriOption,
    as_date,
    bar_store,
    end_option,
    n_boot_option,
    out_option,
    report_option,
    seed_option,
    start_option,
    tracking_from,
)
from engine.cli.output import (
    add_columns,
    call_or_exit,
    error_console,
    format_or_dash,
    print_json,
    stdout_console,
)

__all__ = ["FailOnChoice", "WhenChoice", "drift_command", "retrain_command"]

ModelRefOption = Annotated[
    str,
    typer.Option(
        "--model",
        show_default=False,
        help="models:/NAME@ALIAS, models:/NAME/VERSION, an ONNX file, or an artifact directory "
        "with its exported model.onnx.",
    ),
]
DriftStartOption = start_option("First day of the window (default: --months before --end).")
DriftEndOption = end_option("Last day of the window (default: the latest stored bar).")
DriftReportOption = report_option("Write report.html, drift.json and the histograms here.")
DriftSeedOption = seed_option("Bootstrap seed of the AUC intervals.")
DriftNBootOption = n_boot_option("Bootstrap replicates of the AUC intervals.")
RetrainOutOption = out_option("Working directory (default <data-dir>/runs/retrain-<timestamp>).")
RetrainSeedOption = seed_option("Bootstrap seed of the champion/challenger comparison.")
RetrainNBootOption = n_boot_option("Paired bootstrap replicates.")


class FailOnChoice(StrEnum):
    """The drift level at which ``engine drift`` exits 3."""

    warn = "warn"
    drift = "drift"


class WhenChoice(StrEnum):
    """When ``engine retrain`` trains a challenger."""

    drift = "drift"
    age = "age"
    always = "always"


def drift_command(
    model: ModelRefOption,
    start: DriftStartOption = None,
    end: DriftEndOption = None,
    tickers: Annotated[
        str | None,
        typer.Option(
            "--tickers",
            show_default=False,
            help="'all', a named list or a comma list (default: the model's training tickers).",
        ),
    ] = None,
    months: Annotated[
        int, typer.Option("--months", min=1, help="Window length when --start is not given.")
    ] = 6,
    fail_on: Annotated[
        FailOnChoice | None,
        typer.Option(
            "--fail-on",
            show_default=False,
            help="Exit 3 when the worst row reaches this level (warn: PSI >= 0.1, "
            "drift: PSI >= 0.25).",
        ),
    ] = None,
    report: DriftReportOption = None,
    n_boot: DriftNBootOption = 1000,
    seed: DriftSeedOption = 0,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """PSI of every feature and head of a window against the model's training reference."""
    from engine.jobs.drift import run_drift_job

    store = bar_store(data_dir)
    tracking = tracking_from(store.data_dir, tracking_uri, no_track)
    registry = tracking_from(store.data_dir, tracking_uri).resolve().uri
    result = call_or_exit(
        run_drift_job,
        store,
        model,
        start=as_date(start),
        end=as_date(end),
        tickers=tickers,
        months=months,
        fail_on=fail_on.value if fail_on else None,
        report_dir=report,
        n_boot=n_boot,
        seed=seed,
        registry_uri=registry,
        tracking=tracking,
    )
    summary = result.to_dict()
    if as_json:
        print_json(summary)
    else:
        _print_drift(summary)
    if result.exit_code:
        raise typer.Exit(code=result.exit_code)


def _print_drift(s: dict[str, Any]) -> None:
    console = stdout_console()
    model = s["model"]
    console.print(
        f"{model['source']} ({model['model_id']}): {s['n_windows']:,} windows of "
        f"{', '.join(s['tickers'])}, {s['start']} to {s['end']}; status {s['status']}",
        markup=False,
    )
    table = Table(title="PSI against the training reference (decile bins)", box=box.SIMPLE_HEAD)
    add_columns(
        table,
        [
            ("kind", "left"),
            ("name", "left"),
            ("PSI", "right"),
            ("status", "left"),
            ("rows", "right"),
            ("floor", "right"),
        ],
        no_wrap=True,
    )
    for kind, rows in (("feature", s["features"]), ("head", s["heads"])):
        for r in rows:
            style = {"warn": "yellow", "drift": "bold red"}.get(r["status"])
            table.add_row(
                kind,
                r["name"],
                f"{r['psi']:.3f}",
                r["status"],
                f"{r['n']:,}",
                f"{r['noise_floor']:.3f}",
                style=style,
            )
    console.print(table)
    auc = Table(title="AUC on out-of-sample labels matured by --end", box=box.SIMPLE_HEAD)
    add_columns(
        auc,
        [
            ("head", "left"),
            ("labelled", "right"),
            ("AUC", "right"),
            ("95 % interval", "right"),
            ("validation", "right"),
        ],
        no_wrap=True,
    )
    for r in s["auc"]:
        interval = (
            f"[{format_or_dash(r['auc_ci_low'], '.3f')}, {format_or_dash(r['auc_ci_high'], '.3f')}]"
        )
        auc.add_row(
            r["pattern"],
            f"{r['labelled']:,}",
            format_or_dash(r["auc"], ".3f"),
            interval,
            format_or_dash(r["validation_auc"], ".3f"),
        )
    console.print(auc)
    for r in s["auc"]:
        if r.get("auc_note"):
            console.print(f"note: {r['pattern']}: {r['auc_note']}", markup=False)
    for note in s.get("notes", []):
        console.print(f"note: {note}", markup=False)
    console.print(
        "floor: the PSI a window of this size reaches by chance (99th percentile); "
        "insufficient when it is 0.05 or more",
        markup=False,
    )
    if s["synthetic_tickers"]:
        console.print(f"synthetic tickers: {', '.join(s['synthetic_tickers'])}", markup=False)
    if s["report"]:
        console.print(f"wrote {s['report']}", markup=False)
    if s["failed"]:
        error_console().print(
            f"drift status {s['status']} reaches --fail-on {s['fail_on']}: exit {s['exit_code']}",
            style="bold red",
            markup=False,
        )


def retrain_command(
    model: Annotated[
        str,
        typer.Option("--model", help="The champion: models:/NAME@champion or models:/NAME/V."),
    ] = "models:/pattern-lstm@champion",
    when: Annotated[
        WhenChoice,
        typer.Option("--when", help="Retrain on drift (PSI >= 0.25), age, or always."),
    ] = WhenChoice.drift,
    max_age_days: Annotated[
        int,
        typer.Option("--max-age-days", min=0, help="Age limit from the last training label."),
    ] = 30,
    eval_months: Annotated[
        int,
        typer.Option("--eval-months", min=1, help="Months of matured labels to evaluate on."),
    ] = 6,
    refit_after_promotion: Annotated[
        bool,
        typer.Option(
            "--refit-after-promotion",
            help="After a promotion, also register a copy trained through the latest label "
            "(no alias moves).",
        ),
    ] = False,
    out: RetrainOutOption = None,
    n_boot: RetrainNBootOption = 1000,
    seed: RetrainSeedOption = 0,
    tracking_uri: TrackingUriOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Champion/challenger: train on the newest window, compare, promote only when earned."""
    from engine.cli.progress import train_progress
    from engine.jobs.retrain import run_retrain_job

    store = bar_store(data_dir)
    progress = train_progress(error_console())
    report = call_or_exit(
        run_retrain_job,
        store,
        model,
        tracking=tracking_from(store.data_dir, tracking_uri),
        when=when.value,
        max_age_days=max_age_days,
        eval_months=eval_months,
        refit_after_promotion=refit_after_promotion,
        out=out,
        n_boot=n_boot,
        seed=seed,
        progress=progress,
    )
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    _print_retrain(summary)


def _print_retrain(s: dict[str, Any]) -> None:
    console = stdout_console()
    champ = s["champion"]
    console.print(
        f"champion {champ['uri']} (v{champ['version']}, {champ['model_id']}, "
        f"trained to {champ['train_end']}); latest bar {s['latest_bar']}",
        markup=False,
    )
    for line in s["why"]:
        console.print(f"  {line}", markup=False)
    challenge = s.get("challenge") or {}
    comparison = challenge.get("comparison")
    if challenge.get("eval_window"):
        w = challenge["eval_window"]
        console.print(
            f"evaluation window {w[0]} to {w[1]} ({challenge.get('eval_rows', 0):,} windows)",
            markup=False,
        )
    if comparison:
        table = Table(
            title="AUC on the evaluation window (paired date-block bootstrap)", box=box.SIMPLE_HEAD
        )
        add_columns(
            table,
            [
                ("head", "left"),
                ("n", "right"),
                ("champ", "right"),
                ("chall", "right"),
                ("diff", "right"),
                ("95 % CI", "right"),
            ],
            no_wrap=True,
        )
        for h in comparison["heads"]:
            table.add_row(
                h["pattern"],
                f"{h['labelled']:,}",
                format_or_dash(h["champion_auc"], ".3f"),
                format_or_dash(h["challenger_auc"], ".3f"),
                format_or_dash(h["difference"], "+.3f"),
                f"[{format_or_dash(h['ci_low'], '+.3f')}, {format_or_dash(h['ci_high'], '+.3f')}]",
            )
        p = comparison["pooled"]
        table.add_row(
            "pooled (mean)",
            "",
            "",
            "",
            format_or_dash(p["difference"], "+.3f"),
            f"[{format_or_dash(p['ci_low'], '+.3f')}, {format_or_dash(p['ci_high'], '+.3f')}]",
            style="bold",
        )
        console.print(table)
    style = "bold green" if s["outcome"] == "promoted" else "bold"
    console.print(f"{s['outcome']}: {s['reason']}", style=style, markup=False)
    if s.get("challenger"):
        console.print(f"challenger registered as {s['challenger']['uri']}", markup=False)
    if s.get("refit"):
        console.print(f"refit: {s['refit']}", markup=False)
    if s.get("run_id"):
        console.print(f"evidence: MLflow run {s['run_id']}; {s['out']}/decision.json", markup=False)
