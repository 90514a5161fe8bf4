"""LSTM and LightGBM on the same folds, end to end: train, export, ensemble, compare, explain.

One module-scoped data directory (AAPL, MSFT and their benchmarks from the
demo universe, samples from 2010: four walk-forward windows) and two runs
trained on it, a tiny LSTM and the LightGBM baseline, are shared by every
test; the commands run through the CLI as a user runs them.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.demo import generate_demo_universe
from engine.data.store import BarStore
from engine.evaluation import auc, brier
from engine.jobs.train import run_train_job
from engine.model.artifacts import read_metadata
from engine.model.gbm import GBMConfig, load_gbm_artifact
from engine.model.network import ModelConfig
from engine.model.reload import rebuild_run
from engine.model.runs import RunSettings
from export.held_out import training_bars

pytestmark = pytest.mark.slow
runner = CliRunner()
STORED = ["AAPL", "MSFT", "SPY", "XLK", "VIX"]
START = dt.date(2010, 1, 1)


def _cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> BarStore:
    bars = generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(STORED))
    store = BarStore(tmp_path_factory.mktemp("data"))
    store.write(bars)
    return store


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    settings = RunSettings(split="walk-forward", seed=1)
    lstm = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, epochs=1)
    out = {}
    for name, config in (("lstm", lstm), ("lightgbm", GBMConfig(n_estimators=60))):
        report = run_train_job(store, "AAPL,MSFT", settings=settings, config=config,
                               out=root / name, start=START)  # fmt: skip
        out[name] = report.out
    return out


def _predictions(run: Path) -> pl.DataFrame:
    return pl.read_parquet(run / "predictions.parquet")


# ------------------------------------------------------------------ the LightGBM run


def test_lightgbm_uses_the_lstm_windows_embargo_and_format(runs):
    lstm, gbm = _predictions(runs["lstm"]), _predictions(runs["lightgbm"])
    keys = ["ticker", "date", "t1", "model_id", "train_end", "embargo_end"]
    assert gbm.columns == lstm.columns
    assert gbm.select(keys).equals(lstm.select(keys))  # same windows, test rows and embargo
    assert lstm.get_column("model_id").n_unique() >= 3
    run = json.loads((runs["lightgbm"] / "run.json").read_text())
    assert run["model_kind"] == "lightgbm" and run["status"] == "complete"
    meta = read_metadata(runs["lightgbm"] / "models" / "wf00")
    assert meta["split"] == read_metadata(runs["lstm"] / "models" / "wf00")["split"]
    summary = _cli("validate", "--model", str(runs["lightgbm"]), "--n-boot", "50")
    assert summary["patterns"] == run["pattern_names"]


def test_lightgbm_is_deterministic_for_a_seed(runs, store, tmp_path):
    again = run_train_job(store, "AAPL,MSFT", settings=RunSettings(seed=1),
                          config=GBMConfig(n_estimators=60), out=tmp_path / "again",
                          start=START)  # fmt: skip
    for name in ("wf00", "wf02"):
        for pattern in json.loads((runs["lightgbm"] / "run.json").read_text())["pattern_names"]:
            path = Path("models") / name / f"lightgbm_{pattern}.txt"
            if (runs["lightgbm"] / path).exists():
                assert (again.out / path).read_bytes() == (runs["lightgbm"] / path).read_bytes()


def test_stored_predictions_are_the_models_scores_of_the_rebuilt_test_rows(runs, store):
    artifact = runs["lightgbm"] / "models" / "wf01"
    rebuilt = rebuild_run(runs["lightgbm"], training_bars(read_metadata(artifact), None))
    window = rebuilt.windows[1]
    model, metadata = load_gbm_artifact(artifact)
    scores = model.predict(rebuilt.dataset.score_set.X[window.test])
    stored = pl.read_parquet(artifact / "test_predictions.parquet")
    index = rebuilt.dataset.score_set.index[window.test].select("ticker", "date")
    joined = index.with_row_index("row").join(stored, on=["ticker", "date"]).sort("row")
    columns = [p + "_p" for p in metadata["pattern_names"]]
    np.testing.assert_array_equal(joined.select(columns).to_numpy(), scores)
    # the validation fold the heads stopped on ends before the test period
    val_t1 = rebuilt.dataset.train_set.index[window.validation].get_column("t1").max()
    assert val_t1 < dt.date.fromisoformat(metadata["split"]["test"][0])


def test_export_onnx_keeps_the_serving_contract(runs, tmp_path):
    from export.scorer import PatternScorer

    artifact = runs["lightgbm"] / "models" / "wf03"
    summary = _cli("export-onnx", "--model", str(artifact), "--out", str(tmp_path / "m.onnx"))
    assert summary["model_kind"] == "lightgbm"
    for parity in summary["parity"]:
        assert parity["ok"] and parity["max_abs_diff"] <= 1e-5
    assert summary["held_out"]["stored_predictions"]["max_abs_diff"] == 0.0
    scorer = PatternScorer.load(tmp_path / "m.onnx", providers=["CPUExecutionProvider"])
    model, _ = load_gbm_artifact(artifact)
    X = np.random.default_rng(0).normal(size=(5, 20, 17)).astype(np.float32)
    assert np.abs(scorer.score(X) - model.predict(X)).max() <= 1e-5
    refused = _fails("export-onnx", "--model", str(artifact), "--out", str(tmp_path / "q.onnx"),
                     "--quantize", "int8")  # fmt: skip
    assert "nothing to quantize" in refused


def test_export_registers_as_pattern_lightgbm(runs, tmp_path):
    from engine.tracking import Tracking
    from export.onnx_export import export_onnx
    from export.scorer import PatternScorer

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifact = runs["lightgbm"] / "models" / "wf00"
    report = export_onnx(artifact, tmp_path / "m.onnx", tracking=Tracking(uri=uri))
    assert report.registered["name"] == "pattern-lightgbm"
    served = PatternScorer.load(report.registered["uri"], tracking_uri=uri)
    X = np.random.default_rng(1).normal(size=(3, 20, 17)).astype(np.float32)
    np.testing.assert_array_equal(served.score(X), PatternScorer.load(tmp_path / "m.onnx").score(X))


# ------------------------------------------------------------------ ensembles


@pytest.fixture(scope="module")
def ensembles(runs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ensembles")
    out = {}
    for method in ("mean", "stack"):
        out[method] = root / method
        _cli("ensemble", str(runs["lstm"]), str(runs["lightgbm"]), "--method", method,
             "--out", str(out[method]))  # fmt: skip
    return out


def test_mean_ensemble_averages_the_members(runs, ensembles):
    mean = _predictions(ensembles["mean"])
    lstm, gbm = _predictions(runs["lstm"]), _predictions(runs["lightgbm"])
    pattern = json.loads((runs["lstm"] / "run.json").read_text())["pattern_names"][0]
    want = (lstm.get_column(pattern + "_p") + gbm.get_column(pattern + "_p")) / 2
    np.testing.assert_allclose(mean.get_column(pattern + "_p").to_numpy(), want.to_numpy(),
                               atol=1e-6)  # fmt: skip
    keys = ["ticker", "date", "model_id"]
    assert mean.select(keys).equals(lstm.select(keys))


def test_stack_weights_come_from_validation_folds_only(runs, ensembles):
    from sklearn.linear_model import LogisticRegression

    from engine.model.ensemble import MIN_STACK_EVENTS, STACK_L2
    from engine.model.kinds import load_predictor

    run = json.loads((ensembles["stack"] / "run.json").read_text())
    assert run["model_kind"] == "ensemble" and run["status"] == "complete"
    first = runs["lstm"] / run["windows"][0]["artifact"]
    rebuilt = rebuild_run(runs["lstm"], training_bars(read_metadata(first), None))
    patterns, fitted = run["pattern_names"], 0
    for k, window in enumerate(run["windows"]):
        meta = read_metadata(ensembles["stack"] / window["artifact"])
        member = read_metadata(runs["lstm"] / window["artifact"])
        assert meta["training"]["validation_rows"] == member["split"]["n_validation"]
        assert meta["split"]["embargo_end"] >= member["split"]["embargo_end"]
        # refit every head's stack here, on the members' scores of the validation rows only
        rows = rebuilt.windows[k].validation
        X, labels = rebuilt.dataset.train_set.X[rows], rebuilt.dataset.train_set.y[rows]
        scores = [load_predictor(r / window["artifact"])[0](X) for r in runs.values()]
        stored = json.loads((ensembles["stack"] / window["artifact"] / "ensemble.json").read_text())
        for j, pattern in enumerate(patterns):
            labelled = ~np.isnan(labels[:, j])
            y = labels[labelled, j]
            if y.size < MIN_STACK_EVENTS or not 0 < y.sum() < y.size:
                assert stored["coefficients"][pattern] is None
                continue
            q = np.clip(np.column_stack([s[labelled, j] for s in scores]), 1e-6, 1 - 1e-6)
            # mean log loss + l2 * |w|^2  is  sklearn's  C * sum(log loss) + |w|^2 / 2  / (C n)
            reference = LogisticRegression(
                C=1 / (2 * y.size * STACK_L2), tol=1e-10, max_iter=10_000
            )
            reference.fit(np.log(q) - np.log1p(-q), y)
            want = [reference.intercept_[0], *reference.coef_[0]]
            np.testing.assert_allclose(stored["coefficients"][pattern], want, atol=2e-3)
            fitted += 1
    assert fitted  # some head was stacked, not every one left to the mean
    summary = _cli("validate", "--model", str(ensembles["stack"]), "--n-boot", "50")
    assert len(summary["windows"]) == len(run["windows"])


def test_ensemble_errors(runs, tmp_path):
    other = tmp_path / "reordered"
    shutil.copytree(runs["lightgbm"], other)
    record = json.loads((other / "run.json").read_text())
    record["feature_names"] = record["feature_names"][::-1]
    (other / "run.json").write_text(json.dumps(record))
    message = _fails("ensemble", str(runs["lstm"]), str(other), "--out", str(tmp_path / "e"))
    assert "features in another order" in message and "one feature order" in message
    one = _fails("ensemble", str(runs["lstm"]), "--out", str(tmp_path / "e1"))
    assert "two or more different runs" in one


def test_one_run_under_two_spellings_is_one_member(runs, tmp_path, monkeypatch):
    member = runs["lstm"]
    monkeypatch.chdir(member.parent)
    for spelling in (str(member), member.name, str(member / ".." / member.name)):
        message = _fails("ensemble", str(member), spelling, "--out", str(tmp_path / "e"))
        assert "two or more different runs" in message and "the same run" in message, message
    assert not (tmp_path / "e").exists()


def test_a_failed_ensemble_says_failed(runs, tmp_path, monkeypatch):
    import engine.jobs.ensemble as job

    fit_window = job._window

    def fail_on_window_2(k, *args, **kwargs):
        if k == 2:
            raise RuntimeError("forced failure on window 2")
        return fit_window(k, *args, **kwargs)

    monkeypatch.setattr(job, "_window", fail_on_window_2)
    with pytest.raises(RuntimeError, match="forced failure"):
        job.run_ensemble_job([runs["lstm"], runs["lightgbm"]], tmp_path / "e", method="mean")
    run = json.loads((tmp_path / "e" / "run.json").read_text())
    assert run["status"] == "failed" and "forced failure on window 2" in run["error"]
    assert [w["model_id"] for w in run["windows"]] == ["wf00", "wf01"] and run["finished"]
    partial = _predictions(tmp_path / "e")  # what was written is what run.json lists
    assert sorted(partial.get_column("model_id").unique()) == ["wf00", "wf01"]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()
    }


def test_ensemble_refuses_an_out_at_inside_or_above_a_member(runs):
    member = runs["lstm"]
    before = _files(member.parent)  # both members
    for out, where in (
        (member, "is the member run"),
        (member / "models", "lies inside the member run"),
        (member / "models" / ".." / "new", "lies inside the member run"),
        (member.parent, "contains the member run"),
    ):
        message = _fails("ensemble", str(member), str(runs["lightgbm"]), "--out", str(out),
                         "--overwrite")  # fmt: skip
        assert where in message and str(out) in message, message
        assert _files(member.parent) == before  # refused before anything was written or deleted


# ------------------------------------------------------------------ compare


def test_compare_pairs_the_runs_on_their_common_rows(runs, tmp_path):
    summary = _cli("compare", str(runs["lstm"]), str(runs["lightgbm"]), "--n-boot", "100",
                   "--report", str(tmp_path / "report"))  # fmt: skip
    lstm, gbm = _predictions(runs["lstm"]), _predictions(runs["lightgbm"])
    for row in summary["pooled"]:
        p = row["pattern"]
        labelled = lstm.filter(pl.col(p).is_not_null())
        y = labelled.get_column(p).to_numpy()
        b = gbm.filter(pl.col(p).is_not_null()).get_column(p + "_p").to_numpy()
        a = labelled.get_column(p + "_p").to_numpy()
        metric = {"auc": auc, "brier": brier}.get(row["metric"])
        if metric is not None and row["a"] is not None:
            assert row["a"] == pytest.approx(metric(y, a), abs=1e-6)
            assert row["b"] == pytest.approx(metric(y, b), abs=1e-6)
    assert {r["model_id"] for r in summary["by_window"]} == set(lstm.get_column("model_id"))
    for row in summary["coverage"]:
        trends = ("bull", "bear", "sideways", "unknown")
        assert sum(row[f"trend:{t}"] for t in trends) == row["days"]
    assert set(summary["by_regime"]) == {"trend", "volatility"}
    for name in ("report.html", "auc_by_window.png", "differences.png", "comparison.json"):
        assert (tmp_path / "report" / name).is_file()


def test_compare_errors(runs, tmp_path):
    lstm = _predictions(runs["lstm"])
    renamed = tmp_path / "renamed.parquet"
    first = json.loads((runs["lstm"] / "run.json").read_text())["pattern_names"][0]
    lstm.rename({first: "other", first + "_p": "other_p"}).write_parquet(renamed)
    assert "different pattern sets" in _fails("compare", str(runs["lightgbm"]), str(renamed))
    late = tmp_path / "late.parquet"
    cut = lstm.get_column("date").max()
    lstm.filter(pl.col("date") == cut).write_parquet(late)
    early = tmp_path / "early.parquet"
    lstm.filter(pl.col("date") < cut).write_parquet(early)
    assert "no (ticker, date) row in common" in _fails("compare", str(early), str(late))


# ------------------------------------------------------------------ explain and bad input


def test_explain_lightgbm_and_lstm(runs, tmp_path):
    gbm = _cli("explain", "--model", str(runs["lightgbm"]), "--n-boot", "50", "--report",
               str(tmp_path / "gbm"))  # fmt: skip
    features = gbm["features"]
    assert gbm["reproduced_max_abs_diff"] == 0.0
    for pattern in {r["pattern"] for r in gbm["permutation"]}:
        rows = [r for r in gbm["permutation"] if r["pattern"] == pattern]
        assert {r["feature"] for r in rows} == set(features)
    shares = {}
    for r in gbm["gain"]:
        shares[r["pattern"]] = shares.get(r["pattern"], 0.0) + r["gain_share"]
    # shares of each head's gain (0 for a head whose trees never split)
    assert all(s == pytest.approx(1.0) or s == 0.0 for s in shares.values()) and shares
    assert list((tmp_path / "gbm").glob("importance_*.png"))
    lstm = _cli("explain", "--model", str(runs["lstm"]), "--n-boot", "20")
    assert lstm["gain"] is None and lstm["reproduced_max_abs_diff"] <= 1e-5


def test_unknown_model_kind_is_refused():
    result = runner.invoke(app, ["train", "--model", "xgboost"])
    assert result.exit_code == 2 and "'xgboost' is not one of 'lstm', 'lightgbm'" in " ".join(
        result.output.replace("│", " ").split()
    )
