"""The ``engine`` command line: parse, call one job, print."""

from engine.cli.app import app, main

__all__ = ["app", "main"]
