"""The registry: what export-onnx registers, loading by models:/ URI with the checksum checked,
aliases, promotion, rollback, and the errors a user can meet."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from engine.cli.app import app
from engine.features.build import FEATURE_NAMES
from engine.tracking import Tracking, track_job
from engine.tracking.registry import ONNX_FILE, Registry, RegistryError
from export.scorer import PatternScorer, ScoringError

runner = CliRunner()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _register(tracking, path: Path, name: str, tags: dict[str, str]) -> int:
    """Register ``path`` as a new version of ``name`` under a run of its own."""
    with track_job("registry-test", None, tracking) as run:
        return (
            Registry(run.where).register_onnx(path, name=name, run_id=run.run_id, tags=tags).version
        )


def test_export_registers_the_file_with_its_metadata_as_champion(exported, tracking):
    registered = exported.registered
    assert registered["name"] == "pattern-lstm" and registered["version"] == 1
    assert registered["champion"] == 1  # the first version becomes champion (champion_if_none)
    version = Registry(tracking).get("models:/pattern-lstm@champion")
    assert version.version == 1 and "champion" in version.aliases
    assert version.tags["sha256"] == _sha(exported.path) == registered["sha256"]
    assert json.loads(version.tags["feature_names"]) == list(FEATURE_NAMES)
    scorer = PatternScorer.load(exported.path)
    assert json.loads(version.tags["pattern_names"]) == list(scorer.pattern_names)
    window = json.loads(version.tags["train_window"])
    assert window["embargo_end"] == scorer.metadata["split"]["embargo_end"]
    assert version.tags["data_fingerprint"] == scorer.metadata["data_fingerprint"]
    assert version.tags["parity_ok"] == "true"
    assert [p["inputs"] for p in json.loads(version.tags["parity"])] == ["held-out", "random"]
    # the export's MLflow run holds the report's figures
    run = MlflowClient(tracking.resolve().uri).get_run(version.run_id)
    assert run.data.metrics["parity.held-out.max_abs_diff"] == pytest.approx(
        exported.parity[0].max_abs_diff
    )


def test_a_registered_model_loads_by_alias_and_version_and_scores_like_the_file(exported, tracking):
    uri = tracking.resolve().uri
    direct = PatternScorer.load(exported.path)
    X = np.random.default_rng(1).normal(size=(64, 20, 17)).astype(np.float32)
    for ref in ("models:/pattern-lstm@champion", "models:/pattern-lstm/1"):
        scorer = PatternScorer.load(ref, tracking_uri=uri)
        assert scorer.source == "models:/pattern-lstm/1"
        assert scorer.registered["version"] == 1
        np.testing.assert_array_equal(scorer.score(X), direct.score(X))


def test_a_changed_registry_file_is_refused(exported, tracking):
    _register(tracking, exported.path, "tamper-test", {"parity_ok": "true"})
    registry = Registry(tracking)
    version = registry.get("tamper-test/1")
    stored = Path(registry._artifact_location(version).removeprefix("file://")) / ONNX_FILE
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ScoringError, match="SHA-256 .* refusing it"):
        PatternScorer.load("models:/tamper-test/1", tracking_uri=tracking.resolve().uri)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("models:/nope@champion", "no registered model 'nope'.*registered: .*pattern-lstm"),
        ("models:/pattern-lstm@staging", "no alias 'staging' .*champion -> v1"),
        ("models:/pattern-lstm/99", "no version 99 .*versions: 1"),
        ("models:/pattern-lstm/latest", "bad model reference"),
    ],
)
def test_unknown_names_aliases_and_versions_are_clear_errors(exported, tracking, ref, message):
    with pytest.raises(ScoringError, match=message):
        PatternScorer.load(ref, tracking_uri=tracking.resolve().uri)


def test_promote_and_rollback_walk_the_champion_history(exported, tracking):
    name = "history-test"
    for _ in range(3):
        _register(tracking, exported.path, name, {"parity_ok": "true"})
    failed = _register(tracking, exported.path, name, {"parity_ok": "false"})
    registry = Registry(tracking)
    for version in (1, 2, 3):
        registry.set_alias(name, version, "champion", reason=f"step {version}")
    assert registry.get(f"{name}@champion").version == 3
    with pytest.raises(RegistryError, match="parity check is 'false'"):
        registry.set_alias(name, failed, "champion")
    registry.set_alias(name, "latest", "challenger")  # any parity for the challenger
    assert registry.get(f"{name}@challenger").version == failed
    assert registry.rollback(name)["version"] == 2
    assert registry.rollback(name)["version"] == 1  # a stack: back through the history
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(name)
    history = registry.champion_history(name)
    assert [h["version"] for h in history] == [1, 2, 3, 2, 1]
    assert [h.get("rollback_of") for h in history[-2:]] == [3, 2]


def test_rollback_walks_back_like_a_stack_when_a_version_was_champion_twice(exported, tracking):
    name = "stack-test"
    for _ in range(3):
        _register(tracking, exported.path, name, {"parity_ok": "true"})
    registry = Registry(tracking)
    for version in (1, 2, 3, 2):
        registry.set_alias(name, version, "champion")
    walked = [registry.rollback(name)["version"] for _ in range(3)]
    assert walked == [3, 2, 1]  # the champion before each promotion, newest first
    assert registry.get(f"{name}@champion").version == 1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(name)
    history = registry.champion_history(name)
    assert [h["version"] for h in history] == [1, 2, 3, 2, 3, 2, 1]
    assert [h.get("rollback_of") for h in history[4:]] == [2, 3, 2]


def test_models_cli_lists_shows_promotes_and_rolls_back(exported, tracking, demo_store):
    name = "cli-test"
    for _ in range(2):
        _register(tracking, exported.path, name, {"parity_ok": "true"})
    base = ["--data-dir", str(demo_store.data_dir)]
    listed = runner.invoke(app, ["models", "list", *base, "--json"])
    assert listed.exit_code == 0, listed.output
    models = {m["name"]: m for m in json.loads(listed.stdout)["models"]}
    assert models[name]["versions"] == 2 and models["pattern-lstm"]["aliases"]["champion"] == 1
    promoted = runner.invoke(app, ["models", "promote", name, "--version", "latest", *base])
    assert promoted.exit_code == 0 and "cli-test@champion -> v2 (was none)" in promoted.stdout
    shown = runner.invoke(app, ["models", "show", f"{name}@champion", *base, "--json"])
    version = json.loads(shown.stdout)["versions"][0]
    assert version["version"] == 2 and version["tags"]["sha256"] == _sha(exported.path)
    human = runner.invoke(app, ["models", "show", name, *base])
    assert "models:/cli-test/2 [champion]" in human.stdout and "sha256:" in human.stdout
    back = runner.invoke(app, ["models", "rollback", name, *base])
    assert back.exit_code == 1 and "nothing to roll back to" in back.output
    unknown = runner.invoke(app, ["models", "show", "nope/1", *base])
    assert unknown.exit_code == 1 and "no registered model 'nope'" in unknown.output


def test_predict_takes_a_registry_uri(exported, demo_store):
    """The registry of --data-dir (no --tracking-uri): its mlflow.db."""
    args = ["predict", "--model", "models:/pattern-lstm@champion", "--tickers", "AAPL",
            "--data-dir", str(demo_store.data_dir), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model_id"] == PatternScorer.load(exported.path).model_id
    assert [row["ticker"] for row in payload["scores"]] == ["AAPL"]
    missing = runner.invoke(app, [*args[:2], "models:/pattern-lstm@nope", *args[3:]])
    assert missing.exit_code == 1 and "no alias 'nope'" in missing.output


def test_the_command_line_tracks_and_no_track_turns_it_off(artifact_dir, tracking, monkeypatch):
    """engine validate logs its metrics to MLflow; --no-track logs nothing."""
    monkeypatch.delenv("ENGINE_NO_TRACK", raising=False)
    uri = tracking.resolve().uri
    args = ["validate", "--model", str(artifact_dir), "--n-boot", "50", "--json"]
    result = runner.invoke(app, [*args, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("pattern-engine/validate")
    run = client.search_runs([experiment.experiment_id])[0]
    auc = {r["pattern"]: r["auc"] for r in json.loads(result.stdout)["metrics"]}
    for pattern, value in auc.items():
        assert run.data.metrics[f"metrics.{pattern}.auc"] == pytest.approx(value)
    assert run.data.params["args.n_boot"] == "50"
    untracked = runner.invoke(app, [*args, "--tracking-uri", uri, "--no-track"])
    assert untracked.exit_code == 0
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_the_artifact_repository_is_opened_at_the_registry_uri(exported, tracking, monkeypatch):
    """`mlflow-artifacts:/` locations resolve against --tracking-uri, not the process's URI."""
    from mlflow.store.artifact import artifact_repository_registry as repositories

    real = repositories.get_artifact_repository
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    uri = tracking.resolve().uri
    monkeypatch.setattr(repositories, "get_artifact_repository", recording)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # elsewhere, unused
    data, version = Registry(Tracking(uri=uri)).fetch_onnx("pattern-lstm/1")
    assert data == exported.path.read_bytes() and version.version == 1
    assert calls and all(
        c.get("tracking_uri") == uri and c.get("registry_uri") == uri for c in calls
    )
