"""The ``engine compare`` report: ``report.html``, its figures and ``comparison.json``.

Figures (PNG bytes from frames, written beside the page and embedded):

* ``auc_by_window.png``: per head, each run's AUC per test window;
* ``differences.png``: per metric, the pooled difference ``A - B`` of every
  head with its paired bootstrap interval, and the same per regime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.evaluation.comparison import COMPARED_METRICS, LOWER_IS_BETTER
from engine.io import atomic_write_bytes
from engine.reports.html import REPORT_FILE, escape, figure, page, text_table
from engine.reports.plots import _empty, _grid, figure_png

__all__ = ["auc_by_window_png", "differences_png", "difference_rows", "write_compare_report"]

_LABELS = {"auc": "AUC", "brier": "Brier", "log_loss": "log loss"}
_A, _B = "#1f77b4", "#ff7f0e"


def _num(value: Any, spec: str = ".4f") -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and np.isnan(value))
        else format(value, spec)
    )


def difference_rows(frame: pl.DataFrame, keys: list[str]) -> tuple[list[str], list[list[str]]]:
    """Columns and text rows of a difference table (one row per key, head and metric).

    Examples
    --------
    >>> f = pl.DataFrame({"pattern": ["p"], "metric": ["auc"], "n": [10], "base_rate": [0.5],
    ...                   "a": [0.6], "b": [0.5], "difference": [0.1], "ci_low": [0.01],
    ...                   "ci_high": [0.2], "p_value": [0.04], "p_value_adj": [0.08]})
    >>> difference_rows(f, [])[1][0][-3:]
    ['+0.1000 [+0.0100, +0.2000]', '0.040', '0.080']
    """
    columns = [*keys, "pattern", "metric", "n", "base rate", "A", "B", "A - B [95 % CI]", "p",
               "adj. p"]  # fmt: skip
    rows = []
    for r in frame.iter_rows(named=True):
        diff = "-"
        if r["difference"] is not None:
            diff = f"{r['difference']:+.4f}"
            if r["ci_low"] is not None:
                diff += f" [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
        rows.append([*(str(r[k]) for k in keys), r["pattern"], _LABELS[r["metric"]], str(r["n"]),
                     _num(r["base_rate"], ".3f"), _num(r["a"]), _num(r["b"]), diff,
                     _num(r["p_value"], ".3f"), _num(r["p_value_adj"], ".3f")])  # fmt: skip
    return columns, rows


def auc_by_window_png(
    by_window: pl.DataFrame, windows: pl.DataFrame, names: tuple[str, str]
) -> bytes:
    """Each run's AUC per test window, one panel per head."""
    aucs = by_window.filter(pl.col("metric") == "auc")
    if aucs.height == 0:
        return _empty("no window with both outcomes")
    order = windows.select("model_id", "first_date")
    patterns = aucs.get_column("pattern").unique(maintain_order=True).to_list()
    fig, axes = _grid(len(patterns))
    for ax, pattern in zip(axes, patterns, strict=True):
        rows = (
            aucs.filter(pl.col("pattern") == pattern).join(order, on="model_id").sort("first_date")
        )
        x = rows.get_column("first_date").to_numpy()
        for column, color, name in (("a", _A, names[0]), ("b", _B, names[1])):
            ax.plot(x, rows.get_column(column).to_numpy(), "o-", color=color, label=name, ms=3)
        ax.axhline(0.5, color="#7f7f7f", lw=0.8, ls="--")
        ax.set_title(pattern, fontsize=9)
        ax.set_ylabel("AUC")
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    axes[0].legend(fontsize=7)
    return figure_png(fig)


