"""The ``engine serve`` job: check the settings, then run the HTTP service under uvicorn.

Everything that can fail for a reason the user can fix fails here, before a
worker starts, with a message that names the flag: an unset API key
variable, a missing model file, an unknown registry alias, a model the
engine cannot serve. Then uvicorn runs the app factory
(:func:`engine.serving.app.app_from_env`) in ``--workers`` processes; each
one reads the settings from ``$ENGINE_SERVE_SETTINGS`` and opens its own
onnxruntime session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.data.store import BarStore
from engine.serving.model import load_model
from engine.serving.settings import SETTINGS_ENV, ServeSettings

__all__ = ["ServePlan", "plan_serve", "run_serve_job"]


@dataclass(frozen=True)
class ServePlan:
    """What ``engine serve`` is about to run (printed before uvicorn starts)."""

    settings: ServeSettings
    url: str
    model: dict[str, Any]
    store_tickers: int
    store_last_date: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        s = self.settings
        return {
            "url": self.url,
            "workers": s.workers,
            "threads_per_worker": s.session_threads,
            "api_key": s.api_key_env is not None,
            "max_body_mb": s.max_body_mb,
            "max_concurrency": s.max_concurrency,
            "data_dir": str(BarStore(s.data_dir).data_dir),
            "store_tickers": self.store_tickers,
            "store_last_date": self.store_last_date,
            "model": self.model,
        }


def plan_serve(settings: ServeSettings) -> ServePlan:
    """Check everything a worker will need, once, in this process.

    Raises
    ------
    ValueError
        The API key variable is unset, or the model cannot be served.
    FileNotFoundError
        No such model file.
    """
    settings.api_key()
    model = load_model(settings)
    store = BarStore(settings.data_dir)
    meta = store.metadata()["tickers"]
    last = max((e["last_date"] for e in meta.values()), default=None)
    return ServePlan(
        settings=settings,
        url=f"http://{settings.host}:{settings.port}",
        model=model.describe(),
        store_tickers=len(meta),
        store_last_date=last,
    )


def run_serve_job(
    settings: ServeSettings, *, announce: Callable[[ServePlan], None] | None = None
) -> float:
    """Serve until interrupted (Ctrl-C or SIGTERM); return the seconds served.

    Parameters
    ----------
    settings : ServeSettings
    announce : callable, optional
        Called with the :class:`ServePlan` once the checks pass, before the
        workers start.
    """
    import uvicorn

    plan = plan_serve(settings)
    if announce is not None:
        announce(plan)
    os.environ[SETTINGS_ENV] = settings.to_json()
    began = time.perf_counter()
    uvicorn.run(
        "engine.serving.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return time.perf_counter() - began
