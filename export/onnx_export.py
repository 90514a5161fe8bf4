"""Export a trained model artifact to ONNX and prove the file equals the Keras model.

:func:`export_onnx` (the ``engine export-onnx`` command):

1. loads and verifies the artifact (checksums, feature order);
2. builds the *inference twin* (``build_model(..., inference=True)``: same
   layers and weights, no dropout) and copies the weights by layer name.
   The training model's recurrent dropout makes tf2onnx emit a generic ONNX
   ``Loop`` for the first LSTM; the twin converts to native ``LSTM`` nodes
   only, which onnxruntime runs far faster. The graph is checked: no
   ``Loop``/``Scan``/``If``, one native LSTM per Keras LSTM;
3. converts with tf2onnx (input ``sequences`` (batch, 20, 17) float32,
   output ``pattern_confidence`` (batch, n_patterns), dynamic batch axis);
4. attaches the metadata of :mod:`export.onnx_metadata`;
5. runs the parity check through :class:`export.scorer.PatternScorer` (the
   serving path itself) against the *training* Keras model, and refuses to
   write anything when the max abs difference exceeds the tolerance;
6. optionally quantizes to int8 (onnxruntime dynamic quantization) and
   reports that model's own parity, AUC change and file sizes;
7. writes each file atomically;
8. with ``tracking``, logs the export to MLflow and registers the fp32 file
   as a new version of ``pattern-lstm`` (:mod:`export.registration`).

Parity inputs
-------------
``held-out``: the artifact's test period rebuilt at stride 1 from the bars
the model was trained on (its data directory, or ``bars`` passed in), with
the model's own ``vix_variant``, market and sector map. These are the rows
the training run scored and stored in ``test_predictions.parquet``, and two
checks make sure the rebuilt windows are those inputs and not merely
similar: the bars' fingerprint is compared with the artifact's, and the
Keras model's confidences on the rebuilt rows must equal the stored test
predictions (written at training time) within the fp32 tolerance. Without
stored predictions the fingerprint must match.

``random``: windows drawn from N(mean, variance) of each feature (the
model's own normalization statistics, seed 0), which covers input
combinations the test period may not.

Importing this module does not import TensorFlow; the functions that need
it import it when called.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx
import polars as pl

from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import package_versions
from engine.io import atomic_write_bytes
from engine.model.artifacts import (
    ModelArtifact,
    load_model_artifact,
    read_metadata,
)
from engine.tracking import Tracking
from export.held_out import (
    N_RANDOM,
    ExportError,
    HeldOut,
    check_against_stored,
    held_out_sequences,
    random_sequences,
    training_bars,
)
from export.onnx_metadata import (
    BATCH_DIM,
    INPUT_NAME,
    ONNX_FORMAT,
    OUTPUT_NAME,
    encode_metadata,
)
from export.registration import register_export
from export.scorer import PatternScorer

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "DEFAULT_OPSET",
    "FP32_TOLERANCE",
    "INT8_AUC_TOLERANCE",
    "INT8_TOLERANCE",
    "ExportError",
    "ExportReport",
    "HeldOut",
    "Parity",
    "QuantizedReport",
    "check_native_lstm",
    "export_onnx",
    "held_out_sequences",
    "inference_twin",
    "keras_to_onnx",
    "op_counts",
    "quantize_int8",
    "random_sequences",
]

DEFAULT_OPSET = 17
#: tf2onnx 1.17 converts to opsets 13..18 with native LSTM.
OPSET_RANGE = (13, 18)
#: Max abs difference of a confidence allowed between the fp32 ONNX model and Keras.
FP32_TOLERANCE = 1e-5
#: Windows per onnxruntime call in the parity checks (bounds the export's peak memory).
SCORE_CHUNK = 2048
#: Max abs difference allowed between the int8 model and Keras: a guard against a broken
#: quantization, not a precision promise. Dynamic quantization rounds each weight tensor
#: to 255 levels and each activation tensor to 256 levels spanning that call's range, so
#: one window with extreme features coarsens every row of its batch. Measured on held-out
#: windows scored in one batch: max 0.003 / 0.032 / 0.054 and p99 0.003 / 0.016 / 0.010
#: for models trained 1 epoch on 2 tickers / 10 on 8 / 25 on 34 (about 0.010 max when
#: scored one window at a time). A broken graph is off by 0.1 or more.
INT8_TOLERANCE = 0.1
#: Largest change of a pattern's held-out AUC allowed for the int8 model (measured: 0.003
#: or less on the three models above). This is the gate that matters for decisions.
INT8_AUC_TOLERANCE = 0.01
FORBIDDEN_OPS = ("Loop", "Scan", "If")
LSTM_OPS = ("LSTM", "DynamicQuantizeLSTM")
_EXPORT_PACKAGES = (
    "pattern-engine",
    "tensorflow",
    "keras",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "numpy",
)
_CPU_ONLY = ["CPUExecutionProvider"]
_SPLIT_KEYS = ("kind", "train", "validation", "test", "train_end", "embargo_days", "embargo_end")


@dataclass(frozen=True)
class Parity:
    """ONNX vs Keras confidences on one input set."""

    inputs: str
    n: int
    max_abs_diff: float
    p99_abs_diff: float
    mean_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        """Max abs difference within tolerance."""
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {**asdict(self), "ok": self.ok}


@dataclass
class QuantizedReport:
    """The int8 model: file, sizes, parity and AUC change."""

    path: Path
    bytes: int
    fp32_bytes: int
    parity: list[Parity]
    auc: dict[str, dict[str, float | None]]
    op_counts: dict[str, int]

    @property
    def max_auc_change(self) -> float | None:
        """Largest ``|AUC(int8) - AUC(fp32)|`` over the patterns with both classes."""
        changes = [abs(v["change"]) for v in self.auc.values() if v["change"] is not None]
        return max(changes) if changes else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "fp32_bytes": self.fp32_bytes,
            "size_ratio": round(self.bytes / self.fp32_bytes, 4),
            "parity": [p.to_dict() for p in self.parity],
            "auc": self.auc,
            "max_auc_change": self.max_auc_change,
            "op_counts": self.op_counts,
        }


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    model_id: str
    path: Path
    bytes: int
    opset: int
    op_counts: dict[str, int]
    parity: list[Parity]
    held_out: dict[str, Any]
    quantized: QuantizedReport | None
    seconds: float
    registered: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "model_id": self.model_id,
            "path": str(self.path),
            "bytes": self.bytes,
            "opset": self.opset,
            "op_counts": self.op_counts,
            "parity": [p.to_dict() for p in self.parity],
            "held_out": self.held_out,
            "quantized": self.quantized.to_dict() if self.quantized else None,
            "seconds": round(self.seconds, 3),
            "registered": self.registered,
        }


# ---------------------------------------------------------------- conversion


def inference_twin(artifact: ModelArtifact) -> keras.Model:
    """The artifact's model rebuilt without dropout, with its weights copied by layer name.

    Raises
    ------
    ExportError
        A weighted layer of the training model has no twin (a changed architecture).
    """
    from engine.model.network import ModelConfig, build_model

    metadata = artifact.metadata
    norm = metadata["normalization"]
    twin = build_model(
        ModelConfig.from_dict(metadata["config"]),
        n_features=len(metadata["feature_names"]),
        n_patterns=len(metadata["pattern_names"]),
        mean=np.asarray(norm["mean"]),
        variance=np.asarray(norm["variance"]),
        sequence_length=int(metadata["sequence_length"]),
        inference=True,
    )
    twin_names = {layer.name for layer in twin.layers}
    orphans = [
        layer.name
        for layer in artifact.model.layers
        if layer.get_weights() and layer.name not in twin_names
    ]
    if orphans:
        raise ExportError(f"layers {orphans} of the trained model have no inference twin")
    for layer in twin.layers:
        layer.set_weights(artifact.model.get_layer(layer.name).get_weights())
    return twin


@contextmanager
def _quiet_logs(*names: str) -> Iterator[None]:
    """Raise the named loggers (``""`` is the root) to ERROR for the duration."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def keras_to_onnx(model: keras.Model, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Convert a Keras model with tf2onnx: input ``sequences``, dynamic ``batch`` axis.

    Raises
    ------
    ExportError
        The converted graph's input or output is not named as the serving contract says.
    """
    import tensorflow as tf
    import tf2onnx

    low, high = OPSET_RANGE
    if not low <= opset <= high:
        raise ValueError(f"`opset` must be in [{low}, {high}] (tf2onnx 1.17), got `opset={opset}`")
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_NAME),)
    with _quiet_logs("tf2onnx"):
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise ExportError(
            f"tf2onnx produced inputs {inputs} and outputs {outputs}, "
            f"expected [{INPUT_NAME!r}] and [{OUTPUT_NAME!r}]"
        )
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    return proto


def op_counts(proto: onnx.ModelProto) -> dict[str, int]:
    """Node count per op type in the main graph, sorted by op type."""
    return dict(sorted(Counter(node.op_type for node in proto.graph.node).items()))


def check_native_lstm(proto: onnx.ModelProto, n_lstm: int) -> dict[str, int]:
    """Require ``n_lstm`` native LSTM nodes and no control flow; return :func:`op_counts`.

    Raises
    ------
    ExportError
        A ``Loop``/``Scan``/``If`` node (an LSTM tf2onnx could not map to the
        native op), or a different number of native LSTM nodes.
    """
    counts = op_counts(proto)
    loops = {op: counts[op] for op in FORBIDDEN_OPS if op in counts}
    native = sum(counts.get(op, 0) for op in LSTM_OPS)
    if loops or native != n_lstm:
        raise ExportError(
            f"the ONNX graph holds {native} native LSTM node(s) for {n_lstm} Keras LSTM "
            f"layer(s) and control flow {loops or 'none'}; export the inference twin "
            "(no recurrent dropout) so every LSTM maps to the native op"
        )
    return counts


def quantize_int8(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Quantize dynamically with onnxruntime: int8 weights, activations quantized per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="engine-quantize-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, source)
        # quantize_dynamic logs a pre-processing hint on the root logger; symbolic shape
        # pre-processing is not needed for this fixed-shape graph.
        with _quiet_logs(""):
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return onnx.load(target)


def _set_metadata(proto: onnx.ModelProto, values: Mapping[str, Any]) -> bytes:
    """Serialized ``proto`` with ``values`` in its metadata (other tools' keys are kept)."""
    props = {p.key: p.value for p in proto.metadata_props}
    props.update(encode_metadata(values))
    onnx.helper.set_model_props(proto, props)
    return proto.SerializeToString()


# ---------------------------------------------------------------- verification


def _parity(name: str, got: np.ndarray, want: np.ndarray, tolerance: float) -> Parity:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    p99 = float(np.percentile(diff, 99))
    return Parity(name, int(got.shape[0]), float(diff.max()), p99, float(diff.mean()), tolerance)


def _score_in_chunks(scorer: PatternScorer, X: np.ndarray) -> np.ndarray:
    """Score ``X`` in `SCORE_CHUNK`-window calls: onnxruntime's memory grows with the batch.

    Measured on the demo's int8 model: one call on 20,000 windows peaked at
    1,019 MB of RSS, 2,048-window calls at 294 MB; chunks keep the peak flat
    whatever the length of the held-out period. The int8 activations' scale
    is computed per call, so int8 scores are those of `SCORE_CHUNK`-window
    batches.
    """
    if X.shape[0] <= SCORE_CHUNK:
        return scorer.score(X)
    return np.concatenate(
        [scorer.score(X[i : i + SCORE_CHUNK]) for i in range(0, X.shape[0], SCORE_CHUNK)]
    )


def _verified(
    proto: onnx.ModelProto,
    values: dict[str, Any],
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    tolerance: float,
    what: str,
    extra: Callable[[dict[str, np.ndarray]], dict[str, Any]] | None = None,
) -> tuple[bytes, list[Parity], dict[str, np.ndarray]]:
    """Attach metadata, score every set through PatternScorer, refuse above tolerance.

    ``extra(outputs)`` may add metadata computed from the scores (or raise).
    The parity figures go into the final file's metadata; that file is
    loaded again and must score the first set identically.
    """
    scorer = PatternScorer.load(_set_metadata(proto, values), providers=_CPU_ONLY)
    outputs = {name: _score_in_chunks(scorer, X) for name, (X, _) in sets.items()}
    parity = [_parity(name, outputs[name], want, tolerance) for name, (_, want) in sets.items()]
    failed = [p for p in parity if not p.ok]
    if failed:
        figures = "; ".join(
            f"{p.inputs}: max abs diff {p.max_abs_diff:.3g} > {p.tolerance:g} (n={p.n})"
            for p in failed
        )
        raise ExportError(f"{what} parity check failed, nothing written: {figures}")
    more = extra(outputs) if extra is not None else {}
    final = _set_metadata(proto, {**values, "parity": [p.to_dict() for p in parity], **more})
    first = next(iter(sets))
    again = _score_in_chunks(PatternScorer.load(final, providers=_CPU_ONLY), sets[first][0])
    if not np.array_equal(again, outputs[first]):  # pragma: no cover - metadata only changed
        raise ExportError(f"{what}: the file with parity metadata scores differently")
    return final, parity, outputs


def _auc_change(y: np.ndarray, fp32: np.ndarray, int8: np.ndarray, patterns: list[str]):
    from engine.evaluation import auc

    out: dict[str, dict[str, float | None]] = {}
    for j, name in enumerate(patterns):
        labelled = ~np.isnan(y[:, j])
        yj = y[labelled, j]
        if np.unique(yj).size < 2:
            out[name] = {"n": int(labelled.sum()), "fp32": None, "int8": None, "change": None}
            continue
        a32, a8 = auc(yj, fp32[labelled, j]), auc(yj, int8[labelled, j])
        out[name] = {"n": int(labelled.sum()), "fp32": a32, "int8": a8, "change": a8 - a32}
    return out


def _onnx_values(metadata: dict[str, Any], *, opset: int, quantization: str) -> dict[str, Any]:
    data = metadata.get("data", {})
    split = metadata.get("split", {})
    return {
        "format": ONNX_FORMAT,
        "model_id": metadata["model_id"],
        "feature_names": list(metadata["feature_names"]),
        "pattern_names": list(metadata["pattern_names"]),
        "sequence_length": int(metadata["sequence_length"]),
        "horizon": int(metadata["horizon"]),
        "data_fingerprint": data.get("fingerprint"),
        "vix_variant": data.get("vix_variant"),
        "prices": data.get("prices"),
        "market": data.get("market") or MARKET_BENCHMARK,
        "sector_map": data.get("sector_map") or {},
        "tickers": data.get("tickers", []),
        "synthetic_tickers": data.get("synthetic_tickers", []),
        "split": {key: split.get(key) for key in _SPLIT_KEYS},
        "config": metadata.get("config"),
        "settings": metadata.get("settings"),
        "model_kind": metadata.get("model_kind", "lstm"),
        "reference": metadata.get("reference"),
        "artifact_files": metadata.get("files", {}),
        "quantization": quantization,
        "opset": opset,
        "versions": {
            "training": metadata.get("versions", {}),
            "export": package_versions(_EXPORT_PACKAGES),
        },
    }


def export_onnx(
    model_dir: str | Path,
    out: str | Path | None = None,
    *,
    bars: pl.DataFrame | None = None,
    held_out: HeldOut | None = None,
    data_dir: str | Path | None = None,
    opset: int | None = None,
    quantize: Literal["int8"] | None = None,
    overwrite: bool = False,
    tolerance: float = FP32_TOLERANCE,
    int8_tolerance: float = INT8_TOLERANCE,
    int8_auc_tolerance: float = INT8_AUC_TOLERANCE,
    n_random: int = N_RANDOM,
    seed: int = 0,
    tracking: Tracking | None = None,
    registered_model: str | None = None,
    champion_if_none: bool = False,
) -> ExportReport:
    """Export a model artifact to a verified, self-describing ONNX file.

    Parameters
    ----------
    model_dir : path
        A model artifact directory (``OUT/models/<model_id>``). A LightGBM
        artifact (``model_kind: lightgbm``) is exported by
        :func:`export.lightgbm_onnx.export_lightgbm_onnx` under the same
        contract (no ``quantize``).
    out : path, optional
        The fp32 ONNX file (default ``<model_dir>/model.onnx``). The int8
        model goes beside it as ``<stem>.int8.onnx``.
    bars : pl.DataFrame, optional
        Bars the model was trained on, for the held-out parity windows
        (default: read from ``data_dir``).
    held_out : HeldOut, optional
        The model's held-out windows when the caller holds them already
        (:func:`export.held_out.select_held_out`; the pipeline passes the
        sequences it trained on). Default: rebuilt from ``bars``.
    data_dir : path, optional
        Data directory to read them from (default: the training run's, else
        ``$ENGINE_DATA_DIR`` or the default directory).
    opset : int, optional
        ONNX opset, 13..18 (default :data:`DEFAULT_OPSET`).
    quantize : {"int8"}, optional
        Also write an int8 dynamically quantized model.
    overwrite : bool
        Replace existing ONNX files.
    tolerance, int8_tolerance : float
        Max abs confidence difference from Keras allowed for the fp32 and the
        int8 model (:data:`FP32_TOLERANCE`, :data:`INT8_TOLERANCE`).
    int8_auc_tolerance : float
        Largest change of a pattern's held-out AUC allowed for the int8 model
        (:data:`INT8_AUC_TOLERANCE`).
    n_random : int
        Random windows in the parity check.
    seed : int
        Seed of the random windows.
    tracking : engine.tracking.Tracking, optional
        Log the export to MLflow and register the fp32 file as a new
        version (:func:`export.registration.register_export`); None: neither.
    registered_model : str, optional
        Registered model name (default ``pattern-lstm``, or ``pattern-<kind>``).
    champion_if_none : bool
        Make the new version ``champion`` when the model has none.

    Returns
    -------
    ExportReport
        ``registered`` names the registry version when one was created.

    Raises
    ------
    ExportError
        Parity above tolerance or an int8 AUC change above tolerance
        (nothing is written), a non-native graph, or bars that are not the
        model's training data.
    ArtifactError
        A corrupt artifact or one whose features differ from the engine's.
    FileExistsError
        An output exists and ``overwrite`` is false.
    """
    if read_metadata(model_dir).get("model_kind") == "lightgbm":  # a tree ensemble: onnxmltools
        from export.lightgbm_onnx import export_lightgbm_onnx

        return export_lightgbm_onnx(
            model_dir, out, bars=bars, held_out=held_out, data_dir=data_dir, opset=opset,
            quantize=quantize, overwrite=overwrite, tolerance=tolerance, n_random=n_random,
            seed=seed, tracking=tracking,
            registered_model=registered_model, champion_if_none=champion_if_none,
        )  # fmt: skip
    from engine.model.trainer import predict

    began = time.perf_counter()
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if quantize not in (None, "int8"):
        raise ValueError(f"`quantize` must be None or 'int8', got `quantize={quantize!r}`")
    if n_random < 1:
        raise ValueError(f"`n_random` must be at least 1, got `n_random={n_random}`")
    model_dir = Path(model_dir)
    read_metadata(model_dir)  # fail on a bad artifact before TensorFlow loads
    out = Path(out) if out is not None else model_dir / "model.onnx"
    int8_out = out.with_name(f"{out.stem}.int8.onnx") if quantize else None
    for path in (out, int8_out):
        if path is not None and path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")

    artifact = load_model_artifact(model_dir)
    metadata = artifact.metadata
    patterns = list(metadata["pattern_names"])
    if held_out is None:
        held_out = held_out_sequences(
            metadata, bars if bars is not None else training_bars(metadata, data_dir)
        )
    keras_held_out = predict(artifact.model, held_out.X)
    check_against_stored(model_dir, held_out, keras_held_out, patterns, FP32_TOLERANCE)
    random_X = random_sequences(metadata, n_random, seed)
    sets = {
        "held-out": (held_out.X, keras_held_out),
        "random": (random_X, predict(artifact.model, random_X)),
    }
    n_lstm = sum(1 for layer in artifact.model.layers if type(layer).__name__ == "LSTM")

    proto = keras_to_onnx(inference_twin(artifact), opset=opset)
    counts = check_native_lstm(proto, n_lstm)
    fp32, parity, fp32_outputs = _verified(
        proto, _onnx_values(metadata, opset=opset, quantization="none"), sets, tolerance, "fp32"
    )

    quantized = None
    int8 = None
    if int8_out is not None:
        qproto = quantize_int8(proto)
        qcounts = check_native_lstm(qproto, n_lstm)
        values = _onnx_values(metadata, opset=opset, quantization="int8-dynamic")
        aucs: dict[str, dict[str, float | None]] = {}

        def auc_gate(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
            aucs.update(
                _auc_change(held_out.y, fp32_outputs["held-out"], outputs["held-out"], patterns)
            )
            moved = {p: v["change"] for p, v in aucs.items() if v["change"] is not None}
            worst = max(moved, key=lambda p: abs(moved[p]), default=None)
            if worst is not None and abs(moved[worst]) > int8_auc_tolerance:
                raise ExportError(
                    f"int8 changes the held-out AUC of {worst} by {moved[worst]:+.4f} "
                    f"(> {int8_auc_tolerance:g}), nothing written"
                )
            return {"auc_change": aucs}

        int8, qparity, _ = _verified(qproto, values, sets, int8_tolerance, "int8", auc_gate)
        quantized = QuantizedReport(
            path=int8_out,
            bytes=len(int8),
            fp32_bytes=len(fp32),
            parity=qparity,
            auc=aucs,
            op_counts=qcounts,
        )

    atomic_write_bytes(out, fp32)
    if int8_out is not None and int8 is not None:
        atomic_write_bytes(int8_out, int8)
    report = ExportReport(
        model_id=str(metadata["model_id"]),
        path=out,
        bytes=len(fp32),
        opset=opset,
        op_counts=counts,
        parity=parity,
        held_out=held_out.info,
        quantized=quantized,
        seconds=time.perf_counter() - began,
    )
    values = {**_onnx_values(metadata, opset=opset, quantization="none"), "source": str(model_dir)}
    report.registered = register_export(
        report, values, tracking, name=registered_model, champion_if_none=champion_if_none,
        data_dir=data_dir or (metadata.get("data") or {}).get("data_dir"),
        params={"model": str(model_dir), "out": str(out), "opset": opset, "quantize": quantize},
    )  # fmt: skip
    return report
