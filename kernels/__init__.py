"""Numba kernels: contiguous float64 arrays in, arrays out. No Polars, no Keras.

Every kernel is compiled with ``cache=True`` and ``error_model="numpy"``: a
float division by zero gives inf/NaN as in NumPy instead of raising
``ZeroDivisionError`` (and skips the per-division check). Kernels that can
meet such values turn them into NaN explicitly.
"""
