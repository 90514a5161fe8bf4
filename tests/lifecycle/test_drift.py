"""engine drift on the registered demo model: PSI rows recomputed independently, AUC against
scikit-learn, exit codes, the report, and the errors (no data, a model without a reference)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import onnx
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from engine.cli.app import app
from engine.features.build import FEATURE_NAMES, compute_features
from engine.labels.targets import compute_targets
from engine.monitoring.psi import EPSILON
from export.scorer import PatternScorer

runner = CliRunner()
START, END = "2017-01-01", "2018-06-29"  # END well before the demo's last bar (2018-12-31)


def _drift(demo_store, *args):
    base = ["drift", "--data-dir", str(demo_store.data_dir), "--n-boot", "200"]
    return runner.invoke(app, [*base, *args])


@pytest.fixture(scope="module")
def measured(exported, demo_store, tmp_path_factory):
    report = tmp_path_factory.mktemp("drift") / "report"
    result = _drift(demo_store, "--model", "models:/pattern-lstm@champion", "--start", START,
                    "--end", END, "--json", "--report", str(report))  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), report


def _window_features(demo_store, scorer, start=START, end=END):
    """Last-day features of every complete 20-row window ending in [start, end], recomputed."""
    end = date.fromisoformat(end)
    bars = demo_store.read_bars(["AAPL", "MSFT", "SPY", "XLK", "VIX"], end=end)
    frame = compute_features(bars, tickers=["AAPL", "MSFT"], market=scorer.market,
                             sector_map=scorer.sector_map or None,
                             vix_variant=scorer.vix_variant)  # fmt: skip
    complete = pl.all_horizontal(pl.col(FEATURE_NAMES).is_not_null()).cast(pl.Int32)
    frame = frame.with_columns(complete.rolling_sum(20).over("ticker").alias("full"))
    return bars, frame.filter(
        (pl.col("full") == 20) & pl.col("date").is_between(date.fromisoformat(start), end)
    )


def _matured_labels(demo_store, scorer, window, end):
    """The window's labels from the FULL stored history, kept only where t1 <= end."""
    bars = demo_store.read_bars(["AAPL", "MSFT", "SPY", "XLK", "VIX"])
    assert bars.get_column("date").max() > date.fromisoformat(end)  # a cut can matter
    targets = compute_targets(bars, tickers=["AAPL", "MSFT"], market=scorer.market)
    heads = list(scorer.pattern_names)
    targets = targets.with_columns(
        pl.when(pl.col("t1") <= date.fromisoformat(end)).then(pl.col(h)).alias(h) for h in heads
    )
    return window.select("ticker", "date").join(targets, on=["ticker", "date"], how="left")


def _window_confidence(demo_store, scorer, start, end):
    """The model's confidence on every window ending in [start, end], keyed by ticker and date."""
    from engine.monitoring.drift import window_sequences

    bars = demo_store.read_bars(["AAPL", "MSFT", "SPY", "XLK", "VIX"])
    seqs = window_sequences(bars, scorer.metadata, ["AAPL", "MSFT"],
                            date.fromisoformat(start), date.fromisoformat(end))  # fmt: skip
    confidence = scorer.score(seqs.X)
    return seqs.index.select("ticker", "date").with_columns(
        pl.Series(f"{h}_p", confidence[:, j]) for j, h in enumerate(scorer.pattern_names)
    )


