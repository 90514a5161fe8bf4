"""``engine train --resume``: a run stopped by Ctrl-C is finished from the command line.

A tiny two-window walk-forward run is interrupted as its second window
starts (the real progress printer, wrapped to raise ``KeyboardInterrupt``
there, as Ctrl-C would). Without ``--resume`` the run directory is refused
and left as it was; with other settings the resume is refused naming the
setting; with ``--resume`` (in two worker processes) only the second window
is trained, and the first window's files and prediction rows are kept byte
for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import engine.cli.train as cli_train
from engine.cli.app import app

runner = CliRunner()


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


def _interrupt_at_second_window(monkeypatch):
    """Wrap the CLI's progress printer so that the second window's start raises Ctrl-C."""
    printer = cli_train.train_progress

    def stopping(console):
        show, started = printer(console), []

        def progress(event):
            show(event)
            if event["kind"] == "window":
                started.append(event["model_id"])
                if len(started) == 2:
                    raise KeyboardInterrupt

        return progress

    monkeypatch.setattr(cli_train, "train_progress", stopping)


@pytest.fixture(scope="module")
def args(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    demo = runner.invoke(app, ["data", "demo", "--data-dir", str(data_dir)])
    assert demo.exit_code == 0, demo.output
    out = tmp_path_factory.mktemp("runs") / "wf"
    return ["train", "--tickers", "AAPL,MSFT", "--start", "2012-01-01", "--end", "2018-12-31",
            "--epochs", "1", "--min-train-sequences", "0", "--no-track",
            "--data-dir", str(data_dir), "--out", str(out)]  # fmt: skip


@pytest.fixture(scope="module")
def runs(args):
    out = Path(args[-1])
    with pytest.MonkeyPatch.context() as monkeypatch:
        _interrupt_at_second_window(monkeypatch)
        stopped = runner.invoke(app, args)
    interrupted = json.loads((out / "run.json").read_text())
    first = out / interrupted["windows"][0]["artifact"]
    before = {
        "run": (out / "run.json").read_bytes(),
        "first": _files(first),
        "predictions": pl.read_parquet(out / "predictions.parquet"),
    }
    plain = runner.invoke(app, args)
    other_seed = runner.invoke(app, [*args, "--seed", "1", "--resume"])
    after_refusals = (out / "run.json").read_bytes()
    # in two worker processes: parallelism is no run setting, and --workers reaches the job
    resumed = runner.invoke(app, [*args, "--resume", "--workers", "2", "--json"])
    return {
        "out": out,
        "stopped": stopped,
        "interrupted": interrupted,
        "first": first,
        "before": before,
        "plain": plain,
        "other_seed": other_seed,
        "after_refusals": after_refusals,
        "resumed": resumed,
    }


def test_ctrl_c_leaves_an_interrupted_run_and_says_how_to_continue(runs):
    stopped, interrupted = runs["stopped"], runs["interrupted"]
    assert stopped.exit_code == 130, stopped.output
    assert interrupted["status"] == "interrupted" and interrupted["planned_windows"] == 2
    assert [w["model_id"] for w in interrupted["windows"]] == ["wf00"]
    squeezed = "".join(stopped.output.split())  # the path may be folded at 80 columns
    assert "--resume--out" + "".join(str(runs["out"]).split()) in squeezed


def test_without_resume_the_run_is_refused_and_left_alone(runs):
    plain = runs["plain"]
    assert plain.exit_code == 1
    assert "already exists" in plain.output and "--overwrite" in plain.output
    squeezed = "".join(plain.output.split())  # the path may be folded at 80 columns
    assert "interruptedrun:`enginetrain--resume--out" in squeezed  # the way on, named
    assert "Traceback" not in plain.output


def test_resume_with_another_seed_is_refused_naming_it(runs):
    refused = runs["other_seed"]
    assert refused.exit_code == 1
    message = " ".join(refused.output.split())
    assert "--resume" in message and "settings.seed" in message
    assert runs["after_refusals"] == runs["before"]["run"]


def test_resume_trains_only_the_unfinished_window(runs):
    resumed, out = runs["resumed"], runs["out"]
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "complete"
    assert [w["model_id"] for w in summary["windows"]] == ["wf00", "wf01"]
    # progress goes to stderr: a window line for wf01 only
    assert "wf01 (2/2)" in resumed.stderr and "wf00 (1/2)" not in resumed.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and len(run["resumed"]) == 1
    assert run["execution"]["backend"] == "local" and run["execution"]["workers"] == 2


def test_the_finished_window_is_kept_byte_for_byte(runs):
    out = runs["out"]
    assert _files(runs["first"]) == runs["before"]["first"]
    predictions = pl.read_parquet(out / "predictions.parquet")
    kept = runs["before"]["predictions"]
    assert_frame_equal(predictions.filter(pl.col("model_id") == "wf00"), kept)
    windows = {w["model_id"]: w["n_test"] for w in runs["interrupted"]["windows"]}
    run = json.loads((out / "run.json").read_text())
    windows |= {w["model_id"]: w["n_test"] for w in run["windows"]}
    counts = dict(predictions.group_by("model_id").len().iter_rows())
    assert counts == windows


def test_resume_needs_out_and_excludes_overwrite(args):
    assert args[-2] == "--out"
    no_out = runner.invoke(app, [*args[:-2], "--resume"])
    both = runner.invoke(app, [*args, "--resume", "--overwrite"])
    assert no_out.exit_code == 1 and "--resume needs --out" in no_out.output
    assert both.exit_code == 1 and "--overwrite" in both.output and "--resume" in both.output
