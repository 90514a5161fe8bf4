"""Does the filter's verdict hold across training seeds? One backtest per prediction file.

The same configuration trained with another seed gives other predictions,
and a filter can look helpful on one and harmful on the next (the README's
filtered momentum went from Sharpe +0.10 to -0.52 between two runs). So a
verdict on the filter is stated only when every file (every seed) agrees.

Per file, the verdict is

* **helps**: the 95 % interval of the Sharpe difference (filtered minus
  unfiltered) lies above 0, and the shifted-confidence null's p-value,
  Holm-adjusted over the files, is at most ``level`` (when a null was run);
* **hurts**: the interval lies below 0;
* **no evidence**: anything else (the interval covers 0 or is undefined, or
  the filter beats the unfiltered run but not the null).

Across files the verdict is the files' common verdict, or "does not hold
across seeds" when they differ. Holm's step-down adjustment keeps the
family-wise error at ``level`` over the files' null tests.

Examples
--------
>>> holm_adjusted([0.01, 0.04, 0.03])
[0.03, 0.06, 0.06]
>>> file_verdict(0.1, 0.5, 0.01), file_verdict(-0.3, 0.2, 0.01), file_verdict(-0.9, -0.1, 0.9)
('helps', 'no evidence', 'hurts')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.backtest.run import BacktestReport, deflate_together
from engine.backtest.simulation import BacktestSettings

__all__ = [
    "DISAGREE",
    "VERDICTS",
    "SeedBacktests",
    "combine_seed_backtests",
    "file_verdict",
    "holm_adjusted",
    "seed_robustness",
    "verdict_rule",
]

VERDICTS = ("helps", "hurts", "no evidence")
#: The verdict when the files do not agree.
DISAGREE = "does not hold across seeds"


def holm_adjusted(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None entries stay None and are not counted).

    ``p_adj(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` over the ``m``
    p-values sorted ascending; a test is rejected at ``level`` when its
    adjusted p is at most ``level``.

    Examples
    --------
    >>> holm_adjusted([0.2, None, 0.01])
    [0.2, None, 0.02]
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = running
    return out


def file_verdict(
    ci_low: float | None,
    ci_high: float | None,
    null_p_adjusted: float | None,
    level: float = 0.05,
) -> str:
    """One file's verdict from its difference interval and its Holm-adjusted null p."""
    if ci_low is not None and ci_low > 0.0:
        beats_null = null_p_adjusted is None or null_p_adjusted <= level
        return "helps" if beats_null else "no evidence"
    if ci_high is not None and ci_high < 0.0:
        return "hurts"
    return "no evidence"


def verdict_rule(level: float = 0.05, label_name: str = "file") -> str:
    """The verdict rule in one sentence; ``label_name`` names the unit ("file", "seed").

    Examples
    --------
    >>> verdict_rule(label_name="seed").split(",")[1]
    ' Holm-adjusted over the seeds'
    """
    return (
        f"per {label_name}: helps when the 95 % interval of the Sharpe difference lies above 0 "
        f"and the null p, Holm-adjusted over the {label_name}s, is at most {level:g}; hurts "
        "when the interval lies below 0; else no evidence. A verdict is stated only when "
        f"every {label_name} agrees."
    )


def _spread(values: list[float | None]) -> dict[str, float | None]:
    kept = np.array([v for v in values if v is not None], dtype=np.float64)
    if kept.size == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": float(kept.min()), "median": float(np.median(kept)), "max": float(kept.max())}


