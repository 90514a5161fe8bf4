"""The ``engine validate`` report: a self-contained ``report.html`` and its PNG figures.

:func:`write_report` renders a :class:`engine.evaluation.validation_report.ValidateReport`:
tables of every metric with its interval and p-value, the null test, the
windows, the overfitting monitor, and the figures of
:mod:`engine.reports.plots` embedded as base64 (and written beside the page).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl

from engine.evaluation import METRICS
from engine.evaluation.diagnostics import SIGNIFICANCE
from engine.evaluation.validation_report import (
    CORRECTIONS,
    ValidateReport,
    correction_text,
    metric_text,
    number_text,
)
from engine.io import atomic_write_bytes
from engine.model.json_values import json_value
from engine.reports.html import (
    REPORT_FILE,
    column_label,
    escape,
    figure,
    file_link,
    page,
    table,
)

__all__ = ["FIGURE_FILES", "REPORT_FILE", "write_report"]

#: Figure name -> file written by :func:`write_report` (when the figure applies).
FIGURE_FILES = {
    "learning_curves": "learning_curves.png",
    "calibration": "calibration.png",
    "auc_by_window": "auc_by_window.png",
    "null_comparison": "null_comparison.png",
}
_CAPTIONS = {
    "learning_curves": "Learning curves: train and validation loss per epoch.",
    "calibration": "Calibration: mean confidence against observed frequency per bin.",
    "auc_by_window": "AUC per window with 95 % bootstrap intervals.",
    "null_comparison": "Real against block-permuted outcomes (the first draw).",
}
_METRIC_LABELS = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "brier": "Brier",
    "log_loss": "log loss",
    "point_biserial": "point-biserial r",
}
# Metric -> the no-skill reference shown beside it.
_REFERENCES = {
    "accuracy": "majority_rate",
    "brier": "brier_reference",
    "log_loss": "log_loss_reference",
}


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number_text(value, digits)
    return escape(json_value(value))


def _metric_cell(row: dict[str, Any], name: str, correction: str) -> str:
    text = escape(metric_text(row, name, correction=correction))
    ref = _REFERENCES.get(name)
    if ref is not None and row.get(ref) is not None and row.get(name) is not None:
        text += f" <small>(ref {number_text(row[ref], 3)})</small>"
    p = row.get(f"{name}_p_value_{correction}")
    if p is not None and math.isfinite(p) and p < SIGNIFICANCE:
        text = f"<b>{text}</b>"
    return text


def _metrics_table(frame: pl.DataFrame, keys: list[str], table_name: str) -> str:
    """Evaluation rows: the ``keys`` columns, counts, then every metric with its interval.

    Each metric cell shows the raw p-value and its adjusted value (``adj. p``,
    the correction of :data:`engine.evaluation.validation_report.CORRECTIONS` for
    ``table_name``), bold when the adjusted value is below the level; one line
    above the table names the correction.
    """
    correction = CORRECTIONS[table_name]
    head = [f'<th class="l">{escape(column_label(k))}</th>' for k in keys]
    head += ["<th>n</th>", "<th>events</th>", "<th>base rate</th>"]
    head += [f"<th>{escape(_METRIC_LABELS[m])}</th>" for m in METRICS]
    rows = []
    for row in frame.iter_rows(named=True):
        cells = [f'<td class="l">{_cell(row[k])}</td>' for k in keys]
        cells += [f"<td>{row['n']}</td>", f"<td>{row['events']}</td>"]
        cells.append(f"<td>{_cell(row['base_rate'], 3)}</td>")
        cells += [f"<td>{_metric_cell(row, m, correction)}</td>" for m in METRICS]
        rows.append(cells)
    m = _tests(frame)
    line = f"<p><small>{escape(correction_text(table_name, m))}, per metric.</small></p>"
    return line + "\n" + table(head, rows)


def _tests(frame: pl.DataFrame) -> int:
    """Tests in a table's family: its rows with an AUC p-value."""
    return frame.height - frame.get_column("auc_p_value").null_count()


