"""Experiment tracking and the model registry, on MLflow (SQLite by default, no server).

* :mod:`~engine.tracking.settings`: :class:`Tracking`: on or off, the URI
  (``sqlite:///<data-dir>/mlflow.db`` by default) and the artifact root.
* :mod:`~engine.tracking.runs`: :func:`tracked` (decorate a job) and
  :func:`track_job` (log while a job runs); a tracking failure warns
  (:class:`TrackingWarning`) and never costs a run its files.
* :mod:`~engine.tracking.flatten`: a report's ``to_dict()`` as parameters,
  metrics and artifact files.
* :mod:`~engine.tracking.registry`: registered ONNX models, versions tagged
  with their metadata and SHA-256, the ``champion`` / ``challenger``
  aliases, promotion and rollback, and ``models:/`` URIs.
* :mod:`~engine.tracking.client`: opening MLflow safely from several processes.

MLflow itself is imported only when something is logged or looked up.
"""

from engine.tracking.runs import JobRun, TrackingWarning, track_job, tracked
from engine.tracking.settings import NO_TRACK_ENV, TRACKING_URI_ENV, Tracking

__all__ = [
    "NO_TRACK_ENV",
    "TRACKING_URI_ENV",
    "JobRun",
    "Tracking",
    "TrackingWarning",
    "track_job",
    "tracked",
]
