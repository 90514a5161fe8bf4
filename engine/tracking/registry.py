"""The model registry: ONNX files as versions of registered models, aliases, promotion, rollback.

* ``engine export-onnx`` saves the ONNX file as an MLflow model
  (:func:`mlflow.onnx.save_model`, byte for byte: its SHA-256 is checked
  after saving), logs it to the export's run and registers it as a new
  version of ``pattern-lstm`` (other model kinds: ``pattern-<kind>``). The
  version's tags carry the ONNX metadata that matters for serving and
  audit: feature order, patterns, training window, data fingerprint,
  parity and the file's ``sha256``.
* Aliases, not the deprecated stages: ``champion`` (what serves) and
  ``challenger`` (what is being evaluated against it).
* Every move of ``champion`` is recorded in the registered model's tag
  ``engine.champion_history`` (version, time, reason, evidence run, the
  champion it replaced), which is what :meth:`Registry.rollback` reads.
* :meth:`Registry.fetch_onnx` resolves ``models:/NAME@ALIAS`` or
  ``models:/NAME/VERSION``, downloads the file and refuses it when its
  SHA-256 differs from the version's tag.

Examples
--------
>>> parse_model_uri("models:/pattern-lstm@champion")
ModelRef(name='pattern-lstm', alias='champion', version=None)
>>> parse_model_uri("pattern-lstm/3").uri
'models:/pattern-lstm/3'
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.tracking.client import mlflow_quiet, open_client
from engine.tracking.reach import GuardedClient, check_reachable, mask_uri
from engine.tracking.settings import ResolvedTracking, Tracking

__all__ = [
    "ALIASES",
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_MODEL_NAME",
    "HISTORY_TAG",
    "ModelRef",
    "ModelVersion",
    "Registry",
    "RegistryError",
    "champion_stack",
    "is_model_uri",
    "model_name_for",
    "parse_model_uri",
]

MODELS_SCHEME = "models:/"
DEFAULT_MODEL_NAME = "pattern-lstm"
CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
HISTORY_TAG = "engine.champion_history"
SHA_TAG = "sha256"
PARITY_TAG = "parity_ok"
#: The ONNX file inside the registered MLflow model directory.
ONNX_FILE = "model.onnx"
_HISTORY_KEPT = 200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RegistryError(ValueError):
    """An unknown model, alias or version, a bad ``models:/`` URI, or a file failing its check."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model, optionally one alias or one version of it."""

    name: str
    alias: str | None = None
    version: int | None = None

    @property
    def uri(self) -> str:
        """``models:/NAME``, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
        if self.alias:
            return f"{MODELS_SCHEME}{self.name}@{self.alias}"
        if self.version is not None:
            return f"{MODELS_SCHEME}{self.name}/{self.version}"
        return f"{MODELS_SCHEME}{self.name}"


def is_model_uri(text: Any) -> bool:
    """True for a ``models:/...`` string (a registry reference, not a file).

    Examples
    --------
    >>> is_model_uri("models:/pattern-lstm@champion"), is_model_uri("model.onnx")
    (True, False)
    """
    return isinstance(text, str) and text.startswith("models:")


def parse_model_uri(text: str) -> ModelRef:
    """``[models:/]NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` as a :class:`ModelRef`.

    Raises
    ------
    RegistryError
        Anything else, with the accepted forms.

    Examples
    --------
    >>> parse_model_uri("models:/m/2")
    ModelRef(name='m', alias=None, version=2)
    >>> parse_model_uri("models:/m/latest")
    Traceback (most recent call last):
    ...
    engine.tracking.registry.RegistryError: bad model reference 'models:/m/latest': ...
    """
    forms = (
        "use models:/NAME@ALIAS (e.g. models:/pattern-lstm@champion) or models:/NAME/VERSION "
        "(a version number)"
    )
    body = str(text)
    if body.startswith("models:"):
        body = body[len("models:") :].lstrip("/")
    name, alias, version = body, None, None
    if "@" in body:
        name, alias = body.split("@", 1)
        if not alias or not _NAME.match(alias):
            raise RegistryError(f"bad model reference {text!r}: {forms}")
    elif "/" in body:
        name, number = body.split("/", 1)
        if not number.isdigit() or int(number) < 1:
            raise RegistryError(f"bad model reference {text!r}: {forms}")
        version = int(number)
    if not name or not _NAME.match(name):
        raise RegistryError(f"bad model reference {text!r}: {forms}")
    return ModelRef(name, alias, version)


def model_name_for(metadata: Mapping[str, Any]) -> str:
    """The registered-model name of an exported model: ``pattern-<kind>`` (LSTM by default).

    Examples
    --------
    >>> model_name_for({}), model_name_for({"model_kind": "lightgbm"})
    ('pattern-lstm', 'pattern-lightgbm')
    """
    return f"pattern-{metadata.get('model_kind') or 'lstm'}"


@dataclass
class ModelVersion:
    """One registered version."""

    name: str
    version: int
    aliases: list[str]
    tags: dict[str, str]
    run_id: str | None
    source: str
    created: str
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"{MODELS_SCHEME}{self.name}/{self.version}"

    def json_tag(self, key: str) -> Any:
        """A tag decoded as JSON (None when missing; the raw text when not JSON)."""
        text = self.tags.get(key)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; JSON-valued tags decoded."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "aliases": sorted(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "created": self.created,
            "description": self.description,
            "tags": {k: self.json_tag(k) for k in sorted(self.tags)},
        }


def _stamp(millis: int | None) -> str:
    if not millis:
        return ""
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="seconds")


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class Registry:
    """The MLflow model registry at one tracking destination.

    Parameters
    ----------
    where : Tracking or ResolvedTracking
        Where the registry lives (the tracking URI is the registry URI).
    """

    def __init__(self, where: Tracking | ResolvedTracking) -> None:
        self.where = where.resolve() if isinstance(where, Tracking) else where
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The MLflow client (opened on first use)."""
        if self._client is None:
            check_reachable(self.where.uri, RegistryError)
            self._client = GuardedClient(
                lambda: open_client(self.where), self.where.uri, RegistryError
            )
        return self._client

    # ------------------------------------------------------------ reading

    def _version(self, mv: Any) -> ModelVersion:
        return ModelVersion(
            name=mv.name,
            version=int(mv.version),
            aliases=list(getattr(mv, "aliases", []) or []),
            tags=dict(mv.tags or {}),
            run_id=mv.run_id or None,
            source=mv.source,
            created=_stamp(mv.creation_timestamp),
            description=mv.description or "",
        )

    def _model(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            with mlflow_quiet():
                return self.client.get_registered_model(name)
        except MlflowException:  # an answer: no such model (failures are RegistryErrors)
            pass
        known = ", ".join(m["name"] for m in self.models()) or "none"
        raise RegistryError(
            f"no registered model {name!r} at {mask_uri(self.where.uri)} (registered: {known}); "
            "`engine export-onnx` registers one"
        )

    def models(self) -> list[dict[str, Any]]:
        """Every registered model: name, versions, latest version, aliases."""
        with mlflow_quiet():
            found = self.client.search_registered_models(max_results=1000)
        out = []
        for model in sorted(found, key=lambda m: m.name):
            versions = self.versions(model.name)
            out.append(
                {
                    "name": model.name,
                    "versions": len(versions),
                    "latest": max((v.version for v in versions), default=None),
                    "aliases": {a: int(v) for a, v in sorted((model.aliases or {}).items())},
                    "updated": _stamp(model.last_updated_timestamp),
                }
            )
        return out

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first, with its aliases."""
        with mlflow_quiet():
            found = self.client.search_model_versions(f"name = '{name}'", max_results=10_000)
            model = self.client.get_registered_model(name) if found else None
        by_version: dict[int, list[str]] = {}
        for alias, number in ((model.aliases or {}) if model else {}).items():
            by_version.setdefault(int(number), []).append(alias)
        versions = sorted((self._version(v) for v in found), key=lambda v: v.version)
        for v in versions:  # search results carry no aliases; the registered model does
            v.aliases = sorted(by_version.get(v.version, []))
        return versions

    def get(self, ref: ModelRef | str) -> ModelVersion:
        """The version a reference names (``NAME`` alone: its latest version).

        Raises
        ------
        RegistryError
            Unknown model, alias or version, naming what exists.
        """
        from mlflow.exceptions import MlflowException

        ref = parse_model_uri(ref) if isinstance(ref, str) else ref
        model = self._model(ref.name)
        aliases = dict(model.aliases or {})
        if ref.alias is not None:
            if ref.alias not in aliases:
                listed = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
                raise RegistryError(
                    f"{ref.name} has no alias {ref.alias!r} (aliases: {listed}); set one with "
                    f"`engine models promote {ref.name} --version V --alias {ref.alias}`"
                )
            version = int(aliases[ref.alias])
        elif ref.version is not None:
            version = ref.version
        else:
            versions = self.versions(ref.name)
            if not versions:
                raise RegistryError(f"{ref.name} has no versions")
            return versions[-1]
        try:
            with mlflow_quiet():
                return self._version(self.client.get_model_version(ref.name, str(version)))
        except MlflowException:  # an answer: no such version
            pass
        have = ", ".join(str(v.version) for v in self.versions(ref.name)) or "none"
        raise RegistryError(f"{ref.name} has no version {version} (versions: {have})")

    def fetch_onnx(self, ref: ModelRef | str) -> tuple[bytes, ModelVersion]:
        """The ONNX file of a version, checked against its SHA-256 tag.

        Raises
        ------
        RegistryError
            Unknown reference, a version without a ``sha256`` tag or without
            an ONNX file, or a file whose SHA-256 differs from the tag.
        """
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        version = self.get(ref)
        expected = version.tags.get(SHA_TAG)
        label = f"{version.uri}"
        if not expected:
            raise RegistryError(
                f"{label} has no {SHA_TAG!r} tag, so its file cannot be verified; "
                "register it again with `engine export-onnx`"
            )
        with mlflow_quiet(), tempfile.TemporaryDirectory(prefix="engine-model-") as tmp:
            location = self._artifact_location(version)
            try:
                # this registry's URI, not the process's: `mlflow-artifacts:/` locations of
                # a server given by --tracking-uri resolve against it
                repository = get_artifact_repository(
                    location, tracking_uri=self.where.uri, registry_uri=self.where.uri
                )
                local = repository.download_artifacts(ONNX_FILE, tmp)
            except Exception as exc:
                raise RegistryError(
                    mask_uri(f"{label}: cannot read {ONNX_FILE} from {location}: {exc}")
                ) from None
            data = Path(local).read_bytes()
        actual = sha256_bytes(data)
        if actual != expected:
            raise RegistryError(
                f"{label}: {ONNX_FILE} has SHA-256 {actual[:16]}... but the registry tag says "
                f"{expected[:16]}...; the stored file was changed after registration, refusing it"
            )
        return data, version

    def _artifact_location(self, version: ModelVersion) -> str:
        """Where a version's MLflow model directory lives (``runs:/`` resolved at this URI)."""
        location = self.client.get_model_version_download_uri(version.name, str(version.version))
        if location.startswith("runs:/"):
            run_id, _, path = location[len("runs:/") :].partition("/")
            base = self.client.get_run(run_id).info.artifact_uri.rstrip("/")
            location = f"{base}/{path}" if path else base
        return location

    def champion_history(self, name: str) -> list[dict[str, Any]]:
        """Every recorded move of ``champion`` for ``name``, oldest first."""
        text = (self._model(name).tags or {}).get(HISTORY_TAG)
        return list(json.loads(text)) if text else []

    # ------------------------------------------------------------ writing

    def register_onnx(
        self,
        path: str | Path,
        *,
        name: str,
        run_id: str,
        tags: Mapping[str, str],
        description: str = "",
    ) -> ModelVersion:
        """Log an ONNX file to a run as an MLflow ONNX model and register it as a new version.

        Parameters
        ----------
        path : path
            The exported ONNX file.
        name : str
            Registered model name (created if new).
        run_id : str
            The run that produced the file (the model is logged under it).
        tags : mapping
            Version tags (text); ``sha256`` is set here from the file.
        description : str
            Version description.

        Raises
        ------
        RegistryError
            The saved MLflow model's file differs from ``path`` byte for byte.
        """
        import mlflow.onnx
        import onnx
        import onnxruntime
        from mlflow.exceptions import MlflowException

        if not _NAME.match(name):
            raise RegistryError(f"bad registered model name {name!r}: letters, digits, . _ -")
        data = Path(path).read_bytes()
        digest = sha256_bytes(data)
        with mlflow_quiet(), tempfile.TemporaryDirectory(prefix="engine-register-") as tmp:
            local = Path(tmp) / "model"
            mlflow.onnx.save_model(
                onnx.load_from_string(data),
                str(local),
                save_as_external_data=False,
                pip_requirements=[
                    f"onnx=={onnx.__version__}",
                    f"onnxruntime=={onnxruntime.__version__}",
                ],
            )
            if sha256_bytes((local / ONNX_FILE).read_bytes()) != digest:
                raise RegistryError(
                    f"mlflow.onnx rewrote {path} when saving it; the registered file would not "
                    "be the exported one"
                )
            artifact_path = f"registered/{name}"
            self.client.log_artifacts(run_id, str(local), artifact_path=artifact_path)
            try:
                self.client.create_registered_model(name)
            except MlflowException:
                pass  # it exists
            mv = self.client.create_model_version(
                name,
                f"runs:/{run_id}/{artifact_path}",
                run_id=run_id,
                tags={**dict(tags), SHA_TAG: digest},
                description=description,
            )
        return self._version(mv)

    def set_version_tags(self, version: ModelVersion, tags: Mapping[str, str]) -> None:
        """Add tags to a version."""
        with mlflow_quiet():
            for key, value in tags.items():
                self.client.set_model_version_tag(version.name, str(version.version), key, value)

    def _write_history(self, name: str, history: list[dict[str, Any]]) -> None:
        text = json.dumps(history[-_HISTORY_KEPT:], sort_keys=True)
        with mlflow_quiet():
            self.client.set_registered_model_tag(name, HISTORY_TAG, text)

    def set_alias(
        self,
        name: str,
        version: int | str,
        alias: str = CHAMPION,
        *,
        reason: str = "",
        evidence: str | None = None,
    ) -> dict[str, Any]:
        """Point ``alias`` at a version; a ``champion`` move is recorded for rollback.

        Parameters
        ----------
        name : str
        version : int or "latest"
        alias : str
            ``champion``, ``challenger`` or any other alias.
        reason : str
            Why (recorded with a champion move).
        evidence : str, optional
            The MLflow run holding the evidence (a retrain decision).

        Returns
        -------
        dict
            ``name``, ``alias``, ``version``, ``previous`` (the version the
            alias pointed at before, or None).

        Raises
        ------
        RegistryError
            Unknown model or version; a ``champion`` whose export parity
            failed or was never recorded.
        """
        if not _NAME.match(alias):
            raise RegistryError(f"bad alias {alias!r}: letters, digits, . _ -")
        if version == "latest":
            target = self.get(ModelRef(name))
        else:
            if str(version).isdigit() is False:
                raise RegistryError(
                    f"--version must be a version number or 'latest', got {version!r}"
                )
            target = self.get(ModelRef(name, version=int(version)))
        if alias == CHAMPION and target.tags.get(PARITY_TAG) != "true":
            state = target.tags.get(PARITY_TAG, "not recorded")
            raise RegistryError(
                f"{target.uri} cannot be champion: its export parity check is {state!r}; "
                "nothing is promoted whose parity failed"
            )
        model = self._model(name)
        before = (model.aliases or {}).get(alias)
        previous = int(before) if before is not None else None
        if alias == CHAMPION and previous != target.version:  # recorded first, then moved
            history = self.champion_history(name)
            history.append(
                {
                    "version": target.version,
                    "previous": previous,
                    "at": _now(),
                    "reason": reason,
                    "evidence": evidence,
                }
            )
            self._write_history(name, history)
        with mlflow_quiet():
            self.client.set_registered_model_alias(name, alias, str(target.version))
        return {"name": name, "alias": alias, "version": target.version, "previous": previous}

    def rollback(self, name: str, *, reason: str = "") -> dict[str, Any]:
        """Move ``champion`` back to the champion it replaced, and record it.

        Successive rollbacks walk back through the history like a stack
        (:func:`champion_stack`): each goes to the champion before the
        current one's promotion, until none is left.

        Raises
        ------
        RegistryError
            No champion, a champion the history does not end with, or no
            earlier champion to go back to.
        """
        model = self._model(name)
        current = (model.aliases or {}).get(CHAMPION)
        if current is None:
            raise RegistryError(f"{name} has no champion to roll back")
        current = int(current)
        history = self.champion_history(name)
        stack = champion_stack(history)
        if stack and stack[-1] != current:
            raise RegistryError(
                f"{name}: champion v{current} was set outside the engine (its recorded history "
                f"ends with v{stack[-1]}); promote the version you want with `engine models "
                "promote`"
            )
        if len(stack) < 2:
            raise RegistryError(
                f"{name}: champion v{current} replaced no earlier champion; nothing to roll back to"
            )
        previous = stack[-2]
        history.append(
            {
                "version": previous,
                "previous": current,
                "at": _now(),
                "reason": reason or f"rollback from v{current}",
                "evidence": None,
                "rollback_of": current,
            }
        )
        self._write_history(name, history)  # recorded first, then moved
        with mlflow_quiet():
            self.client.set_registered_model_alias(name, CHAMPION, str(previous))
        return {"name": name, "alias": CHAMPION, "version": previous, "previous": current}


def champion_stack(history: list[Mapping[str, Any]]) -> list[int]:
    """The champions a rollback walks back through, oldest first; the last is the current one.

    A promotion pushes its version (after the champion it replaced, when
    that is not already on top); a rollback (an entry with
    ``rollback_of``) pops one.

    Examples
    --------
    >>> moves = [{"version": v, "previous": p} for v, p in [(1, None), (2, 1), (3, 2), (2, 3)]]
    >>> champion_stack(moves)
    [1, 2, 3, 2]
    >>> champion_stack([*moves, {"version": 3, "previous": 2, "rollback_of": 2}])
    [1, 2, 3]
    """
    stack: list[int] = []
    for entry in history:
        if entry.get("rollback_of") is not None:
            if stack:
                stack.pop()
            continue
        previous = entry.get("previous")
        if previous is not None and (not stack or stack[-1] != previous):
            stack.append(int(previous))
        stack.append(int(entry["version"]))
    return stack
