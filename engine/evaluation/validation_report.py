"""The validation report: its tables' multiple-testing corrections, its record and its text.

:class:`ValidateReport` is what
:func:`engine.evaluation.validation.validate_predictions` found: per pattern
(and per pattern and ticker, and per pattern and window), the metrics of
:func:`engine.evaluation.evaluate_frame` with their stationary-bootstrap
intervals and no-skill p-values, each beside its multiple-testing adjusted
value (:data:`CORRECTIONS`, stated by :func:`correction_text`); optionally
the permutation null; every metric per pattern and market regime and the
walk-forward regime coverage; a calibration table; and the train/validation
loss gap per epoch with a flag for models whose gap widens.
:func:`number_text` and :func:`metric_text` write its numbers;
:mod:`engine.reports.validation` renders it as HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.evaluation.diagnostics import SIGNIFICANCE
from engine.evaluation.multiple_testing import correction_line
from engine.model.json_values import json_rows, json_value

__all__ = [
    "CORRECTIONS",
    "ValidateReport",
    "correction_text",
    "metric_text",
    "number_text",
]


#: Report table -> the multiple-testing correction of its ``adj. p`` (its rows are one family):
#: Holm for the per-pattern (per-head) verdicts, Benjamini-Hochberg for the screens.
CORRECTIONS = {
    "metrics": "holm",
    "null_metrics": "holm",
    "by_model": "bh",
    "by_ticker": "bh",
    "by_regime": "bh",
}
_FAMILIES = {
    "metrics": "patterns",
    "null_metrics": "patterns",
    "by_model": "pattern x window rows",
    "by_ticker": "pattern x ticker rows",
    "by_regime": "pattern x regime rows",
}


def correction_text(table: str, m: int) -> str:
    """The one line that says which correction the ``adj. p`` of a report table applies.

    Parameters
    ----------
    table : {"metrics", "null_metrics", "by_model", "by_ticker", "by_regime"}
        A key of :data:`CORRECTIONS`.
    m : int
        Tests in the family: the table's rows with an AUC p-value.

    Examples
    --------
    >>> correction_text("by_ticker", 136)
    'adj. p: Benjamini-Hochberg over the 136 pattern x ticker rows (controls the false discovery rate; flagged: adj. p < 0.05)'
    """  # noqa: E501
    return correction_line(CORRECTIONS[table], m, _FAMILIES[table], SIGNIFICANCE)


@dataclass
class ValidateReport:
    """What :func:`engine.evaluation.validation.validate_predictions` found.

    Attributes
    ----------
    source : {"run", "model", "predictions"}
        What was validated.
    path : Path
        The run directory, model artifact directory or predictions file given.
    predictions_path : Path
        The predictions file that was read.
    patterns : list of str
    rows : int
        Prediction rows (labelled or not).
    tickers : list of str
    windows : polars.DataFrame
        Per ``model_id``: ``train_end``, ``embargo_end``, ``first_date``,
        ``last_date``, ``rows``, ``tickers`` (from the predictions).
    metrics : polars.DataFrame
        Per pattern: :func:`engine.evaluation.evaluate_frame` output, with
        ``<metric>_p_value_holm`` beside every ``<metric>_p_value`` (Holm over
        the patterns). A pattern with no labelled row has ``n = 0`` and null
        metrics.
    by_model : polars.DataFrame
        Per pattern and ``model_id`` (the AUC per window and every other
        metric), with ``<metric>_p_value_bh`` (Benjamini-Hochberg over every
        row of the table).
    by_ticker : polars.DataFrame or None
        Per pattern and ticker, when asked for; ``<metric>_p_value_bh`` as
        ``by_model``.
    null_metrics : polars.DataFrame or None
        ``metrics`` recomputed on the first draw of block-permuted outcomes
        (same schema).
    null_comparison : polars.DataFrame or None
        The permutation test over ``n_null`` draws beside the real AUC, with
        the verdicts; see :func:`engine.evaluation.diagnostics.null_comparison`.
    calibration : polars.DataFrame
        See :func:`engine.evaluation.diagnostics.calibration_table`.
    history : polars.DataFrame or None
        Per model and epoch: ``train_loss``, ``val_loss``, ``gap``,
        ``val_objective`` (None without histories).
    overfitting : polars.DataFrame or None
        See :func:`engine.evaluation.diagnostics.overfitting_monitor` (None without
        histories).
    settings : dict
        The job's settings.
    notes : list of str
        Caveats found on the way (missing histories, an interrupted run, ...).
    run_status : str or None
        ``run.json`` status for a run directory.
    report : Path or None
        ``report.html`` when written (by :func:`engine.reports.validation.write_report`,
        which the ``engine validate`` job calls; None here).
    figures : list of Path
        The PNG files written beside it.
    seconds : float
        Wall time of the validation (the job: including the report).
    by_regime : polars.DataFrame or None
        Per pattern and market regime (``dimension``: ``trend`` or
        ``volatility``; ``regime``: its label), the metrics of ``by_model``
        on the rows dated in that regime, with ``<metric>_p_value_bh``
        (Benjamini-Hochberg over every row of the table). None without the
        benchmark's regime labels.
    coverage : polars.DataFrame or None
        Test days per window in each regime
        (:func:`engine.evaluation.regimes.regime_coverage`), a final ``all`` row.
    """

    source: str
    path: Path
    predictions_path: Path
    patterns: list[str]
    rows: int
    tickers: list[str]
    windows: pl.DataFrame
    metrics: pl.DataFrame
    by_model: pl.DataFrame
    by_ticker: pl.DataFrame | None
    null_metrics: pl.DataFrame | None
    null_comparison: pl.DataFrame | None
    calibration: pl.DataFrame
    history: pl.DataFrame | None
    overfitting: pl.DataFrame | None
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    run_status: str | None = None
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    by_regime: pl.DataFrame | None = None
    coverage: pl.DataFrame | None = None

    @property
    def start(self) -> date | None:
        """First prediction date."""
        return self.windows.get_column("first_date").min() if self.windows.height else None

    @property
    def end(self) -> date | None:
        """Last prediction date."""
        return self.windows.get_column("last_date").max() if self.windows.height else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: frames as lists of row dicts, floats rounded, NaN as None.

        Floats are rounded to 6 decimals (``seconds`` to 3), dates are ISO
        strings and a missing or non-finite value is ``None``, so the result
        passes ``json.dumps(..., allow_nan=False)``.
        """
        null = None
        if self.null_metrics is not None and self.null_comparison is not None:
            null = {
                "block": self.settings["null_block"],
                "n_null": self.settings["n_null"],
                "seed": self.settings["seed"],
                "significance": SIGNIFICANCE,
                "metrics": json_rows(self.null_metrics),
                "comparison": json_rows(self.null_comparison),
            }
        overfitting = None
        if self.overfitting is not None and self.history is not None:
            overfitting = {
                "window": self.settings["overfit_window"],
                "tolerance": self.settings["overfit_tolerance"],
                "models": json_rows(self.overfitting),
                "history": json_rows(self.history),
            }
        return {
            "source": {
                "kind": self.source,
                "path": str(self.path),
                "predictions": str(self.predictions_path),
                "run_status": self.run_status,
            },
            "patterns": list(self.patterns),
            "rows": self.rows,
            "tickers": list(self.tickers),
            "start": json_value(self.start),
            "end": json_value(self.end),
            "settings": {k: json_value(v) for k, v in self.settings.items()},
            "windows": json_rows(self.windows),
            "metrics": json_rows(self.metrics),
            "by_model": json_rows(self.by_model),
            "by_ticker": json_rows(self.by_ticker),
            "by_regime": json_rows(self.by_regime),
            "regime_coverage": json_rows(self.coverage),
            "null": null,
            "calibration": json_rows(self.calibration),
            "overfitting": overfitting,
            "notes": list(self.notes),
            "report": str(self.report) if self.report else None,
            "figures": [str(p) for p in self.figures],
            "seconds": round(self.seconds, 3),
        }

    def summary_lines(self) -> list[str]:
        """Short human-readable lines: what was read, one line per pattern, flags and notes."""
        num = number_text
        models = self.windows.height
        lines = [
            f"validated {self.source} {self.path}: {self.rows} predictions, "
            f"{len(self.tickers)} tickers, {models} model{'s' if models != 1 else ''}, "
            f"{json_value(self.start)} to {json_value(self.end)}",
        ]
        for row in self.metrics.iter_rows(named=True):
            if not row["n"]:
                lines.append(f"{row['pattern']}: no labelled outcomes")
                continue
            text = (
                f"{row['pattern']}: n={row['n']} events={row['events']} "
                f"base rate {num(row['base_rate'], 3)}; "
                f"AUC {metric_text(row, 'auc', correction=CORRECTIONS['metrics'])}; "
                f"accuracy {num(row['accuracy'], 3)} vs majority {num(row['majority_rate'], 3)}; "
                f"Brier {num(row['brier'], 4)} vs {num(row['brier_reference'], 4)}"
            )
            lines.append(text)
        if self.null_comparison is not None:
            for row in self.null_comparison.iter_rows(named=True):
                verdict = {True: "skill survives the null", False: "not confirmed"}.get(
                    row["confirmed"], "undetermined"
                )
                lines.append(
                    f"null {row['pattern']}: real AUC {num(row['auc'], 3)} "
                    f"(bootstrap p={num(row['auc_p_value'], 4)}, "
                    f"Holm {num(row['auc_p_value_holm'], 4)}); permutation test over "
                    f"{row['n_null']} draws: null AUC {num(row['null_auc_mean'], 3)} "
                    f"[{num(row['null_auc_low'], 3)}, {num(row['null_auc_high'], 3)}], "
                    f"p={num(row['permutation_p_value'], 4)} "
                    f"+/- {num(row['permutation_p_value_se'], 4)} "
                    f"(Holm {num(row['permutation_p_value_holm'], 4)}): {verdict}"
                )
        if self.overfitting is not None:
            for row in self.overfitting.iter_rows(named=True):
                flag = {True: "OVERFITTING", False: "ok"}.get(row["overfitting"], "n/a")
                lines.append(
                    f"{row['model_id']}: {row['epochs']} epochs, best {row['best_epoch']}, "
                    f"{flag} ({row['reason']})"
                )
        lines += [f"note: {n}" for n in self.notes]
        if self.report is not None:
            lines.append(f"wrote {self.report}")
        return lines


