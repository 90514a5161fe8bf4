"""Production monitoring: PSI against reference distributions stored with the model.

* :mod:`~engine.monitoring.psi`: bins frozen from the reference, the PSI,
  row status and the minimum window.
* :mod:`~engine.monitoring.reference`: the reference distributions that
  training stores (NumPy only, so training imports it).
* :mod:`~engine.monitoring.drift`: features and confidences of a window of
  stored bars against a model's reference, with AUC on matured labels.
* :mod:`~engine.monitoring.report`: the drift report (HTML, histograms).
* :mod:`~engine.monitoring.challenger`: paired date-block bootstrap of the
  AUC difference between two models and the promotion rule.
* :mod:`~engine.monitoring.retrain`: the champion/challenger retrain loop.

Only the first two are imported here; the others load onnxruntime or
TensorFlow and are imported where used.
"""

from engine.monitoring.psi import (
    DRIFT,
    WARN,
    bin_shares,
    decile_edges,
    min_rows,
    noise_floor,
    psi,
    psi_status,
)
from engine.monitoring.reference import ReferenceError, build_reference, read_reference

__all__ = [
    "DRIFT",
    "WARN",
    "ReferenceError",
    "bin_shares",
    "build_reference",
    "decile_edges",
    "min_rows",
    "noise_floor",
    "psi",
    "psi_status",
    "read_reference",
]
