"""The model kinds a training run fits, and how to reload any kind's artifact for scoring.

:func:`engine.model.runs.train_windows` is one loop for every kind: the
same windows, purge, embargo, artifacts and predictions. What differs per
kind is behind a :class:`WindowFitter` (:func:`window_fitter`, chosen by the
type of the configuration):

========== ===================================== ======================================
kind       configuration                         fit
========== ===================================== ======================================
lstm       :class:`engine.model.network.ModelConfig` :func:`engine.model.trainer.fit_model`
lightgbm   :class:`engine.model.gbm.GBMConfig`   :func:`engine.model.gbm.fit_gbm`
========== ===================================== ======================================

An artifact's ``metadata.json`` names its kind in ``model_kind`` (absent:
``lstm``, the original kind). :func:`load_predictor` reloads any kind as a
function from raw (n, 20, 17) float32 windows to confidences, which is all
that ensembles and permutation importance need; an ensemble artifact
(``model_kind: ensemble``, :mod:`engine.model.ensemble`) reloads with its
members.

Examples
--------
>>> from engine.model.gbm import GBMConfig
>>> kind_of(GBMConfig()), MODEL_KINDS
('lightgbm', ('lstm', 'lightgbm'))
>>> kind_of({"epochs": 3})
Traceback (most recent call last):
...
ValueError: unknown model configuration dict: give an engine.model.network.ModelConfig (lstm) or an engine.model.gbm.GBMConfig (lightgbm)
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.artifacts import ArtifactError, read_metadata
from engine.model.gbm import MODEL_KIND as LIGHTGBM
from engine.model.gbm import GBMConfig

__all__ = [
    "MODEL_KINDS",
    "WindowFitter",
    "check_kind",
    "kind_of",
    "load_predictor",
    "window_fitter",
]

LSTM = "lstm"
#: Artifacts of ``engine ensemble`` (loadable, not trainable).
ENSEMBLE = "ensemble"
#: Every kind ``engine train --model`` accepts.
MODEL_KINDS = (LSTM, LIGHTGBM)
Predict = Callable[[np.ndarray], np.ndarray]


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`MODEL_KINDS`, else a ``ValueError`` naming them.

    Examples
    --------
    >>> check_kind("xgboost")
    Traceback (most recent call last):
    ...
    ValueError: unknown model kind 'xgboost'; choose one of lstm, lightgbm
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    return kind


def kind_of(config: Any) -> str:
    """The model kind a configuration object trains."""
    from engine.model.network import ModelConfig

    if isinstance(config, ModelConfig):
        return LSTM
    if isinstance(config, GBMConfig):
        return LIGHTGBM
    raise ValueError(
        f"unknown model configuration {type(config).__name__}: give an "
        "engine.model.network.ModelConfig (lstm) or an engine.model.gbm.GBMConfig (lightgbm)"
    )


@dataclass(frozen=True)
class WindowFitter:
    """How one model kind fits a window and scores with the fit.

    Attributes
    ----------
    kind : str
    fit : callable
        ``fit(X_train, y_train, X_val, y_val, config, *, seed, deterministic,
        progress)``; the result has ``model`` (saved by
        :func:`engine.model.artifacts.write_model_artifact`), ``history``,
        ``best_epoch``, ``mean``, ``variance``, ``stopped_early``, ``seconds``.
    predict : callable
        ``predict(fit, X)``: confidences ``(n, n_patterns)`` for raw windows.
    parameters : callable
        ``parameters(fit)``: the size of the model (``trainable``/``total``
        weights for the LSTM, ``trees``/``leaves`` for LightGBM).
    training : callable
        ``training(fit)``: kind-specific entries of the metadata's ``training``.
    metadata : dict
        Kind-specific top-level entries of ``metadata.json`` and ``run.json``
        (``model_kind`` for every kind but the original LSTM).
    """

    kind: str
    fit: Callable[..., Any]
    predict: Callable[[Any, np.ndarray], np.ndarray]
    parameters: Callable[[Any], dict[str, int]]
    training: Callable[[Any], dict[str, Any]] = lambda fit: {}
    metadata: dict[str, Any] = field(default_factory=dict)


def window_fitter(
    config: Any, feature_names: Sequence[str], pattern_names: Sequence[str]
) -> WindowFitter:
    """The :class:`WindowFitter` of ``config``'s kind (imports the kind's library only)."""
    kind = kind_of(config)
    if kind == LSTM:
        from engine.model.network import parameter_counts
        from engine.model.trainer import fit_model, predict

        return WindowFitter(
            kind=LSTM,
            fit=fit_model,
            predict=lambda fit, X: predict(fit.model, X),
            parameters=lambda fit: parameter_counts(fit.model),
        )
    from engine.model.gbm import fit_gbm

    def fit(X_tr, y_tr, X_val, y_val, config, *, seed, deterministic=True, progress=None):
        # per-epoch progress events are the LSTM's; a booster reports none
        return fit_gbm(X_tr, y_tr, X_val, y_val, config, seed=seed,
                       feature_names=feature_names, pattern_names=pattern_names)  # fmt: skip

    return WindowFitter(
        kind=LIGHTGBM,
        fit=fit,
        predict=lambda fit, X: fit.model.predict(X),
        parameters=lambda fit: dict(fit.parameters),
        training=lambda fit: dict(fit.training),
        metadata={"model_kind": LIGHTGBM},
    )


def load_predictor(directory: str | Path) -> tuple[Predict, dict[str, Any]]:
    """Reload a verified artifact of any kind as ``predict(X) -> confidences`` and its metadata.

    Raises
    ------
    ArtifactError
        A corrupt artifact, features that differ from the engine's, or an
        unknown ``model_kind``.
    """
    directory = Path(directory)
    kind = read_metadata(directory).get("model_kind", LSTM)
    if kind == LIGHTGBM:
        from engine.model.gbm import load_gbm_artifact

        model, metadata = load_gbm_artifact(directory)
        return model.predict, metadata
    if kind == ENSEMBLE:
        from engine.model.ensemble import load_ensemble

        model, metadata = load_ensemble(directory, load_predictor)
        return model.predict, metadata
    if kind == LSTM:
        from engine.model.artifacts import load_model_artifact
        from engine.model.trainer import predict

        artifact = load_model_artifact(directory)
        return partial(predict, artifact.model), artifact.metadata
    raise ArtifactError(
        f"{directory} holds a model of kind {kind!r}, which this engine cannot load "
        f"(it knows {', '.join((*MODEL_KINDS, ENSEMBLE))})"
    )
