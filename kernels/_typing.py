"""Array type aliases shared by kernels, engine and export."""

from typing import TypeAlias

import numpy as np

Float64Array1D: TypeAlias = np.ndarray[tuple[int], np.dtype[np.float64]]
Float64Array2D: TypeAlias = np.ndarray[tuple[int, int], np.dtype[np.float64]]
Int64Array1D: TypeAlias = np.ndarray[tuple[int], np.dtype[np.int64]]
