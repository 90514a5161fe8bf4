"""The server harness never blocks a chatty child: its output goes to a file, not a pipe."""

from __future__ import annotations

import sys

from tests.serving.server_process import log_tail, start_logged

CHATTY = (
    "import sys\n"
    "for i in range(4096):\n"
    "    print('x' * 100, file=sys.stderr if i % 2 else sys.stdout, flush=True)\n"
    "print('last line', file=sys.stderr, flush=True)\n"
)


def test_a_child_writing_far_more_than_a_pipe_holds_runs_to_the_end(tmp_path):
    log = tmp_path / "child.log"
    proc = start_logged([sys.executable, "-c", CHATTY], log)
    assert proc.wait(timeout=60) == 0  # with an unread 64 KB pipe it would block at ~64 KB
    assert log.stat().st_size > 400_000
    assert log_tail(log, 100).rstrip().endswith("last line")
