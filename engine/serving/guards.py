"""ASGI middleware in front of every endpoint: metrics, concurrency and body limits.

One pure ASGI class (no Starlette ``BaseHTTPMiddleware``, which buffers
bodies and costs a task per request) does three things in order:

* refuses with 503 a request that would exceed ``max_concurrency`` requests
  in flight in this worker (``/healthz``, ``/readyz`` and ``/metrics`` are
  never refused, so probes and scrapes see an overloaded worker as alive);
* refuses with 413 a body over the limit: at once when ``Content-Length``
  says so; a streamed body (no length) is read here, up to the limit, and
  refused as soon as it passes it (uvicorn itself holds a body with a
  length to that length);
* times every request and counts it by endpoint (its route template, refusals
  included) and status.

Refusals are JSON ``{"detail": ...}`` like every other error of the service.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import Match

from engine.serving.metrics import ServiceMetrics

__all__ = ["ConcurrencyLimit", "RequestGuard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Endpoints that are never refused for load.
UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})


class ConcurrencyLimit:
    """A counter of requests in flight with a ceiling (None: no ceiling)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.active = 0

    def try_acquire(self) -> bool:
        """Take a slot; False when the ceiling is reached."""
        with self._lock:
            if self.limit is not None and self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self.active -= 1


class RequestGuard:
    """The middleware: see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        limit: ConcurrencyLimit,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = limit
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (HTTP is guarded; lifespan passes through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = {"code": 500}
        path = scope.get("path", "")
        limited = path not in UNLIMITED
        if limited and not self.limit.try_acquire():
            await _refuse(send, status, 503, _busy(self.limit.limit), retry_after=True)
            self._observe(scope, status["code"], began)
            return
        self.metrics.in_flight.inc()
        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await _refuse(send, status, 413, self._too_large(declared))
                return
            if declared is None:  # a streamed body: read it here, up to the limit
                body, size = await _read_body(receive, self.max_body_bytes)
                if body is None:
                    await _refuse(send, status, 413, self._too_large(size))
                    return
                receive = _replay(body, receive)

            async def recording_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_flight.dec()
            if limited:
                self.limit.release()
            self._observe(scope, status["code"], began)

    def _too_large(self, size: int) -> str:
        return (
            f"request body of {size} bytes is over the limit of {self.max_body_bytes} bytes "
            f"({self.max_body_bytes / 2**20:g} MB, --max-body-mb); send fewer rows per request"
        )

    def _observe(self, scope: Scope, status: int, began: float) -> None:
        self.metrics.observe(
            _endpoint(scope), scope.get("method", ""), status, time.perf_counter() - began
        )


def _endpoint(scope: Scope) -> str:
    """The route template a request is counted under.

    The router records the route it called in the scope; a request refused
    here (503, 413) never reached it, so its path is matched against the
    app's routes, and it is counted under the template it would have had.
    """
    route = scope.get("route") or _matching_route(scope)
    template = getattr(route, "path", None)
    if template:
        return template
    return scope.get("path") if scope.get("path") in UNLIMITED else "unmatched"


def _matching_route(scope: Scope) -> Any:
    """The first route of ``scope["app"]`` whose path matches (any method), or None."""
    for route in getattr(getattr(scope.get("app"), "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return route
    return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, int]:
    """The whole body of a request, or None once it passes ``limit`` bytes (and the size read)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), size
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, size
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read beforehand, then the server's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _busy(limit: int | None) -> str:
    return (
        f"the service is at its limit of {limit} requests in flight per worker "
        "(--max-concurrency); retry shortly"
    )


async def _refuse(
    send: Send, status: dict, code: int, detail: str, *, retry_after: bool = False
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    status["code"] = code
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
