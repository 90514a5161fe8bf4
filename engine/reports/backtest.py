"""The ``engine backtest`` report: tables and figures of a :class:`BacktestReport`.

:func:`metric_rows` gives the table every front end shows (CLI, HTML,
pipeline summary); :func:`backtest_section` renders one backtest as an HTML
fragment (the pipeline report stacks several); :func:`write_backtest_report`
writes a standalone report directory atomically, file by file.
:func:`robustness_rows`, :func:`robustness_lines` and
:func:`robustness_section` show one strategy across several prediction
files (training seeds); :func:`write_seed_report` writes their report.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.backtest.inference import inference_line
from engine.backtest.robustness import DISAGREE
from engine.data.universe import MARKET_BENCHMARK
from engine.io import atomic_write_bytes
from engine.reports.html import REPORT_FILE, figure, file_link, page, text_table

if TYPE_CHECKING:
    from engine.backtest.robustness import SeedBacktests
    from engine.backtest.run import BacktestReport

__all__ = [
    "FIGURE_FILES",
    "backtest_section",
    "backtest_figures",
    "metric_rows",
    "robustness_lines",
    "robustness_rows",
    "robustness_section",
    "write_backtest_report",
    "write_seed_report",
]

FIGURE_FILES = {"equity": "equity.png", "drawdown": "drawdown.png"}

# (key, label, kind): kind "pct" shows a fraction as a percentage.
_METRICS = (
    ("total_return", "total return", "pct"),
    ("annual_return", "annual return", "pct"),
    ("annual_volatility", "annual volatility", "pct"),
    ("sharpe", "Sharpe (annualised)", "num"),
    ("psr", "PSR (true Sharpe > 0)", "num"),
    ("dsr", "DSR (deflated for N trials)", "num"),
    ("sortino", "Sortino (annualised)", "num"),
    ("max_drawdown", "max drawdown", "pct"),
    ("max_drawdown_peak", "  peak", "text"),
    ("max_drawdown_trough", "  trough", "text"),
    ("max_drawdown_recovery", "  recovered", "text"),
    ("calmar", "Calmar", "num"),
    ("var", "daily VaR 95 % (historical)", "pct"),
    ("cvar", "daily CVaR 95 % (historical)", "pct"),
    ("turnover", "turnover (per year)", "num"),
    ("exposure", "mean gross exposure", "num"),
    ("time_in_market", "time in market", "pct"),
    ("trades", "trades", "int"),
    ("hit_rate", "hit rate (trades)", "pct"),
    ("avg_trade_return", "mean trade return", "pct"),
    ("costs_paid", "costs paid (sum of daily drag)", "pct"),
    ("held_through_missing_bars", "held through missing bars", "int"),
    ("beta", f"beta vs {MARKET_BENCHMARK}", "num"),
    ("information_ratio", f"information ratio vs {MARKET_BENCHMARK}", "num"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100.0 * value:.2f} %"
    if kind == "num":
        return f"{value:.3f}"
    if kind == "int":
        return f"{int(value):,}"
    return str(value)


def metric_rows(report: BacktestReport) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted rows: one row per metric, one column per run."""
    runs = list(report.metrics)
    rows = []
    for key, label, kind in _METRICS:
        if all(key not in report.metrics[r] for r in runs):
            continue
        rows.append([label] + [_fmt(report.metrics[r].get(key), kind) for r in runs])
    return ["metric", *runs], rows


def comparison_lines(report: BacktestReport) -> list[str]:
    """The filtered-vs-unfiltered comparison in plain sentences."""
    f = report.filter
    d = report.sharpe_difference
    s = report.settings
    lines = [
        f"filter: {s.pattern_head} confidence >= {s.threshold:g} took {f['taken']:,} of "
        f"{f['signals']:,} signals (take rate {_fmt(f['take_rate'], 'pct')}; "
        f"{f['signals_without_confidence']:,} had no out-of-sample confidence)",
        f"signals right after {s.horizon} days: base rate {_fmt(f['base_rate'], 'pct')}, "
        f"precision of the taken {_fmt(f['precision'], 'pct')}, recall "
        f"{_fmt(f['recall'], 'pct')}, F1 {_fmt(f['f1'], 'num')} "
        f"({f['n_signals']:,} candidate signals with an outcome)",
    ]
    interval = f" [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d["ci_low"] is not None else " [-]"
    lines.append(
        f"Sharpe filtered - unfiltered: {_fmt(d['estimate'], 'num')}{interval} "
        f"(95 % paired stationary bootstrap, {s.n_boot} replicates)"
    )
    if report.inference:
        lines.append(inference_line(report.inference))
    if report.null is not None:
        n = report.null
        lines.append(
            f"null: the same filter with the confidence shifted {n['min_shift']}+ days off the "
            f"prices ({n['n']} shifts): Sharpe median {n['sharpe_median']:.3f} "
            f"[{n['sharpe_low']:.3f}, {n['sharpe_high']:.3f}]; p = {n['p_value']:.3f} "
            f"(MC s.e. {n['p_value_se']:.3f}) that a shifted filter does as well as the model"
        )
        lines.append(
            f"null take rate {_fmt(n['take_rate_median'], 'pct')} and turnover "
            f"{_fmt(n['turnover_median'], 'num')}/yr vs the model's "
            f"{_fmt(n['take_rate_model'], 'pct')} and {_fmt(n['turnover_model'], 'num')}/yr"
        )
    return lines


