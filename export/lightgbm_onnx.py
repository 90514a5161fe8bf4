"""Export a LightGBM artifact to ONNX under the same serving contract as the LSTM.

The file takes the same input, ``sequences`` (batch, 20, 17) float32 raw
features, and gives the same output, ``pattern_confidence`` (batch,
n_patterns), so :class:`export.scorer.PatternScorer`, ``engine predict`` and
``engine serve`` take it unchanged. The graph has two parts:

1. **window summaries** (:func:`summary_nodes`), built with plain ONNX ops in
   the order of operations of :func:`engine.model.tree_inputs.window_summaries`:
   ``Gather`` of the last and first rows, ``ReduceMin``/``ReduceMax`` over
   the window, ``Sub`` for last minus first, and the mean as a float64 chain
   of ``Add`` over the 20 rows in window order, divided by 20 and cast to
   float32. Every one of these is exact or correctly rounded in IEEE
   arithmetic, so the trees see bit-identical inputs;
2. **one tree ensemble per head**, converted by onnxmltools
   (``convert_lightgbm`` with ``zipmap=False`` and a float32 input). Each
   head's probability of class 1 is sliced out and the heads are
   concatenated in pattern order. A head that was not fitted is a constant.

The boosters' thresholds are float32 values already
(:func:`engine.model.tree_inputs.float32_thresholds`), so onnxruntime's float32
comparisons take the branches LightGBM takes; what remains is the float32
sum of the leaf values, whose error the parity check measures (SPEC
tolerance 1e-5). onnxmltools' ``split`` option, which sums tree groups in
float64, exists for its regressor only; it was not needed (see the parity
figures in the README).

Parity runs through :class:`export.scorer.PatternScorer` on the held-out
windows (the artifact's test period rebuilt from its bars, which must also
reproduce the stored ``test_predictions.parquet``) and on random windows;
nothing is written when either exceeds the tolerance. ``--quantize int8``
is refused: a tree ensemble has no weight matrices to quantize.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import polars as pl
from onnx import TensorProto, helper, numpy_helper

from engine.io import atomic_write_bytes
from engine.model.gbm import MODEL_KIND, GBMModel, load_gbm_artifact
from engine.model.tree_inputs import summary_names
from export.held_out import (
    N_RANDOM,
    ExportError,
    HeldOut,
    check_against_stored,
    held_out_sequences,
    random_sequences,
    training_bars,
)
from export.onnx_export import (
    DEFAULT_OPSET,
    FP32_TOLERANCE,
    ExportReport,
    _onnx_values,
    _verified,
    op_counts,
)
from export.onnx_metadata import BATCH_DIM, INPUT_NAME, OUTPUT_NAME

__all__ = [
    "ML_OPSET",
    "SUMMARY_OUTPUT",
    "LightGBMExportReport",
    "export_lightgbm_onnx",
    "gbm_to_onnx",
    "summary_nodes",
]

#: The ``ai.onnx.ml`` opset when onnxmltools does not name one.
ML_OPSET = 1
#: onnxmltools 1.16 converts LightGBM up to this main-domain opset.
_CONVERTER_OPSET = 15
#: Name of the (batch, 5 * 17) tensor of window summaries inside the graph.
SUMMARY_OUTPUT = "window_summaries"
_PROBABILITIES = "probabilities"


@dataclass
class LightGBMExportReport(ExportReport):
    """An :class:`export.onnx_export.ExportReport` that says its model is a tree ensemble.

    ``parity`` compares with LightGBM itself (the rewritten float32-threshold
    boosters), not with Keras.
    """

    model_kind: str = MODEL_KIND

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, with ``model_kind``."""
        return {**super().to_dict(), "model_kind": self.model_kind}


def _const(name: str, value: Any, dtype: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name)