def _frame_table(frame: pl.DataFrame, flag: str | None = None) -> str:
    """Every column of ``frame``; text left-aligned; the boolean ``flag`` column coloured."""
    head = [f"<th>{escape(column_label(c))}</th>" for c in frame.columns]
    rows = []
    for row in frame.iter_rows(named=True):
        cells = []
        for c, v in row.items():
            cls = ""
            if c == flag and v is not None:
                cls = ' class="flag"' if v else ' class="ok"'
            elif isinstance(v, str):
                cls = ' class="l"'
            cells.append(f"<td{cls}>{_cell(v)}</td>")
        rows.append(cells)
    return table(head, rows)


def _body(report: ValidateReport, figures: dict[str, tuple[str, bytes]]) -> list[str]:
    esc = escape
    s = report.settings
    parts = [
        "<h1>Out-of-sample validation</h1>",
        f"<p>Source: {esc(report.source)} <code>{esc(report.path)}</code>"
        + (f" (run status {esc(report.run_status)})" if report.run_status else "")
        + f"<br>Predictions: <code>{esc(report.predictions_path)}</code>, "
        f"{report.rows} rows, {len(report.tickers)} tickers, "
        f"{report.windows.height} model{'' if report.windows.height == 1 else 's'}, "
        f"{_cell(report.start)} to {_cell(report.end)}<br>"
        f"Stationary bootstrap: {s['n_boot']} replicates, seed {s['seed']}; 95 % percentile "
        "intervals; one-sided p-values against no skill, each beside its value adjusted for "
        f"the table's multiple tests (adj. p: Holm over the patterns, Benjamini-Hochberg over "
        "the rows of the per-window, per-ticker and per-regime tables; "
        f"bold: adj. p &lt; {SIGNIFICANCE}). "
        "Brier and log loss are compared with the base-rate forecast (ref), accuracy with "
        "the majority-class rate.</p>",
    ]
    parts += [f'<p class="note">Note: {esc(n)}</p>' for n in report.notes]
    parts += ["<h2>Per pattern</h2>", _metrics_table(report.metrics, ["pattern"], "metrics")]
    if report.null_comparison is not None and report.null_metrics is not None:
        parts += [
            "<h2>Null test: outcomes permuted in blocks of dates</h2>",
            f"<p>A permutation test of each pattern's pooled AUC: {s['n_null']} draws of the "
            f"outcomes permuted in blocks of {s['null_block']} dates (one permutation for every "
            f"ticker, seed {s['seed']}; the fitted predictions are reused, nothing is "
            "retrained). p = (1 + #{null AUC &ge; AUC}) / (1 + draws), with its Monte Carlo "
            "standard error. A pattern is confirmed when its bootstrap p and its permutation "
            f"p, each Holm-adjusted over the patterns, are both below {SIGNIFICANCE}.</p>",
            f"<p><small>{escape(correction_text('metrics', _tests(report.metrics)))}, "
            "for both p-values.</small></p>",
            _frame_table(report.null_comparison, flag="confirmed"),
            "<h3>Every metric on the first permuted draw</h3>",
            _metrics_table(report.null_metrics, ["pattern"], "null_metrics"),
        ]
    parts += [
        "<h2>Per window (model)</h2>",
        _metrics_table(report.by_model, ["pattern", "model_id"], "by_model"),
    ]
    parts += ["<h3>Windows</h3>", _frame_table(report.windows)]
    if report.by_ticker is not None:
        parts += [
            "<h2>Per pattern and ticker</h2>",
            _metrics_table(report.by_ticker, ["pattern", "ticker"], "by_ticker"),
        ]
    parts += _regime_parts(report)
    if report.overfitting is not None:
        parts += [
            "<h2>Overfitting monitor</h2>",
            f"<p>Flagged when the gap (val_loss - train_loss) grew by more than "
            f"{s['overfit_tolerance']:g} over the last {s['overfit_window']} epochs while "
            f"val_loss is more than {s['overfit_tolerance']:g} above its minimum. Best epoch: "
            "lowest val_loss (val_objective in older histories); its weights are the ones "
            "saved.</p>",
            _frame_table(report.overfitting, flag="overfitting"),
        ]
    else:
        parts.append("<h2>Overfitting monitor</h2><p>Absent: no training histories.</p>")
    parts.append("<h2>Figures</h2>")
    for name, (file, data) in figures.items():
        caption = f"{esc(_CAPTIONS[name])} ({file_link(file)})"
        parts.append(figure(data, alt=file, caption_html=caption))
    return parts


