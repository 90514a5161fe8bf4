"""``engine models``: the model registry: list, show, promote, rollback.

The registry is MLflow's, at ``--tracking-uri`` (default
``sqlite:///<data-dir>/mlflow.db``). ``engine export-onnx`` registers
versions; these commands read them and move the ``champion`` and
``challenger`` aliases.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from engine.cli.options import DataDirOption, JsonOption, TrackingUriOption, tracking_from
from engine.cli.output import add_columns, call_or_exit, print_json, stdout_console

__all__ = ["models_app"]

models_app = typer.Typer(
    name="models",
    no_args_is_help=True,
    help="The model registry (MLflow): list, show, promote and roll back registered models.",
)

_TAGS_SHOWN = (
    "model_id",
    "sha256",
    "parity_ok",
    "data_fingerprint",
    "train_window",
    "pattern_names",
    "feature_names",
    "quantization",
    "refit_of",
    "evidence_run",
)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


@models_app.command("list")
def list_command(
    tracking_uri: TrackingUriOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List registered models with their versions and aliases."""
    from engine.jobs.models import run_models_list

    report = call_or_exit(run_models_list, tracking_from(data_dir, tracking_uri))
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    if not summary["models"]:
        console.print(f"no registered models at {summary['tracking_uri']}", markup=False)
        return
    table = Table(title=f"registered models ({summary['tracking_uri']})", box=box.SIMPLE_HEAD)
    add_columns(
        table,
        [
            ("name", "left"),
            ("versions", "right"),
            ("latest", "right"),
            ("aliases", "left"),
            ("updated", "left"),
        ],
    )
    for m in summary["models"]:
        aliases = ", ".join(f"{a} -> v{v}" for a, v in m["aliases"].items()) or "-"
        table.add_row(m["name"], str(m["versions"]), f"v{m['latest']}", aliases, m["updated"][:10])
    console.print(table)


@models_app.command("show")
def show_command(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="NAME[@ALIAS|/VERSION]",
            help="A registered model (every version), NAME@ALIAS or NAME/VERSION.",
            show_default=False,
        ),
    ],
    tracking_uri: TrackingUriOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a registered model's versions, or one version, with its tags."""
    from engine.jobs.models import run_models_show

    report = call_or_exit(run_models_show, tracking_from(data_dir, tracking_uri), ref)
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    for v in summary["versions"]:
        aliases = f" [{', '.join(v['aliases'])}]" if v["aliases"] else ""
        console.print(
            f"{v['uri']}{aliases}  created {v['created']}  run {v['run_id']}",
            markup=False,
            style="bold",
        )
        for key in _TAGS_SHOWN:
            if key in v["tags"]:
                console.print(f"  {key}: {_short(v['tags'][key])}", markup=False)
    history = summary["champion_history"]
    if history:
        console.print("champion history (oldest first):")
        for h in history:
            what = f"rollback from v{h['rollback_of']}" if h.get("rollback_of") else h["reason"]
            was = f"v{h['previous']}" if h["previous"] is not None else "none"
            console.print(f"  {h['at'][:19]}  v{h['version']} (was {was}): {what}", markup=False)


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    version: Annotated[
        str, typer.Option("--version", help="Version number, or 'latest'.", show_default=False)
    ],
    alias: Annotated[
        str, typer.Option("--alias", help="Alias to move: champion or challenger.")
    ] = "champion",
    reason: Annotated[str, typer.Option("--reason", help="Recorded with the move.")] = "",
    tracking_uri: TrackingUriOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point an alias at a version (champion only if its export parity passed)."""
    from engine.jobs.models import run_models_promote

    report = call_or_exit(
        run_models_promote, tracking_from(data_dir, tracking_uri), name, version, alias, reason
    )
    _print_change(report.to_dict(), as_json)


@models_app.command("rollback")
def rollback_command(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Recorded with the rollback.")] = "",
    tracking_uri: TrackingUriOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move champion back to the champion it replaced, and record it."""
    from engine.jobs.models import run_models_rollback

    report = call_or_exit(run_models_rollback, tracking_from(data_dir, tracking_uri), name, reason)
    _print_change(report.to_dict(), as_json)


def _print_change(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    c = summary["change"]
    was = f"v{c['previous']}" if c["previous"] is not None else "none"
    stdout_console().print(f"{c['name']}@{c['alias']} -> v{c['version']} (was {was})", markup=False)
