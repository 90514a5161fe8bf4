"""The process-level behaviour every command shares: --version, quiet TensorFlow, SIGTERM."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from engine.cli.app import app


def test_version_is_the_installed_distributions() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.split() == ["engine", importlib.metadata.version("pattern-engine")]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_tensorflow_start_up_lines_are_hidden_but_not_its_results() -> None:
    quiet = _run(
        """
        from engine.cli.runtime import quiet_tensorflow
        quiet_tensorflow()
        import tensorflow as tf
        print(int((tf.constant(40) + 2).numpy()))
        """
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "42"
    assert quiet.stderr.strip() == ""


def test_a_failing_import_under_capture_still_shows_its_message() -> None:
    result = _run(
        """
        import os
        from engine.cli.runtime import captured_stderr
        with captured_stderr():
            os.write(2, b"the reason it failed\\n")
            raise SystemExit(3)
        """
    )
    assert result.returncode == 3
    assert "the reason it failed" in result.stderr


def test_sigterm_reaches_the_job_as_an_interrupt(tmp_path) -> None:
    marker = tmp_path / "status"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import pathlib, sys, time
            from engine.cli.runtime import install_sigterm_as_interrupt
            install_sigterm_as_interrupt()
            try:
                print("ready", flush=True)
                time.sleep(60)
                status = "complete"
            except KeyboardInterrupt:
                status = "interrupted"
            pathlib.Path({str(marker)!r}).write_text(status)
            """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert marker.read_text() == "interrupted"
