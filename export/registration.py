"""Register an exported ONNX file in the model registry, tagged with its own metadata.

:func:`register_export` is what ``engine export-onnx`` (and the pipeline)
call after the files are written: one MLflow run of the ``export-onnx``
experiment records the export report, and the fp32 file becomes a new
version of ``pattern-lstm`` (``pattern-<kind>`` for other model kinds). A
failure warns (:class:`engine.tracking.TrackingWarning`) and leaves the
exported files as they are.

The version's tags (:func:`registry_tags`) are the metadata a reviewer or a
server checks: ``model_id``, ``model_kind``, ``feature_names`` (order),
``pattern_names``, ``train_window`` (train / validation / test periods,
``train_end``, ``embargo_end``), ``data_fingerprint``, ``parity`` and
``parity_ok``, ``quantization``, ``onnx_file`` and, set by the registry
itself, ``sha256``.

Examples
--------
>>> tags = registry_tags({"model_id": "wf00", "feature_names": ["a"], "pattern_names": ["p"],
...                       "split": {"train_end": "2020-01-31"}, "data_fingerprint": "ab",
...                       "quantization": "none"},
...                      [{"inputs": "held-out", "max_abs_diff": 1e-7, "ok": True}], "model.onnx")
>>> tags["parity_ok"], tags["model_kind"], tags["train_window"]
('true', 'lstm', '{"train_end": "2020-01-31"}')
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.tracking import Tracking, track_job
from engine.tracking.registry import (
    CHAMPION,
    PARITY_TAG,
    Registry,
    model_name_for,
)

__all__ = ["register_export", "registry_tags"]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def registry_tags(
    values: Mapping[str, Any], parity: Sequence[Mapping[str, Any]], onnx_file: str
) -> dict[str, str]:
    """Version tags from an exported file's metadata values and its parity figures."""
    return {
        "model_id": str(values.get("model_id")),
        "model_kind": str(values.get("model_kind") or "lstm"),
        "feature_names": _json(values.get("feature_names")),
        "pattern_names": _json(values.get("pattern_names")),
        "train_window": _json(values.get("split") or {}),
        "data_fingerprint": str(values.get("data_fingerprint")),
        "parity": _json(list(parity)),
        PARITY_TAG: "true" if parity and all(p.get("ok") for p in parity) else "false",
        "quantization": str(values.get("quantization", "none")),
        "onnx_file": onnx_file,
    }


def register_export(
    report: Any,
    values: Mapping[str, Any],
    tracking: Tracking | None,
    *,
    name: str | None = None,
    champion_if_none: bool = False,
    data_dir: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Log an export's report and register its fp32 file (with a champion if there is none).

    Parameters
    ----------
    report : export.onnx_export.ExportReport
        The finished export (its files are written).
    values : mapping
        The metadata written into the file.
    tracking : Tracking, optional
        None or disabled: nothing is logged or registered.
    name : str, optional
        Registered model name (default :func:`model_name_for`).
    champion_if_none : bool
        Also point ``champion`` at the new version when the model has no
        champion yet (the pipeline does).
    data_dir : path, optional
        The model's data directory, for the default tracking database.
    params : mapping, optional
        The export's arguments, logged as ``args.*``.

    Returns
    -------
    dict or None
        ``name``, ``version``, ``uri``, ``sha256`` and ``champion`` (the
        champion's version after the call) when registered; None otherwise.
    """
    if tracking is None or not tracking.enabled:
        return None
    name = name or model_name_for(values)
    registered: dict[str, Any] | None = None
    with track_job("export-onnx", params, tracking, data_dir=data_dir) as run:
        run.log_report(report.to_dict())
        if not run.active:
            return None
        with run.attempt(f"register {report.path} as a version of {name}"):
            registry = Registry(run.where)  # type: ignore[arg-type]
            tags = registry_tags(values, [p.to_dict() for p in report.parity], report.path.name)
            version = registry.register_onnx(
                report.path,
                name=name,
                run_id=run.run_id,
                tags=tags,
                description=f"{values.get('model_id')} exported from {values.get('source', '')}",
            )
            champion = None
            aliases = next((m["aliases"] for m in registry.models() if m["name"] == name), {})
            if CHAMPION in aliases:
                champion = aliases[CHAMPION]
            elif champion_if_none:
                registry.set_alias(
                    name,
                    version.version,
                    CHAMPION,
                    reason="first registered model (no champion yet)",
                    evidence=run.run_id,
                )
                champion = version.version
            registered = {
                "name": name,
                "version": version.version,
                "uri": version.uri,
                "sha256": version.tags.get("sha256"),
                "champion": champion,
                "run_id": run.run_id,
            }
            run.set_tags({"engine.registered": version.uri})
    return registered
