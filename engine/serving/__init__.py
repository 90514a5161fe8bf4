"""``engine serve``: pattern confidence over HTTP (FastAPI + uvicorn).

* :mod:`engine.serving.settings` -- the validated settings every worker reads;
* :mod:`engine.serving.model` -- one onnxruntime session per worker, swapped atomically;
* :mod:`engine.serving.history` -- the store in memory, and the daily append;
* :mod:`engine.serving.scoring` -- what each endpoint computes, without HTTP;
* :mod:`engine.serving.schemas` -- request and response bodies (pydantic);
* :mod:`engine.serving.guards` and :mod:`engine.serving.metrics` -- limits and Prometheus;
* :mod:`engine.serving.app` -- the app and its routes.
"""

from engine.serving.app import API_VERSION, app_from_env, create_app
from engine.serving.settings import ServeSettings

__all__ = ["API_VERSION", "ServeSettings", "app_from_env", "create_app"]
