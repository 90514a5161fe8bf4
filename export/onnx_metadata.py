"""What an exported ONNX file says about itself: the metadata contract.

An ONNX model exported by :mod:`export.onnx_export` carries, in its
``metadata_props``, everything a server needs to feed it correctly and an
auditor needs to trace it back to its training run. Each value is stored
JSON-encoded under a plain key:

================  =============================================================
key               value
================  =============================================================
format            ``"pattern-engine-onnx/1"``
model_id          the artifact's model id (``holdout00``, ``wf03``, ...)
feature_names     the 17 input features, in input order
pattern_names     the sigmoid heads, in output order
sequence_length   rows per input window (20)
horizon           label horizon in trading days
data_fingerprint  SHA-256 of the bars the model was trained on
vix_variant       how ``vix_term_structure`` was computed in training; serving
                  must compute it the same way
prices            the price basis of training: ``mode`` (``"adjusted"``: OHLC
                  times ``adj_close / close``, or ``"raw"``) and the tickers
                  adjusted or left raw (:mod:`engine.data.prices`); the
                  scorer applies it; absent (``null``, read as raw) in files
                  exported before price bases
market            market benchmark ticker
sector_map        ticker -> sector benchmark used in training
tickers           the training tickers (``synthetic_tickers``: those generated)
split             train/validation/test dates, ``train_end`` and ``embargo_end``
config            the model's ``ModelConfig``
settings          the training run's ``RunSettings`` (splits, horizon, embargo);
                  a retrain trains its challenger with these
model_kind        ``"lstm"``; other model kinds register under their own name
reference         reference distributions for drift monitoring: decile edges
                  and shares of every feature (training fold) and every head
                  (validation-fold confidence), and the validation AUC
                  (:mod:`engine.monitoring.reference`); absent (``null``)
                  in files exported before drift monitoring
artifact_files    SHA-256 of the artifact's files (``model.keras``, ...)
opset             the ONNX opset
quantization      ``"none"`` or ``"int8-dynamic"``
parity            the export's parity figures against the Keras model
auc_change        int8 only: held-out AUC per pattern, fp32 and int8
versions          ``{"training": {...}, "export": {...}}`` package versions
================  =============================================================

This module needs neither TensorFlow nor the ``onnx`` package.

Examples
--------
>>> props = encode_metadata({"format": ONNX_FORMAT, "sequence_length": 20})
>>> props["sequence_length"]
'20'
>>> decode_metadata(props, required=("sequence_length",))["sequence_length"]
20
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BATCH_DIM",
    "INPUT_NAME",
    "ONNX_FORMAT",
    "OUTPUT_NAME",
    "REQUIRED_KEYS",
    "MetadataError",
    "decode_metadata",
    "encode_metadata",
]

ONNX_FORMAT = "pattern-engine-onnx/1"
INPUT_NAME = "sequences"
OUTPUT_NAME = "pattern_confidence"
#: Name of the dynamic first axis of the input and the output.
BATCH_DIM = "batch"
#: Keys a server cannot do without.
REQUIRED_KEYS: tuple[str, ...] = (
    "model_id",
    "feature_names",
    "pattern_names",
    "sequence_length",
    "horizon",
    "data_fingerprint",
    "vix_variant",
    "market",
    "sector_map",
    "versions",
)


class MetadataError(ValueError):
    """An ONNX file lacks the pattern-engine metadata or holds a malformed value."""


def encode_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """JSON-encode every value (sorted keys, so the same values give the same bytes)."""
    return {key: json.dumps(value, sort_keys=True, default=str) for key, value in values.items()}


def decode_metadata(
    props: Mapping[str, str], *, required: Iterable[str] = REQUIRED_KEYS, source: str = ""
) -> dict[str, Any]:
    """Decode ``metadata_props`` written by :func:`encode_metadata`.

    Parameters
    ----------
    props : mapping of str to str
        For example ``onnxruntime.InferenceSession(...).get_modelmeta().custom_metadata_map``.
    required : iterable of str
        Keys that must be present.
    source : str
        Named in error messages (a file path).

    Returns
    -------
    dict
        Decoded values; keys that are not valid JSON (added by other tools,
        such as ``onnx.infer``) are kept as plain strings.

    Raises
    ------
    MetadataError
        ``format`` missing or not :data:`ONNX_FORMAT` (not a pattern-engine
        export), a required key missing, or a required value not valid JSON.
    """
    where = f"{source}: " if source else ""
    fmt = props.get("format")
    if fmt is None:
        raise MetadataError(
            f"{where}not a pattern-engine ONNX model (no 'format' in its metadata); "
            "export one with `engine export-onnx`"
        )
    out: dict[str, Any] = {}
    for key, text in props.items():
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            if key in (*required, "format"):
                raise MetadataError(
                    f"{where}metadata {key!r} is not valid JSON: {text!r}"
                ) from None
            out[key] = text
    if out["format"] != ONNX_FORMAT:
        raise MetadataError(f"{where}metadata format {out['format']!r} is not {ONNX_FORMAT!r}")
    missing = [key for key in required if key not in out]
    if missing:
        raise MetadataError(f"{where}the model's metadata lacks {', '.join(missing)}")
    return out
