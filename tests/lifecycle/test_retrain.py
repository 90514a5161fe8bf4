"""The champion/challenger loop: the paired bootstrap and its rule on simulated scores, then
real (tiny) LSTMs on a universe whose signal appears recently and on pure noise, then the
engine retrain command on the demo data."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from engine.cli.app import app
from engine.features.build import FEATURE_NAMES
from engine.model.artifacts import read_metadata
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, TrainDataset, train_windows
from engine.model.sequences import build_sequences
from engine.monitoring.challenger import compare_models, weighted_auc
from engine.monitoring.retrain import (
    challenge,
    challenger_splitter,
    challenger_start,
    matured_end,
    record_challenge,
    record_refit,
    refit_latest,
    since,
)
from engine.tracking import Tracking, track_job
from engine.tracking.client import experiment_name
from engine.tracking.registry import Registry
from export.held_out import select_held_out
from export.onnx_export import export_onnx
from export.registration import registry_tags
from export.scorer import PatternScorer

runner = CliRunner()

# ---------------------------------------------------------------- the rule on simulated scores


def _panel_scores(seed, n_days=60, n_tickers=8, skill=(0.0, 0.0)):
    """Labels of two heads and two models' scores; ``skill`` is each model's signal weight."""
    rng = np.random.default_rng(seed)
    n = n_days * n_tickers
    days = np.repeat(np.arange(n_days), n_tickers).astype("datetime64[D]")
    day_effect = np.repeat(rng.normal(size=n_days), n_tickers)  # a common factor per date
    y = (rng.normal(size=(n, 2)) + 0.5 * day_effect[:, None] > 0).astype(float)
    y[rng.uniform(size=y.shape) < 0.3] = np.nan
    models = []
    for weight in skill:
        noise = rng.normal(size=(n, 2))
        models.append(1 / (1 + np.exp(-(weight * (np.nan_to_num(y) - 0.5) + noise))))
    return days, y, models[0], models[1]


def test_weighted_auc_equals_the_auc_of_the_repeated_rows():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=80) < 0.4).astype(float)
    p = np.round(rng.uniform(size=80), 1)  # ties
    counts = rng.integers(0, 4, size=(5, 80)).astype(float)
    got = weighted_auc(y, p, counts)
    for b in range(5):
        rows = np.repeat(np.arange(80), counts[b].astype(int))
        assert got[b] == pytest.approx(roc_auc_score(y[rows], p[rows]))


def test_on_noise_the_rule_keeps_the_champion_where_a_point_estimate_would_not():
    promoted = point_better = 0
    for seed in range(100):
        days, y, a, c = _panel_scores(seed)
        result = compare_models(days, y, a, c, ["h1", "h2"], n_boot=200, seed=seed)
        promoted += result.promote
        point_better += result.pooled > 0
    assert promoted <= 8  # about (1 - 0.95) / 2 of the time
    assert point_better >= 30  # "better on the pooled point estimate" alone: a coin flip


def test_a_challenger_with_skill_is_promoted_and_one_worse_head_blocks_it():
    wins = sum(
        compare_models(
            *_panel_scores(s, skill=(0.0, 2.0)), ["h1", "h2"], n_boot=200, seed=s
        ).promote
        for s in range(20)
    )
    assert wins >= 19
    days, y, a, c = _panel_scores(1, n_days=120, skill=(0.0, 3.0))
    c[:, 1] = 1.0 - c[:, 1]  # much better on h1, much worse on h2
    a[:, 1] = 1 / (1 + np.exp(-3.0 * (np.nan_to_num(y[:, 1]) - 0.5)))
    result = compare_models(days, y, a, c, ["h1", "h2"], n_boot=200)
    assert [h.worse for h in result.heads] == [False, True]
    assert not result.promote and "worse on h2" in result.reason


# ---------------------------------------------------------------- tiny LSTMs, planted signal

PATTERNS = ["planted", "coin"]
CONFIG = ModelConfig(
    lstm_units=8,
    lstm2_units=4,
    dense_units=8,
    lstm_dropout=0.0,
    lstm_recurrent_dropout=0.0,
    head_dropout=0.0,
    learning_rate=1e-2,
    batch_size=32,
    epochs=4,
)
SETTINGS = RunSettings(
    split="walk-forward",
    train_months=12,
    validation_months=6,
    test_months=6,
    step_months=6,
    train_stride=1,
    embargo_days=5,
    deterministic=True,
)
SIGNAL_FROM = np.datetime64("2011-10-01")


def _universe(signal: bool, seed: int = 0, n_tickers: int = 8, n_days: int = 880):
    """Features N(0, 1); ``planted`` follows feature 0 from SIGNAL_FROM on (10 % flipped)."""
    rng = np.random.default_rng(seed)
    days = np.busday_offset(np.datetime64("2010-01-04"), np.arange(n_days), roll="forward")
    t1 = np.full(n_days, np.datetime64("NaT"), dtype="datetime64[D]")
    t1[:-5] = days[5:]
    features, targets = [], []
    for k in range(n_tickers):
        x = rng.normal(size=(n_days, len(FEATURE_NAMES))).astype(np.float32)
        coin = rng.uniform(size=(n_days, 2)) < 0.5
        rule = x[:, 0] > 0
        rule = np.where(rng.uniform(size=n_days) < 0.1, ~rule, rule)
        planted = np.where(signal & (days >= SIGNAL_FROM), rule, coin[:, 0]).astype(float)
        labels = {"planted": planted, "coin": coin[:, 1].astype(float)}
        for values in labels.values():
            values[rng.uniform(size=n_days) < 0.3] = np.nan
            values[np.isnat(t1)] = np.nan
        ticker = f"T{k}"
        features.append(
            pl.DataFrame(
                {"ticker": ticker, "date": days} | {n: x[:, j] for j, n in enumerate(FEATURE_NAMES)}
            )
        )
        targets.append(
            pl.DataFrame({"ticker": ticker, "date": days, "t1": t1} | labels).with_columns(
                pl.col(PATTERNS).fill_nan(None).cast(pl.Int8)
            )
        )
    frames = pl.concat(features), pl.concat(targets)
    dataset = TrainDataset(
        train_set=build_sequences(*frames, stride=1, pattern_names=PATTERNS),
        score_set=build_sequences(*frames, stride=1, pattern_names=PATTERNS),
        calendar=days,
        info={"tickers": [f"T{k}" for k in range(n_tickers)]},
    )
    return dataset, days, t1


def _champion(dataset, out, tracking, name):
    """The first 12/6/6-month window's model, exported and registered as champion."""
    run = train_windows(
        dataset,
        out / "champion-run",
        settings=SETTINGS,
        config=CONFIG,
        splitter=challenger_splitter(SETTINGS, 6),
    )
    artifact = run.out / run.windows[0].artifact
    metadata = read_metadata(artifact)
    held_out = select_held_out(metadata, dataset.score_set, fingerprint="none")
    exported = export_onnx(artifact, out / "champion.onnx", held_out=held_out)
    scorer = PatternScorer.load(exported.path)
    with track_job("test-champion", None, tracking) as tracked:
        registry = Registry(tracked.where)
        tags = registry_tags(scorer.metadata, [p.to_dict() for p in exported.parity], "m.onnx")
        version = registry.register_onnx(exported.path, name=name, run_id=tracked.run_id, tags=tags)
        registry.set_alias(name, version.version, "champion", reason="test champion")
    return PatternScorer.load(f"models:/{name}@champion", tracking_uri=tracking.resolve().uri)


