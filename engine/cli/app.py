"""Command-line interface: ``engine data import|demo|list``, ``features`` and ``targets``.

The CLI is thin: each command parses its options, calls one engine function
and prints the result. Expected errors (bad bars, existing data, bad paths)
are printed in red on stderr without a traceback and exit with code 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from engine.data.bars import BarsValidationError
from engine.data.importer import import_bars, import_demo
from engine.data.paths import DATA_DIR_ENV, resolve_data_dir
from engine.data.store import BarStore
from engine.jobs.features import run_feature_job
from engine.jobs.targets import run_target_job
from engine.labels.targets import DEFAULT_HORIZON

__all__ = ["app", "data_app"]

app = typer.Typer(
    name="engine",
    no_args_is_help=True,
    help="Causal pattern features, leakage-free validation and ONNX serving for daily OHLCV bars.",
)
data_app = typer.Typer(
    name="data",
    no_args_is_help=True,
    help="Import, generate and list the OHLCV bars in the data directory.",
)
app.add_typer(data_app, name="data")

# ---------------------------------------------------------------- shared options

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help=f"Data directory (default: ${DATA_DIR_ENV}, else ~/.local/share/engine).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace tickers that are already stored.")
]


class OnBadRows(StrEnum):
    """What ``engine data import`` does with rows that break a rule."""

    error = "error"
    drop = "drop"


_T = TypeVar("_T")
_EXPECTED_ERRORS = (BarsValidationError, ValueError, FileExistsError, FileNotFoundError)


def _store(data_dir: Path | None) -> BarStore:
    return BarStore(resolve_data_dir(data_dir))


def _run(func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Call an engine function; expected errors become a red message and exit code 1."""
    try:
        return func(*args, **kwargs)
    except _EXPECTED_ERRORS as exc:
        err = Console(stderr=True, soft_wrap=True, highlight=False)
        first, _, rest = str(exc).partition("\n")
        err.print(f"error: {first}", style="bold red", markup=False)
        if rest:
            err.print(rest, markup=False)
        raise typer.Exit(code=1) from None


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


# ---------------------------------------------------------------- engine data ...


@data_app.command("import")
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
    report = _run(
        import_bars, path, _store(data_dir), on_bad_rows=on_bad_rows.value, overwrite=overwrite
    )
    if as_json:
        _print_json(report.to_dict())
    else:
        typer.echo(report.summary())


@data_app.command("demo")
def demo_command(
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the synthetic tickers.")
    ] = 7,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the embedded demo universe (real SPY/QQQ/VIX + seeded synthetic tickers)."""
    report = _run(import_demo, _store(data_dir), seed=seed, overwrite=overwrite)
    if as_json:
        _print_json({**report.to_dict(), "seed": seed})
    else:
        typer.echo(f"demo universe (seed {seed}): {report.summary()}")


@data_app.command("list")
def list_command(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List the stored tickers: dates, rows, synthetic flag, role and source."""
    store = _store(data_dir)
    rows = _run(store.listing)
    if as_json:
        _print_json(rows)
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
    Console(highlight=False).print(table)


# ---------------------------------------------------------------- engine features

_DATE_FORMATS = ["%Y-%m-%d"]
TickersOption = Annotated[
    str,
    typer.Option(
        "--tickers",
        help="'all' (every stored security), a named list (default, stocks, etfs) "
        "or a comma list such as AAPL,MSFT.",
    ),
]


