"""What every command shares at the process level: quiet TensorFlow, SIGTERM, ``--version``.

`main_options` is the ``engine`` app's callback. Unless ``--verbose`` is
given it keeps TensorFlow's start-up lines (oneDNN, CUDA drivers, the absl
pre-init warning, a ``cuInit`` error on machines without a GPU) off stderr,
in this one place: TensorFlow is imported lazily by the commands that need
it, so the callback sets ``TF_CPP_MIN_LOG_LEVEL`` and installs an import hook
that runs TensorFlow's own import with file descriptor 2 captured (and
replayed if the import fails). Long jobs see SIGTERM as Ctrl-C, so a killed
``engine train`` or ``engine pipeline`` records ``interrupted`` in its
``run.json`` just as Ctrl-C does.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType, ModuleType
from typing import Annotated

import typer

import engine

__all__ = [
    "captured_stderr",
    "install_sigterm_as_interrupt",
    "main_options",
    "quiet_tensorflow",
]

#: Commands that handle SIGTERM themselves (uvicorn's graceful shutdown).
OWN_SIGTERM = ("serve",)


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what C and Python code write to file descriptor 2 inside the block.

    The captured text is appended to the yielded list when the block ends;
    if the block raises, the text is written back to stderr first, so an
    error is never hidden.

    Examples
    --------
    >>> with captured_stderr() as lines:
    ...     _ = os.write(2, b"noise")
    >>> lines
    ['noise']
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield lines
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            lines.extend(text.splitlines())
            if failed and text:
                sys.stderr.write(text)


class _QuietLoader(importlib.abc.Loader):
    """Run a module's real loader with stderr captured; lower absl's verbosity after."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with captured_stderr():
            self._loader.exec_module(module)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing warnings
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:  # pragma: no cover - absl ships with TensorFlow
            pass


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Find ``tensorflow`` as usual, but load it through `_QuietLoader` (once)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up and C++ log lines off stderr (errors of the import stay).

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (C++ errors such as a failed ``cuInit``
    on a CPU machine) and, if TensorFlow is not imported yet, hooks its
    import so the lines it prints before its logging starts are captured.
    """
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install_sigterm_as_interrupt() -> None:
    """Make SIGTERM raise `KeyboardInterrupt` in the main thread, as Ctrl-C (SIGINT) does.

    Examples
    --------
    >>> previous = signal.getsignal(signal.SIGTERM)
    >>> install_sigterm_as_interrupt()
    >>> try:
    ...     signal.raise_signal(signal.SIGTERM)
    ... except KeyboardInterrupt as stop:
    ...     print(stop)
    signal SIGTERM
    >>> _ = signal.signal(signal.SIGTERM, previous)
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"engine {engine.__version__}")
        raise typer.Exit()


def main_options(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Show TensorFlow's and absl's start-up and log lines (hidden by default).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print the engine's version and exit.",
        ),
    ] = False,
) -> None:
    """Causal pattern features, leakage-free validation and ONNX serving for daily OHLCV bars."""
    if not verbose:
        quiet_tensorflow()
    if ctx.invoked_subcommand not in OWN_SIGTERM:
        install_sigterm_as_interrupt()
