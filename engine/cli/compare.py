"""``engine compare`` and ``engine ensemble``: two runs side by side, or combined into one."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from engine.cli.options import (
    JsonOption,
    n_boot_option,
    out_option,
    overwrite_option,
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

__all__ = ["EnsembleMethod", "compare_command", "ensemble_command"]

CompareSeedOption = seed_option("Bootstrap seed.")
CompareNBootOption = n_boot_option("Paired date-block bootstrap replicates.")
CompareReportOption = report_option("Write report.html, its figures and comparison.json here.")
CompareDataDirOption = training_data_dir_option("Bars of the market benchmark, for the regimes")
EnsembleOutOption = out_option("Run directory of the ensemble (required).")
EnsembleOverwriteOption = overwrite_option("Replace an earlier ensemble in --out.")
EnsembleDataDirOption = training_data_dir_option("Bars the runs were trained on")
_LABELS = {"auc": "AUC", "brier": "Brier", "log_loss": "log loss"}


class EnsembleMethod(StrEnum):
    """How ``engine ensemble`` combines its members."""

    mean = "mean"
    stack = "stack"


def _ci(row: dict[str, Any], digits: int = 3) -> str:
    """The ``low, high`` interval of a difference row, or ``-``.

    Examples
    --------
    >>> _ci({"difference": 0.0123, "ci_low": -0.01, "ci_high": 0.031})
    '-0.010, +0.031'
    >>> _ci({"difference": 0.0123, "ci_low": None, "ci_high": None})
    '-'
    """
    if row.get("ci_low") is None:
        return "-"
    return f"{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}"


def _table(
    title: str, key: str, rows: list[dict[str, Any]], digits: int, *, with_n: bool = True
) -> Table:
    """One row per ``key``: n, A, B, A - B, its interval and the adjusted p (raw p: ``--json``)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column(key, no_wrap=True, overflow="ellipsis", max_width=22)
    names = ("A", "B", "A - B", "95 % CI", "adj. p")
    for name in ("n", *names) if with_n else names:
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        diff = "-" if r["difference"] is None else f"{r['difference']:+.{digits}f}"
        cells = [format_or_dash(r["a"], f".{digits}f"), format_or_dash(r["b"], f".{digits}f"),
                 diff, _ci(r, digits), format_or_dash(r["p_value_adj"], ".3f")]  # fmt: skip
        table.add_row(str(r[key]), *([f"{r['n']:,}"] if with_n else []), *cells)
    return table


