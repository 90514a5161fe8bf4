"""A server subprocess whose output goes to a log file, never to an unread pipe.

A pipe holds about 64 KB; a server that writes more to an unread one blocks
in ``write`` and stops answering. The tests and the load bench start
``engine serve`` through :func:`start_logged` and show :func:`log_tail` when
it fails.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["log_tail", "start_logged", "stop", "wait_ready"]


def start_logged(
    command: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``command`` with its stdout and stderr appended to ``log``."""
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(command), stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )


def log_tail(log: Path, chars: int = 4000) -> str:
    """The last ``chars`` characters of ``log`` (what a failure message shows)."""
    try:
        text = log.read_bytes()[-chars:].decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return text or "(empty log)"


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 120.0) -> None:
    """Poll ``url/readyz`` until it answers 200; raise with the log's tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"engine serve exited ({proc.returncode}):\n{log_tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"engine serve was not ready after {timeout:.0f} s:\n{log_tail(log)}")


def stop(proc: subprocess.Popen) -> None:
    """SIGINT (uvicorn's graceful stop), then SIGKILL after 30 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