def seed_robustness(
    reports: Sequence[BacktestReport],
    labels: Sequence[str],
    *,
    label_name: str = "file",
    level: float = 0.05,
) -> dict[str, Any]:
    """Per file the filtered Sharpe, the difference and the null p; their spread; the verdict.

    Parameters
    ----------
    reports : sequence of BacktestReport
        One backtest of the same strategy and settings per prediction file.
    labels : sequence of str
        A short name per file (e.g. "1", or the training seed).
    label_name : str, default "file"
        What a label names ("file", "seed"), for the tables.
    level : float, default 0.05
        Family-wise level of the Holm-adjusted null tests.

    Returns
    -------
    dict
        ``files`` (per file: ``label``, ``predictions``, ``sharpe_unfiltered``,
        ``sharpe_filtered``, ``difference``, ``ci_low``, ``ci_high``,
        ``null_p``, ``null_p_holm``, ``dsr_filtered``, ``verdict``),
        ``spread`` (``min``, ``median``, ``max`` of ``sharpe_filtered``,
        ``difference`` and ``null_p``), ``verdict`` (one of
        :data:`VERDICTS` or :data:`DISAGREE`), ``verdicts`` (count per
        verdict), ``rule``, ``level`` and ``label_name``.
    """
    if len(reports) != len(labels) or not reports:
        raise ValueError(
            f"need one label per report and at least one report, got {len(reports)} reports "
            f"and {len(labels)} labels"
        )
    null_p = [(r.null or {}).get("p_value") for r in reports]
    adjusted = holm_adjusted(null_p)
    files = []
    for label, r, p, p_holm in zip(labels, reports, null_p, adjusted, strict=True):
        d = r.sharpe_difference
        files.append({
            "label": label,
            "predictions": r.source,
            "sharpe_unfiltered": r.metrics["unfiltered"]["sharpe"],
            "sharpe_filtered": r.metrics["filtered"]["sharpe"],
            "difference": d["estimate"],
            "ci_low": d["ci_low"],
            "ci_high": d["ci_high"],
            "null_p": p,
            "null_p_holm": p_holm,
            "dsr_filtered": r.metrics["filtered"].get("dsr"),
            "verdict": file_verdict(d["ci_low"], d["ci_high"], p_holm, level),
        })  # fmt: skip
    found = [f["verdict"] for f in files]
    verdict = found[0] if len(set(found)) == 1 else DISAGREE
    return {
        "files": files,
        "spread": {
            key: _spread([f[key] for f in files])
            for key in ("sharpe_filtered", "difference", "null_p")
        },  # fmt: skip
        "verdict": verdict,
        "verdicts": {v: found.count(v) for v in VERDICTS if v in found},
        "rule": verdict_rule(level, label_name),
        "level": level,
        "label_name": label_name,
    }


@dataclass
class SeedBacktests:
    """Backtests of one strategy on several prediction files; :meth:`to_dict` is its JSON."""

    settings: BacktestSettings
    reports: list[BacktestReport]
    labels: list[str]
    inference: dict[str, Any]
    robustness: dict[str, Any]
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, the shared N and V, the robustness summary, each backtest."""
        return {
            "settings": self.settings.to_dict(),
            "predictions": [r.source for r in self.reports],
            "sharpe_inference": {
                k: v for k, v in self.inference.items() if k not in ("psr", "dsr")
            },  # fmt: skip
            "robustness": self.robustness,
            "backtests": {
                label: r.to_dict() for label, r in zip(self.labels, self.reports, strict=True)
            },  # fmt: skip
            "files": self.files,
        }


def combine_seed_backtests(
    reports: Sequence[BacktestReport],
    labels: Sequence[str],
    settings: BacktestSettings,
    *,
    label_name: str = "file",
) -> SeedBacktests:
    """Deflate the files' runs as one selection and summarise the filter across them.

    ``N`` is ``settings.trials`` or every unfiltered and filtered run of the
    files (:func:`engine.backtest.run.deflate_together`); the summary is
    :func:`seed_robustness`.
    """
    trials = (
        "declared" if settings.trials is not None
        else f"the unfiltered and filtered runs of {len(reports)} prediction files"
    )  # fmt: skip
    inference = deflate_together(reports, trials, settings.trials)
    inference["trials"] = trials
    return SeedBacktests(
        settings=settings,
        reports=list(reports),
        labels=list(labels),
        inference=inference,
        robustness=seed_robustness(reports, labels, label_name=label_name),
    )
