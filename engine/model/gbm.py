"""The LightGBM baseline: one binary classifier per pattern head on summaries of the window.

A quant user's first question about an LSTM is whether it beats a
gradient-boosted baseline on the same folds. :func:`fit_gbm` is that
baseline, fitted by :func:`engine.model.runs.train_windows` on exactly the
windows, purge and embargo the LSTM gets (``engine train --model lightgbm``).

Inputs: 85 summaries of the 20-day window, the last value, mean, min, max
and last minus first of each feature (:mod:`engine.model.tree_inputs`).

Training. One :class:`lightgbm.LGBMClassifier` per head, on that head's
events of the training fold only (a head's label is missing where its
pattern has no event), early-stopped on the same head's events of the
validation fold (binary log loss). Always ``deterministic=True`` with
``force_col_wise`` and a fixed ``num_threads`` (:class:`GBMConfig`): the same
seed and thread count give identical trees. Head ``j`` of window ``k`` uses
seed ``seed + k`` (the run's window seed) plus ``j``.

Float32 thresholds: every fitted booster is rewritten with each threshold
replaced by the largest float32 not above it
(:func:`engine.model.tree_inputs.float32_thresholds`), the same function on
float32 windows whose thresholds a float32 runtime (onnxruntime) reads
exactly. The booster saved, scored and exported is the rewritten one.

A head without both classes among its training events, or without events in
the validation fold to stop on, is not fitted: it predicts its training base
rate (0.5 without events), and the metadata says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine.model.artifacts import ArtifactError, check_feature_order, read_metadata
from engine.model.tree_inputs import (
    SUMMARIES,
    float32_thresholds,
    summary_names,
    window_summaries,
)

if TYPE_CHECKING:  # pragma: no cover
    import lightgbm

__all__ = [
    "BOOSTER_FILE",
    "MODEL_KIND",
    "SUMMARIES",
    "GBMConfig",
    "GBMFit",
    "GBMModel",
    "booster_file",
    "fit_gbm",
    "float32_thresholds",
    "load_gbm_artifact",
    "summary_names",
    "window_summaries",
]

MODEL_KIND = "lightgbm"
#: One LightGBM text model per head in the artifact directory.
BOOSTER_FILE = "lightgbm_{pattern}.txt"
#: ``progress(event)``: one ``{"kind": "head", ...}`` event per fitted head.
HeadProgress = Callable[[dict[str, Any]], None]


def booster_file(pattern: str) -> str:
    """The file name of ``pattern``'s booster inside an artifact directory.

    Examples
    --------
    >>> booster_file("momentum_persistence")
    'lightgbm_momentum_persistence.txt'
    """
    return BOOSTER_FILE.format(pattern=pattern)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class GBMConfig:
    """Settings of the LightGBM baseline (one classifier per head).

    Attributes
    ----------
    n_estimators : int
        Most boosting rounds per head (early stopping keeps fewer).
    learning_rate : float
    num_leaves : int
        Leaves per tree.
    min_child_samples : int
        Fewest training events in a leaf.
    colsample_bytree : float
        Share of the 85 inputs drawn for each tree.
    subsample : float
        Share of the training events drawn every ``subsample_freq`` rounds.
    subsample_freq : int
    reg_lambda : float
        L2 penalty on leaf values.
    early_stopping_rounds : int
        Rounds without a lower validation log loss before a head stops.
    num_threads : int
        LightGBM threads. Fixed, with ``deterministic=True``: LightGBM's
        results may depend on the thread count, so it is part of the recipe.
    """

    n_estimators: int = 500
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 20
    colsample_bytree: float = 0.8
    subsample: float = 0.8
    subsample_freq: int = 1
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 50
    num_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("n_estimators", "num_leaves", "early_stopping_rounds", "num_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got `{name}={value}`")
        if self.num_leaves < 2:
            raise ValueError(f"`num_leaves` must be at least 2, got `num_leaves={self.num_leaves}`")
        if self.min_child_samples < 1 or self.subsample_freq < 0:
            raise ValueError("`min_child_samples` must be >= 1 and `subsample_freq` >= 0, got "
                             f"{self.min_child_samples} and {self.subsample_freq}")  # fmt: skip
        for name in ("colsample_bytree", "subsample"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"`{name}` must lie in (0, 1], got `{name}={value}`")
        if not self.learning_rate > 0.0 or self.reg_lambda < 0.0:
            raise ValueError("`learning_rate` must be > 0 and `reg_lambda` >= 0, got "
                             f"{self.learning_rate} and {self.reg_lambda}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for metadata files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GBMConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown GBMConfig settings {unknown}")
        return cls(**values)

    def classifier_params(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of :class:`lightgbm.LGBMClassifier` for one head."""
        return {
            "objective": "binary",
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "subsample_freq": self.subsample_freq,
            "reg_lambda": self.reg_lambda,
            "random_state": int(seed),
            "n_jobs": self.num_threads,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }


