"""Shared test configuration.

The independent reference implementations (pandas, NumPy, brute force, arch)
that tests and ``bench/`` compare the engine against live in
:mod:`tests.oracles`; ``tests.oracles.registry.ORACLES`` maps each name to them.
"""
