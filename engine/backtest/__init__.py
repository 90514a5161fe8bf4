"""Signals, meta-labeling, the portfolio simulation and its metrics."""
