"""Run pure, picklable tasks in this process, in local worker processes or on Ray.

A *task* is a small picklable spec; a module-level function ``fn(task,
shared)`` turns it into a picklable result. ``shared`` is the large,
read-only input every task needs (the training arrays): it is sent to each
worker once, never with every task. The executors differ only in where
``fn`` runs:

* :class:`InProcessExecutor` (``backend="local"``, one worker): here, one
  task at a time, when :meth:`Executor.wait` asks for a result;
* :class:`ProcessExecutor` (``backend="local"``, ``W > 1`` workers): a
  ``spawn`` process pool (TensorFlow is not fork-safe); ``shared`` travels
  once per worker through the pool initializer;
* :class:`RayExecutor` (``backend="ray"``): Ray tasks with ``num_cpus`` set
  to the threads each task may use; ``shared`` is put in Ray's object store
  once (numpy arrays are read zero-copy by workers on the same node).
  ``ray.init(address=...)`` joins a cluster (``address=None`` follows
  ``RAY_ADDRESS``, else starts a local Ray without its dashboard); a Ray the
  caller started already is used as it is and left running.

Handles are hashable, so a driver can map them to its own keys. Each task
gets ``threads`` CPU threads: the machine's cores (the cluster's
CPUs for Ray, capped at the largest node's: a Ray task runs on one node)
divided by the workers, at least 1. The task function applies
them (TensorFlow intra-op threads, for instance), so a result does not
depend on the backend that computed it.

The driver submits tasks and waits for whichever finishes first; it decides
what to submit next, so the order of results is the driver's business.

Examples
--------
>>> with make_executor("local", divmod, 7, workers=1) as ex:
...     handles = [ex.submit(n) for n in (15, 23, "x")]
...     results = []
...     while handles:
...         done, handles = ex.wait(handles)
...         results += [r if error is None else type(error).__name__ for _, r, error in done]
>>> results
[(2, 1), (3, 2), 'TypeError']
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "Done",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "WorkerFailure",
    "make_executor",
    "ray_task_cpus",
    "require_ray",
    "threads_per_worker",
    "usable_cores",
]

#: The executors ``make_executor`` knows.
BACKENDS = ("local", "ray")
Backend = Literal["local", "ray"]
TaskFunction = Callable[[Any, Any], Any]
#: What :meth:`Executor.wait` returns per finished task: handle, result, error.
Done = tuple[Any, Any, Exception | None]


class WorkerFailure(RuntimeError):
    """The workers, or the tasks on them, failed so that the work cannot go on.

    A local worker process died, a Ray worker or node crashed or was killed
    for memory, or a driver gave up on failing tasks. The message says what
    happened and what to try; the command line prints it without a traceback.
    """


def usable_cores() -> int:
    """CPU cores this process may run on: its CPU affinity where the OS has one, else all.

    ``os.cpu_count()`` counts the machine's cores even when a container,
    ``taskset`` or a batch scheduler lets the process use only some of them.

    Examples
    --------
    >>> 1 <= usable_cores() <= (os.cpu_count() or 1)
    True
    """
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """CPU threads each of ``workers`` concurrent tasks may use: ``cores // workers``, at least 1.

    ``cores`` defaults to :func:`usable_cores`.

    Examples
    --------
    >>> threads_per_worker(2, cores=2), threads_per_worker(3, cores=8), threads_per_worker(4, 2)
    (1, 2, 1)
    """
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"`workers` must be an integer >= 1, got `workers={workers}`")
    cores = cores or usable_cores()
    return max(1, int(cores) // int(workers))


class Executor(ABC):
    """Submit tasks, wait for any of them; a context manager that closes itself.

    Attributes
    ----------
    name : str
        ``"local"`` or ``"ray"``.
    workers : int
        Tasks that run at the same time.
    threads : int
        CPU threads each task may use.
    """

    name: str = ""

    def __init__(self, fn: TaskFunction, shared: Any, workers: int, threads: int) -> None:
        self.fn = fn
        self.shared = shared
        self.workers = workers
        self.threads = threads

    @abstractmethod
    def submit(self, task: Any) -> Any:
        """Start ``fn(task, shared)``; return a handle to wait on."""

    @abstractmethod
    def wait(self, handles: Sequence[Any]) -> tuple[list[Done], list[Any]]:
        """Block until at least one handle finishes.

        Returns
        -------
        done : list of (handle, result, error)
            ``error`` is the exception the task raised (``result`` is then
            None), else None.
        pending : list of handle
            The handles still running, in the order given.

        Raises
        ------
        WorkerFailure
            When the workers themselves failed (a local worker process died,
            a Ray worker or node crashed).
        """

    def close(self) -> None:  # noqa: B027 - nothing to stop by default
        """Stop the workers (running tasks are abandoned)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Deferred:
    """A task submitted to :class:`InProcessExecutor`, not run yet (hashable by identity)."""

    __slots__ = ("task",)

    def __init__(self, task: Any) -> None:
        self.task = task


