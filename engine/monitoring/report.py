"""The drift report: one HTML page with the PSI table, the AUC table and the histograms.

``write_drift_report(result, directory)`` writes ``report.html``,
``drift.json`` (the result's ``to_dict()``), ``features.png`` and
``heads.png``: for every feature and head, the reference share of each bin
(frozen from the training fold) beside the window's share, titled with the
PSI and its status.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.io import atomic_write_bytes
from engine.monitoring.drift import IN_SAMPLE_ONLY, DriftResult, DriftRow
from engine.monitoring.psi import DRIFT, WARN
from engine.reports.html import REPORT_FILE, escape, figure, file_link, page, text_table
from engine.reports.plots import figure_png

__all__ = ["FIGURE_FILES", "histograms_png", "write_drift_report"]

FIGURE_FILES = {"feature": "features.png", "head": "heads.png"}
_REFERENCE_COLOR = "#7f7f7f"
_STATUS_COLOR = {"ok": "#1f77b4", "warn": "#ff7f0e", "drift": "#d62728", "insufficient": "#bbbbbb"}


def histograms_png(rows: list[DriftRow], ncols: int = 4) -> bytes:
    """Reference vs current share per bin, one panel per row."""
    from matplotlib.figure import Figure  # engine.reports.plots has selected the Agg backend

    n = max(len(rows), 1)
    cols = min(n, ncols)
    fig = Figure(figsize=(3.4 * cols, 2.4 * math.ceil(n / cols) + 0.4), layout="constrained")
    axes = fig.subplots(math.ceil(n / cols), cols, squeeze=False).ravel()
    for ax in axes[len(rows) :]:
        ax.set_visible(False)
    for ax, row in zip(axes, rows, strict=False):
        k = np.arange(len(row.reference))
        ax.bar(k - 0.2, row.reference, width=0.4, color=_REFERENCE_COLOR, label="reference")
        ax.bar(k + 0.2, row.current, width=0.4, color=_STATUS_COLOR[row.status], label="window")
        ax.set_title(f"{row.name}\nPSI {row.psi:.3f} ({row.status})", fontsize=8)
        ax.set_xticks(k, [str(i + 1) for i in k], fontsize=6)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_xlabel("bin (reference deciles, open-ended ends)", fontsize=6)
    if rows:
        axes[0].legend(fontsize=6)
    return figure_png(fig)


def _psi_table(rows: list[DriftRow]) -> str:
    return text_table(
        ["name", "PSI", "status", "rows", "reference rows", "noise floor (99 %)", "min rows"],
        [
            [
                r.name,
                f"{r.psi:.4f}",
                r.status,
                f"{r.n:,}",
                f"{r.n_reference:,}",
                f"{r.noise_floor:.4f}",
                f"{r.min_rows:,}" if r.min_rows is not None else "never (reference too small)",
            ]
            for r in rows
        ],
    )


def _num(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _auc_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        [
            "head",
            "labelled",
            "in sample (left out)",
            "base rate",
            "AUC",
            "95 % interval",
            "validation AUC",
        ],
        [
            [
                r["pattern"],
                f"{r['labelled']:,}",
                f"{r.get('in_sample_labelled', 0):,}",
                _num(r["base_rate"]),
                r.get("auc_note") or _num(r["auc"]),
                f"[{_num(r['auc_ci_low'])}, {_num(r['auc_ci_high'])}]",
                _num(r["validation_auc"]),
            ]
            for r in rows
        ],
    )


def _in_sample_line(result: DriftResult) -> str:
    """Which windows the AUC leaves out as in sample, in one sentence."""
    if result.embargo_end is None:
        return (
            "The model records no embargo_end: the AUC may include windows it trained or "
            "early-stopped on."
        )
    empty = [r["pattern"] for r in result.auc if r.get("auc_note") == IN_SAMPLE_ONLY]
    line = (
        f"Out of sample only: {result.auc_in_sample_windows:,} windows dated on or before the "
        f"model's embargo_end {result.embargo_end} are left out of the AUC."
    )
    if empty:
        line += f" AUC of {', '.join(empty)}: {IN_SAMPLE_ONLY}."
    return line


def write_drift_report(result: DriftResult, directory: str | Path) -> list[Path]:
    """Write ``report.html``, ``drift.json``, ``features.png`` and ``heads.png``.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_dict()
    files = []
    sections = []
    for kind, title in (("feature", "Features"), ("head", "Heads (model confidence)")):
        rows = [r for r in result.rows if r.kind == kind]
        png = histograms_png(rows)
        name = FIGURE_FILES[kind]
        atomic_write_bytes(out / name, png)
        files.append(out / name)
        sections.append(
            f"<h2>{escape(title)}</h2>{_psi_table(rows)}"
            + figure(
                png,
                alt=f"{kind} histograms",
                caption_html=f"Reference (grey) and window shares per bin; {file_link(name)}",
            )
        )
    model = summary.get("model", {})
    body = (
        f"<h1>Drift of {escape(model.get('source', 'the model'))}</h1>"
        f"<p>Window {escape(summary['start'])} to {escape(summary['end'])}: "
        f"{summary['n_windows']:,} windows of {escape(', '.join(result.tickers))}. "
        f"Status <b>{escape(result.status)}</b>. PSI against decile bins frozen from the "
        f"training fold: ok below {WARN}, warn from {WARN}, drift from {DRIFT}; a row is "
        "insufficient when its PSI 99th percentile under no drift at all (the noise floor) "
        f"reaches {WARN / 2:g}.</p>"
        + "".join(sections)
        + "<h2>AUC on labels matured by the window's end</h2>"
        + _auc_table(result.auc)
        + f"<p class='note'>{escape(_in_sample_line(result))} Intervals: stationary bootstrap "
        "over dates. The validation AUC is the model's own on its validation fold, stored at "
        "training.</p>"
    )
    atomic_write_bytes(out / REPORT_FILE, page("Drift report", body).encode())
    atomic_write_bytes(out / "drift.json", json.dumps(summary, indent=2, default=str).encode())
    return [out / REPORT_FILE, out / "drift.json", *files]
