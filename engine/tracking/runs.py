"""Log a command's run to MLflow without ever putting the command's own work at risk.

Two ways in, one behaviour:

* :func:`tracked` decorates a job function. The job runs first and writes
  its files; then one MLflow run records the job's arguments (``args.*``),
  the parameters, metrics and files of its report (see
  :mod:`engine.tracking.flatten`) and its outcome. The job gains a
  ``tracking=`` keyword; ``None`` (the Python default) tracks nothing.
* :func:`track_job` is a context manager for a job that logs while it runs
  (``engine export-onnx`` registers a model, ``engine retrain`` logs its
  decision): ``with track_job("retrain", params, tracking) as run: ...``.

Every MLflow call goes through :meth:`JobRun.attempt`: a failure (no
database, a server that is down, a full disk) becomes a
:class:`TrackingWarning` that names what was not logged and says that the
run's own files are kept, and the run goes on untracked. Nothing a job
writes depends on tracking.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from engine.tracking.client import experiment_id, experiment_name, mlflow_quiet, open_client
from engine.tracking.flatten import Flat, artifact_files, flatten
from engine.tracking.settings import ResolvedTracking, Tracking

__all__ = ["JobRun", "TrackingWarning", "job_arguments", "track_job", "tracked"]

_F = TypeVar("_F", bound=Callable[..., Any])
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000


class TrackingWarning(UserWarning):
    """Something could not be logged to MLflow; the command itself went on."""


def _plain(value: Any) -> Any:
    """A job argument as JSON-ready data (stores as their directory, settings as dicts)."""
    if hasattr(value, "data_dir") and not is_dataclass(value):
        return str(value.data_dir)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def job_arguments(job: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A job call's arguments by name, JSON-ready; callbacks and ``None`` left out.

    Examples
    --------
    >>> def job(store, tickers="all", *, progress=None, seed=0): ...
    >>> job_arguments(job, ("s",), {"seed": 3, "progress": print})
    {'store': 's', 'tickers': 'all', 'seed': 3}
    """
    bound = inspect.signature(job).bind_partial(*args, **kwargs)
    bound.apply_defaults()
    return {
        name: _plain(value)
        for name, value in bound.arguments.items()
        if value is not None and not callable(value)
    }


def _data_dir_of(*sources: Mapping[str, Any]) -> str | None:
    """The first ``data_dir`` (or ``store``) found near the top of the given dicts."""
    for source in sources:
        for key in ("data_dir", "store"):
            if isinstance(source.get(key), str):
                return source[key]
        for section in ("data", "info", "source"):
            inner = source.get(section)
            if isinstance(inner, Mapping) and isinstance(inner.get("data_dir"), str):
                return inner["data_dir"]
    return None


