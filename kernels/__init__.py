"""Numba kernels: contiguous float64 arrays in, arrays out. No Polars, no Keras."""
