"""The HTTP service: a FastAPI app per worker, built by :func:`create_app`.

The lifespan opens the model's onnxruntime session and the store once per
worker. Every endpoint is a plain ``def``: FastAPI runs it in its bounded
thread pool, so feature computation and onnxruntime (which releases the GIL)
never block the event loop. Errors are JSON ``{"detail": ...}``: 422 for a
request the service cannot use (pydantic names the field and row; the bar
rules name the row, ticker, date and rule; the scorer names the ticker and
the minimum history), 404 for an unknown ticker, 401 without the API key,
413 over the body limit, 503 over ``--max-concurrency`` and for the server's
own faults (an empty or unreadable store, a reload that cannot open the
model); anything unexpected is FastAPI's 500.

Examples
--------
In a test, with an exported ``model.onnx`` and a data directory (the tests
in ``tests/serving/`` do this with a trained model)::

    from fastapi.testclient import TestClient

    app = create_app(ServeSettings(model="model.onnx", data_dir="data"))
    with TestClient(app) as client:
        client.get("/v1/scores/latest", params={"tickers": "AAPL,MSFT"}).json()
"""

from __future__ import annotations

import os
import secrets
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from engine.data.bars import BarsValidationError
from engine.data.store import BarStore
from engine.serving.guards import ConcurrencyLimit, RequestGuard
from engine.serving.history import StoredHistory, StoreUnavailable
from engine.serving.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from engine.serving.model import (
    RELOAD_STAMP,
    LoadedModel,
    ModelSlot,
    ModelUnavailable,
    is_registry_reference,
)
from engine.serving.schemas import (
    BarsAppendRequest,
    BarsScoreRequest,
    ScoreRequest,
    ScoreResponse,
    SignalsRequest,
)
from engine.serving.scoring import (
    TickerRequestError,
    UnknownTickers,
    asks_for_all,
    latest_scores,
    resolve_tickers,
    score_client_bars,
    score_sequences,
    signals,
)
from engine.serving.settings import ServeSettings
from export.scorer import ScoringError

__all__ = ["API_VERSION", "app_from_env", "create_app"]

API_VERSION = "v1"


def create_app(settings: ServeSettings, *, model: LoadedModel | None = None) -> FastAPI:
    """The service for ``settings`` (the model opens when the app starts).

    Parameters
    ----------
    settings : ServeSettings
    model : LoadedModel, optional
        An already open model (tests); default: opened from ``settings`` in
        the lifespan.
    """
    metrics = ServiceMetrics()
    limit = ConcurrencyLimit(settings.max_concurrency)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        history = StoredHistory(BarStore(settings.data_dir))

        def swapped(new: LoadedModel) -> None:
            metrics.set_model(new.model_id, new.version, new.reference)
            metrics.reloads.inc()

        stamp = history.store.data_dir / RELOAD_STAMP
        slot = ModelSlot(settings, model, stamp=stamp, on_swap=swapped)
        app.state.slot = slot
        app.state.history = history
        app.state.api_key = settings.api_key()
        current = slot.current()
        metrics.set_model(current.model_id, current.version, current.reference)
        yield

    app = FastAPI(
        title="pattern-engine",
        version=API_VERSION,
        summary="Pattern confidence from an exported model: exact latest scores from the "
        "stored history, scores of raw windows or of a client's bars, filtered signals.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.limit = limit
    app.add_middleware(
        RequestGuard, metrics=metrics, limit=limit, max_body_bytes=settings.max_body_bytes
    )
    _add_error_handlers(app)
    _add_routes(app)
    return app


def app_from_env() -> FastAPI:
    """The app of ``engine serve``'s workers (settings from ``$ENGINE_SERVE_SETTINGS``)."""
    return create_app(ServeSettings.from_env())


# --------------------------------------------------------------------------- dependencies


def _model(request: Request) -> LoadedModel:
    """The model this request is served with, taken once at its start."""
    return request.app.state.slot.current()


def _require_key(request: Request) -> None:
    """401 unless the request carries the configured API key; 403 with none configured."""
    expected = request.app.state.api_key
    if expected is None:
        if request.url.path.startswith("/admin/"):
            raise HTTPException(
                403,
                "admin endpoints are off: start the service with --api-key-env VAR "
                "to enable them with a key",
            )
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            "this endpoint requires the API key: send it as X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": "Bearer"},
        )


Model = Annotated[LoadedModel, Depends(_model)]
KeyRequired = Depends(_require_key)


# --------------------------------------------------------------------------- routes


