"""``engine validate`` adjusts for multiple tests: Holm for heads, BH for per-ticker screens."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.evaluation.diagnostics import null_comparison
from engine.jobs.validate import run_validate_job
from engine.labels.targets import CONFIDENCE_SUFFIX, PATTERN_NAMES
from engine.reports.pipeline import validation_summary as _validation_summary

N_TICKERS = 34  # the demo universe: 34 tickers x 4 patterns = 136 per-ticker rows


def naive_adjusted(p: list[float | None], method: str) -> list[float | None]:
    """Holm / Benjamini-Hochberg by their textbook formulas, O(m^2), nulls left out."""
    known = sorted((v, i) for i, v in enumerate(p) if v is not None and math.isfinite(v))
    m = len(known)
    out: list[float | None] = [None] * len(p)
    for rank, (_, i) in enumerate(known):
        if method == "holm":
            out[i] = min(1.0, max((m - j) * known[j][0] for j in range(rank + 1)))
        else:
            out[i] = min(1.0, min(m * known[j][0] / (j + 1) for j in range(rank, m)))
    return out


def no_skill_predictions(n_tickers: int = N_TICKERS, n_dates: int = 260, seed: int = 0):
    """Confidences independent of the outcomes: every AUC test is a true null."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n_dates)]
    tickers = [f"T{i:02d}" for i in range(n_tickers)]
    frame = pl.DataFrame({
        "ticker": tickers * n_dates, "date": [d for d in days for _ in tickers],
    }).with_columns(
        t1=pl.col("date") + pl.duration(days=7), model_id=pl.lit("wf00"),
        train_end=pl.lit(dt.date(2020, 12, 1)), embargo_end=pl.lit(dt.date(2020, 12, 8)),
    )  # fmt: skip
    n = frame.height
    cols = {}
    for p in PATTERN_NAMES:
        y = (rng.uniform(size=n) < 0.4).astype(np.float64)
        y[rng.uniform(size=n) < 0.3] = np.nan
        cols[p + CONFIDENCE_SUFFIX] = pl.Series(rng.uniform(size=n))
        cols[p] = pl.Series(y).fill_nan(None).cast(pl.Int8)
    return frame.with_columns(**cols)


@pytest.fixture(scope="module")
def no_skill_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("noskill") / "predictions.parquet"
    no_skill_predictions().write_parquet(path)
    report_dir = path.parent / "report"
    return run_validate_job(
        predictions=path, by_ticker=True, n_boot=200, seed=0, report_dir=report_dir
    )


def test_no_skill_per_ticker_rows_are_not_flagged_after_bh(no_skill_report):
    """136 true nulls: the raw rule flags about 5 % of them, Benjamini-Hochberg about none."""
    rows = no_skill_report.by_ticker
    assert rows.height == len(PATTERN_NAMES) * N_TICKERS == 136
    raw = int((rows["auc_p_value"] < 0.05).sum())
    adjusted = int((rows["auc_p_value_bh"] < 0.05).sum())
    print(f"no-skill per-ticker AUC rows flagged: raw {raw}/136, BH {adjusted}/136")
    assert raw >= 1  # the problem is real on this data set (6/136 with seed 0)
    assert adjusted <= 1
    # the adjusted column is BH over the whole table, per metric
    for metric in ("auc", "brier", "point_biserial"):
        expected = naive_adjusted(rows[f"{metric}_p_value"].to_list(), "bh")
        assert rows[f"{metric}_p_value_bh"].to_list() == pytest.approx(expected, abs=1e-12)


def test_head_verdicts_use_holm(no_skill_report):
    metrics = no_skill_report.metrics
    expected = naive_adjusted(metrics["auc_p_value"].to_list(), "holm")
    assert metrics["auc_p_value_holm"].to_list() == pytest.approx(expected, abs=1e-12)
    assert no_skill_report.settings["corrections"] == {
        "metrics": "holm", "null_metrics": "holm", "by_model": "bh", "by_ticker": "bh",
        "by_regime": "bh",
    }  # fmt: skip


