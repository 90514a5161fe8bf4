"""The ``engine models`` jobs: list, show, promote and roll back registered models.

Each job opens the registry (:class:`engine.tracking.registry.Registry`) at
the tracking URI (``sqlite:///<data-dir>/mlflow.db`` by default) and
returns a report with ``to_dict()``. Promotion to ``champion`` is refused
for a version whose export parity failed; every ``champion`` move is
recorded, so ``rollback`` can undo it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.tracking.registry import CHAMPION, Registry, parse_model_uri
from engine.tracking.settings import Tracking

__all__ = [
    "ModelsReport",
    "run_models_list",
    "run_models_promote",
    "run_models_rollback",
    "run_models_show",
]


@dataclass
class ModelsReport:
    """What a ``engine models`` job found or changed."""

    uri: str
    action: str
    models: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    change: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "tracking_uri": self.uri,
            "action": self.action,
            "models": self.models,
            "versions": self.versions,
            "change": self.change,
            "champion_history": self.history,
        }


def run_models_list(tracking: Tracking) -> ModelsReport:
    """Every registered model with its version count, latest version and aliases."""
    registry = Registry(tracking)
    return ModelsReport(uri=registry.where.uri, action="list", models=registry.models())


def run_models_show(tracking: Tracking, ref: str) -> ModelsReport:
    """``NAME`` (every version), ``NAME@ALIAS`` or ``NAME/VERSION`` (that version), with history.

    Raises
    ------
    engine.tracking.registry.RegistryError
        Unknown model, alias or version, or a malformed reference.
    """
    registry = Registry(tracking)
    parsed = parse_model_uri(ref)
    registry.get(parsed)  # unknown model, alias or version: a clear error first
    if parsed.alias is None and parsed.version is None:
        versions = [v.to_dict() for v in registry.versions(parsed.name)]
    else:
        versions = [registry.get(parsed).to_dict()]
    return ModelsReport(
        uri=registry.where.uri,
        action="show",
        versions=versions,
        history=registry.champion_history(parsed.name),
    )


def run_models_promote(
    tracking: Tracking, name: str, version: str, alias: str = CHAMPION, reason: str = ""
) -> ModelsReport:
    """Point ``alias`` at ``version`` (a number or ``latest``).

    Raises
    ------
    engine.tracking.registry.RegistryError
        Unknown model or version; a champion whose export parity failed.
    """
    registry = Registry(tracking)
    change = registry.set_alias(
        parse_model_uri(name).name, version, alias, reason=reason or "engine models promote"
    )
    return ModelsReport(
        uri=registry.where.uri,
        action="promote",
        change=change,
        history=registry.champion_history(change["name"]),
    )


def run_models_rollback(tracking: Tracking, name: str, reason: str = "") -> ModelsReport:
    """Move ``champion`` back to the champion it replaced, and record the rollback.

    Raises
    ------
    engine.tracking.registry.RegistryError
        Unknown model, no champion, or no earlier champion.
    """
    registry = Registry(tracking)
    change = registry.rollback(parse_model_uri(name).name, reason=reason)
    return ModelsReport(
        uri=registry.where.uri,
        action="rollback",
        change=change,
        history=registry.champion_history(change["name"]),
    )