# --------------------------------------------------------------------------- the model


class GBMModel:
    """One booster (or a constant) per pattern head, scoring raw (n, 20, 17) windows.

    Attributes
    ----------
    boosters : dict of str to lightgbm.Booster or None
        Per pattern; None for a head that was not fitted.
    constants : dict of str to float
        The probability of each unfitted head.
    feature_names, pattern_names : tuple of str
    sequence_length : int
    num_threads : int
        Threads LightGBM predicts with.
    """

    def __init__(
        self,
        boosters: dict[str, lightgbm.Booster | None],
        constants: dict[str, float],
        feature_names: Sequence[str],
        pattern_names: Sequence[str],
        sequence_length: int,
        num_threads: int = 1,
    ) -> None:
        self.boosters = dict(boosters)
        self.constants = dict(constants)
        self.feature_names = tuple(feature_names)
        self.pattern_names = tuple(pattern_names)
        self.sequence_length = int(sequence_length)
        self.num_threads = int(num_threads)

    def _summaries(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 3 or X.shape[1:] != (self.sequence_length, len(self.feature_names)):
            raise ValueError(
                f"windows must have shape (n, {self.sequence_length}, "
                f"{len(self.feature_names)}), got {X.shape}"
            )
        return window_summaries(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Confidence per head, ``(n, n_patterns)`` float32, for raw float32 windows."""
        features = self._summaries(X)
        out = np.empty((X.shape[0], len(self.pattern_names)), dtype=np.float32)
        for j, pattern in enumerate(self.pattern_names):
            booster = self.boosters.get(pattern)
            if booster is None:
                out[:, j] = self.constants[pattern]
            elif X.shape[0]:
                out[:, j] = booster.predict(features, num_threads=self.num_threads)
        return out

    def contributions(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """SHAP values per fitted head: ``(n, 85 + 1)`` log-odds, the last column the base value.

        LightGBM's TreeSHAP (``pred_contrib=True``); each row sums to the
        head's log-odds for that window.
        """
        features = self._summaries(X)
        return {
            p: np.asarray(b.predict(features, pred_contrib=True, num_threads=self.num_threads))
            for p, b in self.boosters.items()
            if b is not None
        }

    def gain_importance(self) -> dict[str, np.ndarray]:
        """Total split gain of each of the 85 inputs, per fitted head."""
        return {
            p: np.asarray(b.feature_importance(importance_type="gain"), dtype=np.float64)
            for p, b in self.boosters.items()
            if b is not None
        }

    def save(self, path: str | Path) -> None:
        """Write one LightGBM text model per fitted head into ``path``'s directory.

        :func:`engine.model.artifacts.write_model_artifact` calls
        ``model.save(<staging directory>/model.keras)``; the boosters go
        beside that path as :func:`booster_file` names (no ``model.keras``
        is written), so the artifact's checksums cover them.
        """
        directory = Path(path).parent
        for pattern, booster in self.boosters.items():
            if booster is not None:
                (directory / booster_file(pattern)).write_text(booster.model_to_string())


@dataclass
class GBMFit:
    """A fitted :class:`GBMModel` with how it got there (the run loop's view of a fit).

    Attributes
    ----------
    model : GBMModel
    history : pl.DataFrame
        One row per boosting round: ``epoch`` (the round, 1-based),
        ``train_loss`` and ``val_loss`` (binary log loss averaged over the
        labelled (window, head) pairs of the training and validation folds,
        as the LSTM's masked loss; a head that stopped earlier counts with its
        loss at its last round), ``gap`` and ``<pattern>_val_loss`` per head.
    best_epoch : int
        The most rounds any head keeps (each head's own count is in
        ``training["best_iteration"]``).
    mean, variance : ndarray
        Per-feature mean and variance over the training windows' rows (for
        the export's random parity windows and drift references).
    stopped_early : bool
        Whether some head stopped before ``n_estimators`` rounds.
    seconds : float
    parameters : dict
        ``trees`` and ``leaves`` kept, over all heads.
    training : dict
        Per head: ``best_iteration``, ``n_train`` and ``n_validation``
        events, ``constant`` (the probability of an unfitted head, with
        ``reason``).
    """

    model: GBMModel
    history: pl.DataFrame
    best_epoch: int
    mean: np.ndarray
    variance: np.ndarray
    stopped_early: bool
    seconds: float
    parameters: dict[str, int] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


def _held(values: Sequence[float], rounds: int) -> np.ndarray:
    """A head's per-round log loss, held at its last value after the head stopped."""
    out = np.asarray(values, dtype=np.float64)
    return np.concatenate([out, np.full(rounds - out.size, out[-1])])


def _history(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], counts: dict[str, tuple[int, int]]
) -> pl.DataFrame:
    rounds = max(train.size for train, _ in curves.values())
    n_train = sum(counts[p][0] for p in curves)
    n_val = sum(counts[p][1] for p in curves)
    train = sum(counts[p][0] * c[0] for p, c in curves.items()) / n_train
    val = sum(counts[p][1] * c[1] for p, c in curves.items()) / n_val
    return pl.DataFrame(
        {
            "epoch": np.arange(1, rounds + 1, dtype=np.int64),
            "train_loss": train,
            "val_loss": val,
            "gap": val - train,
            **{f"{p}_val_loss": c[1] for p, c in curves.items()},
        }
    )


def fit_gbm(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    config: GBMConfig | None = None,
    *,
    seed: int = 0,
    deterministic: bool = True,
    progress: HeadProgress | None = None,
    feature_names: Sequence[str] | None = None,
    pattern_names: Sequence[str] | None = None,
) -> GBMFit:
    """Fit one early-stopped LightGBM classifier per head on that head's events.

    Parameters
    ----------
    X_train, X_val : ndarray, shape (n, 20, 17), float32
        Raw feature windows of the training and validation folds.
    y_train, y_val : ndarray, shape (n, n_patterns), float32
        1, 0 or NaN (no event).
    config : GBMConfig, optional
    seed : int
        Head ``j`` is fitted with seed ``seed + j``.
    deterministic : bool
        Ignored: LightGBM always runs deterministically here (accepted so that
        the run loop calls every model kind the same way).
    progress : callable, optional
        Receives ``{"kind": "head", "pattern": ..., "best_iteration": ...}``.
    feature_names, pattern_names : sequence of str, optional
        Default: the engine's features and ``pattern_0 ..``.

    Returns
    -------
    GBMFit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 20, 17)).astype(np.float32)
    >>> y = (X[:, -1, :2] + rng.normal(size=(600, 2)) > 0).astype(np.float32)
    >>> fit = fit_gbm(X[:400], y[:400], X[400:], y[400:], GBMConfig(n_estimators=20), seed=1)
    >>> fit.model.predict(X[400:403]).shape, fit.history.columns[:4]
    ((3, 2), ['epoch', 'train_loss', 'val_loss', 'gap'])
    """
    import lightgbm as lgb

    from engine.features.build import FEATURE_NAMES

    config = config or GBMConfig()
    began = time.perf_counter()
    n_patterns = y_train.shape[1]
    features = list(feature_names) if feature_names is not None else list(FEATURE_NAMES)
    default = [f"pattern_{j}" for j in range(n_patterns)]
    patterns = list(pattern_names) if pattern_names is not None else default
    if len(patterns) != n_patterns or X_train.shape[2] != len(features):
        raise ValueError(
            f"{len(patterns)} pattern names for {n_patterns} label columns, or "
            f"{len(features)} feature names for {X_train.shape[2]} features"
        )
    train_inputs, val_inputs = window_summaries(X_train), window_summaries(X_val)
    rows = X_train.reshape(-1, X_train.shape[2]).astype(np.float64)
    boosters: dict[str, lgb.Booster | None] = {}
    constants: dict[str, float] = {}
    training: dict[str, Any] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    counts: dict[str, tuple[int, int]] = {}
    stopped = False
    for j, pattern in enumerate(patterns):
        tr = ~np.isnan(y_train[:, j])
        va = ~np.isnan(y_val[:, j])
        yt, yv = y_train[tr, j].astype(np.int64), y_val[va, j].astype(np.int64)
        record: dict[str, Any] = {"n_train": int(tr.sum()), "n_validation": int(va.sum())}
        reason = None
        if np.unique(yt).size < 2:
            reason = "training events lack both outcomes"
        elif yv.size == 0:
            reason = "no validation events to stop on"
        if reason is not None:
            boosters[pattern] = None
            constants[pattern] = float(yt.mean()) if yt.size else 0.5
            training[pattern] = {**record, "constant": constants[pattern], "reason": reason}
            continue
        clf = lgb.LGBMClassifier(**config.classifier_params(seed + j))
        xt = train_inputs[tr]
        # The training curve is watched for the history only. Early stopping skips a set only
        # when it is the training data: the very same objects (LightGBM then reuses its
        # Dataset) under the name it expects, "training". Any other set is a validation set
        # to stop on, and when stopping never fires LightGBM keeps that set's best round.
        clf.fit(
            xt, yt,
            eval_X=(xt, val_inputs[va]), eval_y=(yt, yv),
            eval_names=["training", "validation"], eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True,
                                          verbose=False)],
        )  # fmt: skip
        best = int(clf.best_iteration_ or clf.n_estimators)
        text = float32_thresholds(clf.booster_.model_to_string(num_iteration=best))
        boosters[pattern] = lgb.Booster(model_str=text)
        result = clf.evals_result_
        ran = len(result["validation"]["binary_logloss"])
        stopped = stopped or ran < config.n_estimators
        curves[pattern] = (
            result["training"]["binary_logloss"],
            result["validation"]["binary_logloss"],
        )
        counts[pattern] = (int(tr.sum()), int(va.sum()))
        training[pattern] = {**record, "best_iteration": best, "rounds": ran}
        if progress:
            progress({"kind": "head", "pattern": pattern, **training[pattern]})
    if curves:
        rounds = max(len(t) for t, _ in curves.values())
        padded = {p: (_held(t, rounds), _held(v, rounds)) for p, (t, v) in curves.items()}
        history = _history(padded, counts)
    else:
        history = pl.DataFrame(
            {"epoch": [1], "train_loss": [float("nan")], "val_loss": [float("nan")],
             "gap": [float("nan")]}
        )  # fmt: skip
    fitted = {p: b for p, b in boosters.items() if b is not None}
    trees = sum(b.num_trees() for b in fitted.values())
    leaves = sum(int(t["num_leaves"]) for b in fitted.values() for t in b.dump_model()["tree_info"])
    model = GBMModel(boosters, constants, features, patterns, X_train.shape[1], config.num_threads)
    best_epoch = max((training[p]["best_iteration"] for p in fitted), default=0)
    return GBMFit(
        model=model,
        history=history,
        best_epoch=best_epoch,
        mean=rows.mean(axis=0),
        variance=rows.var(axis=0),
        stopped_early=stopped,
        seconds=time.perf_counter() - began,
        parameters={"trees": trees, "leaves": leaves},
        training={"heads": training, "inputs": summary_names(features)},
    )