@pytest.mark.slow
@pytest.mark.parametrize("signal", [True, False], ids=["recent-signal", "pure-noise"])
def test_retrain_promotes_only_a_challenger_that_earned_it(signal, tmp_path):
    tracking = Tracking(data_dir=tmp_path / "data")
    name = "planted" if signal else "noise"
    dataset, days, t1 = _universe(signal)
    champion = _champion(dataset, tmp_path, tracking, name)
    end = matured_end(days, t1, days[-1].astype(date))
    recent = since(dataset, challenger_start(end, SETTINGS, 6))
    result = challenge(
        champion,
        recent,
        tmp_path / "retrain",
        settings=SETTINGS,
        config=CONFIG,
        eval_months=6,
        n_boot=500,
    )
    assert result.status == "compared"
    # the evaluation window is after the champion's embargo end, and the challenger's
    # training labels end before the window
    window_start = np.datetime64(result.eval_window[0])
    assert np.datetime64(champion.metadata["split"]["embargo_end"]) < window_start
    challenger_meta = read_metadata(result.artifact)
    assert np.datetime64(challenger_meta["split"]["embargo_end"]) < window_start
    heads = {h.pattern: h for h in result.comparison.heads}
    with track_job("test-retrain", None, tracking) as run:
        record = record_challenge(
            result,
            Registry(run.where),
            name,
            run_id=run.run_id,
            champion_uri=champion.source,  # the version it was compared with
        )
    registry = Registry(tracking)
    if signal:
        assert heads["planted"].challenger_auc > 0.75 and heads["planted"].ci_low > 0
        assert result.promote and record["promoted"]
        champion_now = registry.get(f"{name}@champion")
        assert champion_now.version == record["version"] == 2
        # the promoted version is the file that was evaluated, byte for byte
        assert champion_now.tags["sha256"] == hashlib.sha256(result.onnx.read_bytes()).hexdigest()
        assert registry.champion_history(name)[-1]["evidence"] == run.run_id
        # --refit-after-promotion: a copy through the latest label, registered, no alias moved
        refit_run, onnx, exported = refit_latest(
            dataset, tmp_path / "retrain", settings=SETTINGS, config=CONFIG
        )
        refit_end = read_metadata(refit_run.out / refit_run.windows[0].artifact)["split"]
        assert refit_end["train_end"] > challenger_meta["split"]["train_end"]
        assert np.datetime64(refit_end["test"][0]) > np.datetime64(end) - 7  # after the labels
        refit = record_refit(
            onnx, exported, registry, name, run_id=run.run_id, refit_of=champion_now.uri
        )
        assert refit["version"] == 3
        assert registry.get(f"{name}/3").tags["refit_of"] == f"models:/{name}/2"
        assert registry.get(f"{name}@champion").version == 2
    else:
        assert not result.promote and not record["promoted"]
        assert registry.get(f"{name}@champion").version == 1
    assert registry.get(f"{name}@challenger").version == 2
    assert registry.get(f"{name}/2").tags["evidence_run"] == run.run_id


