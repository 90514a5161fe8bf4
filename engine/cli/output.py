"""What every command prints through: consoles, JSON, error messages and table cells.

Expected errors (bad bars, existing data, bad paths, bad settings) are printed
in red on stderr without a traceback and exit with code 1; every other
exception keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from engine.data.bars import BarsValidationError
from engine.parallel import WorkerFailure

__all__ = [
    "EXPECTED_ERRORS",
    "add_columns",
    "call_or_exit",
    "error_console",
    "format_or_dash",
    "print_json",
    "stdout_console",
    "wide_console",
]

_T = TypeVar("_T")

#: Errors a user can fix; they are printed as one red line instead of a traceback.
EXPECTED_ERRORS = (
    BarsValidationError,
    ValueError,
    FileExistsError,
    FileNotFoundError,
    PermissionError,
    WorkerFailure,
)

#: Width of tables when stdout is not a terminal (a file, a log), instead of 80 columns.
PIPED_WIDTH = 160


def call_or_exit(func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Call an engine function; expected errors become a red message and exit code 1.

    The first line of the error message is printed in bold red after
    ``error:``; further lines follow unstyled.

    Parameters
    ----------
    func
        The engine function (a job, a settings class) to call.
    *args, **kwargs
        Passed to ``func``.

    Returns
    -------
    object
        What ``func`` returns.

    Raises
    ------
    typer.Exit
        With code 1 when ``func`` raises one of `EXPECTED_ERRORS`.

    Examples
    --------
    >>> call_or_exit(int, "12")
    12
    >>> try:  # prints "error: invalid literal for int() ..." in red on stderr
    ...     call_or_exit(int, "twelve")
    ... except typer.Exit as stop:
    ...     stop.exit_code
    1
    """
    try:
        return func(*args, **kwargs)
    except EXPECTED_ERRORS as exc:
        err = Console(stderr=True, soft_wrap=True, highlight=False)
        first, _, rest = str(exc).partition("\n")
        err.print(f"error: {first}", style="bold red", markup=False)
        if rest:
            err.print(rest, markup=False)
        raise typer.Exit(code=1) from None


def print_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON with sorted keys; dates and paths become strings.

    Examples
    --------
    >>> import datetime
    >>> print_json({"end": datetime.date(2020, 1, 31), "rows": 3})
    {
      "end": "2020-01-31",
      "rows": 3
    }
    """
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def stdout_console() -> Console:
    """Return a console on stdout that does not colour numbers and paths by itself."""
    return Console(highlight=False)


def wide_console() -> Console:
    """Return a stdout console; `PIPED_WIDTH` columns wide when piped, unless COLUMNS is set.

    Tables are laid out for 80 columns, so ``COLUMNS=80 engine ... | less``
    shows what a terminal shows.
    """
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def error_console() -> Console:
    """Return a console on stderr, for progress lines and interruptions."""
    return Console(stderr=True, highlight=False)


def format_or_dash(value: float | None, spec: str) -> str:
    """Format a table cell with ``spec``; a missing value (None) becomes ``-``.

    Examples
    --------
    >>> format_or_dash(0.61234, ".3f"), format_or_dash(None, ".3f"), format_or_dash(0.25, ".1%")
    ('0.612', '-', '25.0%')
    """
    return "-" if value is None else format(value, spec)


def add_columns(table: Table, columns: Iterable[tuple[str, str]], **options: Any) -> None:
    """Add ``(name, justify)`` columns to ``table``, each with the same extra ``options``.

    Examples
    --------
    >>> table = Table()
    >>> add_columns(table, [("pattern", "left"), ("events", "right")], no_wrap=True)
    >>> [(c.header, c.justify, c.no_wrap) for c in table.columns]
    [('pattern', 'left', True), ('events', 'right', True)]
    """
    for name, justify in columns:
        table.add_column(name, justify=justify, **options)
