"""ONNX export: parity with Keras, native LSTM graph, metadata, int8 report, refusals.

One tiny training run is shared by the module: the SPEC architecture, one
epoch, holdout split, AAPL and MSFT of the demo universe stored in a data
directory (so the export finds the training bars through the run's
metadata, as a user's would). ``engine export-onnx --quantize int8`` is run
once through the CLI and its files and JSON report are shared too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import polars as pl
import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.demo import generate_demo_universe
from engine.data.store import BarStore
from engine.evaluation import auc
from engine.features.build import FEATURE_NAMES
from engine.jobs.train import run_train_job
from engine.model.artifacts import load_model_artifact
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings
from engine.model.trainer import predict
from export.held_out import held_out_sequences, random_sequences, select_held_out
from export.onnx_export import (
    FP32_TOLERANCE,
    INT8_AUC_TOLERANCE,
    INT8_TOLERANCE,
    ExportError,
    check_native_lstm,
    export_onnx,
    keras_to_onnx,
    op_counts,
)
from export.onnx_metadata import BATCH_DIM, ONNX_FORMAT, decode_metadata
from export.scorer import CONFIDENCE_SUFFIX, PatternScorer

runner = CliRunner()
STORED = ["AAPL", "MSFT", "SPY", "XLK", "VIX"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> BarStore:
    bars = generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(STORED))
    store = BarStore(tmp_path_factory.mktemp("data"))
    store.write(bars)
    return store


@pytest.fixture(scope="module")
def artifact_dir(store, tmp_path_factory) -> Path:
    report = run_train_job(
        store,
        "AAPL,MSFT",
        settings=RunSettings(split="holdout", deterministic=True),
        config=ModelConfig(epochs=1),
        out=tmp_path_factory.mktemp("run") / "run",
    )
    return report.out / report.windows[0].artifact


@pytest.fixture(scope="module")
def artifact(artifact_dir):
    return load_model_artifact(artifact_dir)


@pytest.fixture(scope="module")
def exported(artifact_dir, tmp_path_factory) -> dict:
    """``engine export-onnx --quantize int8 --json``; the bars come from the run's data dir."""
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = runner.invoke(
        app,
        [
            "export-onnx",
            "--model",
            str(artifact_dir),
            "--out",
            str(out),
            "--quantize",
            "int8",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def held_out(artifact, store):
    return held_out_sequences(artifact.metadata, store.read_bars())


@pytest.fixture(scope="module")
def fp32(exported) -> PatternScorer:
    return PatternScorer.load(exported["path"], providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def int8(exported) -> PatternScorer:
    return PatternScorer.load(exported["quantized"]["path"], providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------ parity


def test_export_report_states_parity_within_fp32_tolerance(exported):
    assert [p["inputs"] for p in exported["parity"]] == ["held-out", "random"]
    for parity in exported["parity"]:
        assert parity["ok"] and parity["max_abs_diff"] < FP32_TOLERANCE, parity
    # the rebuilt held-out windows are the training run's test rows: same data, and Keras
    # scores them as the run did when it stored its test predictions
    held = exported["held_out"]
    assert held["fingerprint_match"] is True
    assert held["stored_predictions"]["unmatched"] == 0
    assert held["stored_predictions"]["max_abs_diff"] < FP32_TOLERANCE
    assert held["rows"] == held["stored_predictions"]["rows"] > 1024


def test_held_out_picked_from_the_training_sequences_equals_the_rebuild(artifact, store, held_out):
    """The pipeline hands export the sequences it trained on instead of a second feature pass."""
    from engine.model.runs import prepare_dataset

    meta = artifact.metadata
    bars = store.read_bars()
    dataset = prepare_dataset(bars, list(meta["data"]["tickers"]), RunSettings(split="holdout"))
    picked = select_held_out(meta, dataset.score_set, fingerprint=meta["data"]["fingerprint"])
    np.testing.assert_array_equal(picked.X, held_out.X)
    np.testing.assert_array_equal(picked.y, held_out.y)
    assert picked.index.equals(held_out.index)
    assert picked.info == held_out.info


@pytest.mark.parametrize("batch", [1, 7, 1024])
@pytest.mark.parametrize("inputs", ["held-out", "random"])
def test_fp32_parity_with_keras(artifact, held_out, fp32, inputs, batch):
    if inputs == "held-out":
        X = held_out.X[-batch:]
    else:  # another seed than the export's own random check
        X = random_sequences(artifact.metadata, batch, seed=123)
    got = fp32.score(X)
    want = predict(artifact.model, X)  # the training model, inference mode
    assert got.shape == (batch, len(artifact.metadata["pattern_names"]))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=FP32_TOLERANCE)


def test_score_bars_from_raw_ohlcv_equals_keras_on_training_windows(
    artifact, store, held_out, fp32
):
    """OHLCV in -> ONNX scores out equals Keras on the training pipeline's own windows.

    The bars end on the last held-out date; features are causal, so the latest
    windows are the held-out windows of that date.
    """
    end = held_out.index["date"].max()
    scores = fp32.score_bars(store.read_bars(end=end), tickers=["AAPL", "MSFT"])
    last = held_out.index.with_row_index("row").group_by("ticker").agg(pl.col("row").last())
    rows = last.sort("ticker").get_column("row").to_numpy()
    assert scores.get_column("date").to_list() == [end, end]
    assert held_out.index["date"].gather(rows).to_list() == [end, end]
    want = predict(artifact.model, held_out.X[rows])
    columns = [p + CONFIDENCE_SUFFIX for p in fp32.pattern_names]
    np.testing.assert_allclose(scores.select(columns).to_numpy(), want, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ graph and metadata


def test_graph_holds_native_lstm_nodes_only(exported, artifact):
    proto = onnx.load(exported["path"])
    counts = op_counts(proto)
    assert counts["LSTM"] == 2
    assert not {"Loop", "Scan", "If"} & set(counts)
    assert exported["op_counts"] == counts
    qcounts = op_counts(onnx.load(exported["quantized"]["path"]))
    assert qcounts["DynamicQuantizeLSTM"] == 2 and "Loop" not in qcounts


def test_training_model_with_recurrent_dropout_would_export_a_loop(artifact):
    """Why the twin exists: tf2onnx turns the recurrent-dropout LSTM into a generic Loop."""
    proto = keras_to_onnx(artifact.model)
    assert op_counts(proto).get("Loop", 0) >= 1
    with pytest.raises(ExportError, match=r"1 native LSTM node\(s\) for 2 Keras LSTM"):
        check_native_lstm(proto, 2)


def test_onnx_file_describes_itself(exported, artifact):
    proto = onnx.load(exported["path"])
    meta = decode_metadata({p.key: p.value for p in proto.metadata_props})
    source = artifact.metadata
    assert meta["format"] == ONNX_FORMAT
    assert meta["model_id"] == source["model_id"]
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["pattern_names"] == source["pattern_names"]
    assert meta["sequence_length"] == 20 and meta["horizon"] == source["horizon"]
    assert meta["data_fingerprint"] == source["data"]["fingerprint"]
    assert meta["vix_variant"] == source["data"]["vix_variant"] == "market_vol_ratio"
    assert meta["split"]["embargo_end"] == source["split"]["embargo_end"]
    assert meta["quantization"] == "none"
    assert {"tf2onnx", "onnx", "onnxruntime", "tensorflow"} <= set(meta["versions"]["export"])
    assert meta["versions"]["training"] == source["versions"]
    assert [p["inputs"] for p in meta["parity"]] == ["held-out", "random"]
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, dims) == ("sequences", [BATCH_DIM, 20, 17])
    dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert (out.name, dims) == ("pattern_confidence", [BATCH_DIM, 4])
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


# ------------------------------------------------------------------ int8


def test_int8_parity_size_and_auc_change(exported, held_out, fp32, int8):
    """Figures computed here, not read from the report.

    Bounds. Confidences: dynamic quantization stores each weight tensor in 255
    levels and each activation tensor in 256 levels spanning that call's
    range. Measured on held-out windows scored in one batch (1-, 10- and
    25-epoch models) the max error is 0.003..0.054, the p99 0.003..0.016 and
    the mean 0.0016..0.0036, so the max is only checked against
    ``INT8_TOLERANCE`` (0.1, a broken graph is off by more) and the bulk
    against p99 < 0.02 and mean < 0.005.
    AUC: if every confidence moves by at most d, only (event, non-event)
    pairs closer than 2d can change order, so |AUC change| is at most the
    share of such pairs, a bound that holds for any model and is computed
    here; the export's own gate is ``INT8_AUC_TOLERANCE`` (0.01).
    Size: LSTM and dense weights go from 4 bytes to 1; biases, batch norm and
    the graph stay, so the file is at most half the fp32 size (about 0.35).
    """
    a32, a8 = fp32.score(held_out.X), int8.score(held_out.X)
    diff = np.abs(a8.astype(np.float64) - a32)
    assert diff.max() < INT8_TOLERANCE
    assert np.percentile(diff, 99) < 0.02 and diff.mean() < 0.005
    d = diff.max()
    report = {r["inputs"]: r for r in exported["quantized"]["parity"]}
    assert report["held-out"]["max_abs_diff"] == pytest.approx(d, abs=1e-6)

    for j, name in enumerate(fp32.pattern_names):
        labelled = ~np.isnan(held_out.y[:, j])
        y, p32, p8 = held_out.y[labelled, j], a32[labelled, j], a8[labelled, j]
        change = auc(y, p8) - auc(y, p32)
        gap = np.abs(p32[y == 1][:, None] - p32[y == 0][None, :])
        may_flip = float((gap <= 2 * d).mean())
        assert abs(change) <= may_flip + 1e-12, (name, change, may_flip)
        assert abs(change) <= INT8_AUC_TOLERANCE, (name, change)
        assert exported["quantized"]["auc"][name]["change"] == pytest.approx(change, abs=1e-9)

    size32 = Path(exported["path"]).stat().st_size
    size8 = Path(exported["quantized"]["path"]).stat().st_size
    assert (size32, size8) == (exported["bytes"], exported["quantized"]["bytes"])
    assert size8 < 0.5 * size32
    assert int8.metadata["quantization"] == "int8-dynamic"
    assert set(int8.metadata["auc_change"]) == set(fp32.pattern_names)


def test_int8_scores_depend_on_the_batch_fp32_scores_do_not(held_out, fp32, int8):
    """Dynamic quantization scales activations by each call's range: batching changes int8."""
    X = held_out.X[:128]
    for scorer in (fp32, int8):
        alone = np.concatenate([scorer.score(X[i : i + 1]) for i in range(len(X))])
        batched = scorer.score(X)
        if scorer is fp32:
            np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-6)
        else:
            assert not np.array_equal(alone, batched)
            assert np.abs(alone - batched).max() < INT8_TOLERANCE


# ------------------------------------------------------------------ refusals


def test_export_fails_loudly_above_tolerance_and_writes_nothing(artifact_dir, store, tmp_path):
    out = tmp_path / "strict.onnx"
    with pytest.raises(ExportError, match=r"fp32 parity check failed, nothing written: held-out"):
        export_onnx(artifact_dir, out, bars=store.read_bars(), tolerance=1e-12)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_refuses_bars_that_are_not_the_training_data(artifact_dir, store, tmp_path):
    bars = store.read_bars()
    noise = np.random.default_rng(0).normal(0.0, 0.01, bars.height)
    late = (pl.col("ticker") == "AAPL") & (pl.col("date") >= pl.date(2016, 1, 1))
    tampered = bars.with_columns(
        pl.when(late).then(pl.col(c) * np.exp(noise)).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    )
    with pytest.raises(ExportError, match="not the ones the model was tested on"):
        export_onnx(artifact_dir, tmp_path / "m.onnx", bars=tampered)


def test_export_refuses_bars_without_the_training_tickers(artifact):
    bars = generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(["AAPL", "SPY"]))
    with pytest.raises(ExportError, match="lack the model's training ticker"):
        held_out_sequences(artifact.metadata, bars)


def test_export_refuses_to_overwrite(artifact_dir, exported):
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        export_onnx(artifact_dir, exported["path"])
    result = runner.invoke(
        app, ["export-onnx", "--model", str(artifact_dir), "--out", exported["path"]]
    )
    assert result.exit_code == 1 and "already exists" in result.output


def test_export_cli_prints_parity_table(exported, artifact_dir, tmp_path):
    result = runner.invoke(
        app, ["export-onnx", "--model", str(artifact_dir), "--out", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output and "held-out" in result.output
    assert (tmp_path / "m.onnx").is_file()