def backtest_figures(report: BacktestReport) -> dict[str, bytes]:
    """PNG bytes of the equity and drawdown figures."""
    from engine.reports.plots import drawdown_png, equity_png

    curves = {"filtered": report.filtered.returns, "unfiltered": report.unfiltered.returns}
    if report.benchmark is not None:
        curves[f"{MARKET_BENCHMARK} (buy and hold)"] = report.benchmark
    return {
        "equity": equity_png(report.dates, curves),
        "drawdown": drawdown_png(report.dates, curves),
    }


def backtest_section(
    report: BacktestReport, figures: dict[str, bytes], *, heading: str = "h2", link: bool = True
) -> str:
    """One backtest as an HTML fragment, figures embedded as base64."""
    esc = html.escape
    s = report.settings
    title = f"{s.strategy} filtered by {s.pattern_head}"
    parts = [
        f"<{heading}>{esc(title)}</{heading}>",
        f"<p>{esc(str(report.dates[0]))} to {esc(str(report.dates[-1]))}, "
        f"{report.dates.shape[0]:,} days, {len(report.tickers)} tickers; fills at the "
        f"{esc(s.fill)} of the next day; costs {s.costs_bps:g} bps + slippage "
        f"{s.slippage_bps:g} bps of traded notional; {'long only' if s.long_only else 'long/short'}"
        f"; equal weight, gross exposure at most 1. Annualised with {252} days a year, "
        "zero risk-free rate. Only out-of-sample predictions were used.</p>",
    ]
    if report.info.get("synthetic_tickers"):
        parts.append(
            f"<p>Synthetic tickers (demo factor model): "
            f"{esc(', '.join(report.info['synthetic_tickers']))}</p>"
        )
    parts += [f'<p class="note">Note: {esc(n)}</p>' for n in report.notes]
    parts.append(text_table(*metric_rows(report)))
    parts.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in comparison_lines(report)) + "</ul>")
    for name, data in figures.items():
        caption = esc(name.capitalize())
        if link:
            caption += f" ({file_link(FIGURE_FILES[name])})"
        parts.append(figure(data, alt=name, caption_html=caption))
    return "\n".join(parts)


def _parquet_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def write_backtest_report(report: BacktestReport, report_dir: Path) -> list[Path]:
    """Write ``report.html``, the PNGs, ``metrics.json``, ``daily.parquet``, ``signals.parquet``.

    Each file is written to a temporary file and renamed into place.

    Returns
    -------
    list of Path
        The files written, ``report.html`` first.
    """
    report_dir = Path(report_dir)
    if report_dir.exists() and not report_dir.is_dir():
        raise ValueError(f"report directory {report_dir} exists and is not a directory")
    report_dir.mkdir(parents=True, exist_ok=True)
    figures = backtest_figures(report)
    files: dict[str, bytes] = {FIGURE_FILES[k]: v for k, v in figures.items()}
    files["daily.parquet"] = _parquet_bytes(report.daily())
    files["signals.parquet"] = _parquet_bytes(report.signals)
    body = (
        "<h1>Meta-labeling backtest</h1>\n"
        f"<p>Predictions: <code>{html.escape(report.source)}</code></p>\n"
        + backtest_section(report, figures)
    )
    paths = [report_dir / REPORT_FILE]
    for name, data in files.items():
        atomic_write_bytes(report_dir / name, data)
        paths.append(report_dir / name)
    paths.append(report_dir / "metrics.json")
    payload = {**report.to_dict(), "files": [str(p) for p in paths]}
    atomic_write_bytes(
        report_dir / "metrics.json", json.dumps(payload, indent=2, default=str).encode("utf-8")
    )
    atomic_write_bytes(paths[0], page(f"engine backtest: {report.source}", body).encode("utf-8"))
    return paths


def _signed(value: float | None, spec: str = "+.3f") -> str:
    return "-" if value is None else format(value, spec)


