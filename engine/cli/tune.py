"""``engine tune``: hyperparameter search over walk-forward folds, selection paid for.

TensorFlow is imported by the job (through ``engine.model``) only when the
command runs, so the rest of the command line starts fast.
"""

from __future__ import annotations

import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    NoTrackOption,
    TickersOption,
    TrackingUriOption,
    as_date,
    bar_store,
    out_option,
    resume_option,
    seed_option,
    tracking_from,
)
from engine.cli.output import call_or_exit, error_console, print_json, stdout_console
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

__all__ = ["tune_command", "tune_progress"]

TuneSplitOption = split_option("holdout (60/20/20 %) or walk-forward (36/12/12 months).")
TuneBackendOption = backend_option("local worker processes, or Ray.")
TuneWorkersOption = workers_option(
    "Trials (fits) that run at the same time. A failed trial is recorded and the search goes on; "
    "max(3, 2 x W) failed trials in a row stop it."
)
TuneSeedOption = seed_option("Seed of the sampler and of window k's fits (seed + k).")
TuneResumeOption = resume_option("Continue the study instead of refusing its name.")
TuneOutOption = out_option(
    "Run directory (default <data-dir>/runs/tune-<timestamp>; with --resume, the earlier one)."
)


class Objective(StrEnum):
    """What a trial maximises on the validation days."""

    log_loss_skill = "log_loss_skill"
    auc = "auc"


class Strategy(StrEnum):
    """The base strategy the DSR's filtered strategy trades."""

    momentum = "momentum"
    mean_reversion = "mean_reversion"
    ma_cross = "ma_cross"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2e}" if abs(value) < 1e-2 and value != 0 else f"{value:.3g}"
    return str(value)


_ABBREVIATIONS = {
    "learning_rate": "lr",
    "lstm_units": "units",
    "lstm_dropout": "drop",
    "lstm_recurrent_dropout": "rdrop",
    "batch_size": "batch",
    "imbalance": "imb",
    "focal_gamma": "gamma",
    "focal_alpha": "alpha",
}


def _pack(items: list[str], width: int) -> list[str]:
    """Join ``items`` with two spaces into lines of at most ``width``, never splitting an item.

    Examples
    --------
    >>> _pack(["lr 1e-3", "units 64", "imb none"], 18)
    ['lr 1e-3  units 64', 'imb none']
    """
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += "  " + item
        else:
            lines.append(item)
    return lines