def summary_nodes(
    length: int, n_features: int
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes from ``sequences`` (batch, length, n_features) to ``window_summaries``.

    The columns are last, mean, min, max and last minus first of every
    feature (summary-major), as :func:`engine.model.tree_inputs.window_summaries`.
    Main-domain opset 13 to 17 (``ReduceMin``/``ReduceMax`` take ``axes`` as
    an attribute).

    Examples
    --------
    >>> nodes, inits = summary_nodes(20, 17)
    >>> sorted({n.op_type for n in nodes})
    ['Add', 'Cast', 'Concat', 'Div', 'Gather', 'ReduceMax', 'ReduceMin', 'Sub']
    """
    make = helper.make_node
    inits = [_const(f"row_{i}", i, np.int64) for i in range(length)]
    inits.append(_const("window_length", float(length), np.float64))
    nodes = [
        make("Gather", [INPUT_NAME, f"row_{length - 1}"], ["last"], axis=1),
        make("Gather", [INPUT_NAME, "row_0"], ["first"], axis=1),
        make("Sub", ["last", "first"], ["change"]),
        make("ReduceMin", [INPUT_NAME], ["window_min"], axes=[1], keepdims=0),
        make("ReduceMax", [INPUT_NAME], ["window_max"], axes=[1], keepdims=0),
        make("Cast", [INPUT_NAME], ["sequences_f64"], to=TensorProto.DOUBLE),
    ]
    total = "row64_0"
    nodes.append(make("Gather", ["sequences_f64", "row_0"], [total], axis=1))
    for i in range(1, length):
        nodes.append(make("Gather", ["sequences_f64", f"row_{i}"], [f"row64_{i}"], axis=1))
        nodes.append(make("Add", [total, f"row64_{i}"], [f"sum64_{i}"]))
        total = f"sum64_{i}"
    nodes += [
        make("Div", [total, "window_length"], ["mean64"]),
        make("Cast", ["mean64"], ["window_mean"], to=TensorProto.FLOAT),
        make("Concat", ["last", "window_mean", "window_min", "window_max", "change"],
             [SUMMARY_OUTPUT], axis=1),
    ]  # fmt: skip
    return nodes, inits


def _needed(graph: onnx.GraphProto, output: str) -> list[onnx.NodeProto]:
    """The nodes ``output`` depends on, in graph order."""
    producer = {o: n for n in graph.node for o in n.output}
    keep: set[int] = set()
    todo = deque([output])
    while todo:
        node = producer.get(todo.popleft())
        if node is None or id(node) in keep:
            continue
        keep.add(id(node))
        todo.extend(node.input)
    return [n for n in graph.node if id(n) in keep]


def _head_nodes(
    booster: Any, n_inputs: int, prefix: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str, int]:
    """One booster converted by onnxmltools, renamed and fed by the summaries.

    Returns the nodes the probabilities need, their initializers, the name
    of the (batch, 2) probability tensor and the ``ai.onnx.ml`` opset used.
    """
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    head = convert_lightgbm(
        booster,
        initial_types=[("input", FloatTensorType([None, n_inputs]))],
        zipmap=False,
        target_opset=_CONVERTER_OPSET,
    )
    outputs = [o.name for o in head.graph.output]
    if _PROBABILITIES not in outputs:
        raise ExportError(f"onnxmltools gave outputs {outputs}, expected {_PROBABILITIES!r}")
    head = onnx.compose.add_prefix(head, prefix)
    graph = head.graph
    nodes = _needed(graph, prefix + _PROBABILITIES)
    for node in nodes:
        for k, name in enumerate(node.input):
            if name == prefix + "input":
                node.input[k] = SUMMARY_OUTPUT
    ml = next((o.version for o in head.opset_import if o.domain == "ai.onnx.ml"), ML_OPSET)
    used = {i for n in nodes for i in n.input}
    inits = [t for t in graph.initializer if t.name in used]
    return nodes, inits, prefix + _PROBABILITIES, ml


def gbm_to_onnx(model: GBMModel, *, opset: int = 17) -> onnx.ModelProto:
    """The ONNX graph of a :class:`engine.model.gbm.GBMModel` (no engine metadata yet).

    Parameters
    ----------
    model : GBMModel
    opset : int
        Main-domain opset, 15 to 17 (``Shape`` with ``end`` needs 15).

    Returns
    -------
    onnx.ModelProto
        Input ``sequences`` (batch, length, n_features) float32, output
        ``pattern_confidence`` (batch, n_patterns) float32; checked by
        :func:`onnx.checker.check_model`.
    """
    if not 15 <= opset <= 17:
        raise ValueError(f"`opset` must be in [15, 17] for a LightGBM export, got `opset={opset}`")
    length, width = model.sequence_length, len(model.feature_names)
    n_inputs = len(summary_names(model.feature_names))
    nodes, inits = summary_nodes(length, width)
    inits += [
        _const("one", [1], np.int64),
        _const("two", [2], np.int64),
    ]
    columns, ml = [], ML_OPSET
    for j, pattern in enumerate(model.pattern_names):
        column = f"head{j}_confidence"
        booster = model.boosters.get(pattern)
        if booster is None:
            inits.append(_const(f"head{j}_value", [model.constants[pattern]], np.float32))
            nodes += [
                helper.make_node("Shape", [INPUT_NAME], [f"head{j}_shape"], end=1),
                helper.make_node("Concat", [f"head{j}_shape", "one"], [f"head{j}_dims"], axis=0),
                helper.make_node(
                    "ConstantOfShape", [f"head{j}_dims"], [f"head{j}_zeros"],
                    value=numpy_helper.from_array(np.zeros(1, np.float32)),
                ),
                helper.make_node("Add", [f"head{j}_zeros", f"head{j}_value"], [column]),
            ]  # fmt: skip
        else:
            head_nodes, head_inits, prob, ml = _head_nodes(booster, n_inputs, f"head{j}_")
            nodes += head_nodes
            inits += head_inits
            nodes.append(
                helper.make_node("Slice", [prob, "one", "two", "one"], [column], name=column)
            )
        columns.append(column)
    nodes.append(helper.make_node("Concat", columns, [OUTPUT_NAME], axis=1))
    graph = helper.make_graph(
        nodes,
        "pattern_lightgbm",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, length, width])],
        [
            helper.make_tensor_value_info(
                OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, len(model.pattern_names)]
            )
        ],
        initializer=inits,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ml)],
        producer_name="pattern-engine",
    )
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_lightgbm_onnx(
    model_dir: str | Path,
    out: str | Path | None = None,
    *,
    bars: pl.DataFrame | None = None,
    held_out: HeldOut | None = None,
    data_dir: str | Path | None = None,
    opset: int | None = None,
    quantize: str | None = None,
    overwrite: bool = False,
    tolerance: float | None = None,
    n_random: int = N_RANDOM,
    seed: int = 0,
    tracking: Any = None,
    registered_model: str | None = None,
    champion_if_none: bool = False,
    **_: Any,
) -> Any:
    """Export a LightGBM artifact to a verified, self-describing ONNX file.

    Called by :func:`export.onnx_export.export_onnx` for an artifact whose
    metadata says ``model_kind: "lightgbm"``; the arguments mean what they
    mean there (the int8 ones are refused or ignored).

    Returns
    -------
    LightGBMExportReport
        ``op_counts`` of the merged graph, parity on ``held-out`` and
        ``random`` windows against LightGBM itself.

    Raises
    ------
    ValueError
        ``quantize`` is given.
    ExportError
        Parity above tolerance (nothing written) or bars that are not the
        model's training data.
    ArtifactError
        A corrupt or non-LightGBM artifact, or features that differ from the engine's.
    FileExistsError
        ``out`` exists and ``overwrite`` is false.
    """
    began = time.perf_counter()
    if quantize is not None:
        raise ValueError(
            f"`--quantize {quantize}` applies to the LSTM's weight matrices; a LightGBM model "
            "is a tree ensemble with nothing to quantize, export it without --quantize"
        )
    if n_random < 1:
        raise ValueError(f"`n_random` must be at least 1, got `n_random={n_random}`")
    tolerance = FP32_TOLERANCE if tolerance is None else float(tolerance)
    opset = DEFAULT_OPSET if opset is None else int(opset)
    model_dir = Path(model_dir)
    out = Path(out) if out is not None else model_dir / "model.onnx"
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    model, metadata = load_gbm_artifact(model_dir)
    patterns = list(metadata["pattern_names"])
    if held_out is None:
        held_out = held_out_sequences(
            metadata, bars if bars is not None else training_bars(metadata, data_dir)
        )
    gbm_held_out = model.predict(held_out.X)
    check_against_stored(model_dir, held_out, gbm_held_out, patterns, tolerance)
    random_X = random_sequences(metadata, n_random, seed)
    sets = {
        "held-out": (held_out.X, gbm_held_out),
        "random": (random_X, model.predict(random_X)),
    }
    proto = gbm_to_onnx(model, opset=opset)
    values = _onnx_values(metadata, opset=opset, quantization="none")
    values["model_kind"] = MODEL_KIND
    fp32, parity, _ = _verified(proto, values, sets, tolerance, "fp32")
    atomic_write_bytes(out, fp32)
    report = LightGBMExportReport(
        model_id=str(metadata["model_id"]),
        path=out,
        bytes=len(fp32),
        opset=opset,
        op_counts=op_counts(proto),
        parity=parity,
        held_out=held_out.info,
        quantized=None,
        seconds=time.perf_counter() - began,
    )
    if tracking is not None:
        from export.registration import register_export

        report.registered = register_export(
            report, {**values, "source": str(model_dir)}, tracking, name=registered_model,
            champion_if_none=champion_if_none,
            data_dir=data_dir or (metadata.get("data") or {}).get("data_dir"),
            params={"model": str(model_dir), "out": str(out), "opset": opset},
        )  # fmt: skip
    return report
