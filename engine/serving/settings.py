"""What ``engine serve`` runs with: one frozen, validated settings object.

The settings travel to every uvicorn worker as JSON in one environment
variable (:data:`SETTINGS_ENV`), because uvicorn starts several workers from
an import string, not from an object. The API key itself never travels: the
settings name the environment variable that holds it, and each worker reads
it at start-up.

Examples
--------
>>> s = ServeSettings(model="model.onnx", port=8001, threads=1)
>>> ServeSettings.from_json(s.to_json()) == s
True
>>> ServeSettings(model="model.onnx", port=0)
Traceback (most recent call last):
...
ValueError: `--port` must be between 1 and 65535, got `--port=0`
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

from engine.parallel import usable_cores

__all__ = ["MAX_BATCH", "SETTINGS_ENV", "ServeSettings"]

#: The environment variable that carries the settings to the workers.
SETTINGS_ENV = "ENGINE_SERVE_SETTINGS"
#: Most sequences one ``POST /v1/score`` may carry.
MAX_BATCH = 4096


@dataclass(frozen=True)
class ServeSettings:
    """Settings of ``engine serve`` (each field is the flag of the same name).

    Attributes
    ----------
    model : str
        An ONNX file, or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``.
    data_dir : str or None
        The bar store the latest scores are computed from (default: the
        engine's data directory).
    host, port : str, int
        Where to listen (default 127.0.0.1:8000, loopback only).
    workers : int
        uvicorn worker processes, each with its own onnxruntime session.
    threads : int or None
        onnxruntime intra-op threads per session (default: the CPU count
        divided among the workers, at least 1).
    api_key_env : str or None
        Name of the environment variable holding the API key; when set,
        ``POST /v1/bars`` and ``POST /admin/reload`` require it.
    max_body_mb : float
        Largest request body accepted, in megabytes (larger: 413).
    max_concurrency : int or None
        Requests in flight per worker above which new ones get 503
        (health, readiness and metrics are never refused).
    tracking_uri : str or None
        The MLflow registry of a ``models:/`` reference.
    prices, market : str or None
        When given, must equal the model's price basis and market (the model
        pins both; checked when it loads).
    sector_map : dict of str to str
        Sector ETFs of tickers the model's map lacks (``--sector-map``).
    """

    model: str
    data_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    api_key_env: str | None = None
    max_body_mb: float = 8.0
    max_concurrency: int | None = None
    tracking_uri: str | None = None
    prices: str | None = None
    market: str | None = None
    sector_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not str(self.model).strip():
            raise ValueError("`--model` is empty: name an ONNX file or models:/NAME@ALIAS")
        _check_int("--port", self.port, 1, 65535)
        _check_int("--workers", self.workers, 1, 64)
        if self.threads is not None:
            _check_int("--threads", self.threads, 1, 1024)
        if self.max_concurrency is not None:
            _check_int("--max-concurrency", self.max_concurrency, 1, 1_000_000)
        if not isinstance(self.max_body_mb, int | float) or not 0 < self.max_body_mb <= 1024:
            raise ValueError(
                f"`--max-body-mb` must be in (0, 1024], got `--max-body-mb={self.max_body_mb}`"
            )
        if self.api_key_env is not None and not str(self.api_key_env).strip():
            raise ValueError("`--api-key-env` is empty: name an environment variable")

    @property
    def max_body_bytes(self) -> int:
        """The body limit in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def session_threads(self) -> int:
        """Intra-op threads of each worker's session."""
        if self.threads is not None:
            return self.threads
        return max(1, usable_cores() // self.workers)

    def api_key(self) -> str | None:
        """The API key from :attr:`api_key_env` (None when no key is configured).

        Raises
        ------
        ValueError
            ``api_key_env`` names a variable that is unset or empty.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ValueError(
                f"--api-key-env {self.api_key_env}: that environment variable is unset or "
                "empty; export the key in it, or drop --api-key-env to serve without a key"
            )
        return key

    def to_json(self) -> str:
        """The settings as JSON (what the workers read from :data:`SETTINGS_ENV`)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """Settings from :meth:`to_json`'s output; unknown keys are refused."""
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown serve settings: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_env(cls) -> ServeSettings:
        """Settings from :data:`SETTINGS_ENV` (set by ``engine serve`` for its workers)."""
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            raise ValueError(
                f"${SETTINGS_ENV} is not set: start the service with `engine serve`, or build "
                "the app with engine.serving.create_app(ServeSettings(...))"
            )
        return cls.from_json(text)


def _check_int(flag: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"`{flag}` must be between {low} and {high}, got `{flag}={value}`")