class JobRun:
    """One MLflow run of a command; every method is safe to call when tracking failed.

    Attributes
    ----------
    run_id : str or None
        None when tracking is off or failed.
    where : ResolvedTracking or None
        The destination.
    """

    def __init__(self, command: str, where: ResolvedTracking | None = None) -> None:
        self.command = command
        self.where = where
        self.run_id: str | None = None
        self.client: Any = None
        self.failures: list[str] = []

    @property
    def active(self) -> bool:
        """True while the run is open and logging works."""
        return self.run_id is not None and not self.failures

    @contextlib.contextmanager
    def attempt(self, what: str) -> Iterator[None]:
        """Run the block; an exception becomes a :class:`TrackingWarning` about ``what``.

        After a failure the run is inactive: later calls log nothing.
        """
        try:
            with mlflow_quiet():
                yield
        except Exception as exc:  # any MLflow, database or network failure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.failures.append(f"{what}: {first}")
            warnings.warn(
                f"tracking: could not {what} ({type(exc).__name__}: {first[:300]}); the "
                f"{self.command} run's own files are kept and tracking is off for the rest "
                "of it",
                TrackingWarning,
                stacklevel=4,
            )

    def start(self, *, started: float | None = None, tags: Mapping[str, str] | None = None) -> None:
        """Open the MLflow run (experiment ``pattern-engine/<command>``)."""
        assert self.where is not None
        with self.attempt(f"open the MLflow run at {self.where.uri}"):
            self.client = open_client(self.where)
            exp = experiment_id(self.client, self.where, experiment_name(self.command))
            run = self.client.create_run(
                exp,
                start_time=int((started or time.time()) * 1000),
                tags={"engine.command": self.command, **(tags or {})},
                run_name=f"{self.command}-{time.strftime('%Y%m%d-%H%M%S')}",
            )
            self.run_id = run.info.run_id

    def log_params(self, params: Mapping[str, str]) -> None:
        """Log parameters (in batches of 100)."""
        if not self.active or not params:
            return
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        with self.attempt("log parameters"):
            for i in range(0, len(items), _BATCH_PARAMS):
                self.client.log_batch(self.run_id, params=items[i : i + _BATCH_PARAMS])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log metrics (in batches of 1,000)."""
        if not self.active or not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        with self.attempt("log metrics"):
            for i in range(0, len(items), _BATCH_METRICS):
                self.client.log_batch(self.run_id, metrics=items[i : i + _BATCH_METRICS])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (values as text)."""
        if not self.active:
            return
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)[:8000]) for k, v in tags.items()]
        with self.attempt("set tags"):
            for i in range(0, len(items), _BATCH_PARAMS):
                self.client.log_batch(self.run_id, tags=items[i : i + _BATCH_PARAMS])

    def log_files(self, files: list[tuple[str, Path]]) -> None:
        """Copy ``(artifact directory, file)`` pairs into the run's artifacts."""
        if not self.active:
            return
        with self.attempt("log artifacts"):
            for where, file in files:
                self.client.log_artifact(self.run_id, str(file), artifact_path=where)

    def log_flat(self, flat: Flat) -> None:
        """Log a flattened report: parameters, metrics and artifact files."""
        self.log_params(flat.params)
        self.log_metrics(flat.metrics)
        self.log_files(artifact_files(flat.paths))

    def log_report(self, payload: Mapping[str, Any]) -> None:
        """Log a report's ``to_dict()`` (see :mod:`engine.tracking.flatten`)."""
        if self.active:
            self.log_flat(flatten(payload))

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Close the run with ``FINISHED``, ``FAILED`` or ``KILLED``."""
        if self.run_id is None or self.client is None:
            return
        if error:
            self.set_tags({"engine.error": error})
        if self.failures:
            with contextlib.suppress(Exception), mlflow_quiet():
                self.client.set_tag(
                    self.run_id, "engine.tracking_failures", "; ".join(self.failures)
                )
        with self.attempt("close the MLflow run"):
            self.client.set_terminated(self.run_id, status=status)


@contextlib.contextmanager
def track_job(
    command: str,
    params: Mapping[str, Any] | None,
    tracking: Tracking | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    started: float | None = None,
) -> Iterator[JobRun]:
    """A tracked run of ``command`` for the duration of the ``with`` block.

    Parameters
    ----------
    command : str
        The command (experiment ``pattern-engine/<command>``).
    params : mapping, optional
        The job's arguments, logged as ``args.*`` parameters when the run opens.
    tracking : Tracking, optional
        None or disabled: the run does nothing (and MLflow is not imported).
    data_dir : path, optional
        The job's data directory, for the default SQLite URI.
    started : float, optional
        ``time.time()`` when the job started (default now).

    Yields
    ------
    JobRun
        Its methods log; each failure warns once and tracking stops.

    Notes
    -----
    An exception in the block closes the run as ``FAILED`` (``KILLED`` for
    Ctrl-C) with the error as a tag, then propagates.
    """
    run = _open_run(command, params, tracking, data_dir, started)
    try:
        yield run
    except KeyboardInterrupt:
        run.finish("KILLED", "interrupted")
        raise
    except Exception as exc:
        run.finish("FAILED", _error_text(exc))
        raise
    run.finish("FINISHED")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:8000]


def _open_run(
    command: str,
    params: Mapping[str, Any] | None,
    tracking: Tracking | None,
    data_dir: str | os.PathLike[str] | None,
    started: float | None,
) -> JobRun:
    """A started :class:`JobRun` with ``params`` logged (an inert one when tracking is off)."""
    if tracking is None or not tracking.enabled:
        return JobRun(command)
    run = JobRun(command, tracking.with_data_dir(data_dir).resolve())
    run.start(started=started)
    if params:
        flat = flatten(params, ("args",))
        flat.paths = []  # the arguments' paths are inputs; the report names the outputs
        run.log_flat(flat)
    return run


def tracked(command: str) -> Callable[[_F], _F]:
    """Decorate a job so that ``tracking=Tracking(...)`` logs each call to MLflow.

    The job runs untouched; afterwards one run records its arguments, its
    report's ``to_dict()`` and the files it wrote. A job that raises is
    recorded as ``FAILED`` with the error, and the error propagates. Ctrl-C
    is not held up by tracking. A job that declares a ``tracking`` parameter
    receives it too (to register what it exports, as the pipeline does).

    Parameters
    ----------
    command : str
        The command name (``train``, ``validate``, ...).
    """

    def decorate(job: _F) -> _F:
        signature = inspect.signature(job)

        passes = "tracking" in signature.parameters  # a job that tracks inside (the pipeline)

        @functools.wraps(job)
        def run(*args: Any, tracking: Tracking | None = None, **kwargs: Any) -> Any:
            if passes:
                kwargs["tracking"] = tracking
            if tracking is None or not tracking.enabled:
                return job(*args, **kwargs)
            started = time.time()
            arguments = job_arguments(job, args, kwargs)
            arguments.pop("tracking", None)
            try:
                report = job(*args, **kwargs)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                failed = _open_run(command, arguments, tracking, _data_dir_of(arguments), started)
                failed.finish("FAILED", _error_text(exc))
                raise
            payload = report.to_dict() if hasattr(report, "to_dict") else {}
            with track_job(
                command,
                arguments,
                tracking,
                data_dir=_data_dir_of(arguments, payload),
                started=started,
            ) as tracked_run:
                tracked_run.log_report(payload)
            return report

        parameters = [*signature.parameters.values()]
        extra = inspect.Parameter(
            "tracking", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Tracking | None"
        )
        if "tracking" not in signature.parameters:
            if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
                parameters.insert(len(parameters) - 1, extra)
            else:
                parameters.append(extra)
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate
