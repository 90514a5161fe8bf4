"""Continue an interrupted training run: which of its windows are finished, verified.

:func:`engine.model.runs.train_windows` with ``resume=True`` keeps the
windows an ``"interrupted"`` or ``"failed"`` run finished and trains only the
others. A window counts as finished when ``run.json`` lists it, its artifact
passes its checksums (:func:`engine.model.artifacts.read_metadata`) and
``predictions.parquet`` holds exactly its ``n_test`` rows. The run must have
been made with the same run settings, model configuration, splitter and data;
otherwise the resume is refused, naming what differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.model.artifacts import ArtifactError, read_metadata
from engine.model.run_files import RUN_FILE, RUN_PREDICTIONS_FILE, read_json

__all__ = ["RESUMABLE", "FinishedWindows", "ResumeRefused", "finished_windows"]

#: Run statuses that ``resume`` continues.
RESUMABLE = ("interrupted", "failed")
#: ``run.json`` ``data`` keys that must match: the same bars, tickers, dates and sequences.
_DATA_KEYS = (
    "fingerprint",
    "tickers",
    "start",
    "end",
    "null_labels",
    "sequences_train_grid",
    "sequences_scored",
)


class ResumeRefused(ValueError):
    """The run at ``out`` cannot be continued with these inputs (the message says why)."""


@dataclass
class FinishedWindows:
    """What an interrupted run keeps.

    Attributes
    ----------
    run : dict
        Its ``run.json``.
    windows : list of dict
        The finished windows' reports, in order (``run.json`` ``windows``).
    predictions : pl.DataFrame or None
        Their rows of ``predictions.parquet``, in window order.
    """

    run: dict[str, Any]
    windows: list[dict[str, Any]]
    predictions: pl.DataFrame | None

    @property
    def model_ids(self) -> set[str]:
        """The finished windows' model ids."""
        return {w["model_id"] for w in self.windows}


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, dates as text)."""
    return json.loads(json.dumps(value, default=str))


def _difference(name: str, recorded: Any, wanted: Any) -> str | None:
    """``"name.key: run has A, now B"`` for the first differing entry, or None."""
    recorded, wanted = _plain(recorded), _plain(wanted)
    if recorded == wanted:
        return None
    if isinstance(recorded, dict) and isinstance(wanted, dict):
        for key in sorted(set(recorded) | set(wanted)):
            if recorded.get(key) != wanted.get(key):
                return f"{name}.{key}: the run has {recorded.get(key)!r}, now {wanted.get(key)!r}"
    return f"{name}: the run has {recorded!r}, now {wanted!r}"


def finished_windows(
    out: Path,
    *,
    settings: dict[str, Any],
    config: dict[str, Any],
    splitter: str,
    data: dict[str, Any],
    planned_windows: int,
) -> FinishedWindows:
    """The verified finished windows of the interrupted run at ``out``.

    Parameters
    ----------
    out : Path
        The run directory.
    settings, config : dict
        The run settings (``asdict``) and model configuration (``to_dict()``) now.
    splitter : str
        ``repr`` of the splitter now.
    data : dict
        The dataset's ``info`` now (:data:`_DATA_KEYS` are compared).
    planned_windows : int
        Windows the splitter cuts now.

    Raises
    ------
    ResumeRefused
        No run at ``out``, a status other than :data:`RESUMABLE`, a differing
        setting (named), or a finished window whose artifact or predictions
        do not check out.
    """
    path = out / RUN_FILE
    hint = "run without --resume (with --overwrite to replace it)"
    if not path.is_file():
        raise ResumeRefused(f"--resume: {out} holds no training run to continue (no {RUN_FILE})")
    recorded = read_json(path)
    status = recorded.get("status")
    if status not in RESUMABLE:
        raise ResumeRefused(
            f"--resume: {path} says status {status!r}; only an interrupted or failed run "
            f"can be continued"
        )
    recorded_data = recorded.get("data") or {}
    checks = [
        ("settings", recorded.get("settings"), settings),
        ("config", recorded.get("config"), config),
        ("splitter", recorded.get("splitter"), splitter),
        ("data", {k: recorded_data.get(k) for k in _DATA_KEYS},
         {k: data.get(k) for k in _DATA_KEYS}),
        ("planned_windows", recorded.get("planned_windows"), planned_windows),
    ]  # fmt: skip
    for name, was, now in checks:
        differs = _difference(name, was, now)
        if differs:
            raise ResumeRefused(f"--resume: {path} was made with other inputs ({differs}); {hint}")
    windows = list(recorded.get("windows") or [])
    for w in windows:
        try:
            read_metadata(out / w["artifact"])
        except ArtifactError as exc:
            raise ResumeRefused(
                f"--resume: finished window {w['model_id']} cannot be kept: {exc}; {hint}"
            ) from None
    predictions = None
    if windows:
        file = out / RUN_PREDICTIONS_FILE
        if not file.is_file():
            raise ResumeRefused(f"--resume: {file} is missing; {hint}")
        frame = pl.read_parquet(file)
        parts = [frame.filter(pl.col("model_id") == w["model_id"]) for w in windows]
        for w, part in zip(windows, parts, strict=True):
            if part.height != w["n_test"]:
                raise ResumeRefused(
                    f"--resume: {file} holds {part.height} rows of window {w['model_id']}, "
                    f"{RUN_FILE} says {w['n_test']}; {hint}"
                )
        predictions = pl.concat(parts)
    return FinishedWindows(run=recorded, windows=windows, predictions=predictions)