class InProcessExecutor(Executor):
    """Runs each task in this process, lazily: :meth:`wait` runs the first pending one."""

    name = "local"

    def __init__(self, fn: TaskFunction, shared: Any, threads: int | None = None) -> None:
        super().__init__(fn, shared, 1, threads or threads_per_worker(1))

    def submit(self, task: Any) -> Any:
        """See :meth:`Executor.submit`."""
        return _Deferred(task)

    def wait(self, handles: Sequence[Any]) -> tuple[list[Done], list[Any]]:
        """See :meth:`Executor.wait`."""
        first, *rest = handles
        try:
            return [(first, self.fn(first.task, self.shared), None)], list(rest)
        except Exception as exc:  # the task failed, not the executor
            return [(first, None, exc)], list(rest)


_WORKER: dict[str, Any] = {}


def _init_worker(fn: TaskFunction, shared: Any) -> None:
    _WORKER["fn"] = fn
    _WORKER["shared"] = shared


def _run_in_worker(task: Any) -> Any:
    return _WORKER["fn"](task, _WORKER["shared"])


class ProcessExecutor(Executor):
    """A pool of ``workers`` spawned processes; ``shared`` is sent to each once."""

    name = "local"

    def __init__(self, fn: TaskFunction, shared: Any, workers: int) -> None:
        super().__init__(fn, shared, workers, threads_per_worker(workers))
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(fn, shared),
        )

    def submit(self, task: Any) -> Any:
        """See :meth:`Executor.submit`."""
        return self._pool.submit(_run_in_worker, task)

    def wait(self, handles: Sequence[Any]) -> tuple[list[Done], list[Any]]:
        """See :meth:`Executor.wait`."""
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        pending = [h for h in handles if h not in done]
        out: list[Done] = []
        for h in (h for h in handles if h in done):
            error = h.exception()
            if isinstance(error, cf.process.BrokenProcessPool):
                raise WorkerFailure(
                    "a local worker process died (out of memory?); use fewer --workers"
                ) from error
            out.append((h, None if error else h.result(), error))
        return out, pending

    def close(self) -> None:
        """See :meth:`Executor.close`."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _ray_call(fn: TaskFunction, task: Any, shared: Any) -> Any:
    return fn(task, shared)


class BackendUnavailable(ValueError):
    """The backend asked for cannot run here (Ray is not installed); the user can fix it."""


def require_ray() -> Any:
    """Import Ray, or raise :class:`BackendUnavailable` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(
            "--backend ray needs Ray, which is not installed: "
            "pip install -e '.[distributed]' (or pip install 'ray>=2.60')"
        ) from None
    return ray


def ray_task_cpus(workers: int, nodes: Sequence[dict[str, Any]]) -> int:
    """CPUs each of ``workers`` concurrent Ray tasks asks for, given ``ray.nodes()``.

    The cluster's CPUs (alive nodes only) divided by ``workers``, but never
    more than the largest single node holds: Ray places a task on one node,
    and a task asking for more CPUs than any node has is never scheduled.

    Examples
    --------
    >>> nodes = [{"Alive": True, "Resources": {"CPU": 1.0}}] * 2
    >>> ray_task_cpus(1, nodes), ray_task_cpus(2, nodes)
    (1, 1)
    >>> ray_task_cpus(1, [{"Alive": True, "Resources": {"CPU": 8.0}},
    ...                   {"Alive": False, "Resources": {"CPU": 64.0}}])
    8
    """
    cpus = [
        int(node.get("Resources", {}).get("CPU", 0))
        for node in nodes
        if node.get("Alive", node.get("alive", False))
    ]
    largest = max(cpus, default=0)
    return max(1, min(largest, threads_per_worker(workers, sum(cpus) or 1)))


