"""Atomic writes: every file the engine writes goes through here.

The bytes go to a hidden temporary file in the target's directory, are
fsync'ed, and the temporary file is renamed over the target with
:func:`os.replace`. A failed write leaves the old file intact and no
temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "csv_bytes",
    "fsync_dir",
    "iso",
    "parquet_bytes",
    "stage_bytes",
    "write_parquet_atomic",
]


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (after a rename into it) where the platform allows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def stage_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a hidden temporary file next to ``path`` and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> atomic_write_bytes(target, b"hello")
    >>> target.read_bytes()
    b'hello'
    """
    path = Path(path)
    tmp = stage_bytes(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """``frame`` as Parquet bytes."""
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """``frame`` as CSV bytes."""
    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue()


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` as Parquet via a temporary file and a rename."""
    atomic_write_bytes(path, parquet_bytes(frame))
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON (sorted keys; dates as ISO strings) atomically."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(path, text.encode())


def iso(value: date | None) -> str | None:
    """ISO date string, or None.

    Examples
    --------
    >>> iso(date(2020, 1, 2)), iso(None)
    ('2020-01-02', None)
    """
    return value.isoformat() if value is not None else None
