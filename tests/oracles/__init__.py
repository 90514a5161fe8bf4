"""Independent reference implementations ("oracles"), shared by ``tests/`` and ``bench/``.

An oracle is written from a contract (the SPEC, a kernel's module docstring)
with pandas, NumPy, Polars, ``arch`` or a brute-force loop, never from the
code it checks: the oracle modules never import ``engine`` and take from
``kernels`` only the contract's status codes. One oracle per thing:

* :mod:`tests.oracles.rolling`: the rolling statistics (pandas and naive);
* :mod:`tests.oracles.features`: the 17 features (pandas; GARCH from arch),
  and :mod:`tests.oracles.features_polars`, the Polars-native baseline;
* :mod:`tests.oracles.garch`: GARCH(1,1) fits and rolling forecasts by arch;
* :mod:`tests.oracles.backtest`: the portfolio backtest (share counts and a
  ledger) and its metrics (pandas);
* :mod:`tests.oracles.bars`: bar conversions and random-walk bars.

:data:`ORACLES` (:mod:`tests.oracles.registry`) maps each name to the code
under test and its references, with one signature per name.
"""

from tests.oracles.registry import ORACLES, ROLLING_STATISTICS

__all__ = ["ORACLES", "ROLLING_STATISTICS"]
