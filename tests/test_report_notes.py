"""Pipeline: identical filtered books noted as one result, smoke runs named, --resume."""

from __future__ import annotations

import json
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest

from engine.jobs.pipeline import FULL, QUICK, _check_out, _finished_run
from engine.model.run_files import RUN_FILE, RUN_PREDICTIONS_FILE
from engine.model.runs import RunSettings
from engine.reports.pipeline import identical_books


def _backtest(returns: np.ndarray, weights: np.ndarray, head: str = "momentum_persistence"):
    dates = np.arange("2020-01-01", "2020-01-11", dtype="datetime64[D]")
    return SimpleNamespace(
        dates=dates,
        filtered=SimpleNamespace(returns=returns, weights=weights),
        settings=SimpleNamespace(pattern_head=head, threshold=0.55),
    )


def test_identical_filtered_books_are_noted_once_and_different_ones_not() -> None:
    rng = np.random.default_rng(0)
    r, w = rng.normal(0, 0.01, 10), rng.uniform(0, 1, (10, 3))
    books = {
        "momentum": _backtest(r, w),
        "mean_reversion": _backtest(rng.normal(0, 0.01, 10), w),
        "ma_cross": _backtest(r.copy(), w.copy()),
    }
    notes = identical_books(books)
    assert len(notes) == 1
    assert notes[0].startswith("momentum and ma_cross, filtered by momentum_persistence at 0.55")
    assert "not 2" in notes[0]
    # the same returns from different weights are different books
    books["ma_cross"] = _backtest(r.copy(), w[::-1].copy())
    assert identical_books(books) == []


def test_only_the_quick_settings_are_a_smoke_run() -> None:
    assert QUICK.smoke and not FULL.smoke


# ------------------------------------------------------------------ pipeline --resume


def _write_run(run, *, status="complete", settings=None, config=None, fingerprint="abc"):
    run.mkdir(parents=True, exist_ok=True)
    (run / RUN_PREDICTIONS_FILE).write_bytes(b"")
    window = {"model_id": "wf00", "test_start": "2016-02-01", "test_end": "2017-02-01",
              "best_epoch": 2, "test_auc": {"a": 0.5}, "artifact": "models/wf00"}  # fmt: skip
    (run / RUN_FILE).write_text(json.dumps({
        "status": status, "settings": settings or asdict(RunSettings()),
        "config": config or {"epochs": 2}, "data": {"fingerprint": fingerprint},
        "windows": [window], "parameters": {"trainable": 10}, "skipped_windows": [],
    }))  # fmt: skip


def test_resume_reuses_only_a_complete_run_with_the_same_inputs(tmp_path) -> None:
    config = SimpleNamespace(to_dict=lambda: {"epochs": 2})
    data = {"fingerprint": "abc", "short_history": {}}
    run = tmp_path / "run"
    assert _finished_run(run, RunSettings(), config, data) is None  # nothing there
    _write_run(run)
    reused = _finished_run(run, RunSettings(), config, data)
    assert reused is not None and reused["resumed"]
    assert reused["latest_model"] == str(run / "models" / "wf00")
    assert [w["model_id"] for w in reused["windows"]] == ["wf00"]
    assert _finished_run(run, RunSettings(seed=1), config, data) is None
    assert _finished_run(run, RunSettings(), SimpleNamespace(to_dict=lambda: {"epochs": 3}),
                         data) is None  # fmt: skip
    assert _finished_run(run, RunSettings(), config, {"fingerprint": "other"}) is None
    _write_run(run, status="interrupted")
    assert _finished_run(run, RunSettings(), config, data) is None


def test_resume_needs_an_earlier_pipeline_in_out(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="--resume"):
        _check_out(tmp_path, overwrite=False, resume=True)
    (tmp_path / "features.parquet").write_bytes(b"")
    _check_out(tmp_path, overwrite=False, resume=True)  # a non-empty --out is fine
    with pytest.raises(FileExistsError, match="--overwrite"):
        _check_out(tmp_path, overwrite=False)
