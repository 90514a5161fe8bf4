"""Progress lines of ``engine train`` and ``engine pipeline``, printed from the jobs' events.

The jobs report progress as dictionaries with a ``kind`` (``data``,
``window``, ``window_skipped``, ``epoch``, ``window_done``; the pipeline adds
``stage`` and ``done``); these printers turn each event into one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

__all__ = ["pipeline_progress", "train_progress"]

ProgressPrinter = Callable[[dict[str, Any]], None]


def train_progress(console: Console) -> ProgressPrinter:
    """Print one line per window and per epoch of a training run on ``console``.

    Examples
    --------
    >>> show = train_progress(Console(width=100))
    >>> show({"kind": "window_done", "best_epoch": 3, "epochs": 5,
    ...       "test_auc": {"momentum_persistence": 0.5123, "trend_exhaustion": None}})
      best epoch 3 of 5; test AUC: momentum_persistence 0.512, trend_exhaustion -
    """

    def show(event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "data":
            console.print(
                f"data: {len(event['tickers'])} tickers, {event['sequences_train_grid']} "
                f"training-grid sequences, {event['sequences_scored']} scorable, "
                f"{event['dropped_windows']} windows dropped for missing features",
                markup=False,
            )
            short = event.get("short_history") or {}
            if short:
                listed = ", ".join(f"{t} ({n} bars)" for t, n in short.items())
                console.print(
                    f"too little history for one labelled window (fewer than "
                    f"{event.get('short_history_min_bars')} bars), not trained on: {listed}",
                    style="yellow",
                    markup=False,
                )
        elif kind == "window_skipped":
            console.print(
                f"{event['model_id']} ({event['index'] + 1}/{event['total']}): skipped, "
                f"{event['reason']} (train from {event['train_start']}, test "
                f"{event['test_start']} to {event['test_end']})",
                style="yellow",
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


def pipeline_progress(console: Console) -> ProgressPrinter:
    """Print one line per pipeline stage, and the training lines without the epochs.

    Examples
    --------
    >>> show = pipeline_progress(Console(width=100))
    >>> show({"kind": "done", "summary": "12 tickers", "seconds": 2.04})
      12 tickers (2.0 s)
    """
    train = train_progress(console)

    def show(event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "stage":
            console.print(f"[bold][{event['index']}/{event['total']}] {event['name']}[/]")
        elif kind == "done":
            console.print(f"  {event['summary']} ({event['seconds']:.1f} s)", markup=False)
        elif kind != "epoch":
            train(event)

    return show
