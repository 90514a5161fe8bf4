"""What a :class:`export.scorer.PatternScorer` checks before onnxruntime runs.

:func:`check_signature` holds an ONNX session's inputs and outputs to what
the model's metadata promises; :func:`check_sequences` holds every batch of
feature windows to the model's shape, dtype and finiteness. Each failure is
a :class:`ScoringError` whose message says what to fix, instead of an
onnxruntime stack trace.

Examples
--------
>>> import numpy as np
>>> names = ("a", "b")
>>> check_sequences(np.zeros((3, 4, 2), dtype=np.float32), 4, names).shape
(3, 4, 2)
>>> try:
...     check_sequences(np.zeros((4, 2), dtype=np.float32), 4, names)
... except ScoringError as exc:
...     print(str(exc).split("; ")[1])
for one sequence pass sequences[np.newaxis]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from export.onnx_metadata import INPUT_NAME, OUTPUT_NAME

__all__ = ["ScoringError", "check_sequences", "check_signature"]


class ScoringError(ValueError):
    """Input the scorer cannot score, or a model file it cannot serve."""


def check_signature(
    session: Any,
    source: str,
    length: int,
    feature_names: Sequence[str],
    pattern_names: Sequence[str],
) -> None:
    """Refuse a session whose input or output differs from the model's metadata.

    ``session`` is an ``onnxruntime.InferenceSession``; ``source`` names the
    file in the message.
    """
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    where = f"{source}: "
    if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
        raise ScoringError(
            f"{where}expected one input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, got "
            f"inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]}"
        )
    shape = list(inputs[0].shape)
    expected = [length, len(feature_names)]
    if len(shape) != 3 or shape[1:] != expected or inputs[0].type != "tensor(float)":
        raise ScoringError(
            f"{where}input {INPUT_NAME!r} is {inputs[0].type} {shape}; the metadata "
            f"promises tensor(float) [batch, {expected[0]}, {expected[1]}]"
        )
    out_shape = next(o.shape for o in outputs if o.name == OUTPUT_NAME)
    if out_shape[-1] != len(pattern_names):
        raise ScoringError(
            f"{where}output {OUTPUT_NAME!r} has {out_shape[-1]} columns but the metadata "
            f"names {len(pattern_names)} patterns"
        )


def check_sequences(sequences: Any, length: int, feature_names: Sequence[str]) -> np.ndarray:
    """``sequences`` as a contiguous float32 array ``(batch, length, features)``, or a clear error.

    Refused, each with the fix named: a non-array, another dtype, another
    rank (one window gets the ``[np.newaxis]`` hint) or shape, NaN or
    infinity (the first is located: sequence, row, feature).
    """
    width = len(feature_names)
    if not isinstance(sequences, np.ndarray):
        raise ScoringError(
            f"sequences must be a numpy array of shape (batch, {length}, {width}), "
            f"got {type(sequences).__name__}"
        )
    if sequences.dtype != np.float32:
        raise ScoringError(
            f"sequences must be float32, got {sequences.dtype}; "
            "convert with sequences.astype(np.float32)"
        )
    if sequences.ndim != 3:
        hint = (
            "; for one sequence pass sequences[np.newaxis]"
            if sequences.shape == (length, width)
            else ""
        )
        raise ScoringError(
            f"sequences must have rank 3, shape (batch, {length}, {width}), got rank "
            f"{sequences.ndim} with shape {sequences.shape}{hint}"
        )
    if sequences.shape[1:] != (length, width):
        raise ScoringError(
            f"sequences must have shape (batch, {length}, {width}) "
            f"({length} rows of the {width} features), got {sequences.shape}"
        )
    finite = np.isfinite(sequences)
    if not finite.all():
        bad = np.argwhere(~finite)
        i, j, k = (int(v) for v in bad[0])
        raise ScoringError(
            f"sequences hold {bad.shape[0]} NaN or infinite value(s); the first is "
            f"sequence {i}, row {j}, feature {feature_names[k]!r} "
            f"({sequences[i, j, k]}); the model takes complete windows only"
        )
    return np.ascontiguousarray(sequences)
