"""The 17 causal features: Polars frames in, Numba kernels, a manifest out."""
