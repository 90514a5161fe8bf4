"""Model artifact directories: write atomically, load only what checks out.

A model artifact is a directory::

    model.keras               the trained Keras model (best epoch's weights)
    history.csv               one row per epoch (see engine.model.trainer.FitResult)
    test_predictions.parquet  the model's out-of-sample predictions
    metadata.json             everything needed to use and audit the model,
                              including the SHA-256 of every other file

The directory is staged under a temporary name beside its destination and
renamed into place, so a crash or Ctrl-C never leaves a half-written model
under the final name. Loading verifies every checksum and refuses a model
whose feature names or order differ from the engine's.

Reading metadata and verifying checksums needs no TensorFlow;
:func:`load_model_artifact` imports Keras only when it loads the model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.features.build import FEATURE_NAMES
from engine.io import fsync_dir, staging_dir

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "ARTIFACT_FORMAT",
    "HISTORY_FILE",
    "METADATA_FILE",
    "MODEL_FILE",
    "PREDICTIONS_FILE",
    "ArtifactError",
    "ModelArtifact",
    "check_feature_order",
    "load_model_artifact",
    "model_choices",
    "read_metadata",
    "sha256_file",
    "write_model_artifact",
]

ARTIFACT_FORMAT = "pattern-engine-model/1"
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.csv"
PREDICTIONS_FILE = "test_predictions.parquet"


class ArtifactError(ValueError):
    """A model artifact is missing, corrupted, or does not fit this engine."""


@dataclass
class ModelArtifact:
    """A loaded, verified model artifact."""

    directory: Path
    model: keras.Model
    metadata: dict[str, Any]
    history: pl.DataFrame

    @property
    def model_id(self) -> str:
        """The artifact's model id."""
        return str(self.metadata["model_id"])


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_fsynced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_model_artifact(
    directory: str | os.PathLike[str],
    *,
    model: keras.Model,
    metadata: dict[str, Any],
    history: pl.DataFrame,
    predictions: pl.DataFrame | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model artifact directory atomically.

    Parameters
    ----------
    directory : path
        Final location. Its parent is created if needed.
    model : keras.Model
    metadata : dict
        JSON-serialisable; must hold ``model_id`` and ``feature_names``.
        ``format`` and ``files`` (name -> SHA-256) are added here.
    history : pl.DataFrame
        Per-epoch history, written as CSV.
    predictions : pl.DataFrame, optional
        The model's test predictions, written as Parquet.
    overwrite : bool
        Replace an existing artifact at ``directory``; otherwise an existing
        directory is an error.

    Returns
    -------
    Path
        ``directory``.
    """
    final = Path(directory)
    for key in ("model_id", "feature_names"):
        if key not in metadata:
            raise ValueError(f"artifact metadata needs {key!r}")
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass overwrite=True to replace it")
    stage = staging_dir(final.parent, prefix=f".{final.name}.")  # umask permissions, not 700
    try:
        model.save(stage / MODEL_FILE)
        _write_fsynced(stage / HISTORY_FILE, history.write_csv().encode())
        if predictions is not None:
            buffer = io.BytesIO()
            predictions.write_parquet(buffer)
            _write_fsynced(stage / PREDICTIONS_FILE, buffer.getvalue())
        files = {p.name: sha256_file(p) for p in sorted(stage.iterdir())}
        payload = {**metadata, "format": ARTIFACT_FORMAT, "files": files}
        text = json.dumps(payload, indent=2, sort_keys=True, default=str)
        _write_fsynced(stage / METADATA_FILE, text.encode())
        fsync_dir(stage)
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final


def model_choices(directory: str | os.PathLike[str]) -> list[Path]:
    """The model artifact directories of a training run (``<run>/models/<model_id>``), sorted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("wf01", "wf00"):
    ...     (run / "models" / name).mkdir(parents=True)
    ...     _ = (run / "models" / name / METADATA_FILE).write_text("{}")
    >>> [p.name for p in model_choices(run)]
    ['wf00', 'wf01']
    """
    models = Path(directory) / "models"
    if not models.is_dir():
        return []
    return sorted(p for p in models.iterdir() if (p / METADATA_FILE).is_file())


def _not_an_artifact(directory: Path) -> str:
    """Why ``directory`` is not an artifact, and which directories are."""
    if not directory.exists():
        return f"{directory} is not a model artifact: the directory does not exist"
    choices = model_choices(directory)
    if choices:
        names = ", ".join(p.name for p in choices)
        return (
            f"{directory} is a training run, not one model; pass one of its model directories "
            f"({directory / 'models'}/: {names}), e.g. --model {choices[-1]}"
        )
    return f"{directory} is not a model artifact: {METADATA_FILE} is missing"


def read_metadata(directory: str | os.PathLike[str], *, verify: bool = True) -> dict[str, Any]:
    """Read ``metadata.json`` and (by default) verify every listed file's SHA-256.

    Raises
    ------
    ArtifactError
        Not an artifact directory, unreadable metadata, no checksums, a
        missing file or a checksum mismatch (naming the file).
    """
    directory = Path(directory)
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(_not_an_artifact(directory))
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{path} is not a JSON object")
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path}: format {metadata.get('format')!r} is not {ARTIFACT_FORMAT!r}")
    if verify:
        files = metadata.get("files")
        if not isinstance(files, dict):
            raise ArtifactError(f"{path} lists no checksums; the artifact cannot be verified")
        for name, expected in sorted(files.items()):
            file = directory / name
            if not file.is_file():
                raise ArtifactError(f"{file} is missing (listed in {METADATA_FILE})")
            actual = sha256_file(file)
            if actual != expected:
                raise ArtifactError(
                    f"{file} is corrupted: SHA-256 {actual[:16]}... does not match "
                    f"{expected[:16]}... recorded in {METADATA_FILE}"
                )
    return metadata


def check_feature_order(
    metadata: dict[str, Any], feature_names: Sequence[str] = FEATURE_NAMES, *, source: str = ""
) -> None:
    """Refuse a model whose feature names or their order differ from ``feature_names``.

    Raises
    ------
    ArtifactError
        Naming the first position that differs.
    """
    have = list(metadata.get("feature_names", []))
    want = list(feature_names)
    if have == want:
        return
    where = f"{source}: " if source else ""
    if sorted(have) == sorted(want):
        k = next(i for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b)
        raise ArtifactError(
            f"{where}the model's features are in a different order from the engine's: "
            f"position {k} is {have[k]!r} in the model but {want[k]!r} in the engine"
        )
    missing = [f for f in want if f not in have]
    extra = [f for f in have if f not in want]
    raise ArtifactError(
        f"{where}the model's features differ from the engine's: missing {missing}, unknown {extra}"
    )


def load_model_artifact(
    directory: str | os.PathLike[str], *, feature_names: Sequence[str] = FEATURE_NAMES
) -> ModelArtifact:
    """Load a verified model artifact.

    Parameters
    ----------
    directory : path
    feature_names : sequence of str
        The features, in order, the caller will feed (default: the engine's).

    Returns
    -------
    ModelArtifact

    Raises
    ------
    ArtifactError
        See :func:`read_metadata` and :func:`check_feature_order`.
    """
    import keras

    directory = Path(directory)
    metadata = read_metadata(directory)
    unverified = [n for n in (MODEL_FILE, HISTORY_FILE) if n not in metadata["files"]]
    if unverified:
        raise ArtifactError(
            f"{directory / METADATA_FILE} lists no checksum for {', '.join(unverified)}; "
            "the model cannot be verified"
        )
    check_feature_order(metadata, feature_names, source=str(directory))
    model = keras.saving.load_model(directory / MODEL_FILE, compile=False)
    history = pl.read_csv(directory / HISTORY_FILE)
    return ModelArtifact(directory=directory, model=model, metadata=metadata, history=history)
