"""A job's report (its ``to_dict()``) as MLflow parameters, metrics and artifact files.

One rule set serves every command, so a new report field is tracked without
touching this module:

* **parameters**: everything under a configuration section (``settings``,
  ``config``, ``data``, ``split``, ``source``, ...) and every text, flag or
  list value elsewhere;
* **metrics**: every other finite number: per window, per head, pooled,
  with the interval bounds the reports carry beside each estimate;
* **artifacts**: files and directories named by ``out``, ``report``,
  ``files``, ``figures`` or ``predictions``: reports, plots, JSON
  (``metadata.json``, ``run.json``), CSV and Parquet (predictions), never
  model weights (``.keras``; the registry holds the ONNX file) or files
  over :data:`MAX_FILE_BYTES`.

Rows of a table (a list of dicts) are keyed by their identity (``model_id``,
``pattern``, ``ticker``, ...) instead of their position, so the key of a
metric says what it measures: ``windows.wf03.test_auc.momentum_persistence``,
``metrics.volatility_regime.auc_ci_low``.

Examples
--------
>>> flat = flatten({"settings": {"seed": 0}, "seconds": 1.5,
...                 "metrics": [{"pattern": "a", "auc": 0.61, "auc_ci_low": 0.55}]})
>>> flat.params, flat.metrics
({'settings.seed': '0'}, {'seconds': 1.5, 'metrics.a.auc': 0.61, 'metrics.a.auc_ci_low': 0.55})
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACT_KEYS",
    "ARTIFACT_SUFFIXES",
    "MAX_FILE_BYTES",
    "Flat",
    "artifact_files",
    "clean_key",
    "flatten",
    "param_value",
]

PARAM_SECTIONS = frozenset(
    {
        "settings",
        "config",
        "data",
        "split",
        "source",
        "splitter",
        "parameters",
        "versions",
        "args",
        "tickers",
        "windows_planned",
        "held_out",
    }
)
#: Keys whose values name files or directories to log as artifacts.
ARTIFACT_KEYS = frozenset({"out", "report", "files", "figures", "predictions"})
ARTIFACT_SUFFIXES = frozenset({".html", ".png", ".json", ".csv", ".parquet", ".txt"})
#: Larger files are not copied into the artifact store.
MAX_FILE_BYTES = 50 * 2**20
_IDENTITY = ("model_id", "pattern", "ticker", "strategy", "head", "feature", "name", "inputs")
_SKIP = frozenset({"history", "scores", "notes"})
_MAX_KEY = 250
_MAX_PARAM = 6000


@dataclass
class Flat:
    """Parameters (text), metrics (floats) and artifact paths (``artifact dir -> path``)."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    paths: list[tuple[str, Path]] = field(default_factory=list)


def clean_key(parts: tuple[str, ...] | list[str]) -> str:
    """A valid MLflow key: characters outside ``[A-Za-z0-9_.-/ :]`` become ``_``.

    Keys over 250 characters are cut and end in a short hash, so they stay unique.

    Examples
    --------
    >>> clean_key(["metrics", "AAPL@close", "auc"])
    'metrics.AAPL_close.auc'
    """
    key = ".".join(re.sub(r"[^\w.\- :/]", "_", str(p)) for p in parts if str(p) != "")
    key = re.sub(r"/{2,}", "/", key).strip("/") or "_"
    if len(key) > _MAX_KEY:
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        key = f"{key[: _MAX_KEY - 11]}~{digest}"
    return key


def param_value(value: Any) -> str:
    """Text of a parameter, JSON for containers, cut to MLflow's 6,000 characters.

    Examples
    --------
    >>> param_value(["AAPL", "MSFT"]), param_value(True), param_value(date(2020, 1, 2))
    ('["AAPL", "MSFT"]', 'True', '2020-01-02')
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=str, sort_keys=isinstance(value, dict))
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def _label(row: Mapping[str, Any], index: int) -> tuple[str, tuple[str, ...]]:
    """The identity of a table row and the keys that made it."""
    keys = tuple(k for k in _IDENTITY if isinstance(row.get(k), str | int) and k in row)
    if not keys:
        return str(index), ()
    return ".".join(str(row[k]) for k in keys), keys


def _walk(value: Any, path: tuple[str, ...], in_params: bool, flat: Flat) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            key = str(key)
            if key in _SKIP or item is None:
                continue
            if key in ARTIFACT_KEYS:
                for target in _path_values(item):
                    flat.paths.append((key, target))
            _walk(item, (*path, key), in_params or key in PARAM_SECTIONS, flat)
        return
    if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        for index, row in enumerate(value):
            label, used = _label(row, index)
            rest = {k: v for k, v in row.items() if k not in used}
            _walk(rest, (*path, label), in_params, flat)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        if path:
            flat.params[clean_key(path)] = param_value(value)
        return
    if in_params:
        flat.params[clean_key(path)] = param_value(value)
    elif math.isfinite(float(value)) and path:
        flat.metrics[clean_key(path)] = float(value)


def _path_values(item: Any) -> Iterator[Path]:
    values = item if isinstance(item, list | tuple) else [item]
    for value in values:
        if isinstance(value, str | Path) and str(value):
            yield Path(value)


def flatten(payload: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Flat:
    """Parameters, metrics and artifact paths of a report's ``to_dict()``.

    Parameters
    ----------
    payload : mapping
        JSON-ready report.
    prefix : tuple of str
        Prepended to every key (``("args",)`` for a job's arguments).

    Returns
    -------
    Flat
    """
    flat = Flat()
    _walk(payload, prefix, bool(prefix) and prefix[0] in PARAM_SECTIONS, flat)
    return flat


def artifact_files(paths: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """``(artifact directory, file)`` pairs to log: files as named, directories walked.

    A directory contributes its report, plot, JSON, CSV and Parquet files
    (:data:`ARTIFACT_SUFFIXES`), each under ``<key>/<its sub-directory>``.
    A directory holding bars or an MLflow database (a data directory) is
    never walked. Files over :data:`MAX_FILE_BYTES` are skipped. Each file
    is listed once.
    """
    seen: set[Path] = set()
    out: list[tuple[str, Path]] = []

    def add(where: str, file: Path) -> None:
        real = file.resolve()
        if real in seen or file.suffix.lower() not in ARTIFACT_SUFFIXES:
            return
        if file.stat().st_size > MAX_FILE_BYTES:
            return
        seen.add(real)
        out.append((where, file))

    for key, target in paths:
        if target.is_file():
            add(key, target)
        elif (
            target.is_dir()
            and not (target / "bars").is_dir()
            and not (target / "mlflow.db").exists()
        ):
            for file in sorted(p for p in target.rglob("*") if p.is_file()):
                sub = file.parent.relative_to(target).as_posix()
                add(key if sub == "." else f"{key}/{sub}", file)
    return out
