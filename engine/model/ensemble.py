r"""Ensembles of runs trained on the same windows: the mean, or a stack fitted on validation folds.

Members are training runs of any kind (the LSTM, LightGBM, another
ensemble is not a member) fitted on the same bars, features (in the same
order), heads and walk-forward windows (:func:`check_members`). For each
window and head the ensemble's confidence combines the members' confidences:

* ``mean``: :math:`\bar p = \frac1k \sum_m p_m`, nothing fitted;
* ``stack``: a logistic regression on the members' log-odds,
  :math:`p = \sigma(c_0 + \sum_m c_m \operatorname{logit} p_m)`, fitted on the
  **validation fold** of that window only (:func:`fit_stack`; the rows each
  member was early-stopped on, never its test period), with a small L2
  penalty on the member weights (not the intercept). A head with fewer than
  :data:`MIN_STACK_EVENTS` labelled validation rows, or one outcome only,
  falls back to the mean, and the artifact says so.

The ensemble's ``train_end`` is the latest of its members' (the validation
labels are inside it), so its predictions pass the same out-of-sample guard.

Examples
--------
>>> import numpy as np

from engine.model.artifacts import ArtifactError, read_metadata
>>> rng = np.random.default_rng(0)
>>> y = (rng.uniform(size=2000) < 0.5).astype(float)
>>> good = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.5, 2000))))
>>> noise = rng.uniform(0.05, 0.95, 2000)
>>> coef = fit_stack(np.column_stack([good, noise]), y)
>>> bool(coef[1] > 0.5 and abs(coef[2]) < 0.1)   # the informative member carries the weight
True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.artifacts import ArtifactError, read_metadata

__all__ = [
    "ENSEMBLE_FILE",
    "METHODS",
    "MIN_STACK_EVENTS",
    "EnsembleError",
    "EnsembleModel",
    "check_members",
    "combine",
    "fit_stack",
    "load_ensemble",
    "masked_log_loss",
]

METHODS = ("mean", "stack")
MODEL_KIND = "ensemble"
#: The file of an ensemble artifact that holds its method, members and weights.
ENSEMBLE_FILE = "ensemble.json"
#: Fewest labelled validation rows (with both outcomes) a head's stack is fitted on.
MIN_STACK_EVENTS = 30
#: L2 penalty on the member weights of a stack (per row: the mean log loss plus this
#: times the sum of squared weights).
STACK_L2 = 1e-3
_CLIP = 1e-6


class EnsembleError(ValueError):
    """Runs that cannot form an ensemble (different features, heads, windows or data)."""


def _first_difference(a: Sequence[str], b: Sequence[str]) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"position {k} is {x!r} in one and {y!r} in the other"
    return f"one has {len(a)} features, the other {len(b)}"


def check_members(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Refuse runs that cannot be combined; return their common pattern order.

    Parameters
    ----------
    runs : dict of str to dict
        Name (the run's path) -> its ``run.json``.

    Returns
    -------
    list of str
        The heads, in the first run's order.

    Raises
    ------
    EnsembleError
        Fewer than two runs, an ensemble among them, features in another
        order, other heads, other bars, tickers, settings or windows.

    Examples
    --------
    >>> run = {"feature_names": ["a", "b"], "pattern_names": ["p"], "windows": [],
    ...        "settings": {}, "data": {}}
    >>> check_members({"r1": run, "r2": {**run, "feature_names": ["b", "a"]}})
    Traceback (most recent call last):
    ...
    engine.model.ensemble.EnsembleError: r2 was trained on the features in another order than r1 (position 0 is 'a' in one and 'b' in the other); an ensemble needs one feature order
    """  # noqa: E501
    if len(runs) < 2:
        raise EnsembleError(f"an ensemble needs at least two runs, got {len(runs)}")
    names = list(runs)
    first = runs[names[0]]
    for name in names:
        if runs[name].get("model_kind") == MODEL_KIND:
            raise EnsembleError(f"{name} is an ensemble already; combine the runs it was made of")
    for name in names[1:]:
        run = runs[name]
        if list(run["feature_names"]) != list(first["feature_names"]):
            where = _first_difference(first["feature_names"], run["feature_names"])
            raise EnsembleError(
                f"{name} was trained on the features in another order than {names[0]} "
                f"({where}); an ensemble needs one feature order"
            )
        if set(run["pattern_names"]) != set(first["pattern_names"]):
            raise EnsembleError(
                f"{name} predicts {sorted(run['pattern_names'])} but {names[0]} predicts "
                f"{sorted(first['pattern_names'])}; an ensemble needs the same heads"
            )
        a, b = first.get("data") or {}, run.get("data") or {}
        for key in ("fingerprint", "tickers", "start", "end"):
            if a.get(key) != b.get(key):
                raise EnsembleError(
                    f"{name} and {names[0]} were trained on different data ({key}: "
                    f"{b.get(key)!r} vs {a.get(key)!r})"
                )
        keys = ("model_id", "test_start", "test_end")
        wa = [tuple(w.get(k) for k in keys) for w in first["windows"]]
        wb = [tuple(w.get(k) for k in keys) for w in run["windows"]]
        if wa != wb:
            k = next(i for i in range(max(len(wa), len(wb))) if wa[i : i + 1] != wb[i : i + 1])
            raise EnsembleError(
                f"{name} and {names[0]} have different walk-forward windows: window {k} is "
                f"{wb[k] if k < len(wb) else 'absent'} in {name} and "
                f"{wa[k] if k < len(wa) else 'absent'} in {names[0]} (model_id, test start, "
                "test end); train them with the same --split and dates"
            )
        skip = {"seed", "deterministic"}
        sa = {k: v for k, v in (first.get("settings") or {}).items() if k not in skip}
        sb = {k: v for k, v in (run.get("settings") or {}).items() if k not in skip}
        if sa != sb:
            diff = sorted(k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k))
            raise EnsembleError(f"{name} and {names[0]} differ in run settings {diff}")
    return list(first["pattern_names"])


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1.0 - _CLIP)
    return np.log(q) - np.log1p(-q)


