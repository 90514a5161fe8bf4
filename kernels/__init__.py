"""Numba kernels: contiguous float64 arrays in, arrays out. No Polars, no Keras.

Every kernel is compiled with ``cache=True`` and ``error_model="numpy"``: a
float division by zero gives inf/NaN as in NumPy instead of raising
``ZeroDivisionError`` (and skips the per-division check). Kernels that can
meet such values turn them into NaN explicitly.

Every kernel ``f = njit(...)(f_py)`` keeps its source as ``f_py``, a pure-Python
twin that tests compare with ``f``. A twin calls only other twins (and plain
Python and NumPy), never a compiled kernel: the twins that kernels call are
marked with numba's ``register_jitable``, which leaves them plain Python
functions and lets Numba compile them into any kernel that calls them. So
``f_py`` runs wholly in the interpreter, and ``f`` wholly compiled, from one
source.
"""
