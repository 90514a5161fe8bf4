"""``engine train`` and ``engine validate``: fit a pattern model, then measure it out of sample.

TensorFlow is imported inside ``train_command`` only (through
``engine.model``), so the rest of the command line starts fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
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
    TickersOption,
    TrackingUriOption,
    as_date,
    bar_inputs,
    bar_store,
    n_boot_option,
    out_option,
    overwrite_option,
    report_option,
    resume_option,
    seed_option,
    tracking_from,
    training_data_dir_option,
)
from engine.cli.output import (
    call_or_exit,
    error_console,
    format_or_dash,
    print_json,
    stdout_console,
    wide_console,
)
from engine.cli.progress import train_progress
from engine.cli.training_options import (
    BackendChoice,
    PrecisionChoice,
    SampleEndOption,
    SampleStartOption,
    SplitChoice,
    backend_option,
    split_option,
    workers_option,
)
from engine.model.min_train import DEFAULT_MIN_TRAIN_SEQUENCES

__all__ = [
    "ClassWeightsChoice",
    "LossChoice",
    "ModelChoice",
    "train_command",
    "validate_command",
]

TrainSplitOption = split_option(
    "holdout: one train/validation/test split (60/20/20 % of dates); "
    "walk-forward: one model per 36/12/12-month window, stepping 12 months."
)
TrainBackendOption = backend_option("Fit windows in local processes or on Ray.")
TrainWorkersOption = workers_option("Windows fitted at once (each with cores / W threads).")
TrainSeedOption = seed_option("Seed of window 0 (k: seed+k).")
TrainOutOption = out_option("Run directory (default <data-dir>/runs/<split>-<timestamp>).")
TrainOverwriteOption = overwrite_option("Replace an earlier run in --out.")
TrainResumeOption = resume_option(
    "Continue an interrupted or failed run in --out: finished windows are kept once their "
    "checksums and prediction rows check out, the rest are trained; refused, naming what "
    "differs, if the run or model settings, splitter, bars (fingerprint, tickers, dates, "
    "sequences) or window count differ."
)
ValidateSeedOption = seed_option("Bootstrap/permutation seed.")
ValidateNBootOption = n_boot_option("Stationary-bootstrap replicates.")
ValidateReportOption = report_option("Write report.html and its PNG figures to this directory.")
ValidateDataDirOption = training_data_dir_option(
    "Data directory with the market benchmark for the per-regime metrics; its bars must have "
    "the fingerprint the run records",
    default="the one the run records",
)


class ModelChoice(StrEnum):
    """Which model kind ``engine train`` fits (:data:`engine.model.kinds.MODEL_KINDS`)."""

    lstm = "lstm"
    lightgbm = "lightgbm"


class LossChoice(StrEnum):
    """The LSTM's training loss."""

    bce = "bce"
    focal = "focal"


class ClassWeightsChoice(StrEnum):
    """Class weighting per head."""

    none = "none"
    balanced = "balanced"


#: LSTM training options of ``engine train`` and the ModelConfig field each sets.
_LSTM_OPTIONS = {
    "loss": "--loss",
    "focal_gamma": "--focal-gamma",
    "focal_alpha": "--focal-alpha",
    "class_weights": "--class-weights",
    "precision": "--precision",
}


