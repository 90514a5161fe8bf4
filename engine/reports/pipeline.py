"""The pipeline's own output: its stage summaries and its one-page ``report.html``.

:func:`validation_summary` states every head's AUC with its interval and
Holm-adjusted p; :func:`backtest_results` deflates every backtest run as one
selection, writes each run's report and summarises the backtest stage (with
the filter's spread across seeds); :func:`identical_books` notes strategies
whose filtered books are one result; :func:`write_pipeline_report` writes the
page. The pipeline job (:mod:`engine.jobs.pipeline`) hands them plain data.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.evaluation.multiple_testing import correction_line
from engine.io import atomic_write_bytes
from engine.reports.backtest import (
    FIGURE_FILES,
    backtest_section,
    robustness_section,
    write_backtest_report,
)
from engine.reports.html import CSS

if TYPE_CHECKING:
    from engine.backtest.run import BacktestReport

__all__ = ["backtest_results", "identical_books", "validation_summary", "write_pipeline_report"]


def _auc_text(row: dict[str, Any]) -> str:
    if row.get("auc") is None:
        return "-"
    return f"{row['auc']:.3f} [{row['auc_ci_low']:.3f}, {row['auc_ci_high']:.3f}]"


def validation_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Every head with its AUC, interval and Holm-adjusted p (never only the best one).

    Examples
    --------
    >>> row = {"pattern": "a", "n": 9, "base_rate": 0.5, "auc": 0.6, "auc_ci_low": 0.5,
    ...        "auc_ci_high": 0.7, "auc_p_value": 0.02, "auc_p_value_holm": 0.04}
    >>> empty = {"pattern": "b", "n": 0, "auc": None, "auc_p_value": None}
    >>> validation_summary({"metrics": [row, empty]})["summary"]
    'a AUC 0.600 [0.500, 0.700] Holm p 0.040; b no AUC (Holm over 1 heads)'
    """
    null = summary.get("null") or {}
    null_rows = {r["pattern"]: r for r in null.get("metrics", [])}
    tests = {r["pattern"]: r for r in null.get("comparison", [])}
    rows = [
        {
            "pattern": r["pattern"],
            "labelled": r.get("n"),
            "base_rate": r.get("base_rate"),
            "auc": _auc_text(r),
            "p_value": r.get("auc_p_value"),
            "p_value_holm": r.get("auc_p_value_holm"),
            "null_auc": _auc_text(null_rows.get(r["pattern"], {})),
            "permutation_p_value": tests.get(r["pattern"], {}).get("permutation_p_value"),
            "permutation_p_value_holm": tests.get(r["pattern"], {}).get("permutation_p_value_holm"),
        }
        for r in summary["metrics"]
    ]
    heads = [
        f"{r['pattern']} AUC {_auc_text(r)} Holm p {_p_text(r.get('auc_p_value_holm'))}"
        if r.get("auc") is not None else f"{r['pattern']} no AUC"
        for r in summary["metrics"]
    ]  # fmt: skip
    tested = sum(r.get("auc_p_value") is not None for r in summary["metrics"])
    text = f"{'; '.join(heads)} (Holm over {tested} heads)" if heads else "no labelled events"
    return {"summary": text, "patterns": rows}


