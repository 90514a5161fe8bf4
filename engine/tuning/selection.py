"""Honest selection: the best trial, what choosing it from many costs, and the gate.

After the search, from the study's completed trials only:

* **selected**: the trial with the highest objective (ties: the earliest);
* **DSR** (:func:`engine.evaluation.deflated_sharpe_ratio`) of the selected
  trial's filtered strategy on the validation periods, with ``N`` the
  trials tried (completed and pruned: every configuration looked at) and
  ``V`` the variance of the completed trials' per-day Sharpe ratios (a
  strategy that never traded counts as Sharpe 0). The trials are not
  independent (TPE samples near earlier winners), so the raw ``N`` makes
  the correction conservative;
* **PBO** (:func:`engine.evaluation.overfitting.cscv_pbo`) by CSCV over the
  months x completed-trials matrix of monthly validation skill, with
  ``S = 16`` blocks (fewer, the largest even number of months, when the
  validation periods hold fewer than 16 months), with the probability of
  out-of-sample loss and the degradation slope. PBO is a diagnostic, not a
  gate: when every configuration is about as good, PBO sits near 0.5 though
  any would do. At PBO >= 0.5 the ranking is unreliable, and the report
  recommends the default configuration, or else the simplest one (fewest
  weights, no imbalance option), among the trials whose pooled validation
  skill reaches the lower end of the selected trial's interval.

The **gate** promotes the selected configuration only when its DSR reaches
the threshold (0.95) *and* its skill on the clean test rows is positive
with its interval (:mod:`engine.tuning.final_test`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from engine.evaluation import PERIODS_PER_YEAR, deflated_sharpe_ratio, expected_max_sharpe
from engine.evaluation.overfitting import cscv_pbo
from engine.model.network import ModelConfig
from engine.tuning.space import trainable_parameters

__all__ = ["PBO_BLOCKS", "Selection", "gate", "select"]

#: CSCV blocks (S); fewer when the validation periods hold fewer months.
PBO_BLOCKS = 16
_MIN_PBO_ROWS = 4


@dataclass
class Selection:
    """The selected trial and the statistics of its selection.

    Attributes
    ----------
    number : int
        The selected trial.
    value : float
    params, config : dict
    n_complete, n_pruned, n_failed : int
    dsr : dict
        ``value`` (None when undefined), ``sharpe`` and ``expected_max``
        (annualised), ``n_trials``, ``sr_variance`` (per day), ``days``.
    pbo : dict or None
        :meth:`engine.evaluation.overfitting.PBOResult.to_dict`, None when it
        cannot be computed (``notes`` says why).
    recommendation : dict or None
        At PBO >= 0.5: the configuration recommended instead, and why.
    default_number : int or None
        The default configuration's trial, when it was one.
    notes : list of str
    """

    number: int
    value: float
    params: dict[str, Any]
    config: dict[str, Any]
    n_complete: int
    n_pruned: int
    n_failed: int
    dsr: dict[str, Any]
    pbo: dict[str, Any] | None
    recommendation: dict[str, Any] | None
    default_number: int | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "trial": self.number,
            "value": self.value,
            "params": self.params,
            "config": self.config,
            "trials": {
                "complete": self.n_complete,
                "pruned": self.n_pruned,
                "failed": self.n_failed,
            },
            "dsr": self.dsr,
            "pbo": self.pbo,
            "recommendation": self.recommendation,
            "default_trial": self.default_number,
            "notes": self.notes,
        }


def _states(study: optuna.Study, state: optuna.trial.TrialState) -> list[Any]:
    return study.get_trials(deepcopy=False, states=(state,))


def select(
    study: optuna.Study, *, n_features: int, n_patterns: int, blocks: int = PBO_BLOCKS
) -> Selection:
    """Select the best completed trial and measure what the selection cost.

    Raises
    ------
    ValueError
        When the study has no completed trial.
    """
    state = optuna.trial.TrialState
    complete = [t for t in _states(study, state.COMPLETE) if "monthly" in t.user_attrs]
    pruned = _states(study, state.PRUNED)
    failed = _states(study, state.FAIL)
    if not complete:
        raise ValueError(
            f"the study has no completed trial ({len(pruned)} pruned, {len(failed)} failed): "
            "nothing to select"
        )
    best = max(complete, key=lambda t: (t.value, -t.number))
    notes: list[str] = []
    default = next((t.number for t in complete if t.user_attrs.get("default")), None)
    dsr = _dsr(best, complete, len(complete) + len(pruned), notes)
    pbo, pbo_result = _pbo(complete, blocks, notes)
    recommendation = None
    if pbo_result is not None and pbo_result >= 0.5:
        recommendation = _fallback(best, complete, default, n_features, n_patterns)
    return Selection(
        number=best.number,
        value=float(best.value),
        params=dict(best.params),
        config=dict(best.user_attrs["config"]),
        n_complete=len(complete),
        n_pruned=len(pruned),
        n_failed=len(failed),
        dsr=dsr,
        pbo=pbo,
        recommendation=recommendation,
        default_number=default,
        notes=notes,
    )


def _dsr(best: Any, complete: list[Any], n_tried: int, notes: list[str]) -> dict[str, Any]:
    returns = np.asarray(best.user_attrs["strategy_returns"], dtype=np.float64)
    sharpes = np.array([t.user_attrs.get("strategy_sharpe") or 0.0 for t in complete])
    variance = float(sharpes.var(ddof=1)) if sharpes.size >= 2 else 0.0
    sr0 = expected_max_sharpe(n_tried, variance)
    out: dict[str, Any] = {
        "value": None,
        "sharpe": None,
        "expected_max": sr0 * math.sqrt(PERIODS_PER_YEAR),
        "n_trials": n_tried,
        "sr_variance": variance,
        "days": int(returns.size),
        "traded_days": int(np.count_nonzero(returns)),
    }
    sharpe = best.user_attrs.get("strategy_sharpe")
    if sharpe is None or returns.size < 3:
        notes.append(
            "the selected trial's filtered strategy never traded on the validation periods: "
            "its Sharpe ratio, and so the DSR, are undefined"
        )
        return out
    out["sharpe"] = sharpe * math.sqrt(PERIODS_PER_YEAR)
    value = deflated_sharpe_ratio(returns, n_tried, sr_variance=variance)
    out["value"] = None if math.isnan(value) else value
    if sharpes.size < 2:
        notes.append("one completed trial: V is 0, the DSR equals the probabilistic Sharpe ratio")
    return out


def _pbo(complete: list[Any], blocks: int, notes: list[str]) -> tuple[dict | None, float | None]:
    if len(complete) < 2:
        notes.append("PBO needs at least 2 completed trials")
        return None, None
    columns = [t.user_attrs["monthly"] for t in complete]
    matrix = np.array([[np.nan if v is None else v for v in c] for c in columns]).T
    matrix = matrix[np.all(np.isfinite(matrix), axis=1)]
    rows = matrix.shape[0]
    s = min(blocks, rows - rows % 2)
    if s < _MIN_PBO_ROWS:
        notes.append(f"PBO needs at least {_MIN_PBO_ROWS} months of validation skill, got {rows}")
        return None, None
    if s < blocks:
        notes.append(f"PBO with S = {s} blocks: the validation periods hold {rows} months")
    result = cscv_pbo(matrix, s, statistic="mean")
    return result.to_dict(), result.pbo


def _simplicity(t: Any, n_features: int, n_patterns: int) -> tuple[int, int, int]:
    config = ModelConfig.from_dict(t.user_attrs["config"])
    weights = trainable_parameters(config, n_features, n_patterns)
    options = int(config.loss != "bce") + int(config.class_weights != "none")
    return weights, options, t.number


def _fallback(
    best: Any, complete: list[Any], default: int | None, n_features: int, n_patterns: int
) -> dict[str, Any]:
    low = best.user_attrs["skill_ci"][0]
    if low is None:
        low = best.user_attrs["pooled_skill"]

    def pooled(t: Any) -> float:
        value = t.user_attrs.get("pooled_skill")
        return -math.inf if value is None else value

    within = [t for t in complete if pooled(t) >= low]
    if default is not None and any(t.number == default for t in within):
        pick = next(t for t in within if t.number == default)
        why = "the default configuration, within the selected trial's interval"
    else:
        pick = min(within, key=lambda t: _simplicity(t, n_features, n_patterns))
        why = (
            "the simplest configuration (fewest weights, no imbalance option) within "
            "the selected trial's interval"
        )
    return {
        "trial": pick.number,
        "params": dict(pick.params),
        "config": dict(pick.user_attrs["config"]),
        "pooled_skill": pick.user_attrs.get("pooled_skill"),
        "interval_low": low,
        "candidates": sorted(t.number for t in within),
        "why": why,
    }


def gate(selection: Selection, test: dict[str, Any] | None, dsr_threshold: float) -> dict[str, Any]:
    """Promote the selected configuration only if DSR >= threshold and test skill > 0 with its CI.

    Returns
    -------
    dict
        ``promoted`` (bool), ``reasons`` (why not, or what passed),
        ``dsr_threshold``.
    """
    reasons, passed = [], []
    dsr = selection.dsr.get("value")
    if dsr is None:
        reasons.append("the DSR is undefined (the filtered strategy never traded)")
    elif dsr < dsr_threshold:
        reasons.append(f"DSR {dsr:.3f} < {dsr_threshold}")
    else:
        passed.append(f"DSR {dsr:.3f} >= {dsr_threshold}")
    selected = (test or {}).get("selected") or {}
    low = selected.get("ci_low")
    if not test or selected.get("skill") is None:
        reasons.append("no clean test period to check the selected configuration on")
    elif low is None or not low > 0:
        reasons.append(
            f"test skill {selected['skill']:+.4f} [{_fmt(low)}, {_fmt(selected.get('ci_high'))}] "
            "is not positive with its interval"
        )
    else:
        passed.append(
            f"test skill {selected['skill']:+.4f} [{low:+.4f}, {selected['ci_high']:+.4f}] > 0"
        )
    return {
        "promoted": not reasons,
        "reasons": reasons if reasons else passed,
        "dsr_threshold": dsr_threshold,
    }


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:+.4f}"
