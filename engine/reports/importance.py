"""The ``engine explain`` report: one bar chart per head, tables, ``importance.json``.

Each head's chart (``importance_<pattern>.png``) shows the permutation AUC
drop of every feature with its 95 % interval; for LightGBM two more panels
show the gain share and the mean absolute SHAP value (log-odds) per feature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.io import atomic_write_bytes
from engine.reports.html import REPORT_FILE, escape, figure, page, text_table
from engine.reports.plots import _grid, figure_png

__all__ = ["head_importance_png", "write_explain_report"]


def _bars(ax, names: list[str], values: np.ndarray, title: str, color: str, err=None) -> None:
    y = np.arange(len(names))[::-1]
    ax.barh(y, values, color=color, xerr=err, error_kw={"lw": 0.8, "ecolor": "#333333"})
    ax.set_yticks(y, names, fontsize=7)
    ax.axvline(0.0, color="#7f7f7f", lw=0.8)
    ax.set_title(title, fontsize=9)


def head_importance_png(
    permutation: pl.DataFrame, gain: pl.DataFrame | None, shap: pl.DataFrame | None
) -> bytes:
    """One head's importance bar chart(s); ``permutation`` holds that head's rows only."""
    panels = 1 + (gain is not None) + (shap is not None)
    fig, axes = _grid(panels, ncols=3, size=(4.6, 4.2))
    rows = permutation.sort("drop", descending=True)
    drop = rows.get_column("drop").to_numpy().astype(float)
    lo = rows.get_column("ci_low").fill_null(np.nan).to_numpy().astype(float)
    hi = rows.get_column("ci_high").fill_null(np.nan).to_numpy().astype(float)
    err = np.vstack([np.nan_to_num(drop - lo), np.nan_to_num(hi - drop)])
    _bars(axes[0], rows.get_column("feature").to_list(), drop,
          "permutation: AUC drop [95 % CI]", "#1f77b4", err)  # fmt: skip
    k = 1
    for frame, column, title, color in ((gain, "gain_share", "LightGBM gain share", "#2ca02c"),
                                        (shap, "mean_abs_shap", "mean |SHAP| (log-odds)",
                                         "#ff7f0e")):  # fmt: skip
        if frame is None:
            continue
        part = frame.sort(column, descending=True)
        _bars(axes[k], part.get_column("feature").to_list(),
              part.get_column(column).to_numpy().astype(float), title, color)  # fmt: skip
        k += 1
    return figure_png(fig)


def _rows(frame: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    return frame.columns, [[cell(v) for v in r] for r in frame.iter_rows()]


def write_explain_report(report: Any, report_dir: Path) -> tuple[Path, list[Path]]:
    """Write ``report.html``, ``importance_<pattern>.png`` per head and ``importance.json``.

    Parameters
    ----------
    report : engine.jobs.explain.ExplainReport
    report_dir : Path
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    body = [
        f"<h1>Feature importance: {escape(report.run)}</h1>",
        f"<p>{escape(report.model_kind)} run, {report.windows} windows, {report.rows:,} "
        "out-of-sample rows. Permutation: each feature's 20-day block shuffled across the "
        "test windows of its period (once, seeded); AUC drop = AUC(original) - AUC(permuted) "
        f"with a paired bootstrap of whole dates ({report.settings['n_boot']} replicates, "
        f"95 %); adj. p: Holm over the features of a head. Reloaded models reproduce the "
        f"stored predictions to {report.reproduced:.2g}.</p>",
    ]
    written = []
    for pattern in report.patterns:
        part = report.permutation.filter(pl.col("pattern") == pattern)
        if part.height == 0:
            body.append(f"<h2>{escape(pattern)}</h2><p>one outcome only: no AUC</p>")
            continue
        gain = shap = None
        if report.gain is not None:
            gain = report.gain.filter(pl.col("pattern") == pattern)
            shap = report.shap.filter(pl.col("pattern") == pattern)
            gain = gain if gain.height else None
            shap = shap if shap is not None and shap.height else None
        png = head_importance_png(part, gain, shap)
        name = f"importance_{pattern}.png"
        atomic_write_bytes(report_dir / name, png)
        written.append(report_dir / name)
        body += [f"<h2>{escape(pattern)}</h2>",
                 figure(png, alt=f"importance of {pattern}", caption_html=escape(name)),
                 text_table(*_rows(part.drop("pattern")))]  # fmt: skip
        if gain is not None and shap is not None:
            both = gain.join(shap, on=["pattern", "feature"]).drop("pattern")
            body.append(text_table(*_rows(both)))
    if report.notes:
        body.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")
    path = report_dir / REPORT_FILE
    atomic_write_bytes(path, page("engine explain", "\n".join(body)).encode())
    text = json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str)
    atomic_write_bytes(report_dir / "importance.json", text.encode())
    return path, [*written, report_dir / "importance.json"]