def robustness_rows(robustness: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per prediction file: filtered Sharpe, difference [CI], null p (raw, Holm), DSR.

    Narrow enough for an 80-column terminal; the files' paths are in
    :func:`robustness_lines` and the JSON.
    """
    columns = [robustness.get("label_name", "file"), "filtered", "difference [95 % CI]",
               "null p", "Holm p", "DSR", "verdict"]  # fmt: skip
    rows = []
    for f in robustness["files"]:
        interval = "" if f["ci_low"] is None else f" [{f['ci_low']:+.2f}, {f['ci_high']:+.2f}]"
        rows.append([
            f["label"], _signed(f["sharpe_filtered"], ".3f"), _signed(f["difference"]) + interval,
            _signed(f["null_p"], ".3f"), _signed(f["null_p_holm"], ".3f"),
            _signed(f["dsr_filtered"], ".3f"), f["verdict"],
        ])  # fmt: skip
    return columns, rows


def robustness_lines(robustness: dict[str, Any], *, paths: bool = True) -> list[str]:
    """The spread across files, the verdict and its rule (and each file's path) as sentences."""
    spread = robustness["spread"]
    n = len(robustness["files"])

    def span(key: str, spec: str) -> str:
        v = spread[key]
        if v["min"] is None:
            return "-"
        return f"{v['min']:{spec}} / {v['median']:{spec}} / {v['max']:{spec}}"

    lines = []
    if paths:
        name = robustness.get("label_name", "file")
        lines += [f"{name} {f['label']}: {f['predictions']}" for f in robustness["files"]]
    lines += [
        f"across the {n} {robustness.get('label_name', 'file')}s (min / median / max): "
        "filtered Sharpe "
        f"{span('sharpe_filtered', '.3f')}; difference {span('difference', '+.3f')}; "
        f"null p {span('null_p', '.3f')}",
    ]
    if robustness["verdict"] == DISAGREE:
        counts = ", ".join(f"{v} {k}" for k, v in robustness["verdicts"].items())
        lines.append(f"filter verdict: {DISAGREE} ({counts})")
    else:
        lines.append(
            f"filter verdict: {robustness['verdict']} (every one of the {n} "
            f"{robustness.get('label_name', 'file')}s)"
        )
    lines.append(f"verdict rule: {robustness['rule']}")
    return lines


def robustness_section(robustness: dict[str, Any], title: str, *, heading: str = "h2") -> str:
    """One strategy across prediction files as an HTML fragment."""
    esc = html.escape
    return "\n".join([
        f"<{heading}>{esc(title)}</{heading}>",
        text_table(*robustness_rows(robustness)),
        "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in robustness_lines(robustness)) + "</ul>",
    ])  # fmt: skip


def write_seed_report(series: SeedBacktests, report_dir: Path) -> list[Path]:
    """Write each file's report to ``<report_dir>/<label>/``, then the comparison.

    ``report.html`` holds the comparison and every file's backtest;
    ``metrics.json`` is :meth:`SeedBacktests.to_dict`.

    Returns
    -------
    list of Path
        ``report.html``, ``metrics.json``, then each file's report files.
    """
    report_dir = Path(report_dir)
    if report_dir.exists() and not report_dir.is_dir():
        raise ValueError(f"report directory {report_dir} exists and is not a directory")
    report_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sections = []
    s = series.settings
    for label, report in zip(series.labels, series.reports, strict=True):
        files = write_backtest_report(report, report_dir / label)
        report.files = [str(p) for p in files]
        written += files
        figures = {name: (report_dir / label / file).read_bytes()
                   for name, file in FIGURE_FILES.items()}  # fmt: skip
        sections.append(f"<h2>File {html.escape(label)}: <code>{html.escape(report.source)}"
                        "</code></h2>")  # fmt: skip
        sections.append(backtest_section(report, figures, heading="h3", link=False))
        sections.append(f"<p>{file_link(f'{label}/{REPORT_FILE}')}</p>")
    title = f"{s.strategy} filtered by {s.pattern_head} across {len(series.reports)} files"
    body = (
        "<h1>Meta-labeling backtest across prediction files</h1>\n"
        + robustness_section(series.robustness, title)
        + "\n"
        + "\n".join(sections)
    )
    paths = [report_dir / REPORT_FILE, report_dir / "metrics.json"]
    series.files = [str(p) for p in paths + written]
    atomic_write_bytes(
        paths[1], json.dumps(series.to_dict(), indent=2, default=str).encode("utf-8")
    )
    atomic_write_bytes(paths[0], page(f"engine backtest: {title}", body).encode("utf-8"))
    return paths + written
