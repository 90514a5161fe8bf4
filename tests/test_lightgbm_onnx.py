"""LightGBM to ONNX: bit-exact summaries in the graph, parity with LightGBM, float32 thresholds."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.model.gbm import GBMConfig, GBMModel, fit_gbm, float32_thresholds, window_summaries
from export.lightgbm_onnx import SUMMARY_OUTPUT, gbm_to_onnx, summary_nodes
from export.onnx_metadata import INPUT_NAME, OUTPUT_NAME

CPU = ["CPUExecutionProvider"]


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=CPU)


def _summary_session(length: int = 20, width: int = 17) -> ort.InferenceSession:
    nodes, inits = summary_nodes(length, width)
    value = onnx.helper.make_tensor_value_info
    x = value(INPUT_NAME, onnx.TensorProto.FLOAT, [None, length, width])
    out = value(SUMMARY_OUTPUT, onnx.TensorProto.FLOAT, [None, 5 * width])
    graph = onnx.helper.make_graph(nodes, "summaries", [x], [out], initializer=inits)
    return _session(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]))


SUMMARIES = _summary_session()


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 8), st.just(20), st.just(17)),
        elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False),
    )
)
def test_graph_summaries_are_bit_identical_to_window_summaries(X):
    got = SUMMARIES.run([SUMMARY_OUTPUT], {INPUT_NAME: X})[0]
    np.testing.assert_array_equal(got, window_summaries(X))


def test_graph_summaries_on_wide_magnitudes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20, 17)) * 10.0 ** rng.integers(-8, 8, size=(500, 1, 17))
    X = X.astype(np.float32)
    got = SUMMARIES.run([SUMMARY_OUTPUT], {INPUT_NAME: X})[0]
    np.testing.assert_array_equal(got, window_summaries(X))


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1200, 20, 17)).astype(np.float32)
    y = np.full((1200, 3), np.nan, dtype=np.float32)
    y[:, 0] = (X[:, -1, 0] + X[:, :, 3].max(axis=1) + rng.normal(size=1200) > 1.5).astype(
        np.float32
    )
    y[:, 1] = (X[:, -1, 5] - X[:, 0, 5] + rng.normal(size=1200) > 0).astype(np.float32)
    y[::3, 2] = 0.0  # one class: a constant head
    fit = fit_gbm(X[:800], y[:800], X[800:], y[800:], GBMConfig(n_estimators=150), seed=2,
                  pattern_names=["a", "b", "c"])  # fmt: skip
    return fit.model


def test_onnx_graph_scores_like_lightgbm(model):
    proto = gbm_to_onnx(model)
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    session = _session(proto)
    rng = np.random.default_rng(5)
    for batch in (1, 7, 2048):
        X = (rng.normal(size=(batch, 20, 17)) * 1.5).astype(np.float32)
        got = session.run([OUTPUT_NAME], {INPUT_NAME: X})[0]
        want = model.predict(X)
        assert got.shape == (batch, 3)
        assert np.abs(got - want).max() <= 1e-5
    assert np.all(got[:, 2] == np.float32(0.0))  # the constant head


@pytest.fixture(scope="module")
def adjacent():
    """A booster split between adjacent float32 values of feature 0 (constant windows)."""
    grid = [np.float32(0.1)]
    for _ in range(40):
        grid.append(np.nextafter(grid[-1], np.float32(1.0)))
    values = np.repeat(np.array(grid, dtype=np.float32), 30)
    X = np.zeros((values.size, 20, 17), dtype=np.float32)
    X[:, :, 0] = values[:, None]  # last = mean = min = max = the value, change = 0
    y = (np.arange(values.size) // 30) % 2
    params = {"objective": "binary", "min_data_in_leaf": 5, "min_data_in_bin": 1,
              "num_leaves": 31, "verbose": -1, "deterministic": True, "num_threads": 1,
              "learning_rate": 0.5}  # fmt: skip
    raw = lgb.train(params, lgb.Dataset(window_summaries(X), y), num_boost_round=5)
    return raw, X[::30]


def test_float64_thresholds_misroute_in_float32_and_floored_ones_do_not(adjacent):
    from engine.features.build import FEATURE_NAMES

    raw, X = adjacent
    want = raw.predict(window_summaries(X))
    floored = lgb.Booster(model_str=float32_thresholds(raw.model_to_string()))
    diffs = {}
    for name, booster in (("raw", raw), ("floored", floored)):
        model = GBMModel({"a": booster}, {}, FEATURE_NAMES, ["a"], 20)
        got = _session(gbm_to_onnx(model)).run([OUTPUT_NAME], {INPUT_NAME: X})[0][:, 0]
        diffs[name] = float(np.abs(got - want).max())
    assert diffs["raw"] > 1e-2  # an input equal to a threshold rounded up takes the other branch
    assert diffs["floored"] <= 1e-6
