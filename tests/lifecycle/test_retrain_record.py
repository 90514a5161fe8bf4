"""Recording a retrain's outcome: ``champion`` moves only from the version the challenger met.

No training here: the challenger is the fixture's exported file and its
comparison a real paired bootstrap on simulated scores where it has skill,
so each test is a few registry calls on the SQLite registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.monitoring.challenger import compare_models
from engine.monitoring.retrain import Challenge, record_challenge
from engine.tracking import track_job
from engine.tracking.registry import Registry
from export.registration import registry_tags
from export.scorer import PatternScorer


def _winning_comparison():
    """A comparison where the challenger's scores follow the labels and the champion's do not."""
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(80), 6).astype("datetime64[D]")
    y = (rng.uniform(size=(days.size, 2)) < 0.5).astype(float)
    champion = rng.uniform(size=y.shape)
    challenger = 1 / (1 + np.exp(-(3.0 * (y - 0.5) + rng.normal(size=y.shape))))
    return compare_models(days, y, champion, challenger, ["h1", "h2"], n_boot=200, seed=0)


@pytest.fixture(scope="module")
def won(exported):
    comparison = _winning_comparison()
    assert comparison.promote  # the premise: this challenger earned a promotion
    return Challenge(
        status="compared",
        reason=comparison.reason,
        comparison=comparison,
        onnx=exported.path,
        export={"parity": [p.to_dict() for p in exported.parity]},
    )


def _versions(exported, tracking, name: str, count: int) -> None:
    tags = registry_tags(
        PatternScorer.load(exported.path).metadata,
        [p.to_dict() for p in exported.parity],
        "model.onnx",
    )
    with track_job("test-champion", None, tracking) as run:
        registry = Registry(run.where)
        for _ in range(count):
            registry.register_onnx(exported.path, name=name, run_id=run.run_id, tags=tags)


def _record(won, tracking, name: str, evaluated: int) -> dict:
    with track_job("test-retrain", None, tracking) as run:
        return record_challenge(
            won,
            Registry(run.where),
            name,
            run_id=run.run_id,
            champion_uri=f"models:/{name}/{evaluated}",
        )


def test_a_winner_replaces_the_champion_it_was_compared_with(won, exported, tracking):
    name = "record-same"
    _versions(exported, tracking, name, 2)
    registry = Registry(tracking)
    registry.set_alias(name, 2, "champion")
    record = _record(won, tracking, name, evaluated=2)
    assert record["promoted"] and "not_promoted" not in record
    assert registry.get(f"{name}@champion").version == record["version"] == 3
    assert registry.champion_history(name)[-1]["previous"] == 2


def test_a_winner_over_an_older_version_does_not_replace_a_newer_champion(won, exported, tracking):
    """`engine retrain --model models:/NAME/1` while champion is v2 (or a promote mid-retrain)."""
    name = "record-moved"
    _versions(exported, tracking, name, 2)
    registry = Registry(tracking)
    registry.set_alias(name, 2, "champion")
    record = _record(won, tracking, name, evaluated=1)
    assert record["promoted"] is False
    assert "beat v1" in record["not_promoted"] and "champion is v2" in record["not_promoted"]
    assert registry.get(f"{name}@champion").version == 2
    assert registry.get(f"{name}@challenger").version == record["version"] == 3
    assert [h["version"] for h in registry.champion_history(name)] == [2]


def test_an_alias_is_not_accepted_as_the_evaluated_version(won, tracking):
    with pytest.raises(ValueError, match="must name the evaluated version"):
        record_challenge(
            won, Registry(tracking), "x", run_id="r", champion_uri="models:/x@champion"
        )


def test_a_file_changed_since_its_evaluation_is_not_registered(won, exported, tracking, tmp_path):
    import dataclasses
    import hashlib

    copy = tmp_path / "challenger.onnx"
    copy.write_bytes(exported.path.read_bytes())
    evaluated = hashlib.sha256(copy.read_bytes()).hexdigest()
    challenge = dataclasses.replace(won, onnx=copy, onnx_sha256=evaluated)
    name = "retrain-changed-file"
    _versions(exported, tracking, name, 1)
    copy.write_bytes(copy.read_bytes() + b"\0")  # another file now stands at that path
    with pytest.raises(ValueError, match="not the file that was evaluated"):
        _record(challenge, tracking, name, 1)
    with track_job("test-check", None, tracking) as run:  # nothing was registered
        assert [v.version for v in Registry(run.where).versions(name)] == [1]
