"""The model a worker serves, and its atomic swap on reload.

Each worker opens one onnxruntime session at start-up (the app's lifespan)
with a fixed number of intra-op threads and thread spinning off: spinning
pool threads of several workers would compete for the same cores.

:class:`ModelSlot` holds the current :class:`LoadedModel`. A request takes
the current one once, at its start, and uses it to the end; a reload builds
the new session completely before it replaces the reference, so a request
in flight finishes on the old session and no request ever sees a half-loaded
model. Replacing a Python reference is atomic; the lock only keeps two
reloads from interleaving. With several workers, a reload in one reaches the
others through a stamp file in the data directory (:data:`RELOAD_STAMP`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.io import atomic_write_json
from engine.serving.settings import ServeSettings
from export.scorer import PatternScorer, ScoringError

__all__ = [
    "RELOAD_STAMP",
    "LoadedModel",
    "ModelSlot",
    "ModelUnavailable",
    "is_registry_reference",
]

#: The file, in the data directory, through which one worker's reload reaches the others.
RELOAD_STAMP = ".serve-reload.json"


class ModelUnavailable(RuntimeError):
    """A reload could not open the model (HTTP 503; the old model keeps serving)."""


def is_registry_reference(model: str) -> bool:
    """Whether ``model`` names a registered version (``models:/...``) rather than a file.

    Examples
    --------
    >>> is_registry_reference("models:/pattern-lstm@champion"), is_registry_reference("m.onnx")
    (True, False)
    """
    return str(model).startswith("models:")


@dataclass(frozen=True)
class LoadedModel:
    """One open session and what it is.

    Attributes
    ----------
    scorer : PatternScorer
    reference : str
        What ``--model`` named (a path or a ``models:/`` reference).
    version : str
        The registry version (``models:/NAME/VERSION``) or, for a file, the
        first 12 hex digits of its SHA-256.
    alias : str or None
        The alias of a ``models:/NAME@ALIAS`` reference.
    loaded_at : str
        ISO time the session was opened (UTC).
    sectors : dict of str to str
        Sector ETFs ``--sector-map`` adds for tickers the model does not map.
    """

    scorer: PatternScorer
    reference: str
    version: str
    alias: str | None
    loaded_at: str
    sectors: dict[str, str] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """The training artifact's model id."""
        return self.scorer.model_id

    @property
    def embargo_end(self) -> str | None:
        """Scores dated on or before this day are in-sample (ISO date, or None)."""
        return (self.scorer.metadata.get("split") or {}).get("embargo_end")

    def describe(self) -> dict[str, Any]:
        """What ``/readyz`` and ``/admin/reload`` report about the model."""
        meta = self.scorer.metadata
        return {
            "model_id": self.model_id,
            "reference": self.reference,
            "version": self.version,
            "alias": self.alias,
            "loaded_at": self.loaded_at,
            "patterns": list(self.scorer.pattern_names),
            "feature_names": list(self.scorer.feature_names),
            "sequence_length": self.scorer.sequence_length,
            "data_fingerprint": meta.get("data_fingerprint"),
            "embargo_end": self.embargo_end,
            "vix_variant": self.scorer.vix_variant,
            "market": self.scorer.market,
            "providers": self.scorer.providers,
        }


def load_model(settings: ServeSettings) -> LoadedModel:
    """Open the session ``settings.model`` names (threads fixed, spinning off).

    Raises
    ------
    FileNotFoundError, ScoringError
        As :meth:`PatternScorer.load`; a ``ScoringError`` (a ValueError) also
        when ``--prices`` or ``--market`` contradicts the model, or
        ``--sector-map`` gives a trained ticker another sector.
    """
    reference = str(settings.model)
    scorer = PatternScorer.load(
        reference,
        intra_op_threads=settings.session_threads,
        allow_spinning=False,
        tracking_uri=settings.tracking_uri,
    )
    _check_pins(scorer, settings)
    registered = getattr(scorer, "registered", None)
    alias = None
    if is_registry_reference(reference) and "@" in reference:
        alias = reference.split("@", 1)[1]
    if registered:
        version = str(registered.get("uri") or registered.get("version"))
    else:
        version = hashlib.sha256(Path(reference).read_bytes()).hexdigest()[:12]
    return LoadedModel(
        scorer=scorer,
        reference=reference,
        version=version,
        alias=alias,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sectors=dict(settings.sector_map),
    )


