"""Opening MLflow: one client per destination, experiments created once, MLflow kept quiet.

Several processes may share one SQLite database (a training run and a drift
check started together). Two races are closed here with a lock file beside
the database (``mlflow.db.lock``): creating the tables of a new database
(MLflow's migrations are not safe to run twice at once) and creating the
same experiment (MLflow issue #4123). Ordinary writes need no lock; SQLite
serialises them and MLflow's engine waits on a busy database.

MLflow is imported only inside these functions, so a command that does not
track never pays for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.tracking.settings import ResolvedTracking

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

__all__ = ["EXPERIMENT_PREFIX", "experiment_id", "experiment_name", "mlflow_quiet", "open_client"]

#: Experiments are named ``pattern-engine/<command>``.
EXPERIMENT_PREFIX = "pattern-engine"
# MLflow 3.17's ORM asks SQLAlchemy 2.1 for the ``noload`` loader strategy, which
# SQLAlchemy deprecates; the warning is about MLflow's internals, and nothing a
# user of the engine can act on, so it is silenced where MLflow is called.
_SQLALCHEMY_NOLOAD = r"The ``noload`` loader strategy is deprecated"
_LOGGERS = ("mlflow", "alembic")
_clients: dict[str, Any] = {}


@contextlib.contextmanager
def mlflow_quiet() -> Iterator[None]:
    """MLflow calls without its INFO logs, progress bars and SQLAlchemy's noload warning."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    previous = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SQLALCHEMY_NOLOAD)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if previous is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = previous


@contextlib.contextmanager
def _database_lock(database: Path | None) -> Iterator[None]:
    """An exclusive lock on ``<database>.lock`` (no lock for non-SQLite URIs)."""
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_client(where: ResolvedTracking) -> MlflowClient:
    """An :class:`mlflow.MlflowClient` for tracking and registry at ``where.uri``.

    A new SQLite database gets its tables here, under the lock. Clients are
    cached per URI for the life of the process.
    """
    cached = _clients.get(where.uri)
    if cached is not None:
        return cached
    from mlflow import MlflowClient

    with mlflow_quiet(), _database_lock(where.database):
        client = MlflowClient(tracking_uri=where.uri, registry_uri=where.uri)
        client.search_experiments(max_results=1)  # creates or checks the schema now
    _clients[where.uri] = client
    return client


def experiment_name(command: str) -> str:
    """``pattern-engine/<command>``.

    Examples
    --------
    >>> experiment_name("train")
    'pattern-engine/train'
    """
    return f"{EXPERIMENT_PREFIX}/{command}"


def experiment_id(client: MlflowClient, where: ResolvedTracking, name: str) -> str:
    """The id of experiment ``name``, created (or restored) if needed, race-free."""
    with mlflow_quiet(), _database_lock(where.database):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if where.artifact_root is not None:
                location = f"{where.artifact_root}/{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}"
            try:
                return client.create_experiment(name, artifact_location=location)
            except Exception:  # another process won the race (a server has no lock file)
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
