"""A registry that cannot be reached or answers with errors: one red line, no traceback,
the password masked, and no minutes of retries."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from engine.cli.app import app

runner = CliRunner()


@pytest.fixture
def no_retries(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Unavailable(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def unavailable_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _one_clear_line(result, uri_shown: str) -> None:
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"cannot reach the registry at {uri_shown}" in result.output
    assert len(result.output.strip().splitlines()) <= 3


def test_an_unreachable_registry_is_one_line_with_the_password_masked(no_retries, tmp_path):
    port = _closed_port()
    uri = f"http://ann:s3cret@127.0.0.1:{port}"
    for args in (["models", "list"], ["models", "show", "pattern-lstm@champion"]):
        result = runner.invoke(app, [*args, "--tracking-uri", uri, "--data-dir", str(tmp_path)])
        _one_clear_line(result, f"http://ann:***@127.0.0.1:{port}")
        assert "s3cret" not in result.output


def test_a_server_answering_errors_is_one_line(no_retries, unavailable_server, tmp_path):
    result = runner.invoke(
        app, ["models", "list", "--tracking-uri", unavailable_server, "--data-dir", str(tmp_path)]
    )
    _one_clear_line(result, unavailable_server)
