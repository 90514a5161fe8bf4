"""The training options ``engine train`` and ``engine tune`` share, each declared once.

The choices (how the calendar is split, where fits run, the hidden layers'
dtype) and the sample dates are the same in both commands; the help of
``--split``, ``--backend`` and ``--workers`` says what each command does
with them, so those are made by functions that take the text (as in
:mod:`engine.cli.options`), and each command keeps the result as a
module-level alias.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from engine.cli.options import end_option, start_option

__all__ = [
    "BackendChoice",
    "PrecisionChoice",
    "SampleEndOption",
    "SampleStartOption",
    "SplitChoice",
    "backend_option",
    "split_option",
    "workers_option",
]


class SplitChoice(StrEnum):
    """``--split``: how the calendar is split into train, validation and test dates."""

    holdout = "holdout"
    walk_forward = "walk-forward"


class BackendChoice(StrEnum):
    """``--backend``: where the fits run (:mod:`engine.parallel`)."""

    local = "local"
    ray = "ray"


class PrecisionChoice(StrEnum):
    """``--precision``: compute dtype of the LSTM's hidden layers."""

    float32 = "float32"
    mixed = "mixed"


SampleStartOption = start_option("First sample date (earlier bars still warm up the features).")
SampleEndOption = end_option("Last sample date.")


def split_option(help: str) -> Any:
    """``--split``: holdout or walk-forward (``help`` says what the command splits).

    Examples
    --------
    >>> [choice.value for choice in SplitChoice]
    ['holdout', 'walk-forward']
    """
    return Annotated[SplitChoice, typer.Option("--split", help=help)]


def backend_option(help: str) -> Any:
    """``--backend``: local worker processes or Ray (``help`` says what runs there)."""
    return Annotated[BackendChoice, typer.Option("--backend", help=help)]


def workers_option(help: str) -> Any:
    """``--workers``: at least one; ``help`` says what runs at the same time."""
    return Annotated[int, typer.Option("--workers", min=1, help=help)]