def _add_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request, model: Model) -> dict[str, Any]:
        """The model is loaded: what it is, and the store's last date."""
        history: StoredHistory = request.app.state.history
        store = history.store
        meta = history.tickers()
        last = max((e["last_date"] for e in meta.values()), default=None)
        return {
            "status": "ready",
            "api_version": API_VERSION,
            "worker_pid": os.getpid(),
            "model": model.describe(),
            "store": {"data_dir": str(store.data_dir), "tickers": len(meta), "last_date": last},
        }

    @app.get("/v1/scores/latest", tags=["scores"])
    def scores_latest(
        request: Request,
        model: Model,
        tickers: Annotated[str, Query(description="'all' or a comma list")] = "all",
        as_of: Annotated[date | None, Query(description="YYYY-MM-DD (default: latest)")] = None,
    ) -> dict[str, Any]:
        """Exact scores of each ticker's latest window from the stored history."""
        snapshot = request.app.state.history.snapshot(model)
        wanted = resolve_tickers(tickers, snapshot)
        return latest_scores(model, snapshot, wanted, as_of, skip_unscorable=asks_for_all(tickers))

    @app.post("/v1/score", tags=["scores"], response_model=ScoreResponse)
    def score(body: ScoreRequest, model: Model) -> dict[str, Any]:
        """Scores of ready feature windows (at most 4,096 per request)."""
        return score_sequences(model, body.sequences)

    @app.post("/v1/score/bars", tags=["scores"])
    def score_bars(body: BarsScoreRequest, model: Model) -> dict[str, Any]:
        """Latest scores per ticker from the client's own bars (stateless).

        Exact scores need the same history start as training: send each
        ticker's full history, benchmarks included.
        """
        bars = [bar.model_dump() for bar in body.bars]
        return score_client_bars(model, bars, body.tickers)

    @app.post("/v1/signals", tags=["signals"])
    def post_signals(request: Request, body: SignalsRequest, model: Model) -> dict[str, Any]:
        """A base strategy's signal per ticker, its head's confidence, and whether it is taken."""
        snapshot = request.app.state.history.snapshot(model)
        wanted = resolve_tickers(body.tickers, snapshot)
        everything = asks_for_all(body.tickers)
        return signals(
            model, snapshot, body.strategy, body.threshold, wanted, body.as_of,
            skip_unscorable=everything,
        )  # fmt: skip

    @app.post("/v1/bars", tags=["bars"], dependencies=[KeyRequired])
    def append_bars(request: Request, body: BarsAppendRequest) -> dict[str, Any]:
        """Append new daily bars to the store (validated like ``engine data import``).

        Post a day's benchmark bars (market, sector ETFs, VIX) in the same
        request as its securities, or first: until they arrive, a security
        whose latest bar is newer than its benchmarks' cannot be scored.
        """
        frame = pl.DataFrame([bar.model_dump() for bar in body.bars], infer_schema_length=None)
        if frame.get_column("adj_close").is_null().all():
            frame = frame.drop("adj_close")
        return request.app.state.history.append(frame).to_dict()

    @app.get("/metrics", tags=["health"])
    def metrics_text(request: Request) -> Response:
        """Prometheus text: requests and latency per endpoint, the served model."""
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", tags=["admin"], dependencies=[KeyRequired])
    def reload(request: Request) -> dict[str, Any]:
        """Open the model again and swap it in (an alias's current version).

        The worker that answers swaps at once; with ``--workers N`` the
        others follow on their next request (the reload stamp in the data
        directory; see :class:`ModelSlot`).
        """
        slot: ModelSlot = request.app.state.slot
        old, new = slot.reload()
        return {
            "swapped": new is not old,
            "registry": is_registry_reference(new.reference),
            "previous": old.describe(),
            "current": new.describe(),
            "worker_pid": os.getpid(),
        }


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each bad input back: a NaN cannot be written as JSON
        # (a 500 instead of a 422) and a 4,097-window batch would be sent back whole.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(UnknownTickers)
    async def unknown(request: Request, exc: UnknownTickers) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(BarsValidationError)
    async def bad_bars(request: Request, exc: BarsValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "violations": [v.to_dict() for v in exc.violations]},
            status_code=422,
        )

    async def unusable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    # what the client can fix: 422; the server's store or model: 503; anything else: 500
    for client_error in (ScoringError, TickerRequestError):
        app.add_exception_handler(client_error, unusable)
    for server_fault in (StoreUnavailable, ModelUnavailable, FileNotFoundError):
        app.add_exception_handler(server_fault, unavailable)