# ---------------------------------------------------------------- engine retrain on the demo


def _demo_champion(exported, tracking, name):
    with track_job("test-champion", None, tracking) as run:
        registry = Registry(run.where)
        tags = registry_tags(
            PatternScorer.load(exported.path).metadata,
            [p.to_dict() for p in exported.parity],
            "model.onnx",
        )
        version = registry.register_onnx(exported.path, name=name, run_id=run.run_id, tags=tags)
        registry.set_alias(name, version.version, "champion", reason="test")


def _retrain(demo_store, *args):
    base = ["retrain", "--data-dir", str(demo_store.data_dir), "--n-boot", "200", "--json"]
    return runner.invoke(app, [*base, *args])


def test_retrain_says_why_it_does_not_retrain_and_stops_on_seen_data(
    exported, tracking, demo_store
):
    _demo_champion(exported, tracking, "demo-decide")
    model = "models:/demo-decide@champion"
    skipped = _retrain(demo_store, "--model", model, "--when", "age", "--max-age-days", "100000")
    assert skipped.exit_code == 0, skipped.output
    payload = json.loads(skipped.stdout)
    assert payload["outcome"] == "skipped" and payload["retrain"] is False
    assert any(line.startswith("age: ") for line in payload["why"])
    assert (
        payload["age_days"]
        == (
            date.fromisoformat(payload["latest_bar"])
            - date.fromisoformat(payload["champion"]["train_end"])
        ).days
    )
    # eight years of evaluation reach back into the champion's own training data
    stopped = _retrain(demo_store, "--model", model, "--when", "always", "--eval-months", "48")
    payload = json.loads(stopped.stdout)
    assert payload["outcome"] == "stopped" and "inside the evaluation window" in payload["reason"]
    assert [v.version for v in Registry(tracking).versions("demo-decide")] == [1]
    unknown = _retrain(demo_store, "--model", "models:/demo-decide@nope")
    assert unknown.exit_code == 1 and "no alias 'nope'" in unknown.output


@pytest.mark.slow
def test_engine_retrain_records_its_decision(exported, tracking, demo_store, tmp_path):
    _demo_champion(exported, tracking, "demo-retrain")
    result = _retrain(
        demo_store,
        "--model",
        "models:/demo-retrain@champion",
        "--when",
        "always",
        "--out",
        str(tmp_path / "retrain"),
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["outcome"] in ("promoted", "kept")
    challenge_ = payload["challenge"]
    assert challenge_["eval_window"][0] > payload["champion"]["embargo_end"]
    registry = Registry(tracking)
    challenger = registry.get("demo-retrain@challenger")
    assert challenger.version == 2 and challenger.tags["evidence_run"] == payload["run_id"]
    champion = registry.get("demo-retrain@champion").version
    assert champion == (2 if payload["outcome"] == "promoted" else 1)
    decision = json.loads((tmp_path / "retrain" / "decision.json").read_text())
    assert decision["reason"] == payload["reason"]
    run = MlflowClient(tracking.resolve().uri).get_run(payload["run_id"])
    assert run.data.tags["engine.decision"] == payload["outcome"]
    assert run.data.metrics["challenge.comparison.pooled.difference"] == pytest.approx(
        challenge_["comparison"]["pooled"]["difference"]
    )
    experiment = MlflowClient(tracking.resolve().uri).get_experiment(run.info.experiment_id)
    assert experiment.name == experiment_name("retrain")


def test_a_retrain_whose_evidence_run_cannot_open_trains_nothing(
    exported, tracking, demo_store, tmp_path, monkeypatch
):
    import contextlib

    import engine.jobs.retrain as retrain_job
    from engine.tracking.runs import JobRun

    @contextlib.contextmanager
    def failing_run(command, params, tracking_, **kwargs):
        run = JobRun(command)
        run.failures.append("start: the tracking server refused the run")
        yield run

    def no_training(*args, **kwargs):  # reached only if the job went on without its run
        raise AssertionError("trained although the evidence run did not open")

    _demo_champion(exported, tracking, "demo-no-run")
    monkeypatch.setattr(retrain_job, "track_job", failing_run)
    monkeypatch.setattr(retrain_job, "challenge", no_training)
    result = _retrain(demo_store, "--model", "models:/demo-no-run@champion", "--when", "always",
                      "--out", str(tmp_path / "retrain"))  # fmt: skip
    assert result.exit_code == 1
    squeezed = " ".join(result.output.split())
    assert "cannot open the MLflow run" in squeezed and "the tracking server refused" in squeezed
    assert "Traceback" not in result.output
    assert [v.version for v in Registry(tracking).versions("demo-no-run")] == [1]
