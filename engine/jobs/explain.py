"""The ``engine explain`` job: which features each head's out-of-sample skill rests on.

For a training run of any kind (LSTM, LightGBM, an ensemble of them) the
job rebuilds every window's test period from the run's bars
(:func:`engine.model.reload.rebuild_run`), reloads the window's model
(:func:`engine.model.kinds.load_predictor`) and checks that it reproduces
the predictions the run stored for those rows (within 1e-5): the
explanation is of the model and rows that were scored, nothing else. Then

* **permutation importance** for every kind: each feature's 20-day block
  shuffled across the test windows, the AUC drop per head pooled over the
  windows with paired date-block bootstrap intervals
  (:mod:`engine.evaluation.importance`);
* for **LightGBM**, the gain share and the mean absolute SHAP value of each
  feature per head (its five window summaries grouped).

``report_dir`` gets ``report.html``, one bar chart per head
(``importance_<pattern>.png``) and ``importance.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.evaluation.bootstrap import check_bootstrap_settings
from engine.evaluation.importance import group_summaries, permutation_importance, permuted_scores
from engine.model.artifacts import read_metadata
from engine.model.gbm import MODEL_KIND as LIGHTGBM
from engine.model.gbm import load_gbm_artifact
from engine.model.json_values import json_rows
from engine.model.kinds import load_predictor
from engine.model.reload import check_reproduces, read_run, rebuild_run
from export.held_out import training_bars

__all__ = ["ExplainReport", "run_explain_job"]


@dataclass
class ExplainReport:
    """What :func:`run_explain_job` measured."""

    run: str
    model_kind: str
    patterns: list[str]
    features: list[str]
    rows: int
    windows: int
    permutation: pl.DataFrame
    gain: pl.DataFrame | None
    shap: pl.DataFrame | None
    settings: dict[str, Any]
    reproduced: float
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "run": self.run,
            "model_kind": self.model_kind,
            "patterns": self.patterns,
            "features": self.features,
            "rows": self.rows,
            "windows": self.windows,
            "permutation": json_rows(self.permutation),
            "gain": json_rows(self.gain),
            "shap": json_rows(self.shap),
            "settings": self.settings,
            "reproduced_max_abs_diff": self.reproduced,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "report": str(self.report) if self.report else None,
            "figures": [str(f) for f in self.figures],
        }


def _tree_tables(
    gains: list[dict[str, np.ndarray]], shap_sum: dict[str, np.ndarray], shap_n: int,
    features: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    rows_gain, rows_shap = [], []
    for pattern in shap_sum:
        # windows where the head split at all (a stump-only booster has no gain to share)
        shares = [group_summaries(g[pattern], len(features)) / g[pattern].sum()
                  for g in gains if pattern in g and g[pattern].sum() > 0]  # fmt: skip
        mean_share = np.mean(shares, axis=0) if shares else np.zeros(len(features))
        for f, name in enumerate(features):
            share = float(mean_share[f])
            rows_gain.append({"pattern": pattern, "feature": name, "gain_share": share,
                              "windows": len(shares)})  # fmt: skip
            rows_shap.append({"pattern": pattern, "feature": name,
                              "mean_abs_shap": float(shap_sum[pattern][f] / shap_n)})  # fmt: skip
    gain = pl.DataFrame(rows_gain).sort(["pattern", "gain_share"], descending=[False, True])
    shap = pl.DataFrame(rows_shap).sort(["pattern", "mean_abs_shap"], descending=[False, True])
    return gain, shap


def run_explain_job(
    model: Path,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    data_dir: Path | None = None,
    report_dir: Path | None = None,
    progress: Any = None,
) -> ExplainReport:
    """Explain a run's out-of-sample predictions: the ``engine explain`` job.

    Parameters
    ----------
    model : Path
        A training run directory (any model kind, or an ensemble run).
    n_boot : int
        Bootstrap replicates of each AUC-drop interval.
    seed : int
        Seeds the permutations (window ``k``: ``[seed, k]``) and the bootstrap.
    level : float
    data_dir : Path, optional
        The run's bars (default: its recorded data directory).
    report_dir : Path, optional
        Write ``report.html``, a bar chart per head and ``importance.json``.
    progress : callable, optional
        ``{"kind": "window", "model_id": ..., "index": k, "total": n}``.

    Returns
    -------
    ExplainReport

    Raises
    ------
    ValueError
        Bad settings; not a run; bars that are not the run's; a reloaded
        model that does not reproduce the stored predictions.
    FileNotFoundError
        A missing run or bars.
    """
    began = time.perf_counter()
    check_bootstrap_settings(n_boot, level)
    model = Path(model)
    run = read_run(model)
    first = model / run["windows"][0]["artifact"]
    rebuilt = rebuild_run(model, training_bars(read_metadata(first), data_dir))
    score = rebuilt.dataset.score_set
    patterns, features = list(score.pattern_names), list(score.feature_names)
    kind = str(run.get("model_kind", "lstm"))
    parts: dict[str, list[Any]] = {"y": [], "dates": [], "base": [], "index": []}
    permuted: list[list[np.ndarray]] = [[] for _ in features]
    gains: list[dict[str, np.ndarray]] = []
    shap_sum: dict[str, np.ndarray] = {}
    worst = 0.0
    for k, window in enumerate(rebuilt.windows):
        if progress:
            progress({"kind": "window", "model_id": window.model_id, "index": k,
                      "total": len(rebuilt.windows)})  # fmt: skip
        predict, _ = load_predictor(window.artifact)
        X = score.X[window.test]
        index = score.index[window.test]
        base = predict(X)
        worst = max(worst, check_reproduces(window.artifact, index, base, patterns))
        rng = np.random.default_rng([seed, k])
        for f, scores in enumerate(permuted_scores(predict, X, rng)):
            permuted[f].append(scores)
        parts["y"].append(score.y[window.test])
        parts["dates"].append(index.get_column("date").to_numpy())
        parts["base"].append(base)
        if kind == LIGHTGBM:
            gbm, _ = load_gbm_artifact(window.artifact)
            gains.append(gbm.gain_importance())
            for pattern, contrib in gbm.contributions(X).items():
                grouped = np.abs(group_summaries(contrib[:, :-1], len(features))).sum(axis=0)
                shap_sum[pattern] = shap_sum.get(pattern, 0.0) + grouped
    dates = np.concatenate(parts["dates"])
    order = np.argsort(dates, kind="stable")
    y = np.concatenate(parts["y"])[order]
    base = np.concatenate(parts["base"])[order]
    scores = [np.concatenate(p)[order] for p in permuted]
    table = permutation_importance(y, dates[order], base, scores, features, patterns,
                                   n_boot=n_boot, seed=seed, level=level)  # fmt: skip
    gain = shap = None
    if kind == LIGHTGBM and shap_sum:
        gain, shap = _tree_tables(gains, shap_sum, int(dates.size), features)
    notes = []
    if kind != LIGHTGBM:
        notes.append(f"gain and SHAP importance are LightGBM's; this run is {kind!r}")
    report = ExplainReport(
        run=str(model), model_kind=kind, patterns=patterns, features=features,
        rows=int(dates.size), windows=len(rebuilt.windows), permutation=table, gain=gain,
        shap=shap, settings={"n_boot": n_boot, "seed": seed, "level": level},
        reproduced=worst, notes=notes,
    )  # fmt: skip
    if report_dir is not None:
        from engine.reports.importance import write_explain_report

        report.report, report.figures = write_explain_report(report, Path(report_dir))
    report.seconds = time.perf_counter() - began
    return report
