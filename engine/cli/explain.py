"""``engine explain``: which features each head's out-of-sample skill rests on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from engine.cli.options import (
    JsonOption,
    n_boot_option,
    report_option,
    seed_option,
    training_data_dir_option,
)
from engine.cli.output import (
    call_or_exit,
    error_console,
    format_or_dash,
    print_json,
    stdout_console,
)

__all__ = ["explain_command"]

ExplainSeedOption = seed_option("Seed of the permutations and the bootstrap.")
ExplainNBootOption = n_boot_option("Paired date-block bootstrap replicates per interval.")
ExplainReportOption = report_option("Write report.html, a bar chart per head and importance.json.")
ExplainDataDirOption = training_data_dir_option("Bars the run was trained on")


def explain_command(
    model: Annotated[
        Path,
        typer.Option("--model", show_default=False,
                     help="A training run directory (LSTM, LightGBM or an ensemble)."),
    ],
    n_boot: ExplainNBootOption = 1000,
    seed: ExplainSeedOption = 0,
    data_dir: ExplainDataDirOption = None,
    report: ExplainReportOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Permutation importance per head on out-of-sample windows (LightGBM: gain and SHAP too)."""
    from engine.jobs.explain import run_explain_job

    err = error_console()

    def show(event: dict[str, Any]) -> None:
        err.print(f"{event['model_id']} ({event['index'] + 1}/{event['total']}): scoring "
                  "with each feature permuted", markup=False)  # fmt: skip

    result = call_or_exit(run_explain_job, model, n_boot=n_boot, seed=seed, data_dir=data_dir,
                          report_dir=report, progress=show)  # fmt: skip
    summary = result.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    console.print(
        f"{summary['model_kind']} run {summary['run']}: {summary['windows']} windows, "
        f"{summary['rows']:,} out-of-sample rows; the reloaded models reproduce the stored "
        f"predictions to {summary['reproduced_max_abs_diff']:.2g}",
        markup=False,
    )
    extra = {}
    for name, column in (("gain", "gain_share"), ("shap", "mean_abs_shap")):
        for r in summary[name] or []:
            extra[(r["pattern"], r["feature"], name)] = r[column]
    for pattern in summary["patterns"]:
        rows = [r for r in summary["permutation"] if r["pattern"] == pattern]
        if not rows:
            continue
        table = Table(title=f"{pattern}: AUC drop when a feature is permuted (adj. p: Holm)",
                      box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
        columns = ["feature", "AUC drop [95 % CI]", "adj. p"]
        if extra:
            columns += ["gain\nshare", "mean\n|SHAP|"]
        for c in columns:
            table.add_column(c, justify="left" if c == "feature" else "right")
        for r in rows:
            drop = f"{r['drop']:+.3f}"
            if r["ci_low"] is not None:
                drop += f" [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
            cells = [r["feature"], drop, format_or_dash(r["p_value_adj"], ".3f")]
            if extra:
                gain = extra.get((pattern, r["feature"], "gain"))
                shap = extra.get((pattern, r["feature"], "shap"))
                cells += [format_or_dash(gain, ".3f"), format_or_dash(shap, ".4f")]
            table.add_row(*cells)
        console.print(table)
    for note in summary["notes"]:
        console.print(f"note: {note}", markup=False)
    if summary["report"]:
        console.print(f"wrote {summary['report']}", markup=False)
