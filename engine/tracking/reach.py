"""Registry calls that fail with one clear line instead of MLflow's traceback.

A registry that cannot be reached (a server that is down, a wrong port, a
proxy answering 502) makes MLflow raise :class:`mlflow.exceptions.MlflowException`
or a ``requests`` error after its HTTP retries, which with MLflow's defaults
(7 retries, backoff factor 2) takes minutes. :class:`GuardedClient` turns
those into the caller's error type, naming the URI with its password
masked; :func:`check_reachable` first tries one TCP connection to an HTTP
server so a dead address fails in seconds. MLflow's own answers that
callers handle (no such model or version, already exists) pass through.
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

__all__ = ["GuardedClient", "check_reachable", "failure", "mask_uri"]

_CREDENTIALS = re.compile(r"(://[^/:@\s]+):[^/@\s]*@")
#: MLflow error codes that are answers, not failures: the callers turn them into messages.
_ANSWERS = frozenset({"RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS"})
_SHOWN = 300


def mask_uri(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``.

    Examples
    --------
    >>> mask_uri("cannot reach http://ann:s3cret@mlflow:5000/api")
    'cannot reach http://ann:***@mlflow:5000/api'
    >>> mask_uri("sqlite:////data/mlflow.db")
    'sqlite:////data/mlflow.db'
    """
    return _CREDENTIALS.sub(r"\1:***@", text)


def failure(uri: str, exc: BaseException) -> str | None:
    """The one-line message for a registry call that failed, or None for an answer or a bug.

    Examples
    --------
    >>> failure("http://a:pw@h:9", ConnectionRefusedError(111, "Connection refused"))
    'cannot reach the registry at http://a:***@h:9: [Errno 111] Connection refused'
    >>> failure("http://h:9", KeyError("x")) is None  # a bug keeps its traceback
    True
    """
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        if exc.error_code in _ANSWERS:
            return None
    elif not isinstance(exc, OSError):  # requests' errors are OSErrors too
        return None
    detail = " ".join(str(exc).split())
    if len(detail) > _SHOWN:
        detail = detail[:_SHOWN] + "..."
    return mask_uri(f"cannot reach the registry at {uri}: {detail}")


def check_reachable(uri: str, error: type[Exception], timeout: float = 5.0) -> None:
    """For an ``http(s)://`` URI, raise ``error`` unless one TCP connection to it succeeds.

    Other URIs (``sqlite:``, ``databricks``) are not checked here.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise error(
            mask_uri(f"cannot reach the registry at {uri}: {exc}; is the MLflow server running?")
        ) from None


class GuardedClient:
    """An MLflow client whose calls raise ``error(message)`` when the registry fails.

    Parameters
    ----------
    opener : callable
        Returns the MLflow client (called once, guarded too).
    uri : str
        The registry URI, shown (password masked) in messages.
    error : type
        The exception raised, e.g. :class:`engine.tracking.registry.RegistryError`.
    """

    def __init__(self, opener: Callable[[], Any], uri: str, error: type[Exception]) -> None:
        self._uri = uri
        self._error = error
        with self.guard():
            self._client = opener()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Translate a failed registry call (see :func:`failure`)."""
        try:
            yield
        except Exception as exc:
            message = failure(self._uri, exc)
            if message is None:
                raise
            raise self._error(message) from None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.guard():
                return attribute(*args, **kwargs)

        return call
