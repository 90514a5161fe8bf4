"""Pattern engine: causal features, targets and leakage-free validation for OHLCV panels."""

__version__ = "0.1.0"
