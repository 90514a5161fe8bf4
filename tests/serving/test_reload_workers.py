"""A reload reaches every worker: the one that swaps stamps it, the others follow.

Two :class:`ModelSlot` objects over one data directory stand for two
uvicorn workers (``tests/serving/test_uvicorn.py`` checks the real ones).
"""

from __future__ import annotations

import json
import os

import pytest

from engine.serving import ServeSettings
from engine.serving.model import RELOAD_STAMP, ModelSlot
from tests.test_scorer import toy_model


@pytest.fixture
def workers(toy, model_file, tmp_path):
    served = tmp_path / "served.onnx"
    served.write_bytes(model_file.read_bytes())
    settings = ServeSettings(model=str(served), data_dir=str(tmp_path / "data"), threads=1)
    stamp = tmp_path / "data" / RELOAD_STAMP
    swaps = {"a": [], "b": []}
    a = ModelSlot(settings, stamp=stamp, on_swap=swaps["a"].append)
    b = ModelSlot(settings, stamp=stamp, on_swap=swaps["b"].append)
    changed = toy_model(toy[1]["mean"], toy[1]["sd"], seed=1)[0]
    return a, b, swaps, served, stamp, changed, settings


def test_the_other_worker_follows_a_reload_once(workers):
    a, b, swaps, served, stamp, changed, _ = workers
    first = b.current()
    assert b.current() is first and not stamp.exists()  # no stamp: nothing to follow
    served.write_bytes(changed)
    old, new = a.reload()
    assert new is not old and a.current() is new
    assert json.loads(stamp.read_text()) == {"reference": str(served), "version": new.version,
                                             "pid": os.getpid(), "at": new.loaded_at}  # fmt: skip
    followed = b.current()
    assert followed is not first and followed.version == new.version
    assert b.current() is followed  # one load per new stamp, not per request
    assert [m.version for m in swaps["a"]] == [new.version]
    assert [m.version for m in swaps["b"]] == [new.version]


def test_a_stamp_older_than_the_worker_is_not_followed(workers):
    a, _, swaps, served, stamp, changed, settings = workers
    served.write_bytes(changed)
    a.reload()
    late = ModelSlot(settings, stamp=stamp, on_swap=swaps["b"].append)
    assert late.current().version == a.current().version and swaps["b"] == []
