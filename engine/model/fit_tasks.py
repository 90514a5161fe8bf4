"""One model fit as a pure task: a picklable spec in, a picklable outcome out.

Walk-forward windows (``engine train --workers``) and tuning trials
(``engine tune``) are made of the same unit of work: fit the model with one
configuration and seed on one fold's training samples, early-stopped on its
validation samples, then score a set of sequences. :func:`run_fit_task`
does that for a :class:`FitTask` against :class:`FoldData` (the arrays every
task shares, sent to each worker once by :mod:`engine.parallel`), and
returns a :class:`FitOutcome`: the confidences, the history and, on request,
the weights, never a live Keras object.

The task sets TensorFlow's thread counts the first time it runs in a
process (they cannot change afterwards), so a worker uses the CPUs its
executor gave it. With the same seed, configuration and thread count a
task gives the same outcome wherever it runs (with ``deterministic=True``,
TensorFlow's deterministic ops).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(64, 5, 3)).astype("float32")
>>> y = (X[:, -1, :2] > 0).astype("float32")
>>> data = FoldData(X=X, y=y, score_X=X[48:],
...                 folds=[Fold(train=np.arange(32), validation=np.arange(32, 48),
...                             score=np.arange(16))])
>>> config = {"lstm_units": 4, "lstm2_units": 2, "dense_units": 2, "epochs": 1}
>>> outcome = run_fit_task(FitTask(key="a", fold=0, config=config, seed=0), data)
>>> outcome.key, outcome.confidence.shape, outcome.epochs
('a', (16, 2), 1)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FitOutcome",
    "FitTask",
    "Fold",
    "FoldData",
    "ParallelWindowFits",
    "WindowFitTask",
    "configure_threads",
    "run_fit_task",
    "run_window_fit_task",
]


@dataclass(frozen=True)
class Fold:
    """Row numbers of one fold.

    Attributes
    ----------
    train, validation : ndarray of int
        Rows of :attr:`FoldData.X` / :attr:`FoldData.y` to fit on and to
        early-stop on.
    score : ndarray of int
        Rows of :attr:`FoldData.score_X` to score after the fit.
    """

    train: np.ndarray
    validation: np.ndarray
    score: np.ndarray


@dataclass
class FoldData:
    """Arrays every task of a run shares.

    Attributes
    ----------
    X : ndarray, shape (n, length, n_features), float32
        Training-grid sequences (the folds' training and validation rows).
    y : ndarray, shape (n, n_patterns), float32
        Their labels, NaN where a head has no event.
    score_X : ndarray, shape (m, length, n_features), float32
        Sequences scored after a fit (e.g. validation or test days, stride 1).
    folds : list of Fold
    """

    X: np.ndarray
    y: np.ndarray
    score_X: np.ndarray
    folds: list[Fold] = field(default_factory=list)


@dataclass(frozen=True)
class FitTask:
    """What to fit.

    Attributes
    ----------
    key : object
        Echoed in the outcome (e.g. ``(trial, window)``).
    fold : int
        Index into :attr:`FoldData.folds`.
    config : dict
        :meth:`engine.model.network.ModelConfig.to_dict` (a subset is fine).
    seed : int
    deterministic : bool
        TensorFlow's deterministic ops.
    threads : int
        TensorFlow intra- and inter-op threads of the process (0 leaves
        TensorFlow's default); applied the first time a task runs there.
    return_weights : bool
        Also return the fitted weights (to rebuild and save the model).
    """

    key: Any
    fold: int
    config: dict[str, Any]
    seed: int
    deterministic: bool = False
    threads: int = 0
    return_weights: bool = False


@dataclass
class FitOutcome:
    """What a fit produced (all plain arrays and lists).

    Attributes
    ----------
    key : object
        The task's key.
    fold : int
    confidence : ndarray, shape (len(fold.score), n_patterns), float32
    history : list of dict
        One row per epoch (see :class:`engine.model.trainer.FitResult`).
    best_epoch, epochs : int
    stopped_early : bool
    seconds : float
        Wall time of the fit and the scoring.
    mean, variance : ndarray
        Normalization statistics of the training rows.
    class_weights : ndarray or None
    weights : list of ndarray or None
        ``model.get_weights()`` when requested.
    parameters : dict
        Trainable / non-trainable / total weight counts.
    """

    key: Any
    fold: int
    confidence: np.ndarray
    history: list[dict[str, Any]]
    best_epoch: int
    epochs: int
    stopped_early: bool
    seconds: float
    mean: np.ndarray
    variance: np.ndarray
    class_weights: np.ndarray | None
    weights: list[np.ndarray] | None
    parameters: dict[str, int]


_THREADS: dict[str, int] = {}


def configure_threads(threads: int) -> None:
    """Set TensorFlow's intra- and inter-op threads once per process (0: leave the default).

    TensorFlow reads the setting when it first runs an op; later calls with
    another count in the same process are ignored.
    """
    if threads <= 0 or "threads" in _THREADS:
        return
    _THREADS["threads"] = threads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process
        pass


def run_fit_task(task: FitTask, data: FoldData) -> FitOutcome:
    """Fit ``task.config`` on fold ``task.fold`` of ``data`` and score its ``score`` rows.

    Parameters
    ----------
    task : FitTask
    data : FoldData

    Returns
    -------
    FitOutcome
    """
    configure_threads(task.threads)
    from engine.model.network import ModelConfig, parameter_counts
    from engine.model.trainer import fit_model, predict

    began = time.perf_counter()
    fold = data.folds[task.fold]
    config = ModelConfig.from_dict(task.config)
    fit = fit_model(
        data.X[fold.train],
        data.y[fold.train],
        data.X[fold.validation],
        data.y[fold.validation],
        config,
        seed=task.seed,
        deterministic=task.deterministic,
    )
    confidence = predict(fit.model, data.score_X[fold.score])
    return FitOutcome(
        key=task.key,
        fold=task.fold,
        confidence=confidence,
        history=fit.history.to_dicts(),
        best_epoch=fit.best_epoch,
        epochs=fit.history.height,
        stopped_early=fit.stopped_early,
        seconds=time.perf_counter() - began,
        mean=fit.mean,
        variance=fit.variance,
        class_weights=fit.class_weights,
        weights=fit.model.get_weights() if task.return_weights else None,
        parameters=parameter_counts(fit.model),
    )


@dataclass(frozen=True)
class WindowFitTask:
    """One window of a training run, for any model kind (:mod:`engine.model.kinds`).

    Attributes
    ----------
    window : int
        The window's index in the run (its seed is ``settings.seed + window``).
    fold : int
        Index into :attr:`FoldData.folds`.
    config : ModelConfig or GBMConfig
        Chooses the kind.
    feature_names, pattern_names : tuple of str
    seed : int
    deterministic : bool
    threads : int
        As for :class:`FitTask`.
    """

    window: int
    fold: int
    config: Any
    feature_names: tuple[str, ...]
    pattern_names: tuple[str, ...]
    seed: int
    deterministic: bool = False
    threads: int = 0


def run_window_fit_task(task: WindowFitTask, data: FoldData) -> tuple[Any, np.ndarray]:
    """Fit one window with its kind's fitter and score its ``score`` rows.

    Returns
    -------
    fit : object
        The kind's fit result (picklable: an LSTM's model travels as its
        architecture and weights).
    confidence : ndarray
        Scores of the fold's ``score`` rows, computed here by the fitted
        model itself (so they equal a fit in the driver's process).
    """
    configure_threads(task.threads)
    from engine.model.kinds import window_fitter

    fitter = window_fitter(task.config, task.feature_names, task.pattern_names)
    fold = data.folds[task.fold]
    fit = fitter.fit(
        data.X[fold.train],
        data.y[fold.train],
        data.X[fold.validation],
        data.y[fold.validation],
        task.config,
        seed=task.seed,
        deterministic=task.deterministic,
        progress=None,
    )
    return fit, fitter.predict(fit, data.score_X[fold.score])


class ParallelWindowFits:
    """Every window of a run submitted at once; :meth:`get` hands back one when it is done.

    Parameters
    ----------
    backend, workers, address
        See :func:`engine.parallel.make_executor`.
    data : FoldData
        Training grid rows and, as ``score_X``, every window's test rows.
    tasks : list of WindowFitTask
        ``threads`` is filled in from the executor.
    """

    def __init__(
        self,
        backend: str,
        workers: int,
        address: str | None,
        data: FoldData,
        tasks: list[WindowFitTask],
    ) -> None:
        from dataclasses import replace

        from engine.parallel import make_executor

        self._executor = make_executor(
            backend, run_window_fit_task, data, workers=workers, address=address
        )
        self.threads = self._executor.threads
        self._pending = {
            self._executor.submit(replace(t, threads=self.threads)): t.window for t in tasks
        }
        self._done: dict[int, tuple[Any, np.ndarray]] = {}

    def get(self, window: int) -> tuple[Any, np.ndarray]:
        """``(fit, confidence)`` of ``window``, waiting for it if needed.

        Raises
        ------
        Exception
            The error the window's fit raised.
        """
        while window not in self._done:
            if window not in self._pending.values():
                raise KeyError(f"window {window} was not submitted")
            done, _ = self._executor.wait(list(self._pending))
            for handle, result, error in done:
                k = self._pending.pop(handle)
                if error is not None:
                    raise error
                self._done[k] = result
        return self._done.pop(window)

    def close(self) -> None:
        """Stop the workers."""
        self._executor.close()

    def __enter__(self) -> ParallelWindowFits:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
