"""``engine tune`` through the command line: clear errors before any work, and one small run.

The error cases fail before the bars are read (no training), each with a
red message that names what to fix. The end-to-end run tunes two demo
tickers on a holdout split with one trial of a tiny model, then checks the
``--json`` contract (trials, selection, DSR, PBO with the probability of
loss, the gate, the files) and ``--resume``.
"""

from __future__ import annotations

import json
import sys

import optuna
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.tuning.study import open_storage, open_study

runner = CliRunner()

TINY_SPACE = """
learning_rate = [0.003, 0.01]
lstm_units = 4
lstm_dropout = 0.0
lstm_recurrent_dropout = 0.0
head_dropout = 0.0
l2 = 0.0001
batch_size = 128
imbalance = "none"
output_bias = "prior"
dense_units = 4
"""


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["data", "demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return data_dir


def _tune(demo_dir, *args):
    return runner.invoke(app, ["tune", "--data-dir", str(demo_dir), *args])


def _space(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("lr = 0.001", "unknown key 'lr'", id="unknown key"),
        pytest.param("l2 = { low = 0.01, high = 0.001 }", "l2 has an empty range",
                     id="empty range"),
    ],
)  # fmt: skip
def test_bad_space_is_refused_before_any_work(tmp_path, demo_dir, text, message):
    result = _tune(demo_dir, "--space", _space(tmp_path, text), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert message in result.output and "space.toml" in result.output
    assert "Traceback" not in result.output


def test_trials_zero_is_refused(demo_dir):
    result = _tune(demo_dir, "--trials", "0")
    assert result.exit_code == 2
    assert "--trials" in result.output and "greater than or equal to 1" in result.output


def test_unwritable_storage_path_is_named(tmp_path, demo_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "study.journal"
    result = _tune(demo_dir, "--storage", str(target), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "not writable" in result.output and str(target) in result.output.replace("\n", "")


def test_ray_backend_without_ray_says_how_to_install(tmp_path, demo_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = _tune(demo_dir, "--backend", "ray", "--workers", "2", "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "needs Ray" in result.output and "[distributed]" in result.output


def test_ray_address_without_ray_backend_is_refused_before_any_work(tmp_path, demo_dir):
    out = tmp_path / "o"
    result = _tune(demo_dir, "--ray-address", "auto", "--out", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--ray-address auto needs --backend ray (got --backend local)" in result.output
    assert not out.exists()  # no data prepared, no study created under that name


def test_study_name_clash_and_resume_of_nothing_are_refused(tmp_path, demo_dir):
    out = tmp_path / "o"
    storage, where = open_storage(None, out)
    open_study(storage, where, "taken", resume=False, seed=0, settings={})
    clash = _tune(demo_dir, "--study", "taken", "--out", str(out))
    assert clash.exit_code == 1 and "already exists" in clash.output and "--resume" in clash.output
    missing = _tune(demo_dir, "--study", "other", "--resume", "--out", str(out))
    assert missing.exit_code == 1 and "no study named 'other'" in missing.output
    nowhere = _tune(demo_dir, "--resume")
    assert nowhere.exit_code == 1 and "earlier run's --out" in nowhere.output


def test_an_rdb_url_is_a_storage_too(tmp_path, demo_dir):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage, where = open_storage(url, tmp_path / "unused")
    assert isinstance(storage, optuna.storages.RDBStorage) and where == url
    open_study(storage, where, "shared", resume=False, seed=0, settings={"a": 1})
    clash = _tune(demo_dir, "--storage", url, "--study", "shared", "--out", str(tmp_path / "o"))
    assert clash.exit_code == 1 and "already exists in sqlite:///" in clash.output
    # a resumed study that measured something else is refused, naming the difference
    with pytest.raises(ValueError, match="a: study has 1, this run 2"):
        open_study(storage, where, "shared", resume=True, seed=0, settings={"a": 2})


def test_storage_urls_are_shown_without_their_password():
    from engine.tuning.study import _mask

    assert _mask("postgresql://tuner:s3cret@db.example:5432/optuna") == (
        "postgresql://tuner:***@db.example:5432/optuna"
    )
    assert _mask("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db"


@pytest.fixture(scope="module")
def cli_run(demo_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("tune")
    space = work / "space.toml"
    space.write_text(TINY_SPACE)
    out = work / "run"
    args = ["--tickers", "AAPL,MSFT", "--split", "holdout", "--start", "2014-01-01",
            "--trials", "1", "--epochs", "2", "--space", str(space), "--out", str(out),
            "--threshold", "0.5", "--json"]  # fmt: skip
    result = _tune(demo_dir, *args)
    assert result.exit_code == 0, result.output
    return out, args, json.loads(result.stdout)


@pytest.mark.slow
def test_json_holds_the_trials_selection_statistics_gate_and_paths(cli_run):
    out, _, report = cli_run
    assert [t["state"] for t in report["trials"]] == ["complete"]
    selected = report["selected"]
    assert selected["trial"] == 0 and selected["params"]["learning_rate"] in (0.003, 0.01)
    assert selected["config"]["lstm_units"] == 4 and selected["config"]["epochs"] == 2
    assert set(selected["dsr"]) >= {"value", "sharpe", "expected_max", "n_trials", "sr_variance"}
    assert selected["dsr"]["n_trials"] == 1
    # one completed trial: no ranking, so no PBO, and the report says why
    assert selected["pbo"] is None and any("PBO" in n for n in selected["notes"])
    assert isinstance(report["gate"]["promoted"], bool) and report["gate"]["reasons"]
    assert report["test"]["windows"] == ["holdout00"]
    for key in ("report", "trials", "test_predictions"):
        assert (out / report["files"][key].split("/")[-1]).exists()
    assert json.loads((out / "tune.json").read_text())["gate"] == report["gate"]
    # the storage is reported as everywhere else (an RDB URL would have its password masked)
    assert report["settings"]["storage"] == report["storage"] == str(out / "study.journal")


@pytest.mark.slow
def test_resume_adds_trials_to_the_same_study(cli_run, demo_dir):
    out, args, _ = cli_run
    again = _tune(demo_dir, *[a if a != "1" else "2" for a in args], "--resume")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["resumed"] and len(report["trials"]) == 2
    assert report["selected"]["pbo"] is not None  # two trials: CSCV ranks them
    assert "prob_oos_loss" in report["selected"]["pbo"]
    study = optuna.load_study(study_name="engine-tune", storage=open_storage(None, out)[0])
    assert len(study.trials) == 2
    # resuming with another search space is refused: the study measured something else
    changed = _tune(demo_dir, *[a for a in args if a != "--json"], "--epochs", "3", "--resume")
    assert changed.exit_code == 1 and "measured something else" in changed.output
