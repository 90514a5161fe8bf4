"""Tracking on a real MLflow SQLite database: what a job logs reads back, two processes log at
once, the default setup is silent, and a tracking failure only warns."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from engine.tracking import Tracking, TrackingWarning, track_job
from engine.tracking.client import experiment_name
from engine.tracking.flatten import artifact_files, flatten
from engine.tracking.settings import DB_FILE
from tests.lifecycle.fake_job import fake_job


def _runs(uri: str, command: str):
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name(experiment_name(command))
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time"])


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    data = tmp_path_factory.mktemp("tracked") / "data"
    data.mkdir()
    report = fake_job(str(data), "AAPL,MSFT", seed=3, out=data.parent / "run",
                      tracking=Tracking(data_dir=data))  # fmt: skip
    return data, report


def test_a_tracked_job_reads_back_through_mlflow_client(logged):
    data, _ = logged
    uri = f"sqlite:///{data / DB_FILE}"  # the default: the data directory's SQLite file
    assert (data / DB_FILE).is_file()
    client, runs = _runs(uri, "train")
    run = runs[-1]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["args.tickers"] == "AAPL,MSFT" and params["args.seed"] == "3"
    assert params["settings.seed"] == "3" and params["settings.embargo_days"] == "5"
    assert params["data.fingerprint"] == "f00d"
    assert json.loads(params["data.tickers"]) == ["AAPL", "MSFT"]
    assert params["windows.wf01.test_start"] == "2013-01-04"
    metrics = run.data.metrics
    assert metrics["windows.wf00.test_auc.momentum"] == pytest.approx(0.61)
    assert metrics["windows.wf01.test_auc.coin"] == pytest.approx(0.49)
    assert "windows.wf00.test_auc.coin" not in metrics  # None is not a number
    assert metrics["metrics.momentum.auc_ci_low"] == pytest.approx(0.51)
    assert metrics["metrics.momentum.auc_ci_high"] == pytest.approx(0.63)
    assert run.data.tags["engine.command"] == "train"

    def listed(path=None):
        out = []
        for item in client.list_artifacts(run.info.run_id, path):
            out += listed(item.path) if item.is_dir else [item.path]
        return out

    files = set(listed())
    assert {"out/report.html", "out/run.json", "out/predictions.parquet",
            "out/models/wf00/metadata.json"} <= files  # fmt: skip
    assert not any(f.endswith(".keras") for f in files)  # weights go to the registry as ONNX
    assert (data / "mlartifacts").is_dir()  # artifacts beside the database, not ./mlruns
    assert not Path("mlruns").exists()


def test_a_failed_job_is_recorded_as_failed_and_raises(logged, tmp_path):
    data, _ = logged
    with pytest.raises(ValueError, match="NOPE"):
        fake_job(str(data), "NOPE", out=tmp_path / "run", fail=True,
                 tracking=Tracking(data_dir=data))  # fmt: skip
    _, runs = _runs(f"sqlite:///{data / DB_FILE}", "train")
    assert runs[-1].info.status == "FAILED"
    assert "NOPE" in runs[-1].data.tags["engine.error"]


def test_a_tracking_failure_warns_and_keeps_the_runs_files(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    out = tmp_path / "run"
    with pytest.warns(TrackingWarning, match="files are kept"):
        report = fake_job(str(tmp_path), out=out,
                          tracking=Tracking(uri=f"sqlite:///{blocker}/sub/mlflow.db"))  # fmt: skip
    assert report.out == out and (out / "report.html").is_file()


def test_no_tracking_never_imports_mlflow(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from tests.lifecycle.fake_job import fake_job
        from engine.tracking import Tracking
        fake_job("x", out=Path({str(tmp_path / "run")!r}), tracking=Tracking.off())
        fake_job("x", out=Path({str(tmp_path / "run2")!r}))
        print(sorted(m for m in sys.modules if m.split(".")[0] == "mlflow"))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"


_WRITER = """
import sys, time, pathlib
db, folder, name = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
from engine.tracking import Tracking, track_job
import mlflow  # pay the import before the start line
(folder / f"ready-{name}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
with track_job("concurrent", {"who": name}, Tracking(uri=db)) as run:
    run.log_params({f"p{i}": name for i in range(150)})
    for step in range(3):
        run.log_metrics({f"m{i}": float(i + step) for i in range(400)}, step=step)
print(run.run_id)
"""


@pytest.mark.slow
def test_two_processes_logging_at_the_same_time_both_succeed(tmp_path):
    """Both start on a new database at the same instant: tables, experiment and runs race."""
    db = f"sqlite:///{tmp_path / 'shared' / DB_FILE}"
    root = Path(__file__).parents[2]
    # a tracking failure is a TrackingWarning: make it an error, so it fails the process
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error::engine.tracking.runs.TrackingWarning", "-c", _WRITER,
             db, str(tmp_path), name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
        )
        for name in ("alpha", "beta")
    ]  # fmt: skip
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{n}").exists() for n in ("alpha", "beta")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-2000:]
    client, runs = _runs(db, "concurrent")
    assert sorted(r.data.params["args.who"] for r in runs) == ["alpha", "beta"]
    assert sorted(r.info.run_id for r in runs) == sorted(o.strip() for o, _ in outputs)
    for r in runs:
        assert r.info.status == "FINISHED"
        assert len(r.data.metrics) == 400 and len(r.data.params) == 151
        history = client.get_metric_history(r.info.run_id, "m7")
        assert [m.value for m in history] == [7.0, 8.0, 9.0]


_RECORDER = """
import json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if sys.argv[2] == "engine":
        from engine.tracking import Tracking, track_job
        from engine.tracking.registry import Registry
        tracking = Tracking(data_dir=sys.argv[1])   # the default setup
        with track_job("defaults", {"a": 1}, tracking) as run:
            run.log_metrics({"m": 1.0})
        Registry(tracking).models()
        uri = tracking.resolve().uri
    else:  # the control: MLflow opened directly, without the engine's setup
        from mlflow import MlflowClient
        uri = f"sqlite:///{sys.argv[1]}/mlflow.db"
        MlflowClient(uri).search_experiments()
bad = [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught
       if issubclass(w.category, (DeprecationWarning, FutureWarning))
       and any(s in (w.filename + str(w.message)).lower() for s in ("mlflow", "sqlalchemy"))]
print(json.dumps({"uri": uri, "bad": bad}))
"""


@pytest.mark.parametrize("setup", ["engine", "raw"])
def test_the_default_setup_gives_no_deprecation_warning(setup, logged):
    """A fresh interpreter records every warning while the default setup logs and reads.

    The raw control shows the check is live: MLflow 3.17 on SQLAlchemy 2.1 emits a
    SQLAlchemy deprecation (its ORM's ``noload``) that the engine's setup silences, and
    the file store (deprecated) is never used.
    """
    data = logged[0]
    done = subprocess.run([sys.executable, "-c", _RECORDER, str(data), setup],
                          capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[2])  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if setup == "engine":
        assert result["bad"] == []
        assert result["uri"] == f"sqlite:///{data / DB_FILE}"
    else:
        assert any("noload" in b for b in result["bad"])


def test_track_job_marks_an_interrupted_block_failed(logged):
    tracking = Tracking(data_dir=logged[0])
    with pytest.raises(RuntimeError), track_job("block", {"x": 1}, tracking) as run:
        run.log_metrics({"before": 1.0})
        raise RuntimeError("boom")
    _, runs = _runs(tracking.resolve().uri, "block")
    assert runs[-1].info.status == "FAILED" and runs[-1].data.metrics == {"before": 1.0}


def test_flatten_keys_rows_by_identity_and_walks_only_output_directories(tmp_path):
    flat = flatten({
        "by_ticker": [{"pattern": "a", "ticker": "X@Y", "auc": 0.5}],
        "parity": [{"inputs": "held-out", "max_abs_diff": 1e-7, "ok": True}],
        "out": str(tmp_path),
    })  # fmt: skip
    assert flat.metrics == {"by_ticker.a.X_Y.auc": 0.5, "parity.held-out.max_abs_diff": 1e-7}
    assert flat.params["parity.held-out.ok"] == "True"
    (tmp_path / "bars").mkdir()  # a data directory: never copied into the artifact store
    (tmp_path / "bars" / "AAPL.parquet").write_bytes(b"x")
    assert artifact_files(flat.paths) == []