def train_command(
    tickers: TickersOption = "all",
    split: TrainSplitOption = SplitChoice.walk_forward,
    model: Annotated[
        ModelChoice,
        typer.Option(
            "--model",
            help="lstm: the shared-backbone LSTM; lightgbm: one LightGBM classifier per head on "
            "summaries of the 20-day window (the baseline), same windows and embargo.",
        ),
    ] = ModelChoice.lstm,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            show_default=False,
            help="Most epochs per LSTM (early stopping; default 25). LightGBM stops on its "
            "validation fold instead.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            show_default=False,
            help="LSTM settings from a TOML [model] table (engine tune's best.toml); the "
            "options below override it.",
        ),
    ] = None,
    loss: Annotated[
        LossChoice | None,
        typer.Option("--loss", show_default=False, help="bce (default) or focal loss."),
    ] = None,
    focal_gamma: Annotated[
        float | None,
        typer.Option(
            "--focal-gamma",
            min=0.0,
            show_default=False,
            help="Focal exponent (default 2; 0 with no alpha is bce).",
        ),
    ] = None,
    focal_alpha: Annotated[
        float | None,
        typer.Option(
            "--focal-alpha",
            min=0.0,
            max=1.0,
            show_default=False,
            help="Focal weight of the positive class in (0, 1) (default none).",
        ),
    ] = None,
    class_weights: Annotated[
        ClassWeightsChoice | None,
        typer.Option(
            "--class-weights",
            show_default=False,
            help="none (default) or balanced per head on the training fold.",
        ),
    ] = None,
    precision: Annotated[
        PrecisionChoice | None,
        typer.Option(
            "--precision",
            show_default=False,
            help="float32 (default) or mixed: float16 on GPU, bfloat16 on CPU.",
        ),
    ] = None,
    backend: TrainBackendOption = BackendChoice.local,
    workers: TrainWorkersOption = 1,
    seed: TrainSeedOption = 0,
    deterministic: DeterministicOption = False,
    null_labels: Annotated[
        bool,
        typer.Option(
            "--null-labels",
            help="Train on outcomes permuted in 20-day blocks: a null run that should show "
            "no skill.",
        ),
    ] = False,
    min_train_sequences: MinTrainSequencesOption = DEFAULT_MIN_TRAIN_SEQUENCES,
    prices: PricesOption = None,
    market: MarketOption = None,
    sector_map: SectorMapOption = None,
    start: SampleStartOption = None,
    end: SampleEndOption = None,
    out: TrainOutOption = None,
    overwrite: TrainOverwriteOption = False,
    resume: TrainResumeOption = False,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train a pattern model with leakage-free splits; write artifacts and predictions."""
    from engine.jobs.train import default_run_dir, run_train_job
    from engine.model.gbm import GBMConfig
    from engine.model.network import ModelConfig
    from engine.model.runs import RunSettings

    if model is ModelChoice.lightgbm and epochs is not None:
        error_console().print(
            "error: --epochs applies to --model lstm; LightGBM early-stops each head on the "
            "validation fold (at most 500 rounds)", style="bold red", markup=False,
        )  # fmt: skip
        raise typer.Exit(code=1)
    given = {"loss": loss, "focal_gamma": focal_gamma, "focal_alpha": focal_alpha,
             "class_weights": class_weights, "precision": precision}  # fmt: skip
    given = {k: getattr(v, "value", v) for k, v in given.items() if v is not None}
    lstm_only = [_LSTM_OPTIONS[k] for k in given] + (["--config"] if config_file else [])
    if model is ModelChoice.lightgbm and lstm_only:
        error_console().print(
            f"error: {', '.join(lstm_only)} apply to --model lstm", style="bold red",
            markup=False,
        )  # fmt: skip
        raise typer.Exit(code=1)
    if backend is BackendChoice.ray:
        from engine.parallel import require_ray

        call_or_exit(require_ray)
    settings = call_or_exit(RunSettings, split=split.value, seed=seed,
                            deterministic=deterministic, null_labels=null_labels,
                            min_train_sequences=min_train_sequences)  # fmt: skip
    if resume and overwrite:
        error_console().print("error: --resume continues the run in --out, --overwrite replaces "
                              "it: pass one of them", style="bold red", markup=False)  # fmt: skip
        raise typer.Exit(code=1)
    if resume and out is None:
        error_console().print("error: --resume needs --out, the directory of the run to "
                              "continue", style="bold red", markup=False)  # fmt: skip
        raise typer.Exit(code=1)
    inputs = call_or_exit(bar_inputs, prices, market, sector_map)
    if model is ModelChoice.lightgbm:
        config: Any = call_or_exit(GBMConfig)
    else:
        base = call_or_exit(ModelConfig.from_toml, config_file) if config_file else ModelConfig()
        if epochs is not None:
            given["epochs"] = epochs
        config = call_or_exit(ModelConfig.from_dict, {**base.to_dict(), **given})
    err = error_console()
    store = bar_store(data_dir)
    out = out if out is not None else default_run_dir(store, settings)
    try:
        report = call_or_exit(
            run_train_job,
            store,
            tickers,
            settings=settings,
            config=config,
            out=out,
            start=as_date(start),
            end=as_date(end),
            overwrite=overwrite,
            progress=train_progress(err),
            inputs=inputs,
            backend=backend.value,
            workers=workers,
            resume=resume,
            tracking=tracking_from(data_dir, tracking_uri, no_track),
        )
    except KeyboardInterrupt:
        err.print("interrupted: the finished windows' artifacts and predictions are kept "
                  f"(run.json says status 'interrupted'); engine train --resume --out {out} "
                  "with the same options continues it", style="bold red",
                  markup=False)  # fmt: skip
        raise typer.Exit(code=130) from None
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    params = summary["parameters"]
    if model is ModelChoice.lightgbm:
        size = f"{params.get('trees', 0):,} trees, {params.get('leaves', 0):,} leaves (last window)"
    else:
        size = (
            f"{params.get('trainable', 0):,} trainable parameters ({params.get('total', 0):,} "
            "with normalization and batch-norm statistics)"
        )
    console.print(f"{len(summary['windows'])} {model.value} model(s), {size}, in "
                  f"{summary['seconds']:.1f} s")  # fmt: skip
    table = Table(
        title="out-of-sample test AUC per window (`engine validate` adds intervals)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("model", no_wrap=True, min_width=9)
    table.add_column("test from", no_wrap=True, min_width=10)
    best = "best\nround" if model is ModelChoice.lightgbm else "best\nepoch"
    table.add_column(best, justify="right", no_wrap=True, min_width=5)
    patterns = list(summary["windows"][0]["test_auc"]) if summary["windows"] else []
    for p in patterns:
        header = p.replace("_", "\n")
        width = max(len(line) for line in header.splitlines())
        table.add_column(header, justify="right", no_wrap=True, min_width=width)
    for w in summary["windows"]:
        aucs = [format_or_dash(w["test_auc"][p], ".3f") for p in patterns]
        table.add_row(w["model_id"], w["test_start"], f"{w['best_epoch']}/{w['epochs']}", *aucs)
    console.print(table)
    for w in summary["skipped_windows"]:
        console.print(f"skipped {w['model_id']} (test from {w['test_start']}): {w['reason']}",
                      markup=False)  # fmt: skip
    short = summary["data"].get("short_history") or {}
    if short:
        listed = ", ".join(f"{t} ({n} bars)" for t, n in short.items())
        console.print(f"too little history, not trained on: {listed}", markup=False)
    console.print(f"run directory: {summary['out']}", markup=False)
    console.print(f"predictions: {summary['predictions']}", markup=False)


def validate_command(
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            show_default=False,
            help="A training run directory or one model artifact directory.",
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            show_default=False,
            help="A predictions Parquet file (no training histories).",
        ),
    ] = None,
    by_ticker: Annotated[
        bool, typer.Option("--by-ticker", help="Also report each pattern per ticker.")
    ] = False,
    by_regime: Annotated[
        bool,
        typer.Option(
            "--by-regime",
            help="Also print each pattern per market regime (trend, volatility of the "
            "benchmark); always in --json and the report.",
        ),
    ] = False,
    null: Annotated[
        bool,
        typer.Option(
            "--null",
            help="Also test each pattern's AUC against --n-null draws of the outcomes permuted "
            "in blocks of dates (no retraining).",
        ),
    ] = False,
    null_block: Annotated[
        int, typer.Option("--null-block", min=1, help="Block length (dates) of the null.")
    ] = 20,
    n_null: Annotated[
        int,
        typer.Option(
            "--n-null",
            min=1,
            help="Permutation draws of the --null test (p = (1 + #null >= AUC) / (1 + N)).",
        ),
    ] = 200,
    n_boot: ValidateNBootOption = 1000,
    seed: ValidateSeedOption = 0,
    report: ValidateReportOption = None,
    data_dir: ValidateDataDirOption = None,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    as_json: JsonOption = False,
) -> None:
    """Out-of-sample metrics with bootstrap intervals, a null test and an overfitting monitor."""
    from engine.jobs.validate import run_validate_job

    result = call_or_exit(run_validate_job, model, predictions, by_ticker=by_ticker, null=null,
                          null_block=null_block, n_null=n_null, n_boot=n_boot, seed=seed,
                          report_dir=report, data_dir=data_dir,
                          tracking=tracking_from(None, tracking_uri, no_track))  # fmt: skip
    summary = result.to_dict()
    if as_json:
        print_json(summary)
        return
    console = wide_console()
    console.print(result.summary_lines()[0], markup=False)
    console.print(
        f"intervals: stationary bootstrap, {n_boot} replicates, 95 %; p: one-sided against "
        "no skill; adj. p: p adjusted for the tests of its table (the line under each table)",
        markup=False,
    )
    tables = [("metrics", summary["metrics"], "out-of-sample, all tickers pooled", "pattern")]
    if summary["null"] is not None:
        title = (
            f"null, first of {n_null} draws: outcomes permuted in blocks of {null_block} dates "
            "(should show no skill)"
        )
        tables.append(("null_metrics", summary["null"]["metrics"], title, "pattern"))
    if len(summary["windows"]) > 1:
        for pattern in summary["patterns"]:
            rows = [r for r in summary["by_model"] if r["pattern"] == pattern]
            tables.append(("by_model", rows, f"{pattern} per window", "model_id"))
    if summary["by_ticker"] is not None:
        for pattern in summary["patterns"]:
            rows = [r for r in summary["by_ticker"] if r["pattern"] == pattern]
            tables.append(("by_ticker", rows, f"{pattern} per ticker", "ticker"))
    if by_regime and summary["by_regime"] is not None:
        for pattern in summary["patterns"]:
            rows = [{**r, "regime": f"{_DIMENSIONS[r['dimension']]} {r['regime']}"}
                    for r in summary["by_regime"] if r["pattern"] == pattern]  # fmt: skip
            tables.append(("by_regime", rows, f"{pattern} per market regime", "regime"))
    for name, rows, title, key in tables:
        family = summary["null"]["metrics"] if name == "null_metrics" else summary[name]
        for table in _metrics_table(rows, title, key=key, correction=_correction(name, family)):
            console.print(table)
    if summary["regime_coverage"] is not None:
        console.print(_coverage_table(summary["regime_coverage"]))
        if not by_regime and summary["by_regime"] is not None:
            console.print(f"per-regime metrics ({len(summary['by_regime'])} rows): --by-regime, "
                          "--json or --report", markup=False)  # fmt: skip
    for line in result.summary_lines()[1:]:
        if line.startswith(("null ", "note: ", "wrote ")) or ": " in line and "epochs" in line:
            console.print(line, markup=False)


#: Regime dimension -> its short name in the per-regime table's first column.
_DIMENSIONS = {"trend": "trend", "volatility": "vol"}


def _coverage_table(rows: list[dict[str, Any]]) -> Table:
    """Test days per window in each market regime, 80 columns (dates left to --json)."""
    table = Table(title="walk-forward regime coverage: test days per window",
                  caption="?: no label (benchmark warm-up or no benchmark bar that day)",
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    table.add_column("window", no_wrap=True)
    columns = {"days": "days", "trend:bull": "bull", "trend:bear": "bear",
               "trend:sideways": "side-\nways", "trend:unknown": "trend\n?",
               "volatility:high": "high\nvol", "volatility:low": "low\nvol",
               "volatility:unknown": "vol\n?"}  # fmt: skip
    for head in columns.values():
        table.add_column(head, justify="right")
    for r in rows:
        table.add_row(str(r["model_id"]), *[str(r[c]) for c in columns])
    return table


def _interval(row: dict[str, Any], name: str, digits: int = 3) -> str:
    """``row[name]`` with its 95 % interval in brackets when the row has one.

    Examples
    --------
    >>> _interval({"auc": 0.61, "auc_ci_low": 0.55, "auc_ci_high": 0.67}, "auc")
    '0.610 [0.550, 0.670]'
    >>> _interval({"auc": 0.61, "auc_ci_low": None, "auc_ci_high": None}, "auc")
    '0.610'
    >>> _interval({}, "auc")
    '-'
    """
    value = row.get(name)
    if value is None:
        return "-"
    low, high = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    text = f"{value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _correction(table: str, family: list[dict[str, Any]]) -> tuple[str, str]:
    """``(column suffix, caption line)`` of the correction a report table applies.

    Examples
    --------
    >>> _correction("by_ticker", [{"auc_p_value": 0.2}, {"auc_p_value": None}])[1][:44]
    'adj. p: Benjamini-Hochberg over the 1 patter'
    """
    from engine.evaluation.validation_report import CORRECTIONS, correction_text

    m = sum(r.get("auc_p_value") is not None for r in family)
    return CORRECTIONS[table], correction_text(table, m)


def _metrics_table(
    rows: list[dict[str, Any]],
    title: str,
    key: str = "pattern",
    correction: tuple[str, str] | None = None,
) -> list[Table]:
    """Two tables of out-of-sample metrics per ``key`` (pattern, model or ticker), 80 columns.

    The first has the AUC with its interval, p and adj. p; the second the
    accuracy, Brier score and log loss beside their references and the
    correlation with its interval, each reference on the line under its value.
    ``correction`` is ``(suffix, line)``: the AUC's ``adj. p`` column reads
    ``auc_p_value_<suffix>`` and ``line`` is the caption naming the correction.
    Numbers are never cut: a cell too wide for the terminal folds.
    """
    suffix, caption = correction if correction is not None else (None, None)
    skill = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False)
    calibration = Table(title=f"{title}: calibration and correlation", box=box.SIMPLE_HEAD,
                        pad_edge=False)  # fmt: skip
    skill.add_column(key, no_wrap=True)
    calibration.add_column(key, no_wrap=True)
    for name in ("labelled", "base\nrate", "AUC [95 % CI]", "p", "adj. p"):
        skill.add_column(name, justify="right", overflow="fold")
    for name in ("accuracy\n(majority)", "Brier\n(reference)", "log loss\n(reference)",
                 "corr\n[95 % CI]"):  # fmt: skip
        calibration.add_column(name, justify="right", overflow="fold")
    for r in rows:
        if not r.get("n"):
            skill.add_row(str(r[key]), "0", *["-"] * 4)
            calibration.add_row(str(r[key]), *["-"] * 4)
            continue
        skill.add_row(
            str(r[key]),
            f"{r['n']}",
            f"{r['base_rate']:.3f}",
            _interval(r, "auc"),
            format_or_dash(r.get("auc_p_value"), ".3f"),
            format_or_dash(r.get(f"auc_p_value_{suffix}"), ".3f"),
        )
        calibration.add_row(
            str(r[key]),
            f"{r['accuracy']:.3f}\n({r['majority_rate']:.3f})" if r.get("accuracy") is not None
            else "-",
            f"{r['brier']:.4f}\n({r['brier_reference']:.4f})" if r.get("brier") is not None
            else "-",
            f"{r['log_loss']:.4f}\n({r['log_loss_reference']:.4f})"
            if r.get("log_loss") is not None else "-",
            _interval(r, "point_biserial").replace(" [", "\n["),
        )  # fmt: skip
    return [skill, calibration]
