"""Where tracking goes: on or off, the MLflow URI, and the artifact root.

The default is a real database with no server: ``sqlite:///<data-dir>/mlflow.db``,
with artifacts under ``<data-dir>/mlartifacts``. ``--tracking-uri`` (or
``$MLFLOW_TRACKING_URI``) points at a shared server instead; ``--no-track``
(or ``$ENGINE_NO_TRACK=1``) turns tracking off. MLflow's file store
(``./mlruns``) is deprecated and never used by default.

Examples
--------
>>> from pathlib import Path
>>> t = Tracking(data_dir=Path("/data"), uri=None)
>>> r = t.resolve(environ={})
>>> r.uri, r.artifact_root
('sqlite:////data/mlflow.db', 'file:///data/mlartifacts')
>>> Tracking(uri="http://mlflow:5000").resolve(environ={}).artifact_root is None
True
>>> Tracking.off().enabled
False
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "ARTIFACTS_DIR",
    "DB_FILE",
    "NO_TRACK_ENV",
    "TRACKING_URI_ENV",
    "ResolvedTracking",
    "Tracking",
    "default_uri",
    "sqlite_path",
]

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
#: Set to 1 (true, yes) to turn tracking off, as ``--no-track`` does.
NO_TRACK_ENV = "ENGINE_NO_TRACK"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"


def default_uri(data_dir: str | os.PathLike[str]) -> str:
    """``sqlite:///<data-dir>/mlflow.db`` with an absolute path.

    Examples
    --------
    >>> default_uri("/data")
    'sqlite:////data/mlflow.db'
    """
    return f"sqlite:///{(Path(data_dir).expanduser().absolute() / DB_FILE).as_posix()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other URI).

    Examples
    --------
    >>> sqlite_path("sqlite:////data/mlflow.db"), sqlite_path("http://host:5000")
    (PosixPath('/data/mlflow.db'), None)
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :])


@dataclass(frozen=True)
class ResolvedTracking:
    """A tracking destination: the MLflow URI and, for SQLite, the artifact root URI."""

    uri: str
    artifact_root: str | None

    @property
    def database(self) -> Path | None:
        """The SQLite file, when the URI is one."""
        return sqlite_path(self.uri)


@dataclass(frozen=True)
class Tracking:
    """Whether and where a command logs to MLflow.

    Attributes
    ----------
    enabled : bool
        False: nothing is logged and MLflow is never imported.
    uri : str, optional
        Tracking (and registry) URI. Default: ``$MLFLOW_TRACKING_URI``, else
        ``sqlite:///<data_dir>/mlflow.db``.
    data_dir : Path, optional
        Data directory of the default URI. Default: the job's own data
        directory when it has one, else ``$ENGINE_DATA_DIR`` or
        ``~/.local/share/engine``.
    """

    enabled: bool = True
    uri: str | None = None
    data_dir: Path | None = None

    @classmethod
    def off(cls) -> Tracking:
        """Tracking turned off."""
        return cls(enabled=False)

    @classmethod
    def from_options(
        cls,
        data_dir: str | os.PathLike[str] | None,
        tracking_uri: str | None = None,
        no_track: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> Tracking:
        """The tracking of a command line: ``--data-dir``, ``--tracking-uri``, ``--no-track``.

        ``$ENGINE_NO_TRACK`` set to ``1``, ``true`` or ``yes`` also turns it off.

        Examples
        --------
        >>> Tracking.from_options(None, environ={"ENGINE_NO_TRACK": "1"}).enabled
        False
        >>> Tracking.from_options("/d", "sqlite:////x.db", environ={}).uri
        'sqlite:////x.db'
        """
        env = os.environ if environ is None else environ
        off = env.get(NO_TRACK_ENV, "").strip().lower() in ("1", "true", "yes")
        if no_track or off:
            return cls.off()
        return cls(uri=tracking_uri, data_dir=Path(data_dir) if data_dir is not None else None)

    def with_data_dir(self, data_dir: str | os.PathLike[str] | None) -> Tracking:
        """Return this tracking with ``data_dir`` filled in when none was given."""
        if self.data_dir is not None or data_dir is None:
            return self
        return replace(self, data_dir=Path(data_dir))

    def resolve(self, environ: Mapping[str, str] | None = None) -> ResolvedTracking:
        """The URI and artifact root this tracking writes to.

        A SQLite URI keeps its artifacts in ``mlartifacts`` beside the
        database file; any other URI leaves them to the server.
        """
        env = os.environ if environ is None else environ
        uri = self.uri or env.get(TRACKING_URI_ENV) or None
        if uri is None:
            if self.data_dir is not None:
                data_dir = self.data_dir
            else:
                from engine.data.paths import resolve_data_dir

                data_dir = resolve_data_dir(None)
            uri = default_uri(data_dir)
        database = sqlite_path(uri)
        root = (database.parent / ARTIFACTS_DIR).absolute().as_uri() if database else None
        return ResolvedTracking(uri=uri, artifact_root=root)