def _psi_by_hand(values, edges, shares):
    inner = np.asarray(edges)
    bounds = np.r_[-np.inf, inner, np.inf]
    current = np.array(
        [
            np.mean((values > lo) & (values <= hi))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    )
    r = np.maximum(np.asarray(shares), EPSILON)
    c = np.maximum(current, EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def test_feature_psi_matches_an_independent_recomputation(measured, exported, demo_store):
    summary, _ = measured
    scorer = PatternScorer.load(exported.path)
    _, window = _window_features(demo_store, scorer)
    assert summary["n_windows"] == window.height
    rows = {r["name"]: r for r in summary["features"]}
    assert list(rows) == list(FEATURE_NAMES)
    reference = scorer.metadata["reference"]["features"]
    for name in FEATURE_NAMES:
        values = window.get_column(name).cast(pl.Float32).cast(pl.Float64).to_numpy()
        expected = _psi_by_hand(values, reference[name]["edges"], reference[name]["shares"])
        assert rows[name]["psi"] == pytest.approx(expected, abs=1e-12), name
        assert rows[name]["n"] == window.height


def test_head_auc_is_on_matured_labels_beside_the_validation_auc(measured, exported, demo_store):
    """END is months before the last bar: labels maturing after it must not count."""
    summary, _ = measured
    scorer = PatternScorer.load(exported.path)
    _, window = _window_features(demo_store, scorer)
    joined = _matured_labels(demo_store, scorer, window, END).join(
        _window_confidence(demo_store, scorer, START, END), on=["ticker", "date"]
    )
    assert joined.height == window.height
    rows = {row["pattern"]: row for row in summary["auc"]}
    validation = scorer.metadata["reference"]["validation_auc"]
    assert summary["auc_in_sample_windows"] == 0  # the window is after the model's embargo_end
    for head in scorer.pattern_names:
        row = rows[head]
        labelled = joined.filter(pl.col(head).is_not_null())
        assert row["validation_auc"] == pytest.approx(validation[head])
        assert row["labelled"] == labelled.height
        expected = roc_auc_score(labelled.get_column(head), labelled.get_column(f"{head}_p"))
        assert row["auc"] == pytest.approx(expected)
        assert row["auc_ci_low"] <= row["auc"] <= row["auc_ci_high"]


def test_head_auc_matches_scikit_learn(exported, demo_store):
    from engine.monitoring.drift import measure_drift, window_sequences

    scorer = PatternScorer.load(exported.path)
    bars = demo_store.read_bars(["AAPL", "MSFT", "SPY", "XLK", "VIX"])
    seqs = window_sequences(bars, scorer.metadata, ["AAPL", "MSFT"], date(2017, 1, 1),
                            date(2018, 12, 31))  # fmt: skip
    confidence = scorer.score(seqs.X)
    result = measure_drift(scorer.metadata, seqs, confidence, start=date(2017, 1, 1),
                           end=date(2018, 12, 31), n_boot=100)  # fmt: skip
    for j, row in enumerate(result.auc):
        labelled = ~np.isnan(seqs.y[:, j])
        assert row["auc"] == pytest.approx(roc_auc_score(seqs.y[labelled, j],
                                                         confidence[labelled, j]))  # fmt: skip
    heads = {r.name: r for r in result.rows if r.kind == "head"}
    for j, head in enumerate(scorer.pattern_names):
        ref = scorer.metadata["reference"]["heads"][head]
        assert heads[head].psi == pytest.approx(
            _psi_by_hand(confidence[:, j].astype(np.float64), ref["edges"], ref["shares"])
        )


def test_exit_codes_follow_fail_on(measured, exported, demo_store):
    summary, _ = measured
    assert summary["status"] == "drift"  # market_beta_instability moves far in 2017-2018
    worst = max(r["psi"] for r in summary["features"] if r["status"] != "insufficient")
    assert worst >= 0.25
    args = ("--model", "models:/pattern-lstm@champion", "--start", START, "--end", END)
    assert _drift(demo_store, *args, "--fail-on", "drift").exit_code == 3
    assert _drift(demo_store, *args, "--fail-on", "warn").exit_code == 3
    # a one-month window is too small to judge: insufficient, which fails nothing
    small = _drift(demo_store, "--model", str(exported.path), "--start", "2018-12-01",
                   "--fail-on", "warn", "--json")  # fmt: skip
    assert small.exit_code == 0, small.output
    payload = json.loads(small.stdout)
    assert payload["status"] == "insufficient" and payload["failed"] is False
    assert all(r["noise_floor"] >= 0.05 for r in payload["features"])


def test_the_report_shows_histograms_per_feature(measured):
    summary, report = measured
    page = (report / "report.html").read_text()
    assert page.count("<img") == 2 and "market_beta_instability" in page
    assert (report / "features.png").stat().st_size > 10_000
    saved = json.loads((report / "drift.json").read_text())
    assert [r["psi"] for r in saved["features"]] == [r["psi"] for r in summary["features"]]


def test_a_window_without_data_is_a_clear_error(exported, demo_store):
    result = _drift(demo_store, "--model", str(exported.path), "--start", "2030-01-01",
                    "--end", "2030-06-30")  # fmt: skip
    assert result.exit_code == 1
    assert "no bars of AAPL, MSFT between 2030-01-01 and 2030-06-30" in result.output


def test_a_model_without_a_reference_is_told_to_re_export(exported, demo_store, tmp_path):
    proto = onnx.load(exported.path)
    props = {p.key: p.value for p in proto.metadata_props if p.key != "reference"}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    old = tmp_path / "old.onnx"
    onnx.save(proto, old)
    result = _drift(demo_store, "--model", str(old))
    assert result.exit_code == 1
    assert "no reference distributions" in result.output and "re-export" in result.output
    missing = _drift(demo_store, "--model", str(tmp_path))
    assert missing.exit_code == 1 and "holds no model.onnx" in missing.output


def test_auc_leaves_out_windows_the_model_trained_on(exported, demo_store):
    """A window straddling embargo_end: AUC on the later windows only, the rest counted."""
    scorer = PatternScorer.load(exported.path)
    cut = date.fromisoformat(scorer.metadata["split"]["embargo_end"])
    start, end = (cut - timedelta(days=180)).isoformat(), (cut + timedelta(days=270)).isoformat()
    result = _drift(demo_store, "--model", str(exported.path), "--start", start, "--end", end,
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    _, window = _window_features(demo_store, scorer, start, end)
    joined = _matured_labels(demo_store, scorer, window, end).join(
        _window_confidence(demo_store, scorer, start, end), on=["ticker", "date"]
    )
    seen = joined.filter(pl.col("date") <= cut)
    assert 0 < seen.height < joined.height
    assert summary["embargo_end"] == cut.isoformat()
    assert summary["auc_in_sample_windows"] == seen.height
    assert summary["n_windows"] == joined.height  # the PSI keeps every window
    assert any(f"{seen.height:,} windows dated on or before" in n for n in summary["notes"])
    unseen = joined.filter(pl.col("date") > cut)
    for row in summary["auc"]:
        head = row["pattern"]
        labelled = unseen.filter(pl.col(head).is_not_null())
        assert row["labelled"] == labelled.height
        assert row["in_sample_labelled"] == seen.get_column(head).drop_nulls().len() > 0
        expected = roc_auc_score(labelled.get_column(head), labelled.get_column(f"{head}_p"))
        assert row["auc"] == pytest.approx(expected)


def test_auc_of_a_window_inside_training_is_insufficient(exported, demo_store):
    from engine.monitoring.drift import IN_SAMPLE_ONLY

    scorer = PatternScorer.load(exported.path)
    cut = date.fromisoformat(scorer.metadata["split"]["embargo_end"])
    start = (cut - timedelta(days=365)).isoformat()
    result = _drift(demo_store, "--model", str(exported.path), "--start", start,
                    "--end", cut.isoformat(), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["auc_in_sample_windows"] == summary["n_windows"] > 0
    for row in summary["auc"]:
        assert row["auc"] is None and row["labelled"] == 0 and row["in_sample_labelled"] > 0
        assert row["auc_note"] == IN_SAMPLE_ONLY
    assert any(IN_SAMPLE_ONLY in n for n in summary["notes"])
    text = _drift(demo_store, "--model", str(exported.path), "--start", start,
                  "--end", cut.isoformat())  # fmt: skip
    assert text.exit_code == 0, text.output
    squeezed = " ".join(text.output.split())  # the terminal folds long lines
    for row in summary["auc"]:  # the text output says why each AUC is missing
        assert f"note: {row['pattern']}: {IN_SAMPLE_ONLY}" in squeezed


def test_a_model_without_embargo_end_keeps_every_window_and_says_so(exported, demo_store):
    from engine.monitoring.drift import measure_drift, window_sequences

    scorer = PatternScorer.load(exported.path)
    metadata = {**scorer.metadata, "split": {}}
    start, end = date(2014, 7, 1), date(2015, 12, 31)
    seqs = window_sequences(demo_store.read_bars(["AAPL", "MSFT", "SPY", "XLK", "VIX"]),
                            metadata, ["AAPL", "MSFT"], start, end)  # fmt: skip
    confidence = scorer.score(seqs.X)
    result = measure_drift(metadata, seqs, confidence, start=start, end=end, n_boot=50)
    assert result.embargo_end is None and result.auc_in_sample_windows == 0
    assert any("records no embargo_end" in n for n in result.notes)
    for j, row in enumerate(result.auc):
        labelled = ~np.isnan(seqs.y[:, j])
        assert row["labelled"] == labelled.sum()
        assert row["auc"] == pytest.approx(roc_auc_score(seqs.y[labelled, j],
                                                         confidence[labelled, j]))  # fmt: skip
