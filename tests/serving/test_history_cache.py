"""The in-memory store snapshot: keyed on the store's stamp and the price basis, not the version.

After a reload, requests still in flight on the old model and new ones on
the new model must share one snapshot when both read prices the same way;
keying on the version made them rebuild the store in turn.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine.serving.history import StoredHistory
from engine.serving.model import LoadedModel
from export.scorer import PatternScorer
from tests.serving.conftest import next_bars


def _loaded(scorer: PatternScorer, version: str) -> LoadedModel:
    return LoadedModel(scorer, "toy.onnx", version, None, "2026-01-01T00:00:00+00:00")


@pytest.fixture
def counted(store, monkeypatch) -> tuple[StoredHistory, list[int]]:
    history = StoredHistory(store)
    builds = []
    real = history._build
    monkeypatch.setattr(history, "_build", lambda model: builds.append(1) or real(model))
    return history, builds


def test_models_with_one_price_basis_share_one_snapshot(counted, model_file):
    history, builds = counted
    old = _loaded(PatternScorer.load(model_file, intra_op_threads=1), "aaaaaaaaaaaa")
    new = _loaded(PatternScorer.load(model_file, intra_op_threads=1), "bbbbbbbbbbbb")
    assert old.scorer.prices == new.scorer.prices and old.version != new.version
    first = history.snapshot(old)
    assert history.snapshot(new) is first
    assert history.snapshot(old) is first
    assert len(builds) == 1


def test_a_store_write_rebuilds_the_snapshot_once(counted, model_file, store):
    history, builds = counted
    model = _loaded(PatternScorer.load(model_file, intra_op_threads=1), "aaaaaaaaaaaa")
    first = history.snapshot(model)
    rows = pl.DataFrame(next_bars(store, ["AAPL"], days=1))
    history.append(rows.with_columns(pl.col("date").str.to_date()))
    second = history.snapshot(model)
    assert second is not first and history.snapshot(model) is second
    assert second.source.length("AAPL") == first.source.length("AAPL") + 1
    assert len(builds) == 2