def _p_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def backtest_results(
    runs: dict[int, dict[str, BacktestReport]],
    out: Path,
    first_seed: int,
    inference: dict[str, Any],
    across: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write every run's backtest report and summarise the stage.

    The first seed's backtests are the stage's rows; with several seeds,
    ``across`` holds each strategy's spread and verdict across them.

    Parameters
    ----------
    runs : dict of int to (dict of str to BacktestReport)
        Seed -> strategy -> its backtest, already deflated as one selection
        (:func:`engine.backtest.run.deflate_together`).
    out : Path
        The pipeline's output directory: ``first_seed`` writes under
        ``backtest/<strategy>/``, every other seed under
        ``seeds/seed-<s>/backtest/<strategy>/``.
    first_seed : int
        The pipeline's main seed.
    inference : dict
        What the deflation shared (the trials ``N`` and what they were, the
        variance of the Sharpe ratios), without per-run PSR and DSR.
    across : dict of str to dict, optional
        Strategy -> :func:`engine.backtest.robustness.seed_robustness` of its
        runs over the seeds (only with several seeds).
    """
    seeds = list(runs)
    for seed, by_strategy in runs.items():
        root = out if seed == first_seed else out / "seeds" / f"seed-{seed}"
        for strategy, r in by_strategy.items():
            r.files = [str(p) for p in write_backtest_report(r, root / "backtest" / strategy)]
    rows = {}
    for strategy, r in runs[first_seed].items():
        m, d, f = r.metrics, r.sharpe_difference, r.filter
        rows[strategy] = {
            "head": r.settings.pattern_head,
            "sharpe_unfiltered": m["unfiltered"]["sharpe"],
            "sharpe_filtered": m["filtered"]["sharpe"],
            "psr_unfiltered": m["unfiltered"]["psr"],
            "psr_filtered": m["filtered"]["psr"],
            "dsr_unfiltered": m["unfiltered"]["dsr"],
            "dsr_filtered": m["filtered"]["dsr"],
            "sharpe_difference": d,
            "null_p_value": (r.null or {}).get("p_value"),
            "take_rate": f["take_rate"],
            "precision": f["precision"],
            "base_rate": f["base_rate"],
            "report": str(out / "backtest" / strategy / "report.html"),
        }
    parts = [f"{k} Sharpe {_num(v['sharpe_unfiltered'])} -> {_num(v['sharpe_filtered'])}"
             for k, v in rows.items()]  # fmt: skip
    result = {"summary": "; ".join(parts), "strategies": rows, "sharpe_inference": inference}
    if across is not None:
        result["seeds"] = {"seeds": seeds, "strategies": across}
        verdicts = ", ".join(f"{k} {v['verdict']}" for k, v in across.items())
        result["summary"] += f"; filter across {len(seeds)} seeds: {verdicts}"
    return result


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def identical_books(backtests: dict[str, Any]) -> list[str]:
    """A note for each group of strategies whose filtered books are identical.

    Two base strategies filtered by the same head at the same threshold can
    take exactly the same trades (every signal of one that passes the filter
    is also one of the other's); their filtered results are then one result,
    not two independent confirmations.
    """
    groups: list[list[str]] = []
    for name, bt in backtests.items():
        for group in groups:
            first = backtests[group[0]]
            if (
                np.array_equal(first.dates, bt.dates)
                and np.array_equal(first.filtered.returns, bt.filtered.returns, equal_nan=True)
                and np.array_equal(first.filtered.weights, bt.filtered.weights, equal_nan=True)
            ):
                group.append(name)
                break
        else:
            groups.append([name])
    return [
        f"{' and '.join(group)}, filtered by {backtests[group[0]].settings.pattern_head} "
        f"at {backtests[group[0]].settings.threshold:g}, hold identical filtered books (the "
        "same daily weights and returns): their filtered rows are one result, not "
        f"{len(group)}."
        for group in groups
        if len(group) > 1
    ]


def write_pipeline_report(
    summary: dict[str, Any],
    rows: list[tuple[str, str, str]],
    backtests: dict[str, BacktestReport],
    validated: dict,
    exported: dict,
) -> Path:
    """Write ``report.html``: every stage on one page; returns its path.

    Parameters
    ----------
    summary : dict
        The pipeline report's ``to_dict()``: ``out``, ``settings`` (``tickers``,
        ``start``, ``end``, ``epochs``, ``seed``, ``smoke``) and ``stages``.
    rows : list of (stage, result, seconds)
        The stages table.
    backtests : dict of str to BacktestReport
        The first seed's backtest per strategy, their reports (and figures)
        already written under ``<out>/backtest/<strategy>/``.
    validated, exported : dict
        The validate stage's :func:`validation_summary` and the export stage's result.
    """
    out = Path(summary["out"])
    esc = html.escape
    s = summary["settings"]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>engine pipeline: {esc(str(out))}</title><style>{CSS}</style></head><body>",
        "<h1>Pattern engine: bars to an out-of-sample backtest</h1>",
        f"<p>Written {esc(datetime.now().isoformat(timespec='seconds'))}; tickers "
        f"<code>{esc(s['tickers'])}</code>, samples from {esc(str(s['start'] or 'the start'))} to "
        f"{esc(str(s['end'] or 'the end'))}, {s['epochs']} epochs per window, seed {s['seed']}. "
        "Every number below is out-of-sample.</p>",
        *(
            [
                "<p class='note'><strong>Smoke run</strong> (<code>engine pipeline --quick</code>"
                f"): {s['epochs']} epochs per window on a few tickers, to show that every stage "
                "runs end to end. Its figures are not evidence of skill or of its absence; run "
                "<code>engine pipeline</code> without <code>--quick</code> for that.</p>"
            ]
            if s["smoke"]
            else []
        ),
        "<h2>Stages</h2><table><tr><th class='l'>stage</th><th class='l'>result</th>"
        "<th>seconds</th></tr>",
    ]
    for name, result, seconds in rows:
        parts.append(f"<tr><td class='l'>{esc(name)}</td><td class='l'>{esc(result)}</td>"
                     f"<td>{seconds}</td></tr>")  # fmt: skip
    parts.append("</table>")
    tested = sum(r["p_value"] is not None for r in validated["patterns"])
    parts.append(
        "<h2>Validation (walk-forward, out-of-sample)</h2>"
        f"<p><small>{esc(correction_line('holm', tested, 'patterns'))}.</small></p>"
        "<table><tr><th class='l'>pattern</th>"
        "<th>labelled</th><th>base rate</th><th>AUC [95 % CI]</th><th>p</th><th>adj. p</th>"
        "<th>null AUC [95 % CI]</th></tr>"
    )
    for r in validated["patterns"]:
        base = "-" if r["base_rate"] is None else f"{r['base_rate']:.3f}"
        p, adjusted = _p_text(r["p_value"]), _p_text(r.get("p_value_holm"))
        parts.append(
            f"<tr><td class='l'>{esc(r['pattern'])}</td><td>{r['labelled'] or 0:,}</td>"
            f"<td>{base}</td><td>{esc(r['auc'])}</td><td>{p}</td><td>{adjusted}</td>"
            f"<td>{esc(r['null_auc'])}</td></tr>"
        )
    parts.append(
        f"</table><p>Full validation report: <a href='validation/report.html'>"
        f"validation/report.html</a>. ONNX: <code>{esc(exported['path'])}</code> "
        f"({esc(exported['summary'])}).</p>"
    )
    parts.append("<h2>Backtests (meta-labeling)</h2>")
    parts.extend(f"<p class='note'>{esc(line)}</p>" for line in identical_books(backtests))
    for strategy, bt in backtests.items():
        written = out / "backtest" / strategy  # the backtest stage drew these already
        figures = {name: (written / file).read_bytes() for name, file in FIGURE_FILES.items()}
        parts.append(backtest_section(bt, figures, heading="h3", link=False))
        parts.append(f"<p><a href='backtest/{esc(strategy)}/report.html'>"
                     f"backtest/{esc(strategy)}/report.html</a></p>")  # fmt: skip
    seeds = summary["stages"].get("backtest", {}).get("seeds")
    if seeds:
        parts.append(f"<h2>The filter across {len(seeds['seeds'])} training seeds</h2>")
        for strategy, robustness in seeds["strategies"].items():
            parts.append(robustness_section(robustness, strategy, heading="h3"))
    parts.append("</body></html>")
    path = out / "report.html"
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
    return path