def number_text(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals; ``"-"`` for a missing or non-finite value.

    Examples
    --------
    >>> number_text(0.12345, 3), number_text(float("nan"), 3), number_text(None, 2)
    ('0.123', '-', '-')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def metric_text(
    row: dict[str, Any], name: str, digits: int = 3, *, correction: str | None = None
) -> str:
    """A metric of an evaluation row as ``estimate [low, high] p=p_value``.

    Parameters
    ----------
    row : dict
        A row of :func:`engine.evaluation.evaluate_frame` (``name``,
        ``name_ci_low``, ``name_ci_high``, ``name_p_value``).
    name : str
        The metric.
    digits : int, default 3
        Decimals of the estimate and interval; the p-values have 4.
    correction : {"holm", "bh"}, optional
        Also show the adjusted p-value ``name_p_value_<correction>`` when the
        row has it.

    Examples
    --------
    >>> row = {"auc": 0.61, "auc_ci_low": 0.55, "auc_ci_high": 0.67, "auc_p_value": 0.0012,
    ...        "auc_p_value_holm": 0.0048}
    >>> metric_text(row, "auc")
    '0.610 [0.550, 0.670] p=0.0012'
    >>> metric_text(row, "auc", correction="holm")
    '0.610 [0.550, 0.670] p=0.0012 adj. p=0.0048'
    """
    est = row.get(name)
    if est is None or not math.isfinite(est):
        return "-"
    text = (
        f"{est:.{digits}f} [{number_text(row[name + '_ci_low'], digits)}, "
        f"{number_text(row[name + '_ci_high'], digits)}] p={number_text(row[name + '_p_value'], 4)}"
    )
    adjusted = f"{name}_p_value_{correction}"
    if correction is not None and adjusted in row:
        text += f" adj. p={number_text(row[adjusted], 4)}"
    return text