def differences_png(pooled: pl.DataFrame, by_regime: dict[str, pl.DataFrame] | None) -> bytes:
    """Pooled and per-regime ``A - B`` with intervals, one panel per metric."""
    parts = [pooled.with_columns(pl.lit("all").alias("group"))]
    for dim, frame in (by_regime or {}).items():
        if frame.height:
            parts.append(frame.with_columns(pl.col(dim).alias("group")).drop(dim))
    rows = pl.concat([p.select(pooled.columns + ["group"]) for p in parts], how="vertical")
    rows = rows.filter(pl.col("difference").is_not_null())
    if rows.height == 0:
        return _empty("no difference to show")
    fig, axes = _grid(len(COMPARED_METRICS), ncols=3, size=(4.4, 0.35 * rows.height / 3 + 1.8))
    for ax, metric in zip(axes, COMPARED_METRICS, strict=True):
        part = rows.filter(pl.col("metric") == metric)
        labels = [f"{p} | {g}" for p, g in zip(part["pattern"], part["group"], strict=True)]
        y = np.arange(part.height)[::-1]
        est = part.get_column("difference").to_numpy().astype(float)
        lo = part.get_column("ci_low").fill_null(np.nan).to_numpy().astype(float)
        hi = part.get_column("ci_high").fill_null(np.nan).to_numpy().astype(float)
        colors = [_A if g == "all" else "#7f7f7f" for g in part["group"]]
        ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="none", ecolor=colors, lw=1)
        ax.scatter(est, y, c=colors, s=12, zorder=3)
        ax.axvline(0.0, color="#d62728", lw=0.8)
        ax.set_yticks(y, labels, fontsize=6)
        better = "A better <-" if metric in LOWER_IS_BETTER else "-> A better"
        ax.set_title(f"{_LABELS[metric]}: A - B ({better})", fontsize=9)
    return figure_png(fig)


def _table(frame: pl.DataFrame | None, keys: list[str]) -> str:
    if frame is None or frame.height == 0:
        return "<p>none</p>"
    return text_table(*difference_rows(frame, keys))


def write_compare_report(report: Any, report_dir: Path) -> tuple[Path, list[Path]]:
    """Write ``report.html``, ``auc_by_window.png``, ``differences.png`` and ``comparison.json``.

    Parameters
    ----------
    report : engine.jobs.compare.CompareReport
    report_dir : Path

    Returns
    -------
    (Path, list of Path)
        The page and the other files written.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    names = (f"A: {Path(report.a).name}", f"B: {Path(report.b).name}")
    figures = {
        "auc_by_window.png": auc_by_window_png(report.by_window, report.windows, names),
        "differences.png": differences_png(report.pooled, report.by_regime),
    }
    written = []
    for name, png in figures.items():
        atomic_write_bytes(report_dir / name, png)
        written.append(report_dir / name)
    body = [
        f"<h1>{escape(names[0])} vs {escape(names[1])}</h1>",
        f"<p>A = {escape(report.a)}<br>B = {escape(report.b)}<br>{report.rows:,} common "
        f"(ticker, date) rows, {report.tickers} tickers, {escape(report.first_date)} to "
        f"{escape(report.last_date)}. Intervals: paired stationary bootstrap of whole dates, "
        f"{report.settings['n_boot']} replicates, {report.settings['level']:.0%}; p: two-sided, "
        "no difference. AUC: positive favours A; Brier and log loss: negative favours A.</p>",
        "<h2>All test windows pooled</h2><p>adj. p: Holm over the heads, per metric.</p>",
        _table(report.pooled, []),
        figure(figures["differences.png"], alt="differences",
               caption_html="A - B with 95 % intervals, pooled (blue) and per regime (grey)."),
        "<h2>Per window</h2><p>adj. p: Benjamini-Hochberg over windows and heads, per "
        "metric (a screen).</p>",
        figure(figures["auc_by_window.png"], alt="AUC by window",
               caption_html="AUC of each run per test window (dashed: no skill)."),
        _table(report.by_window, ["model_id"]),
    ]  # fmt: skip
    if report.by_regime is not None:
        body.append("<h2>Per market regime</h2><p>adj. p: Holm over heads and labels, per "
                    "metric.</p>")  # fmt: skip
        for dim, frame in report.by_regime.items():
            body += [f"<h3>{escape(dim)}</h3>", _table(frame, [dim])]
        cov = report.coverage
        cells = [[str(v) for v in r] for r in cov.iter_rows()]
        body += ["<h3>Test days per window in each regime</h3>", text_table(cov.columns, cells)]
    if report.notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes)
                    + "</ul>")  # fmt: skip
    path = report_dir / REPORT_FILE
    atomic_write_bytes(path, page("engine compare", "\n".join(body)).encode())
    text = json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str)
    atomic_write_bytes(report_dir / "comparison.json", text.encode())
    return path, [*written, report_dir / "comparison.json"]
