"""``train_windows(resume=True)``: an interrupted run continues to the run it would have been.

A run interrupted (Ctrl-C) after its first window is resumed; the result
must equal an uninterrupted run with the same seed (deterministic
TensorFlow ops): the same predictions file and the same window metadata,
while the first window's artifact is kept as it was, not trained again.
A resume with other settings, another model configuration or on a complete
run is refused with a message naming what differs, and writes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.model.artifacts import read_metadata
from engine.model.network import ModelConfig
from engine.model.run_resume import ResumeRefused
from engine.model.runs import RunSettings, train_windows
from tests.test_train_job import SPLITTER, _dataset, _panel

SETTINGS = RunSettings(embargo_days=5, horizon=5, seed=3, deterministic=True)
CONFIG = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, epochs=1)


def _files(directory):
    """name -> (SHA-256, mtime in ns) of every file under ``directory``."""
    return {
        p.relative_to(directory).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _stop_at_second_window():
    seen = []

    def progress(event):
        if event["kind"] == "window":
            seen.append(event["model_id"])
            if len(seen) == 2:
                raise KeyboardInterrupt

    return progress


def _without_timing(metadata):
    """Artifact metadata less what differs between two identical fits (time, file hashes)."""
    metadata = json.loads(json.dumps(metadata))
    metadata.pop("files")
    metadata["training"].pop("seconds")
    return metadata


@pytest.fixture(scope="module")
def dataset():
    return _dataset(*_panel(n_tickers=4))


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    full = train_windows(dataset, root / "full", settings=SETTINGS, config=CONFIG,
                         splitter=SPLITTER)  # fmt: skip
    out = root / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train_windows(dataset, out, settings=SETTINGS, config=CONFIG, splitter=SPLITTER,
                      progress=_stop_at_second_window())  # fmt: skip
    interrupted = json.loads((out / "run.json").read_text())
    first = out / interrupted["windows"][0]["artifact"]
    before = _files(first)
    refusals = {}
    changed = {
        "settings.seed": {"settings": dataclasses.replace(SETTINGS, seed=4)},
        "config.lstm_units": {"config": dataclasses.replace(CONFIG, lstm_units=16)},
    }
    run_file = (out / "run.json").read_bytes()
    for name, change in changed.items():
        kwargs = {"settings": SETTINGS, "config": CONFIG, "splitter": SPLITTER} | change
        with pytest.raises(ResumeRefused) as refused:
            train_windows(dataset, out, resume=True, **kwargs)
        refusals[name] = (str(refused.value), (out / "run.json").read_bytes() == run_file)
    events = []
    resumed = train_windows(dataset, out, settings=SETTINGS, config=CONFIG, splitter=SPLITTER,
                            resume=True, progress=events.append)  # fmt: skip
    return {
        "full": full,
        "out": out,
        "interrupted": interrupted,
        "first": first,
        "before": before,
        "refusals": refusals,
        "resumed": resumed,
        "events": events,
    }


def test_interrupted_after_the_first_window(runs):
    interrupted = runs["interrupted"]
    assert interrupted["status"] == "interrupted"
    assert [w["model_id"] for w in interrupted["windows"]] == ["wf00"]
    assert interrupted["planned_windows"] >= 2


def test_resumed_run_equals_an_uninterrupted_one(runs):
    full, resumed, out = runs["full"], runs["resumed"], runs["out"]
    assert resumed.status == "complete"
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert (out / "predictions.parquet").read_bytes() == full.predictions.read_bytes()
    assert_frame_equal(
        pl.read_parquet(out / "predictions.parquet"), pl.read_parquet(full.predictions)
    )
    ours = [dataclasses.replace(w, seconds=0) for w in resumed.windows]
    theirs = [dataclasses.replace(w, seconds=0) for w in full.windows]
    assert ours == theirs
    for w in full.windows:
        assert _without_timing(read_metadata(out / w.artifact)) == _without_timing(
            read_metadata(full.out / w.artifact)
        )


def test_the_first_window_is_not_trained_again(runs):
    assert _files(runs["first"]) == runs["before"]
    trained = [e["model_id"] for e in runs["events"] if e["kind"] == "window"]
    assert trained == [w.model_id for w in runs["full"].windows[1:]]


def test_resume_with_other_inputs_is_refused(runs):
    for name, (message, unchanged) in runs["refusals"].items():
        assert name in message and "--resume" in message
        assert unchanged, f"a refused resume ({name}) rewrote run.json"


def test_resume_of_a_complete_run_is_refused(runs, dataset):
    with pytest.raises(ResumeRefused, match="'complete'"):
        train_windows(dataset, runs["full"].out, settings=SETTINGS, config=CONFIG,
                      splitter=SPLITTER, resume=True)  # fmt: skip


def test_resume_without_a_run_is_refused(dataset, tmp_path):
    with pytest.raises(ResumeRefused, match="no training run"):
        train_windows(dataset, tmp_path / "none", settings=SETTINGS, config=CONFIG,
                      splitter=SPLITTER, resume=True)  # fmt: skip
