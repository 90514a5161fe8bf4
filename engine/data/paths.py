"""Where the engine keeps its data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "ENGINE_DATA_DIR"


def default_data_dir() -> Path:
    """Return the default data directory: ``$XDG_DATA_HOME/engine`` or ``~/.local/share/engine``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "engine"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data directory: explicit argument, then ``ENGINE_DATA_DIR``, then the default.

    Examples
    --------
    >>> str(resolve_data_dir("/tmp/x"))
    '/tmp/x'
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return default_data_dir()