def compare_command(
    run_a: Annotated[Path, typer.Argument(help="Run A: a run directory, model artifact or "
                                               "predictions file.", show_default=False)],
    run_b: Annotated[Path, typer.Argument(help="Run B, compared with A on their common "
                                               "(ticker, date) rows.", show_default=False)],
    n_boot: CompareNBootOption = 1000,
    seed: CompareSeedOption = 0,
    data_dir: CompareDataDirOption = None,
    report: CompareReportOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Compare two runs per head: AUC, Brier, log loss, paired bootstrap differences, regimes."""
    from engine.jobs.compare import run_compare_job

    result = call_or_exit(run_compare_job, run_a, run_b, n_boot=n_boot, seed=seed,
                          data_dir=data_dir, report_dir=report)  # fmt: skip
    summary = result.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    console.print(
        f"A = {summary['a']}\nB = {summary['b']}\n{summary['common_rows']:,} common (ticker, "
        f"date) rows, {summary['tickers']} tickers, {summary['first_date']} to "
        f"{summary['last_date']}\nintervals: paired stationary bootstrap of whole dates, "
        f"{n_boot} replicates, 95 %; adj. p: two-sided test of no difference, adjusted "
        "(raw p in --json)",
        markup=False,
    )
    for metric in ("auc", "brier", "log_loss"):
        rows = [r for r in summary["pooled"] if r["metric"] == metric]
        better = "positive" if metric == "auc" else "negative"
        title = f"{_LABELS[metric]} ({better} A - B favours A; adj. p: Holm over heads)"
        auc = metric == "auc"
        console.print(_table(title, "pattern", rows, 3 if auc else 4, with_n=auc))
    starts = {w["model_id"]: w["first_date"] for w in summary["windows"]}
    if len(starts) > 1:
        for pattern in summary["patterns"]:
            rows = [{**r, "window": f"{r['model_id']} {starts.get(r['model_id'], '')}"}
                    for r in summary["by_window"] if r["pattern"] == pattern
                    and r["metric"] == "auc"]  # fmt: skip
            title = f"{pattern}: AUC per window (adj. p: Benjamini-Hochberg)"
            console.print(_table(title, "window", rows, 3))
    if summary["by_regime"] is not None:
        for dim, frame in summary["by_regime"].items():
            for pattern in summary["patterns"]:
                rows = [r for r in frame if r["pattern"] == pattern and r["metric"] == "auc"]
                title = f"{pattern}: AUC per {dim} regime (adj. p: Holm)"
                console.print(_table(title, dim, rows, 3))
        console.print(_coverage(summary["coverage"]))
    for note in summary["notes"]:
        console.print(f"note: {note}", markup=False)
    if summary["report"]:
        console.print(f"wrote {summary['report']}", markup=False)


def _coverage(rows: list[dict[str, Any]]) -> Table:
    """Test days per window in each regime."""
    table = Table(title="test days per window in each market regime", box=box.SIMPLE_HEAD,
                  pad_edge=False)  # fmt: skip
    columns = [("model_id", "window"), ("first_date", "from"), ("days", "days"),
               ("trend:bull", "bull"), ("trend:bear", "bear"), ("trend:sideways", "side"),
               ("volatility:high", "high vol"), ("volatility:low", "low vol"),
               ("trend:unknown", "unknown")]  # fmt: skip
    for _, name in columns:
        table.add_column(name, justify="left" if name in ("window", "from") else "right")
    for r in rows:
        table.add_row(*(str(r[key]) for key, _ in columns))
    return table


def ensemble_command(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run directories trained on "
                                                    "the same windows.", show_default=False)],
    method: Annotated[EnsembleMethod, typer.Option(
        "--method", help="mean: average the confidences; stack: logistic regression on the "
        "members' log-odds, fitted on each window's validation fold only.")] = EnsembleMethod.mean,
    out: EnsembleOutOption = None,
    data_dir: EnsembleDataDirOption = None,
    overwrite: EnsembleOverwriteOption = False,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Combine runs into one ensemble run directory (validate, backtest and compare take it)."""
    from engine.jobs.ensemble import run_ensemble_job

    if out is None:
        error_console().print("error: --out is required: the ensemble's run directory",
                              style="bold red", markup=False)  # fmt: skip
        raise typer.Exit(code=1)
    err = error_console()

    def show(event: dict[str, Any]) -> None:
        err.print(f"{event['model_id']} ({event['index'] + 1}/{event['total']})", markup=False)

    result = call_or_exit(run_ensemble_job, runs, out, method=method.value, data_dir=data_dir,
                          overwrite=overwrite, progress=show)  # fmt: skip
    summary = result.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    patterns = list(summary["windows"][0]["test_auc"]) if summary["windows"] else []
    table = Table(title=f"{method.value} of {len(runs)} runs: out-of-sample test AUC per window",
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    table.add_column("model", no_wrap=True)
    table.add_column("test from", no_wrap=True)
    table.add_column("val\nloss", justify="right")
    for p in patterns:
        table.add_column(p.replace("_", "\n"), justify="right")
    for w in summary["windows"]:
        table.add_row(w["model_id"], w["test_start"], f"{w['validation_loss']:.4f}",
                      *(format_or_dash(w["test_auc"][p], ".3f") for p in patterns))  # fmt: skip
    console.print(table)
    if method is EnsembleMethod.stack:
        weights = Table(title="stack weights on member log-odds, mean over the windows fitted",
                        box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
        weights.add_column("head", no_wrap=True)
        weights.add_column("windows", justify="right")
        for member in summary["members"]:
            weights.add_column(Path(member).name, justify="right")
        for p in patterns:
            fitted = [w["heads"][p]["weights"] for w in summary["windows"]
                      if "weights" in w["heads"][p]]  # fmt: skip
            means = [sum(f[m] for f in fitted) / len(fitted) if fitted else None
                     for m in summary["members"]]  # fmt: skip
            weights.add_row(p, str(len(fitted)), *(format_or_dash(v, "+.2f") for v in means))
        console.print(weights)
    console.print(f"run directory: {summary['out']}", markup=False)
    console.print(f"predictions: {summary['predictions']}", markup=False)