def fit_stack(p: np.ndarray, y: np.ndarray, *, l2: float = STACK_L2) -> np.ndarray:
    """Logistic-regression stacking coefficients ``[c0, c1 .. ck]`` on member log-odds.

    Parameters
    ----------
    p : ndarray, shape (n, k)
        Members' confidences on the validation rows.
    y : ndarray of {0, 1}, shape (n,)
    l2 : float
        Penalty on the member weights (not the intercept).

    Returns
    -------
    ndarray, shape (k + 1,)
        Minimises the mean log loss plus ``l2 * sum(c[1:] ** 2)`` (L-BFGS,
        from the equal-weight start ``c = [0, 1/k, ...]``).
    """
    from scipy.optimize import minimize

    Z = np.column_stack([np.ones(len(y)), _logit(p)])
    y = np.asarray(y, dtype=np.float64)
    k = p.shape[1]

    def objective(c: np.ndarray) -> tuple[float, np.ndarray]:
        s = Z @ c
        loss = np.mean(np.logaddexp(0.0, s) - y * s) + l2 * np.sum(c[1:] ** 2)
        grad = Z.T @ (1.0 / (1.0 + np.exp(-s)) - y) / len(y)
        grad[1:] += 2.0 * l2 * c[1:]
        return float(loss), grad

    start = np.concatenate([[0.0], np.full(k, 1.0 / k)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B")
    return np.asarray(result.x, dtype=np.float64)


def combine(p: np.ndarray, method: str, coef: Sequence[float] | None = None) -> np.ndarray:
    """The ensemble confidence from member confidences ``p`` (n, k).

    Examples
    --------
    >>> import numpy as np
    >>> combine(np.array([[0.2, 0.6]]), "mean").tolist()
    [0.4]
    >>> round(float(combine(np.array([[0.5, 0.5]]), "stack", [0.0, 1.0, 1.0])[0]), 6)
    0.5
    """
    if method == "mean" or coef is None:
        return np.asarray(p, dtype=np.float64).mean(axis=1)
    if method != "stack":
        raise ValueError(f"unknown ensemble method {method!r}; choose one of {METHODS}")
    c = np.asarray(coef, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-(c[0] + _logit(p) @ c[1:])))


def masked_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Log loss over the labelled (row, head) pairs of ``y`` (NaN = no event)."""
    mask = ~np.isnan(y)
    q = np.clip(p[mask], 1e-15, 1 - 1e-15)
    t = y[mask]
    return float(-np.mean(t * np.log(q) + (1 - t) * np.log1p(-q))) if t.size else float("nan")


class EnsembleModel:
    """Member predictors combined per head: ``predict(X)`` like any model kind.

    Also the object :func:`engine.model.artifacts.write_model_artifact`
    saves: :meth:`save` writes :data:`ENSEMBLE_FILE` beside the path it is
    given (the method, the members' artifacts with their checksums and the
    weights per head).
    """

    def __init__(
        self,
        members: Sequence[Callable[[np.ndarray], np.ndarray]],
        method: str,
        coefficients: dict[str, list[float] | None],
        pattern_names: Sequence[str],
        description: dict[str, Any] | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown ensemble method {method!r}; choose one of {METHODS}")
        self.members = list(members)
        self.method = method
        self.coefficients = dict(coefficients)
        self.pattern_names = tuple(pattern_names)
        self.description = dict(description or {})

    def combine(self, member_scores: Sequence[np.ndarray]) -> np.ndarray:
        """Ensemble confidences ``(n, n_patterns)`` from each member's ``(n, n_patterns)``."""
        stacked = np.stack([np.asarray(s, dtype=np.float64) for s in member_scores], axis=2)
        out = np.empty(stacked.shape[:2], dtype=np.float32)
        for j, pattern in enumerate(self.pattern_names):
            out[:, j] = combine(stacked[:, j, :], self.method, self.coefficients.get(pattern))
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Confidence per head for raw windows, through every member."""
        return self.combine([member(X) for member in self.members])

    def save(self, path: str | Path) -> None:
        """Write :data:`ENSEMBLE_FILE` into ``path``'s directory."""
        payload = {
            "method": self.method,
            "pattern_names": list(self.pattern_names),
            "coefficients": self.coefficients,
            **self.description,
        }
        text = json.dumps(payload, indent=2, sort_keys=True, default=str)
        (Path(path).parent / ENSEMBLE_FILE).write_text(text)


def load_ensemble(
    directory: str | Path,
    load_member: Callable[[Path], tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]],
) -> tuple[EnsembleModel, dict[str, Any]]:
    """Reload an ensemble artifact with its members (``load_member``: any kind's loader).

    Raises
    ------
    ArtifactError
        A corrupt artifact, or a member artifact whose files changed since
        the ensemble was built (its checksums differ from those recorded).
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    if ENSEMBLE_FILE not in metadata.get("files", {}):
        raise ArtifactError(f"{directory} lists no checksum for {ENSEMBLE_FILE}")
    payload = json.loads((directory / ENSEMBLE_FILE).read_text())
    members = []
    for member in payload["members"]:
        predict, member_metadata = load_member(Path(member["artifact"]))
        if member_metadata.get("files") != member["files"]:
            raise ArtifactError(
                f"{directory}: member {member['artifact']} changed since the ensemble was built "
                "(its checksums differ); rebuild the ensemble"
            )
        members.append(predict)
    model = EnsembleModel(
        members, payload["method"], payload["coefficients"], payload["pattern_names"]
    )
    return model, metadata