@app.command("features")
def features_command(
    tickers: TickersOption = "all",
    start: Annotated[
        datetime | None,
        typer.Option("--start", formats=_DATE_FORMATS, show_default=False,
                     help="First date kept (history before it still warms up the windows)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--end", formats=_DATE_FORMATS, show_default=False, help="Last date kept."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the features to this Parquet file (atomically).",
                     show_default=False),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option("--features", help="Comma list of features (default: all 17).",
                     show_default=False),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the 17 causal pattern features for stored tickers."""
    names = [f.strip() for f in features.split(",") if f.strip()] if features else None
    with Progress(
        TextColumn("features"), BarColumn(), MofNCompleteColumn(), TextColumn("tickers"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True, disable=as_json,
    ) as bar:
        task = bar.add_task("features", total=None)
        report = _run(
            run_feature_job,
            _store(data_dir),
            tickers,
            start=start.date() if start else None,
            end=end.date() if end else None,
            out=out,
            features=names,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    summary = report.to_dict()
    if as_json:
        _print_json(summary)
        return
    console = Console(highlight=False)
    console.print(
        f"{summary['rows']} rows x {len(summary['features'])} features for "
        f"{len(summary['tickers'])} tickers, {summary['start']} to {summary['end']}, "
        f"in {summary['seconds']:.2f} s"
    )
    console.print(f"vix_term_structure variant: {summary['vix_variant']} "
                  f"({summary['vix_variant_reason']})", markup=False)
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


# ---------------------------------------------------------------- engine targets


@app.command("targets")
def targets_command(
    tickers: TickersOption = "all",
    start: Annotated[
        datetime | None,
        typer.Option("--start", formats=_DATE_FORMATS, show_default=False,
                     help="First event date kept (history before it still warms up the windows)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--end", formats=_DATE_FORMATS, show_default=False,
                     help="Last event date kept (later bars still resolve its outcome; see t1)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the labels to this Parquet file (atomically).",
                     show_default=False),
    ] = None,
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, help="Outcome horizon in trading days (rows).")
    ] = DEFAULT_HORIZON,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the pattern-validation targets (events and 5-day outcome labels)."""
    report = _run(
        run_target_job,
        _store(data_dir),
        tickers,
        start=start.date() if start else None,
        end=end.date() if end else None,
        out=out,
        horizon=horizon,
    )
    summary = report.to_dict()
    if as_json:
        _print_json(summary)
        return
    console = Console(highlight=False)
    console.print(
        f"{summary['rows']} rows for {len(summary['tickers'])} tickers, "
        f"{summary['start']} to {summary['end']}, horizon {summary['horizon']} days, "
        f"in {summary['seconds']:.2f} s"
    )
    if summary["synthetic_tickers"]:
        console.print(f"synthetic tickers: {', '.join(summary['synthetic_tickers'])}")
    table = Table(title="pattern events and base rates")
    for name, justify in (("pattern", "left"), ("events", "right"), ("labelled", "right"),
                          ("positives", "right"), ("base rate", "right")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)
    for row in summary["patterns"]:
        rate = row["base_rate"]
        table.add_row(row["pattern"], str(row["events"]), str(row["labelled"]),
                      str(row["positives"]), "-" if rate is None else f"{rate:.4f}")  # fmt: skip
    console.print(table)
    if report.out:
        console.print(f"wrote {report.out}", markup=False)


# ---------------------------------------------------------------- engine train


class SplitChoice(StrEnum):
    """How ``engine train`` splits the calendar."""

    holdout = "holdout"
    walk_forward = "walk-forward"


def _train_progress(console: Console) -> Callable[[dict[str, Any]], None]:
    """Print one line per window and per epoch on stderr."""

    def show(event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "data":
            console.print(
                f"data: {len(event['tickers'])} tickers, {event['sequences_train_grid']} "
                f"training-grid sequences, {event['sequences_scored']} scorable, "
                f"{event['dropped_windows']} windows dropped for missing features",
                markup=False,
            )
        elif kind == "window":
            console.print(
                f"[bold]{event['model_id']}[/] ({event['index'] + 1}/{event['total']}): train "
                f"from {event['train_start']}, test {event['test_start']} to {event['test_end']} "
                f"({event['n_train']} train / {event['n_validation']} validation / "
                f"{event['n_test']} test sequences)"
            )
        elif kind == "epoch":
            console.print(
                f"  epoch {event['epoch']:>2}/{event['epochs']}: loss {event['loss']:.4f}  "
                f"train {event['train_loss']:.4f}  val {event['val_loss']:.4f}  "
                f"gap {event['gap']:+.4f}  lr {event['learning_rate']:.2e}  "
                f"{event['seconds']:.1f} s",
                markup=False,
            )
        elif kind == "window_done":
            aucs = ", ".join(
                f"{p} {'-' if v is None else f'{v:.3f}'}" for p, v in event["test_auc"].items()
            )
            console.print(
                f"  best epoch {event['best_epoch']} of {event['epochs']}; test AUC: {aucs}",
                markup=False,
            )

    return show


@app.command("train")
def train_command(
    tickers: TickersOption = "all",
    split: Annotated[
        SplitChoice,
        typer.Option(
            "--split",
            help="holdout: one train/validation/test split (60/20/20 % of dates); "
            "walk-forward: one model per 36/12/12-month window, stepping 12 months.",
        ),
    ] = SplitChoice.walk_forward,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Most epochs per model (early stopping).")
    ] = 25,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of window 0 (k: seed+k).")] = 0,
    deterministic: Annotated[
        bool,
        typer.Option("--deterministic", help="Deterministic TensorFlow ops (slower)."),
    ] = False,
    null_labels: Annotated[
        bool,
        typer.Option(
            "--null-labels",
            help="Train on outcomes permuted in 20-day blocks: a null run that should show "
            "no skill.",
        ),
    ] = False,
    start: Annotated[
        datetime | None,
        typer.Option("--start", formats=_DATE_FORMATS, show_default=False,
                     help="First sample date (earlier bars still warm up the features)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--end", formats=_DATE_FORMATS, show_default=False,
                     help="Last sample date."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", show_default=False,
                     help="Run directory (default <data-dir>/runs/<split>-<timestamp>)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier run in --out.")
    ] = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the pattern LSTM with leakage-free splits; write artifacts and predictions."""
    from engine.jobs.train import run_train_job
    from engine.model.network import ModelConfig
    from engine.model.runs import RunSettings

    settings = _run(RunSettings, split=split.value, seed=seed, deterministic=deterministic,
                    null_labels=null_labels)  # fmt: skip
    config = _run(ModelConfig, epochs=epochs)
    err = Console(stderr=True, highlight=False)
    try:
        report = _run(
            run_train_job,
            _store(data_dir),
            tickers,
            settings=settings,
            config=config,
            out=out,
            start=start.date() if start else None,
            end=end.date() if end else None,
            overwrite=overwrite,
            progress=None if as_json else _train_progress(err),
        )
    except KeyboardInterrupt:
        err.print("interrupted: the finished windows' artifacts and predictions are kept "
                  "(run.json says status 'interrupted')", style="bold red")  # fmt: skip
        raise typer.Exit(code=130) from None
    summary = report.to_dict()
    if as_json:
        _print_json(summary)
        return
    console = Console(highlight=False)
    params = summary["parameters"]
    console.print(
        f"{len(summary['windows'])} model(s), {params.get('trainable', 0):,} trainable "
        f"parameters ({params.get('total', 0):,} with normalization and batch-norm "
        f"statistics), in {summary['seconds']:.1f} s",
    )
    table = Table(
        title="out-of-sample test AUC per window (`engine validate` adds intervals)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("model", no_wrap=True, min_width=9)
    table.add_column("test from", no_wrap=True, min_width=10)
    table.add_column("best\nepoch", justify="right", no_wrap=True, min_width=5)
    patterns = list(summary["windows"][0]["test_auc"]) if summary["windows"] else []
    for p in patterns:
        header = p.replace("_", "\n")
        width = max(len(line) for line in header.splitlines())
        table.add_column(header, justify="right", no_wrap=True, min_width=width)
    for w in summary["windows"]:
        aucs = ["-" if w["test_auc"][p] is None else f"{w['test_auc'][p]:.3f}" for p in patterns]
        table.add_row(w["model_id"], w["test_start"], f"{w['best_epoch']}/{w['epochs']}", *aucs)
    console.print(table)
    console.print(f"run directory: {summary['out']}", markup=False)
    console.print(f"predictions: {summary['predictions']}", markup=False)


# ---------------------------------------------------------------- engine validate


def _interval(row: dict[str, Any], name: str, digits: int = 3) -> str:
    value = row.get(name)
    if value is None:
        return "-"
    low, high = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    text = f"{value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _p_value(row: dict[str, Any], name: str) -> str:
    value = row.get(f"{name}_p_value")
    return "-" if value is None else f"{value:.3f}"


def _metrics_table(rows: list[dict[str, Any]], title: str, key: str = "pattern") -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(key, no_wrap=True)
    for name in ("labelled", "base\nrate", "AUC [95 % CI]", "p", "accuracy\n(majority)",
                 "Brier\n(reference)", "log loss\n(reference)", "corr [95 % CI]"):  # fmt: skip
        table.add_column(name, justify="right")
    for r in rows:
        if not r.get("n"):
            table.add_row(str(r[key]), "0", *["-"] * 7)
            continue
        table.add_row(
            str(r[key]),
            f"{r['n']}",
            f"{r['base_rate']:.3f}",
            _interval(r, "auc"),
            _p_value(r, "auc"),
            f"{r['accuracy']:.3f} ({r['majority_rate']:.3f})" if r.get("accuracy") is not None
            else "-",
            f"{r['brier']:.4f} ({r['brier_reference']:.4f})" if r.get("brier") is not None
            else "-",
            f"{r['log_loss']:.4f} ({r['log_loss_reference']:.4f})"
            if r.get("log_loss") is not None else "-",
            _interval(r, "point_biserial"),
        )  # fmt: skip
    return table


@app.command("validate")
def validate_command(
    model: Annotated[
        Path | None,
        typer.Option("--model", show_default=False,
                     help="A training run directory or one model artifact directory."),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", show_default=False,
                     help="A predictions Parquet file (no training histories)."),
    ] = None,
    by_ticker: Annotated[
        bool, typer.Option("--by-ticker", help="Also report each pattern per ticker.")
    ] = False,
    null: Annotated[
        bool,
        typer.Option("--null", help="Also evaluate with outcomes permuted in blocks of dates."),
    ] = False,
    null_block: Annotated[
        int, typer.Option("--null-block", min=1, help="Block length (dates) of the null.")
    ] = 20,
    n_boot: Annotated[
        int, typer.Option("--n-boot", min=10, help="Stationary-bootstrap replicates.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap/permutation seed.")] = 0,
    report: Annotated[
        Path | None,
        typer.Option("--report", show_default=False,
                     help="Write report.html and its PNG figures to this directory."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Out-of-sample metrics with bootstrap intervals, a null test and an overfitting monitor."""
    from engine.jobs.validate import run_validate_job

    result = _run(run_validate_job, model, predictions, by_ticker=by_ticker, null=null,
                  null_block=null_block, n_boot=n_boot, seed=seed,
                  report_dir=report)  # fmt: skip
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    # Piped output (a file, a log) gets the full table width instead of 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    console.print(result.summary_lines()[0], markup=False)
    console.print(
        f"intervals: stationary bootstrap, {n_boot} replicates, 95 %; p: one-sided against "
        "no skill (4 patterns: Bonferroni level 0.0125)",
        markup=False,
    )
    console.print(_metrics_table(summary["metrics"], "out-of-sample, all tickers pooled"))
    if summary["null"] is not None:
        console.print(_metrics_table(
            summary["null"]["metrics"],
            f"null: outcomes permuted in blocks of {null_block} dates (should show no skill)",
        ))  # fmt: skip
    if len(summary["windows"]) > 1:
        for pattern in summary["patterns"]:
            rows = [r for r in summary["by_model"] if r["pattern"] == pattern]
            console.print(_metrics_table(rows, f"{pattern} per window", key="model_id"))
    if summary["by_ticker"] is not None:
        for pattern in summary["patterns"]:
            rows = [r for r in summary["by_ticker"] if r["pattern"] == pattern]
            console.print(_metrics_table(rows, f"{pattern} per ticker", key="ticker"))
    for line in result.summary_lines()[1:]:
        if line.startswith(("null ", "note: ", "wrote ")) or ": " in line and "epochs" in line:
            console.print(line, markup=False)


# ---------------------------------------------------------------- engine export-onnx, predict


class QuantizeChoice(StrEnum):
    """Quantizations ``engine export-onnx`` offers."""

    int8 = "int8"


def _parity_rows(table: Table, model: str, rows: list[dict[str, Any]]) -> None:
    for p in rows:
        figures = (f"{p[k]:.3g}" for k in ("max_abs_diff", "p99_abs_diff", "mean_abs_diff"))
        table.add_row(model, p["inputs"], f"{p['n']:,}", *figures, f"{p['tolerance']:g}",
                      "yes" if p["ok"] else "NO")  # fmt: skip


@app.command("export-onnx")
def export_onnx_command(
    model: Annotated[
        Path,
        typer.Option("--model", show_default=False,
                     help="Model artifact directory (<run>/models/<model_id>)."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", show_default=False,
                     help="ONNX file (default <model>/model.onnx); --quantize int8 also writes "
                     "<name>.int8.onnx beside it."),
    ] = None,
    opset: Annotated[
        int | None,
        typer.Option("--opset", min=13, max=18, show_default=False,
                     help="ONNX opset, 13 to 18 (default 17)."),
    ] = None,
    quantize: Annotated[
        QuantizeChoice | None,
        typer.Option("--quantize", show_default=False,
                     help="Also write an onnxruntime dynamically quantized int8 model, with its "
                     "own parity, AUC change and size report."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing ONNX files.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", show_default=False,
                     help="Data directory with the bars the model was trained on, for the "
                     f"held-out parity windows (default: the training run's, else ${DATA_DIR_ENV} "
                     "or ~/.local/share/engine)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Export a trained model to ONNX (tf2onnx) and check parity with Keras."""
    from export.onnx_export import export_onnx

    report = _run(export_onnx, model, out, data_dir=data_dir, opset=opset,
                  quantize=quantize.value if quantize else None, overwrite=overwrite)  # fmt: skip
    summary = report.to_dict()
    if as_json:
        _print_json(summary)
        return
    console = Console(highlight=False)
    ops = summary["op_counts"]
    console.print(
        f"{summary['model_id']} -> {summary['path']} ({summary['bytes']:,} bytes, opset "
        f"{summary['opset']}, {ops.get('LSTM', 0)} native LSTM nodes, no Loop/Scan) "
        f"in {summary['seconds']:.1f} s",
        markup=False,
    )
    held = summary["held_out"]
    stored = held.get("stored_predictions")
    console.print(
        f"held-out: {held['rows']:,} windows of {', '.join(held['tickers'])} in the test period "
        f"{held['test_period'][0]} to {held['test_period'][1]} rebuilt from the training bars "
        f"(fingerprint match: {'yes' if held['fingerprint_match'] else 'no'}"
        + (f"; Keras vs stored test predictions max abs diff {stored['max_abs_diff']:.3g})"
           if stored else ")"),
        markup=False,
    )  # fmt: skip
    table = Table(title="parity with the Keras model (confidences)", box=box.SIMPLE_HEAD)
    for name, justify in (("model", "left"), ("inputs", "left"), ("n", "right"),
                          ("max abs diff", "right"), ("p99", "right"), ("mean", "right"),
                          ("tolerance", "right"), ("ok", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)
    _parity_rows(table, "fp32", summary["parity"])
    quantized = summary["quantized"]
    if quantized:
        _parity_rows(table, "int8", quantized["parity"])
    console.print(table)
    if quantized:
        console.print(
            f"int8 -> {quantized['path']}: {quantized['bytes']:,} bytes vs "
            f"{quantized['fp32_bytes']:,} fp32 ({quantized['size_ratio']:.2f}x)",
            markup=False,
        )
        auc = Table(title="held-out AUC, fp32 vs int8", box=box.SIMPLE_HEAD)
        for name in ("pattern", "labelled", "fp32", "int8", "change"):
            auc.add_column(name, justify="left" if name == "pattern" else "right")
        for pattern, row in quantized["auc"].items():
            cells = ["-" if row[k] is None else f"{row[k]:.4f}" for k in ("fp32", "int8")]
            change = "-" if row["change"] is None else f"{row['change']:+.4f}"
            auc.add_row(pattern, f"{row['n']:,}", *cells, change)
        console.print(auc)


@app.command("predict")
def predict_command(
    model: Annotated[
        Path,
        typer.Option("--model", show_default=False,
                     help="ONNX file written by `engine export-onnx` (fp32 or int8)."),
    ],
    tickers: TickersOption = "all",
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=_DATE_FORMATS, show_default=False,
                     help="Score with bars up to this date (default: all stored bars)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", show_default=False,
                     help="Write the scores to this .parquet or .csv file (atomically)."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, show_default=False,
                     help="onnxruntime intra-op threads (default: its own choice)."),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score each ticker's latest 20-day window with an exported ONNX model."""
    from engine.jobs.predict import run_predict_job

    report = _run(run_predict_job, _store(data_dir), model, tickers,
                  as_of=as_of.date() if as_of else None, out=out,
                  intra_op_threads=threads)  # fmt: skip
    summary = report.to_dict()
    if as_json:
        _print_json(summary)
        return
    console = Console(highlight=False)
    console.print(
        f"{summary['model_id']} ({summary['quantization']}, {', '.join(summary['providers'])}): "
        f"{len(summary['tickers'])} tickers in {summary['seconds']:.2f} s",
        markup=False,
    )
    table = Table(title="latest pattern confidence", box=box.SIMPLE_HEAD)
    columns = [c for c in report.scores.columns if c not in ("ticker", "date")]
    table.add_column("ticker", no_wrap=True)
    table.add_column("date", no_wrap=True)
    for name in columns:
        table.add_column(name.removesuffix("_p").replace("_", "\n"), justify="right")
    for row in report.scores.iter_rows(named=True):
        table.add_row(row["ticker"], str(row["date"]), *(f"{row[c]:.3f}" for c in columns))
    console.print(table)
    if summary["in_sample"]:
        console.print(
            f"in-sample: {', '.join(summary['in_sample'])} (dated on or before the model's "
            f"embargo end {summary['embargo_end']})",
            style="yellow",
            markup=False,
        )
    if summary["synthetic_tickers"]:
        console.print(f"synthetic tickers: {', '.join(summary['synthetic_tickers'])}")
    if report.out:
        console.print(f"wrote {report.out}", markup=False)


# ---------------------------------------------------------------- engine backtest, pipeline


class StrategyChoice(StrEnum):
    """Base strategies ``engine backtest`` filters."""

    momentum = "momentum"
    mean_reversion = "mean_reversion"
    ma_cross = "ma_cross"


class FillChoice(StrEnum):
    """Where a decision taken at the close of t is filled on t+1."""

    open = "open"
    close = "close"


def _backtest_table(report: Any, title: str) -> Table:
    from engine.reports.backtest import metric_rows

    columns, rows = metric_rows(report)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for k, name in enumerate(columns):
        table.add_column(name, justify="left" if k == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _print_backtest(report: Any, console: Console) -> None:
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


@app.command("backtest")
def backtest_command(
    predictions: Annotated[
        Path,
        typer.Option("--predictions", show_default=False,
                     help="predictions.parquet of a training run (out-of-sample only)."),
    ],
    strategy: Annotated[
        StrategyChoice,
        typer.Option("--strategy", help="momentum: sign of the 20-day return; mean_reversion: "
                     "Bollinger position beyond +/-1; ma_cross: 10/50-day moving averages."),
    ] = StrategyChoice.momentum,
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0,
                            help="Take a signal when its head's confidence is at least this."),
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
        typer.Option("--head", show_default=False,
                     help="Pattern head that filters (default: momentum and ma_cross -> "
                     "momentum_persistence, mean_reversion -> trend_exhaustion)."),
    ] = None,
    n_null: Annotated[
        int, typer.Option("--n-null", min=0, help="Random filters in the null (0: none).")
    ] = 200,
    n_boot: Annotated[
        int, typer.Option("--n-boot", min=10, help="Bootstrap replicates (Sharpe difference).")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap and null seed.")] = 0,
    report: Annotated[
        Path | None,
        typer.Option("--report", show_default=False,
                     help="Write report.html, equity/drawdown PNGs, metrics.json, daily.parquet "
                     "and signals.parquet to this directory."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", show_default=False,
                     help="Data directory with the bars (default: the training run's, else "
                     f"${DATA_DIR_ENV} or ~/.local/share/engine)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Backtest a base strategy with and without the model's out-of-sample filter."""
    from engine.jobs.backtest import BacktestSettings, run_backtest_job

    settings = _run(BacktestSettings, strategy=strategy.value, threshold=threshold,
                    costs_bps=costs_bps, slippage_bps=slippage_bps, fill=fill.value,
                    long_only=long_only, head=head, n_boot=n_boot, n_null=n_null,
                    seed=seed)  # fmt: skip
    result = _run(run_backtest_job, predictions, settings, data_dir=data_dir, report_dir=report)
    if as_json:
        _print_json(result.to_dict())
        return
    _print_backtest(result, Console(highlight=False, width=None if sys.stdout.isatty() else 160))


def _pipeline_progress(console: Console) -> Callable[[dict[str, Any]], None]:
    train = _train_progress(console)

    def show(event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "stage":
            console.print(f"[bold][{event['index']}/{event['total']}] {event['name']}[/]")
        elif kind == "done":
            console.print(f"  {event['summary']} ({event['seconds']:.1f} s)", markup=False)
        elif kind != "epoch":
            train(event)

    return show


@app.command("pipeline")
def pipeline_command(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Smoke run of every stage: 6 tickers from 2011, 2 epochs "
                     "(a few minutes on 2 cores; not meant to show skill)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", show_default=False,
                     help="Output directory (default <data-dir>/runs/pipeline-<timestamp>)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the files of an earlier pipeline in --out.")
    ] = False,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, show_default=False,
                     help="Most epochs per window (default 25; --quick 2)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Training, bootstrap, null seed.")] = 0,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic TensorFlow ops (slower).")
    ] = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run everything: demo data, features, targets, walk-forward training, ONNX, backtests."""
    from dataclasses import replace

    from engine.jobs.pipeline import FULL, QUICK, run_pipeline

    settings = QUICK if quick else FULL
    settings = _run(replace, settings, seed=seed, epochs=epochs or settings.epochs,
                    deterministic=deterministic)  # fmt: skip
    store = _store(data_dir)
    if out is None:
        out = store.data_dir / "runs" / f"pipeline-{datetime.now():%Y%m%d-%H%M%S}"
    err = Console(stderr=True, highlight=False)
    try:
        report = _run(run_pipeline, store, out, settings, overwrite=overwrite,
                      progress=None if as_json else _pipeline_progress(err))  # fmt: skip
    except KeyboardInterrupt:
        err.print(f"interrupted: finished stages' files are kept in {out}", style="bold red")
        raise typer.Exit(code=130) from None
    if as_json:
        _print_json(report.to_dict())
        return
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(title="pipeline", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("result", overflow="fold")
    table.add_column("seconds", justify="right", no_wrap=True)
    for row in report.summary_rows():
        table.add_row(*row)
    console.print(table)
    bt = Table(title="backtests (out-of-sample; Sharpe annualised)", box=box.SIMPLE_HEAD,
               pad_edge=False)  # fmt: skip
    for name in ("strategy", "head", "unfiltered", "filtered", "difference [95 % CI]",
                 "random filter p", "take rate", "precision (base)"):  # fmt: skip
        bt.add_column(name, justify="left" if name in ("strategy", "head") else "right")
    for strategy, row in report.stages["backtest"]["strategies"].items():
        d = row["sharpe_difference"]
        diff = "-" if d["estimate"] is None else f"{d['estimate']:+.3f}"
        if d["ci_low"] is not None:
            diff += f" [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
        fmt = (lambda v, spec: "-" if v is None else format(v, spec))  # noqa: E731
        bt.add_row(strategy, row["head"], fmt(row["sharpe_unfiltered"], ".3f"),
                   fmt(row["sharpe_filtered"], ".3f"), diff, fmt(row["null_p_value"], ".3f"),
                   fmt(row["take_rate"], ".1%"),
                   f"{fmt(row['precision'], '.3f')} ({fmt(row['base_rate'], '.3f')})")  # fmt: skip
    console.print(bt)
    console.print(f"report: {report.report}", markup=False)


def main() -> None:  # pragma: no cover - console entry point convenience
    """Run the CLI."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