def tune_progress(console: Console) -> Any:
    """One line per finished trial (and its parameters below it), with the best so far.

    Examples
    --------
    >>> show = tune_progress(Console(width=80))
    >>> show({"kind": "trial", "number": 3, "done": 4, "total": 20, "state": "complete",
    ...       "value": 0.0123, "cumulative": 0.0123, "windows": 3, "seconds": 41.2,
    ...       "best_number": 1, "best_value": 0.015, "error": None,
    ...       "params": {"learning_rate": 0.0012, "lstm_units": 64, "imbalance": "none"}})
    trial 3 (4/20) complete  +0.0123  41 s  best +0.0150 (trial 1)
      lr 1.20e-03  units 64  imb none
    """

    def show(event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "data":
            console.print(
                f"data: {len(event['tickers'])} tickers, {event['sequences_train_grid']} "
                f"training-grid sequences, {event['sequences_scored']} scorable",
                markup=False,
            )
        elif kind == "plan":
            ids = ", ".join(w["model_id"] for w in event["windows"])
            console.print(
                f"tuning on {len(event['windows'])} window(s) ({ids}), "
                f"{event['trials']} trials; validation days only",
                markup=False,
            )
        elif kind == "phase":
            console.print(
                f"search done: scoring trial {event['trial']} and the default on the clean "
                "test rows",
                markup=False,
            )
        elif kind == "trial":
            state = event["state"]
            if state == "complete":
                what = f"{event['value']:+.4f}"
            elif state == "pruned":
                what = f"after {event['windows']} window(s): {event['cumulative']:+.4f}"
            else:
                what = f"failed: {event['error']}"[:60]
            best = (
                f"  best {event['best_value']:+.4f} (trial {event['best_number']})"
                if event["best_number"] is not None
                else ""
            )
            console.print(
                f"trial {event['number']} ({event['done']}/{event['total']}) {state}  {what}  "
                f"{event['seconds']:.0f} s{best}",
                markup=False,
            )
            items = [f"{_ABBREVIATIONS.get(k, k)} {_short(v)}" for k, v in event["params"].items()]
            for line in _pack(items, 76):
                console.print(f"  {line}", markup=False)

    return show


def tune_command(
    tickers: TickersOption = "all",
    split: TuneSplitOption = SplitChoice.walk_forward,
    windows: Annotated[
        int,
        typer.Option("--windows", min=1, help="Tune on the K most recent walk-forward windows."),
    ] = 3,
    trials: Annotated[
        int,
        typer.Option(
            "--trials", min=1, help="Finished trials the study should hold (with --resume too)."
        ),
    ] = 20,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Most epochs per fit (early stopping).")
    ] = 25,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=1, show_default=False, help="Start no trial after S s."),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option("--space", show_default=False, help="TOML file overriding the search space."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            show_default=False,
            help="Optuna journal file, or an RDB URL such as postgresql://user@host/db "
            "(default: study.journal in --out).",
        ),
    ] = None,
    study: Annotated[str, typer.Option("--study", help="Study name in the storage.")] = (
        "engine-tune"
    ),
    resume: TuneResumeOption = False,
    backend: TuneBackendOption = BackendChoice.local,
    workers: TuneWorkersOption = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            show_default=False,
            help="Ray cluster to join (default $RAY_ADDRESS, else a local Ray).",
        ),
    ] = None,
    objective: Annotated[
        Objective, typer.Option("--objective", help="Validation skill that trials maximise.")
    ] = Objective.log_loss_skill,
    strategy: Annotated[
        Strategy, typer.Option("--strategy", help="Strategy whose filtered Sharpe the DSR tests.")
    ] = Strategy.momentum,
    threshold: Annotated[
        float,
        typer.Option("--threshold", min=0.0, max=1.0, help="Confidence the filter requires."),
    ] = 0.6,
    dsr_threshold: Annotated[
        float, typer.Option("--dsr-threshold", help="DSR the gate requires to promote.")
    ] = 0.95,
    precision: Annotated[
        PrecisionChoice,
        typer.Option("--precision", help="float32, or mixed (bfloat16 on CPU)."),
    ] = PrecisionChoice.float32,
    seed: TuneSeedOption = 0,
    start: SampleStartOption = None,
    end: SampleEndOption = None,
    out: TuneOutOption = None,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search model settings on validation folds; promote only what beats chance."""
    from engine.jobs.tune import run_tune_job
    from engine.model.network import ModelConfig
    from engine.model.runs import RunSettings
    from engine.tuning.tune import TuneSettings

    run_settings = call_or_exit(RunSettings, split=split.value, seed=seed)
    base = call_or_exit(ModelConfig, epochs=epochs, precision=precision.value)
    settings = call_or_exit(
        TuneSettings,
        trials=trials,
        windows=windows if split is SplitChoice.walk_forward else None,
        timeout=timeout,
        objective=objective.value,
        study=study,
        storage=storage,
        resume=resume,
        backend=backend.value,
        workers=workers,
        address=ray_address,
        strategy=strategy.value,
        threshold=threshold,
        dsr_threshold=dsr_threshold,
    )
    err = error_console()
    try:
        report = call_or_exit(
            run_tune_job,
            bar_store(data_dir),
            tickers,
            run_settings=run_settings,
            base=base,
            settings=settings,
            space=space,
            out=out,
            start=as_date(start),
            end=as_date(end),
            progress=None if as_json else tune_progress(err),
            tracking=tracking_from(data_dir, tracking_uri, no_track),
        )
    except KeyboardInterrupt:
        err.print(
            "interrupted: finished trials are kept in the study; --resume continues it",
            style="bold red",
        )
        raise typer.Exit(code=130) from None
    if as_json:
        print_json(report.to_dict())
        return
    console = stdout_console()
    for line in report.summary_lines():
        indent = "  " if line.startswith("  ") else ""
        for part in textwrap.wrap(line, 78, subsequent_indent=indent + "  "):
            console.print(part, markup=False)
    console.print(f"run directory: {report.out}", markup=False)
    if "best" in report.files:
        console.print(f"best configuration: {report.files['best']}", markup=False)