def _check_pins(scorer: PatternScorer, settings: ServeSettings) -> None:
    """``--prices``, ``--market`` may confirm the model's choices; ``--sector-map`` extend them."""
    if settings.prices is not None and settings.prices != scorer.prices.mode:
        raise ScoringError(
            f"--prices {settings.prices}: the model was trained on {scorer.prices.mode} "
            "prices and scores only on them; drop --prices"
        )
    if settings.market is not None and settings.market.upper() != scorer.market:
        raise ScoringError(
            f"--market {settings.market}: the model was trained with the market "
            f"{scorer.market}; drop --market"
        )
    pinned = scorer.sector_map
    clash = [f"{t}: {pinned[t]} in the model, {e} given" for t, e in settings.sector_map.items()
             if t in pinned and pinned[t] != e]  # fmt: skip
    if clash:
        raise ScoringError(
            f"--sector-map contradicts the sector map the model was trained with "
            f"({', '.join(clash)}); a trained ticker keeps its sector"
        )


class ModelSlot:
    """The current model of a worker; :meth:`reload` swaps it atomically.

    With ``--workers N`` each worker has its own slot, and ``/admin/reload``
    reaches one of them. The worker that swaps writes a reload stamp
    (``<data-dir>/.serve-reload.json``: reference, version, pid, time); every
    slot checks the stamp with one ``stat`` per request, as the store's
    ``metadata.json`` is checked, and when another worker has written a new
    one it reloads itself.

    Parameters
    ----------
    settings : ServeSettings
    loaded : LoadedModel, optional
        The first model (default: loaded from ``settings``).
    stamp : Path, optional
        The reload stamp shared by the workers (default: none; a reload
        then reaches this slot only).
    on_swap : callable, optional
        Called with the new model after every swap, on whichever path.
    """

    def __init__(
        self,
        settings: ServeSettings,
        loaded: LoadedModel | None = None,
        *,
        stamp: Path | None = None,
        on_swap: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._current = loaded if loaded is not None else load_model(settings)
        self._stamp = stamp
        self._on_swap = on_swap
        self._seen = self._stat()  # a stamp older than this worker is history

    def current(self) -> LoadedModel:
        """The model to serve this request with (take it once per request).

        Follows a reload another worker stamped since this slot last looked.
        """
        if self._stamp is not None and self._stat() != self._seen:
            self._follow()
        return self._current

    def reload(self) -> tuple[LoadedModel, LoadedModel]:
        """Open the model again (an alias's current version) and swap it in.

        Returns
        -------
        (old, new) : LoadedModel
            ``new`` is ``old`` unchanged when the reference still names the
            same version.

        Raises
        ------
        ModelUnavailable
            The new model cannot be opened (a missing or corrupt file, an
            unreachable registry, an unknown alias); the old one stays in
            service.
        """
        with self._lock:
            old = self._current
            try:
                new = load_model(self._settings)
            except (OSError, ScoringError) as exc:
                raise ModelUnavailable(
                    f"cannot reload {old.reference}: {exc}; still serving version {old.version}"
                ) from None
            if new.version == old.version:
                return old, old
            self._swap(new)
            if self._stamp is not None:
                self._write_stamp(new)
            return old, new

    def _write_stamp(self, new: LoadedModel) -> None:
        """Tell the other workers (a failure leaves them on the old model, and says so)."""
        payload = {"reference": new.reference, "version": new.version,
                   "pid": os.getpid(), "at": new.loaded_at}  # fmt: skip
        try:
            self._stamp.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self._stamp, payload)
        except OSError as exc:
            print(
                f"engine serve (pid {os.getpid()}): swapped to {new.version} but cannot write "
                f"the reload stamp {self._stamp} ({exc}); other workers keep the old model "
                "until they are restarted",
                file=sys.stderr,
            )
        self._seen = self._stat()

    def _follow(self) -> None:
        """Reload because another worker stamped a reload (once per new stamp)."""
        with self._lock:
            seen = self._stat()
            if seen == self._seen:
                return  # another thread of this worker followed it already
            self._seen = seen
            try:
                new = load_model(self._settings)
            except (OSError, ScoringError) as exc:
                print(
                    f"engine serve (pid {os.getpid()}): cannot follow the reload stamped in "
                    f"{self._stamp}: {exc}; still serving version {self._current.version}",
                    file=sys.stderr,
                )
                return
            if new.version != self._current.version:
                self._swap(new)

    def _swap(self, new: LoadedModel) -> None:
        self._current = new
        if self._on_swap is not None:
            self._on_swap(new)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._stamp) if self._stamp is not None else None
        except FileNotFoundError:
            return None
        return None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)
