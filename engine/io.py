"""Atomic writes: every file the engine writes goes through here.

The bytes go to a hidden temporary file in the target's directory, are
fsync'ed, and the temporary file is renamed over the target with
:func:`os.replace`. A failed write leaves the old file intact and no
temporary file behind.

Files and staging directories get the permissions an ordinary ``open`` or
``mkdir`` would give them under the process umask (``0o666`` and ``0o777``
less the umask: 644 and 755 under the usual 022), not the private 600 and
700 of :mod:`tempfile`. A directory that cannot be written is reported as a
:class:`PermissionError` naming the path, never as a bare ``[Errno 13]``.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

__all__ = [
    "FILE_MODE",
    "DIR_MODE",
    "atomic_write_bytes",
    "atomic_write_json",
    "csv_bytes",
    "current_umask",
    "exclusive_lock",
    "fsync_dir",
    "iso",
    "make_dirs",
    "parquet_bytes",
    "stage_bytes",
    "staging_dir",
    "write_parquet_atomic",
]

#: Permissions before the umask: what ``open(path, "w")`` and ``mkdir`` use.
FILE_MODE = 0o666
DIR_MODE = 0o777


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by
    setting and restoring it (:func:`os.umask` has no getter).

    Examples
    --------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


#: errnos that mean "this location cannot be written": permission, read-only file system.
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def _unwritable(path: Path, exc: OSError) -> PermissionError:
    """A permission error that names the path, the reason and what to do."""
    reason = os.strerror(exc.errno).lower() if exc.errno else "permission denied"
    return PermissionError(
        f"cannot write to {path}: {reason}; make it writable or choose another "
        "location (--out, --data-dir)",
    )


def make_dirs(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` and its parents (umask permissions); name it when it cannot be made.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> made = make_dirs(pathlib.Path(tempfile.mkdtemp()) / "a" / "b")
    >>> made.is_dir()
    True
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FileExistsError(
            f"cannot create directory {directory}: a file is in the way"
        ) from None
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(directory, exc) from None
    return directory


@contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (made if absent) across processes.

    Another holder, in this process or another, waits until it is released.
    An unwritable directory is named, as every write here names it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with exclusive_lock(pathlib.Path(tempfile.mkdtemp()) / ".lock"):
    ...     pass
    """
    path = Path(path)
    make_dirs(path.parent)
    try:
        handle = open(path, "a")
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(path.parent, exc) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def staging_dir(parent: Path, prefix: str) -> Path:
    """A new hidden directory in ``parent`` with the umask's permissions (not 700).

    It is meant to be filled and then renamed into place with :func:`os.replace`.
    """
    make_dirs(parent)
    try:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(parent, exc) from None
    os.chmod(path, DIR_MODE & ~current_umask())
    return path


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
    """Write ``data`` to a hidden temporary file next to ``path`` and fsync it.

    The file gets the umask's permissions, as the renamed target should.
    """
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(path.parent, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE & ~current_umask())
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
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in _UNWRITABLE:
            raise
        raise _unwritable(path, exc) from None
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
