"""Finding the ONNX file a user means when they name a directory.

``engine predict --model runs/quick/models/holdout00`` names the model
artifact, not its ONNX file. :func:`resolve_onnx_file` takes the one ONNX
file in such a directory, and otherwise says which files there are or which
command makes one, instead of onnxruntime's "Is a directory".
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resolve_onnx_file"]


def resolve_onnx_file(model: str | os.PathLike[str]) -> Path:
    """The ONNX file ``model`` names: the file itself, or the only one in a directory.

    Parameters
    ----------
    model : path-like
        An ``.onnx`` file, or a directory holding exactly one (a model
        artifact after ``engine export-onnx``, or the pipeline's ``onnx/``).

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        No such file or directory, or a directory without an ONNX file (the
        message says how to export one).
    ValueError
        A directory with several ONNX files (they are listed).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "model.onnx").write_bytes(b"")
    >>> resolve_onnx_file(d).name
    'model.onnx'
    """
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"ONNX model {path} does not exist")
    candidates = sorted(path.glob("*.onnx")) or sorted(path.glob("onnx/*.onnx"))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listed = ", ".join(str(p) for p in candidates)
        raise ValueError(f"{path} holds several ONNX models; pass one of them to --model: {listed}")
    if (path / "run.json").is_file() and (path / "models").is_dir():
        models = sorted(p for p in (path / "models").iterdir() if p.is_dir())
        example = models[-1] if models else path / "models" / "<model_id>"
        raise FileNotFoundError(
            f"{path} is a training run, not an ONNX model; export one of its models first, "
            f"e.g. `engine export-onnx --model {example}`, then pass {example / 'model.onnx'}"
        )
    if (path / "metadata.json").is_file():
        raise FileNotFoundError(
            f"{path} is a model artifact without an ONNX file; export it first with "
            f"`engine export-onnx --model {path}`, then pass {path / 'model.onnx'}"
        )
    raise FileNotFoundError(f"no ONNX model in directory {path} (expected a .onnx file)")