def _regime_parts(report: ValidateReport) -> list[str]:
    """Metrics per market regime and the walk-forward regime coverage (or why they are absent)."""
    parts = ["<h2>Per market regime</h2>"]
    if report.coverage is None:
        return parts + ["<p>Absent: no bars of the market benchmark (see the notes).</p>"]
    parts.append(
        "<p>Each row's date takes the market's regime on that date, computed from the "
        "benchmark's closes up to that date only: trend (bull, bear or sideways: the 120-day "
        "return against one sd of a 120-day return) and volatility (high or low: 60-day "
        "realised volatility against its expanding median). Intervals: the same "
        "date-clustered bootstrap, within the regime's rows.</p>"
    )
    if report.by_regime is not None:
        parts.append(_metrics_table(report.by_regime, ["pattern", "dimension", "regime"],
                                    "by_regime"))  # fmt: skip
    return parts + [
        "<h3>Walk-forward regime coverage</h3>",
        "<p>Test days of each window in each regime (a date counts once, whatever its "
        "tickers; unknown: benchmark warm-up or no benchmark bar that day). A window tested "
        "in one regime says nothing about the others.</p>",
        _frame_table(report.coverage),
    ]


def write_report(report: ValidateReport, report_dir: Path) -> tuple[Path, list[Path]]:
    """Write ``report.html`` (figures embedded as base64) and the PNG figures.

    Parameters
    ----------
    report : ValidateReport
    report_dir : Path
        Created if needed; files of the same name are replaced atomically.

    Returns
    -------
    html : Path
    figures : list of Path
        ``learning_curves.png`` (with histories), ``calibration.png``,
        ``auc_by_window.png`` and ``null_comparison.png`` (with the null test).

    Raises
    ------
    ValueError
        ``report_dir`` exists and is not a directory.
    """
    from engine.reports import plots as report_plots  # matplotlib: only when drawing

    report_dir = Path(report_dir)
    if report_dir.exists() and not report_dir.is_dir():
        raise ValueError(f"report directory {report_dir} exists and is not a directory")
    report_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, tuple[str, bytes]] = {}
    if report.history is not None:
        figures["learning_curves"] = (
            FIGURE_FILES["learning_curves"],
            report_plots.learning_curves_png(report.history, report.overfitting),
        )
    figures["calibration"] = (
        FIGURE_FILES["calibration"],
        report_plots.calibration_png(report.calibration),
    )
    figures["auc_by_window"] = (
        FIGURE_FILES["auc_by_window"],
        report_plots.auc_by_window_png(report.by_model),
    )
    if report.null_metrics is not None:
        figures["null_comparison"] = (
            FIGURE_FILES["null_comparison"],
            report_plots.null_comparison_png(report.metrics, report.null_metrics),
        )
    paths = []
    for file, data in figures.values():
        atomic_write_bytes(report_dir / file, data)
        paths.append(report_dir / file)
    html_page = page(f"engine validate: {report.path}", "\n".join(_body(report, figures)))
    target = report_dir / REPORT_FILE
    atomic_write_bytes(target, html_page.encode("utf-8"))
    return target, paths
