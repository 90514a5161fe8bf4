"""Reference distributions: what the training data looked like, stored with the model.

Training stores, in the model artifact's ``metadata.json`` and in the ONNX
metadata (key ``reference``), one entry per feature and one per head::

    {"edges": [...9 inner decile edges...], "shares": [...10 shares...], "n": rows}

* **features**: the value of each feature on the last day of every training
  window of the training fold (the samples the model learned from, on the
  stride-5 training grid);
* **heads**: each head's confidence on every window of the validation fold
  (the model's own output on data it was not fitted on).

Beside them: the validation AUC of each head (on its labelled validation
windows), so a drift check can put today's AUC beside it.

This module only needs NumPy, so training can import it.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = build_reference(rng.normal(size=(500, 2)), ["a", "b"],
...                       rng.uniform(size=(200, 1)), ["head"])
>>> sorted(ref), ref["features"]["a"]["n"], len(ref["features"]["a"]["shares"])
(['features', 'format', 'heads', 'n_bins', 'sources', 'validation_auc'], 500, 10)
>>> read_reference({"reference": ref}, source="model.onnx")["heads"]["head"]["n"]
200
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from engine.monitoring.psi import N_BINS, bin_counts, decile_edges

__all__ = [
    "REFERENCE_FORMAT",
    "ReferenceError",
    "build_reference",
    "distribution",
    "read_reference",
    "training_reference",
]

REFERENCE_FORMAT = "pattern-engine-reference/1"
_SOURCES = {
    "features": "last day of each training-fold window (stride-5 training grid)",
    "heads": "confidence on each validation-fold window",
}


class ReferenceError(ValueError):
    """A model without usable reference distributions."""


def distribution(values, n_bins: int = N_BINS) -> dict[str, Any]:
    """Decile edges of ``values`` and the share of ``values`` in each bin.

    Returns
    -------
    dict
        ``edges`` (inner, increasing), ``shares`` (one per bin, summing to 1)
        and ``n`` (finite values used).

    Examples
    --------
    >>> d = distribution(np.arange(100.0), n_bins=4)
    >>> d["edges"], d["shares"], d["n"]
    ([24.0, 49.0, 74.0], [0.25, 0.25, 0.25, 0.25], 100)
    """
    edges = decile_edges(values, n_bins)
    counts = bin_counts(values, edges)
    n = int(counts.sum())
    return {"edges": edges.tolist(), "shares": (counts / n).tolist(), "n": n}


def build_reference(
    features: np.ndarray,
    feature_names: Sequence[str],
    confidence: np.ndarray,
    pattern_names: Sequence[str],
    validation_auc: Mapping[str, float | None] | None = None,
    n_bins: int = N_BINS,
) -> dict[str, Any]:
    """The reference distributions of a model (JSON-ready).

    Parameters
    ----------
    features : ndarray, shape (n, n_features)
        Training-fold feature values (one row per training window's last day).
    feature_names : sequence of str
    confidence : ndarray, shape (m, n_patterns)
        The model's confidence on the validation-fold windows.
    pattern_names : sequence of str
    validation_auc : mapping, optional
        Validation AUC per head (None where a head has one class).
    n_bins : int, default 10

    Returns
    -------
    dict
        ``format``, ``n_bins``, ``features`` and ``heads`` (name ->
        :func:`distribution`), ``validation_auc`` and ``sources``.
    """
    features = np.asarray(features, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ValueError(f"features must be (n, {len(feature_names)}), got shape {features.shape}")
    if confidence.ndim != 2 or confidence.shape[1] != len(pattern_names):
        raise ValueError(
            f"confidence must be (m, {len(pattern_names)}), got shape {confidence.shape}"
        )
    auc = dict(validation_auc or {})
    return {
        "format": REFERENCE_FORMAT,
        "n_bins": int(n_bins),
        "features": {
            name: distribution(features[:, j], n_bins) for j, name in enumerate(feature_names)
        },
        "heads": {
            name: distribution(confidence[:, j], n_bins) for j, name in enumerate(pattern_names)
        },
        "validation_auc": {name: auc.get(name) for name in pattern_names},
        "sources": dict(_SOURCES),
    }


def training_reference(
    predict: Callable[[np.ndarray], np.ndarray],
    X_train: np.ndarray,
    X_validation: np.ndarray,
    y_validation: np.ndarray,
    feature_names: Sequence[str],
    pattern_names: Sequence[str],
) -> dict[str, Any]:
    """The reference of a freshly trained model (what :mod:`engine.model.runs` stores).

    Parameters
    ----------
    predict : callable
        ``predict(X) -> (n, n_patterns)`` confidences of the trained model.
    X_train : ndarray, shape (n, length, n_features)
        Training-fold windows; the last day of each is the feature reference.
    X_validation, y_validation : ndarray
        Validation-fold windows and their labels (NaN where a head has no event).
    feature_names, pattern_names : sequence of str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, Xv = rng.normal(size=(300, 20, 2)), rng.normal(size=(100, 20, 2))
    >>> yv = (Xv[:, -1, :1] > 0).astype(float)
    >>> ref = training_reference(lambda x: 1 / (1 + np.exp(-x[:, -1, :1])), X, Xv, yv,
    ...                          ["a", "b"], ["up"])
    >>> ref["validation_auc"], ref["features"]["b"]["n"]
    ({'up': 1.0}, 300)
    """
    from engine.evaluation.classification import auc

    confidence = np.asarray(predict(X_validation))
    y = np.asarray(y_validation, dtype=np.float64)
    aucs: dict[str, float | None] = {}
    for j, name in enumerate(pattern_names):
        labelled = ~np.isnan(y[:, j])
        both = np.unique(y[labelled, j]).size == 2
        aucs[name] = float(auc(y[labelled, j], confidence[labelled, j])) if both else None
    return build_reference(
        np.asarray(X_train)[:, -1, :], feature_names, confidence, pattern_names, aucs
    )


def read_reference(metadata: Mapping[str, Any], *, source: str = "") -> dict[str, Any]:
    """The ``reference`` entry of a model's metadata, checked.

    Parameters
    ----------
    metadata : mapping
        An artifact's ``metadata.json`` or an ONNX file's decoded metadata.
    source : str
        Named in the error (a path or a registry URI).

    Raises
    ------
    ReferenceError
        The model predates reference distributions (re-export it, or retrain
        it when its artifact has none either), or the entry is malformed.
    """
    where = f"{source}: " if source else ""
    ref = metadata.get("reference")
    if ref is None:
        raise ReferenceError(
            f"{where}the model stores no reference distributions (it was trained or exported "
            "before drift monitoring); re-export its artifact with `engine export-onnx`, or "
            "retrain with `engine train` if the artifact's metadata.json has no 'reference' "
            "either"
        )
    if not isinstance(ref, Mapping) or ref.get("format") != REFERENCE_FORMAT:
        found = ref.get("format") if isinstance(ref, Mapping) else type(ref).__name__
        raise ReferenceError(f"{where}reference format {found!r} is not {REFERENCE_FORMAT!r}")
    for part in ("features", "heads"):
        for name, entry in (ref.get(part) or {}).items():
            edges, shares = entry.get("edges"), entry.get("shares")
            if not isinstance(edges, list) or not isinstance(shares, list):
                raise ReferenceError(f"{where}reference {part}.{name} lacks edges or shares")
            if len(shares) != len(edges) + 1:
                raise ReferenceError(
                    f"{where}reference {part}.{name} has {len(edges)} edges but "
                    f"{len(shares)} shares (expected {len(edges) + 1})"
                )
    return dict(ref)