def test_null_comparison_confirms_on_holm_adjusted_p():
    """Two raw p-values under 0.05 among four heads; Holm keeps neither."""
    real = pl.DataFrame({
        "pattern": ["a", "b", "c", "d"], "auc": [0.6, 0.58, 0.52, 0.5],
        "auc_ci_low": [0.5] * 4, "auc_ci_high": [0.7] * 4,
        "auc_p_value": [0.03, 0.04, 0.2, 0.5],
    })  # fmt: skip
    permutation = pl.DataFrame({
        "pattern": ["a", "b", "c", "d"], "auc": [0.6, 0.58, 0.52, 0.5], "n_null": 200,
        "null_auc_mean": 0.5, "null_auc_low": 0.45, "null_auc_high": 0.55,
        "permutation_p_value": [0.005, 0.02, 0.3, 0.6], "permutation_p_value_se": 0.01,
    })  # fmt: skip
    out = null_comparison(real, permutation)
    # Holm: 4 x 0.03 = 0.12, max(3 x 0.04, 0.12) = 0.12, 2 x 0.2 = 0.4, max(0.5, 0.4) = 0.5
    assert out["auc_p_value_holm"].to_list() == pytest.approx([0.12, 0.12, 0.4, 0.5])
    assert out["real_significant"].to_list() == [False] * 4
    # Holm: 4 x 0.005 = 0.02, 3 x 0.02 = 0.06, 2 x 0.3 = 0.6, max(0.6, 0.6) = 0.6
    assert out["permutation_p_value_holm"].to_list() == pytest.approx([0.02, 0.06, 0.6, 0.6])
    assert out["permutation_significant"].to_list() == [True, False, False, False]
    assert not out["confirmed"].any()


def test_json_carries_raw_and_adjusted_p(no_skill_report):
    payload = json.loads(json.dumps(no_skill_report.to_dict(), allow_nan=False))
    assert {"auc_p_value", "auc_p_value_holm"} <= set(payload["metrics"][0])
    assert {"auc_p_value", "auc_p_value_bh"} <= set(payload["by_ticker"][0])
    assert {"auc_p_value", "auc_p_value_bh"} <= set(payload["by_model"][0])
    assert payload["settings"]["corrections"]["by_ticker"] == "bh"


def test_html_bolds_only_adjusted_p_below_the_level_and_names_each_correction(no_skill_report):
    page = no_skill_report.report.read_text()
    frames = [no_skill_report.metrics, no_skill_report.by_model, no_skill_report.by_ticker]
    suffixes = ["holm", "bh", "bh"]
    flagged = sum(
        int((f[c] < 0.05).sum())
        for f, sfx in zip(frames, suffixes, strict=True)
        for c in f.columns
        if c.endswith(f"_p_value_{sfx}")
    )
    assert page.count("<b>") == flagged
    raw_flagged = sum(
        int((f[c] < 0.05).sum()) for f in frames for c in f.columns if c.endswith("_p_value")
    )
    assert raw_flagged > flagged  # the raw rule would have bolded more
    assert "adj. p=" in page
    assert "adj. p: Holm over the 4 patterns" in page
    assert "adj. p: Benjamini-Hochberg over the 136 pattern x ticker rows" in page
    assert "adj. p: Benjamini-Hochberg over the 4 pattern x window rows" in page


def test_cli_tables_show_adj_p_and_one_correction_line_each(tmp_path):
    path = tmp_path / "predictions.parquet"
    no_skill_predictions(n_tickers=3, n_dates=120).write_parquet(path)
    runner = CliRunner()
    result = runner.invoke(
        app, ["validate", "--predictions", str(path), "--by-ticker", "--n-boot", "50"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "adj. p" in out
    assert out.count("adj. p: Holm over the 4 patterns") == 1
    # one line under each of the 4 per-ticker tables (one family of 12 rows)
    assert len(re.findall(r"adj\. p: Benjamini-Hochberg over the 12 pattern x ticker", out)) == 4
    assert "Bonferroni" not in out


def test_pipeline_headline_lists_every_head_with_holm_p():
    def row(pattern, auc, p, holm):
        return {"pattern": pattern, "n": 100, "base_rate": 0.4, "auc": auc,
                "auc_ci_low": auc - 0.05, "auc_ci_high": auc + 0.05, "auc_p_value": p,
                "auc_p_value_holm": holm}  # fmt: skip

    summary = {"metrics": [row("a", 0.51, 0.4, 0.8), row("b", 0.61, 0.001, 0.004),
                           row("c", 0.55, 0.03, 0.09), row("d", 0.49, 0.6, 0.8)]}  # fmt: skip
    out = _validation_summary(summary)
    text = out["summary"]
    assert "best head" not in text
    for pattern, auc, holm in (("a", "0.510", "0.800"), ("b", "0.610", "0.004"),
                               ("c", "0.550", "0.090"), ("d", "0.490", "0.800")):  # fmt: skip
        assert f"{pattern} AUC {auc} [" in text and f"Holm p {holm}" in text
    assert "Holm over 4 heads" in text
    assert [r["p_value_holm"] for r in out["patterns"]] == [0.8, 0.004, 0.09, 0.8]
