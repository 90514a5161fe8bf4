"""Shared test configuration.

The independent reference implementations (pandas, NumPy, brute force, arch)
that tests and ``bench/`` compare the engine against live in
:mod:`tests.oracles`; ``tests.oracles.registry.ORACLES`` maps each name to them.
"""

import os

# The CLI tracks every run to MLflow by default (a SQLite file in the data directory).
# Tests that are not about tracking skip that work; tests/lifecycle/ passes its tracking
# settings explicitly.
os.environ.setdefault("ENGINE_NO_TRACK", "1")