# --------------------------------------------------------------------------- loading


def load_gbm_artifact(directory: str | Path) -> tuple[GBMModel, dict[str, Any]]:
    """Load a verified LightGBM artifact: its :class:`GBMModel` and metadata.

    Raises
    ------
    ArtifactError
        Not an artifact, a checksum mismatch, not a LightGBM model, features
        that differ from the engine's, or a booster file the checksums do
        not cover.
    """
    import lightgbm as lgb

    directory = Path(directory)
    metadata = read_metadata(directory)
    kind = metadata.get("model_kind", "lstm")
    if kind != MODEL_KIND:
        raise ArtifactError(f"{directory} holds a {kind!r} model, not a {MODEL_KIND!r} one")
    check_feature_order(metadata, source=str(directory))
    heads = (metadata.get("training") or {}).get("heads") or {}
    boosters: dict[str, lgb.Booster | None] = {}
    constants: dict[str, float] = {}
    for pattern in metadata["pattern_names"]:
        info = heads.get(pattern, {})
        if "constant" in info:
            boosters[pattern] = None
            constants[pattern] = float(info["constant"])
            continue
        name = booster_file(pattern)
        if name not in metadata.get("files", {}):
            raise ArtifactError(f"{directory}: no checksum for {name}; cannot verify head "
                                f"{pattern!r}")  # fmt: skip
        boosters[pattern] = lgb.Booster(model_file=str(directory / name))
    threads = int((metadata.get("config") or {}).get("num_threads", 1))
    model = GBMModel(
        boosters,
        constants,
        metadata["feature_names"],
        metadata["pattern_names"],
        int(metadata["sequence_length"]),
        threads,
    )
    return model, metadata