class RayExecutor(Executor):
    """Ray tasks of ``threads`` CPUs each; ``workers`` of them at a time.

    Parameters
    ----------
    fn, shared
        As for :class:`Executor`.
    workers : int
        Concurrent tasks; each gets the cluster's CPUs divided by ``workers``,
        at most the largest node's CPUs (:func:`ray_task_cpus`).
    address : str, optional
        A running cluster (``"auto"``, ``"ray://host:10001"``); default
        ``RAY_ADDRESS``, else a new local Ray (without its dashboard) that
        :meth:`close` shuts down again.
    """

    name = "ray"

    def __init__(
        self, fn: TaskFunction, shared: Any, workers: int, address: str | None = None
    ) -> None:
        ray = require_ray()
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            local = address is None and not os.environ.get("RAY_ADDRESS")
            kwargs: dict[str, Any] = {
                "address": address,
                "log_to_driver": False,
                "logging_level": logging.WARNING,  # the engine prints its own progress
            }
            if local:
                kwargs["include_dashboard"] = False
            ray.init(**kwargs)
            self._owned = True
        super().__init__(fn, shared, workers, ray_task_cpus(workers, ray.nodes()))
        self._shared_ref = ray.put(shared)
        self._remote = ray.remote(_ray_call).options(num_cpus=self.threads, max_retries=0)

    def submit(self, task: Any) -> Any:
        """See :meth:`Executor.submit`."""
        return self._remote.remote(self.fn, task, self._shared_ref)

    def wait(self, handles: Sequence[Any]) -> tuple[list[Done], list[Any]]:
        """See :meth:`Executor.wait`."""
        ray = self._ray
        done, _ = ray.wait(list(handles), num_returns=1)
        pending = [h for h in handles if h not in done]
        out: list[Done] = []
        for h in (h for h in handles if h in done):
            try:
                out.append((h, ray.get(h), None))
            except ray.exceptions.RayTaskError as exc:  # the task raised: its own error
                cause = getattr(exc, "cause", None)
                out.append((h, None, cause if isinstance(cause, Exception) else exc))
            except ray.exceptions.RayError as exc:  # the worker or its node failed
                first = str(exc).strip().partition("\n")[0]
                raise WorkerFailure(
                    f"a Ray worker failed ({type(exc).__name__}: {first}); "
                    "out of memory? use fewer --workers or larger nodes"
                ) from exc
        return out, pending

    def close(self) -> None:
        """See :meth:`Executor.close`."""
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(
    backend: Backend,
    fn: TaskFunction,
    shared: Any,
    *,
    workers: int = 1,
    address: str | None = None,
) -> Executor:
    """The executor for ``backend`` and ``workers``.

    Parameters
    ----------
    backend : {"local", "ray"}
        ``"local"`` with one worker runs in this process, with more a spawn
        process pool; ``"ray"`` runs Ray tasks.
    fn : callable
        Module-level ``fn(task, shared) -> result`` (picklable by reference).
    shared : object
        Read-only input of every task, sent to each worker once.
    workers : int, default 1
        Tasks that run at the same time.
    address : str, optional
        Ray cluster address (``backend="ray"`` only).

    Raises
    ------
    ValueError
        An unknown backend or a bad ``workers``.
    BackendUnavailable
        ``backend="ray"`` without Ray installed (the message says how to
        install it).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    threads_per_worker(workers)  # validates
    if backend == "ray":
        return RayExecutor(fn, shared, workers, address)
    if address is not None:
        raise ValueError("a Ray address needs --backend ray")
    if workers == 1:
        return InProcessExecutor(fn, shared)
    return ProcessExecutor(fn, shared, workers)
