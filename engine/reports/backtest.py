"""The ``engine backtest`` report: tables and figures of a :class:`BacktestReport`.

:func:`metric_rows` gives the table every front end shows (CLI, HTML,
pipeline summary); :func:`backtest_section` renders one backtest as an HTML
fragment (the pipeline report stacks several); :func:`write_backtest_report`
writes a standalone report directory atomically, file by file.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.backtest.inference import inference_line
from engine.data.universe import MARKET_BENCHMARK
from engine.io import atomic_write_bytes
from engine.reports.html import REPORT_FILE, figure, file_link, page, text_table

if TYPE_CHECKING:
    from engine.backtest.run import BacktestReport

__all__ = [
    "FIGURE_FILES",
    "backtest_section",
    "backtest_figures",
    "metric_rows",
    "write_backtest_report",
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
