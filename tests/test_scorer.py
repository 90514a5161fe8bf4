"""PatternScorer: oracle equality, OHLCV -> scores, input validation, no TensorFlow.

The scorer is model-agnostic, so most tests serve a small hand-built ONNX
model (no TensorFlow, milliseconds to build): per-feature standardization,
then a dense layer over the whole flattened 20 x 17 window and a sigmoid.
Every input cell has its own weight, so a window with rows or features out
of order scores differently, and the scores have a NumPy oracle. The
exported LSTM goes through the same class in ``test_onnx_export.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import polars as pl
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.demo import generate_demo_universe
from engine.data.store import BarStore
from engine.features.build import FEATURE_NAMES, compute_features
from engine.model.sequences import build_sequences
from export import PatternScorer, ScoringError
from export.onnx_metadata import ONNX_FORMAT, encode_metadata
from export.scorer import CONFIDENCE_SUFFIX, WARM_UP_ROWS, default_providers

runner = CliRunner()
PATTERNS = ["momentum_persistence", "volatility_regime", "trend_exhaustion", "volume_divergence"]
TICKERS = ["AAPL", "MSFT", "QQQ"]
INPUTS = ["AAPL", "MSFT", "QQQ", "SPY", "XLK", "VIX"]
LENGTH, WIDTH = 20, len(FEATURE_NAMES)


def toy_model(mean, sd, *, seed=0, **meta) -> tuple[bytes, dict]:
    """sigmoid(((x - mean) / sd).reshape(n, 340) @ W + b) as ONNX, with engine metadata."""
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((LENGTH * WIDTH, len(PATTERNS))) / np.sqrt(LENGTH * WIDTH)).astype(
        np.float32
    )
    b = rng.normal(0, 0.1, len(PATTERNS)).astype(np.float32)
    init = [
        helper.make_tensor("mean", TensorProto.FLOAT, [WIDTH], np.asarray(mean, np.float32)),
        helper.make_tensor("sd", TensorProto.FLOAT, [WIDTH], np.asarray(sd, np.float32)),
        helper.make_tensor("flat", TensorProto.INT64, [2], [-1, LENGTH * WIDTH]),
        helper.make_tensor("W", TensorProto.FLOAT, list(W.shape), W.ravel()),
        helper.make_tensor("b", TensorProto.FLOAT, [len(PATTERNS)], b),
    ]
    nodes = [
        helper.make_node("Sub", ["sequences", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "sd"], ["z"]),
        helper.make_node("Reshape", ["z", "flat"], ["z2"]),
        helper.make_node("MatMul", ["z2", "W"], ["logit0"]),
        helper.make_node("Add", ["logit0", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["pattern_confidence"]),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("sequences", TensorProto.FLOAT, ["batch", LENGTH, WIDTH])],
        [
            helper.make_tensor_value_info(
                "pattern_confidence", TensorProto.FLOAT, ["batch", len(PATTERNS)]
            )
        ],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    values = {
        "format": ONNX_FORMAT,
        "model_id": "toy",
        "feature_names": list(FEATURE_NAMES),
        "pattern_names": PATTERNS,
        "sequence_length": LENGTH,
        "horizon": 5,
        "data_fingerprint": "toy",
        "vix_variant": "market_vol_ratio",
        "market": "SPY",
        "sector_map": {},
        "split": {"embargo_end": "2010-01-04"},
        "versions": {},
        **meta,
    }
    helper.set_model_props(model, {k: v for k, v in encode_metadata(values).items()})
    oracle = {"mean": np.asarray(mean), "sd": np.asarray(sd), "W": W, "b": b}
    return model.SerializeToString(), oracle


def oracle_scores(oracle, X) -> np.ndarray:
    z = ((X.astype(np.float64) - oracle["mean"]) / oracle["sd"]).reshape(X.shape[0], -1)
    return 1.0 / (1.0 + np.exp(-(z @ oracle["W"] + oracle["b"])))


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Three securities and their benchmarks, the last 400 days of the demo (VIX: 600)."""
    demo = generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(INPUTS))
    vix = demo.filter(pl.col("ticker") == "VIX").tail(600)
    return pl.concat([demo.filter(pl.col("ticker") != "VIX").group_by("ticker").tail(400), vix])


@pytest.fixture(scope="module")
def toy(bars):
    features = compute_features(bars, tickers=TICKERS, vix_variant="market_vol_ratio")
    stats = features.select(FEATURE_NAMES).drop_nulls()
    mean = stats.mean().to_numpy().ravel()
    sd = stats.std().to_numpy().ravel()
    return toy_model(mean, sd)


@pytest.fixture(scope="module")
def scorer(toy) -> PatternScorer:
    return PatternScorer.load(toy[0], intra_op_threads=1)


@pytest.fixture(scope="module")
def model_file(toy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "toy.onnx"
    path.write_bytes(toy[0])
    return path


@pytest.fixture(scope="module")
def windows(bars) -> np.ndarray:
    features = compute_features(bars, tickers=TICKERS, vix_variant="market_vol_ratio")
    return build_sequences(features, stride=1).X


# ------------------------------------------------------------------ scoring


@pytest.mark.parametrize("batch", [0, 1, 7, 300])
def test_score_equals_numpy_oracle(scorer, toy, windows, batch):
    X = windows[:batch]
    got = scorer.score(X)
    assert got.shape == (batch, len(PATTERNS)) and got.dtype == np.float32
    if batch:
        np.testing.assert_allclose(got, oracle_scores(toy[1], X), rtol=1e-5, atol=1e-6)
        # not saturated: the oracle comparison would be vacuous at 0 or 1
        assert 0.01 < got.min() and got.max() < 0.99


def test_score_accepts_non_contiguous_windows(scorer, toy, windows):
    X = windows[::3]
    assert not X.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(scorer.score(X), oracle_scores(toy[1], X), rtol=1e-5, atol=1e-6)


def test_score_bars_equals_sequences_built_by_hand(scorer, bars):
    got = scorer.score_bars(bars, tickers=TICKERS)
    features = compute_features(bars, tickers=TICKERS, market="SPY", vix_variant="market_vol_ratio")
    seqs = build_sequences(features, stride=1)
    last = seqs.index.with_row_index("row").group_by("ticker").agg(pl.col("row").last())
    rows = last.sort("ticker").get_column("row").to_numpy()
    want = (
        seqs.index[rows]
        .select("ticker", "date")
        .with_columns(
            pl.Series(p + CONFIDENCE_SUFFIX, col)
            for p, col in zip(PATTERNS, scorer.score(seqs.X[rows]).T, strict=True)
        )
    )
    assert got.columns == ["ticker", "date", *(p + "_p" for p in PATTERNS)]
    assert got.equals(want)
    assert got["ticker"].to_list() == TICKERS
    assert set(got["date"].to_list()) == {bars.filter(pl.col("ticker") == "AAPL")["date"].max()}


def test_score_bars_pins_the_models_vix_variant(scorer, toy, bars):
    """VIX covers these bars, so "auto" would pick vix_mean60; the model says market_vol_ratio."""
    X, _ = scorer.sequences_from_bars(bars, ["AAPL"])
    auto = compute_features(bars, tickers=["AAPL"]).tail(LENGTH)
    pinned = compute_features(bars, tickers=["AAPL"], vix_variant="market_vol_ratio").tail(LENGTH)
    column = FEATURE_NAMES.index("vix_term_structure")
    np.testing.assert_array_equal(X[0], pinned.select(FEATURE_NAMES).to_numpy().astype(np.float32))
    assert not np.allclose(X[0, :, column], auto["vix_term_structure"].to_numpy())


def test_score_bars_default_tickers_subset_and_single_ticker(scorer, bars):
    full = scorer.score_bars(bars)  # every security in bars, benchmarks too; VIX is no security
    assert full["ticker"].to_list() == ["AAPL", "MSFT", "QQQ", "SPY", "XLK"]
    one = scorer.score_bars(bars, tickers="MSFT")
    assert one.equals(full.filter(pl.col("ticker") == "MSFT"))


# ------------------------------------------------------------------ history length


def test_min_history_is_exact(scorer, bars):
    assert scorer.min_history == WARM_UP_ROWS + LENGTH == 272
    aapl = bars.filter(pl.col("ticker") == "AAPL")
    others = bars.filter(pl.col("ticker") != "AAPL")
    enough = pl.concat([others, aapl.tail(272)])
    assert scorer.score_bars(enough, tickers=["AAPL"]).height == 1
    short = pl.concat([others, aapl.tail(271)])
    with pytest.raises(ScoringError, match=r"AAPL has 271 bar\(s\); the model needs at least 272"):
        scorer.score_bars(short, tickers=["AAPL"])
    # the bound is tight: with 271 bars the first window row has a missing feature
    features = compute_features(short, tickers=["AAPL"], vix_variant="market_vol_ratio")
    assert features.tail(LENGTH).select(FEATURE_NAMES).null_count().sum_horizontal().item() > 0


def test_gap_in_latest_window_names_ticker_and_features(scorer, bars):
    day = bars.filter(pl.col("ticker") == "MSFT")["date"][-5]
    holed = bars.with_columns(
        pl.when((pl.col("ticker") == "MSFT") & (pl.col("date") == day))
        .then(None)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    with pytest.raises(ScoringError, match=r"incomplete latest window.*MSFT: .*price_level"):
        scorer.score_bars(holed)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda w: w[0].tolist(), "must be a numpy array", id="list"),
        pytest.param(
            lambda w: w[:2].astype(np.float64), "must be float32, got float64", id="float64"
        ),
        pytest.param(lambda w: w[:2].astype(np.int32), "must be float32, got int32", id="int"),
        pytest.param(
            lambda w: w[0], r"rank 3.*got rank 2 .*pass sequences\[np.newaxis\]", id="rank2"
        ),
        pytest.param(lambda w: w[None, :2], r"rank 3.*got rank 4", id="rank4"),
        pytest.param(
            lambda w: w[:2, :, :16], r"shape \(batch, 20, 17\).*got \(2, 20, 16\)", id="features"
        ),
        pytest.param(lambda w: w[:2, :19], r"got \(2, 19, 17\)", id="rows"),
    ],
)
def test_bad_sequences_get_a_clear_error(scorer, windows, make, message):
    with pytest.raises(ScoringError, match=message):
        scorer.score(make(windows))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_value_is_located(scorer, windows, value):
    X = windows[:5].copy()
    X[3, 19, FEATURE_NAMES.index("overnight_gap")] = value
    X[4, 0, 0] = value
    with pytest.raises(
        ScoringError,
        match=r"2 NaN or infinite value\(s\); the first is sequence 3, row 19, "
        r"feature 'overnight_gap'",
    ):
        scorer.score(X)


def test_bad_bars_get_a_clear_error(scorer, bars):
    with pytest.raises(ScoringError, match=r"ticker\(s\) not in bars: NOPE"):
        scorer.score_bars(bars, tickers=["AAPL", "NOPE"])
    with pytest.raises(ScoringError, match="sector benchmark XLK, which is not in bars"):
        scorer.score_bars(bars.filter(pl.col("ticker") != "XLK"), tickers=["AAPL"])
    with pytest.raises(ScoringError, match="market benchmark SPY"):
        scorer.score_bars(bars.filter(pl.col("ticker") != "SPY"), tickers=["AAPL"])
    with pytest.raises(ScoringError, match=r"lack required column\(s\): volume"):
        scorer.score_bars(bars.drop("volume"))
    with pytest.raises(ScoringError, match="must be a polars DataFrame"):
        scorer.score_bars(bars.to_pandas())


# ------------------------------------------------------------------ model checks


def test_refuses_a_model_whose_features_differ_from_the_engines(toy):
    mean, sd = toy[1]["mean"], toy[1]["sd"]
    swapped = list(FEATURE_NAMES)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    model, _ = toy_model(mean, sd, feature_names=swapped)
    with pytest.raises(ScoringError, match=r"different order.*position 3 is 'momentum_persist"):
        PatternScorer.load(model)
    renamed = [*FEATURE_NAMES[:-1], "price_level_v2"]
    model, _ = toy_model(mean, sd, feature_names=renamed)
    with pytest.raises(ScoringError, match=r"missing \['price_level'\], unknown \['price_level_v2"):
        PatternScorer.load(model)


def test_refuses_a_file_that_is_not_an_engine_export(toy, tmp_path):
    model = onnx.load_from_string(toy[0])
    del model.metadata_props[:]
    with pytest.raises(ScoringError, match="not a pattern-engine ONNX model"):
        PatternScorer.load(model.SerializeToString())
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ScoringError, match="onnxruntime cannot open the model"):
        PatternScorer.load(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PatternScorer.load(tmp_path / "missing.onnx")


def test_refuses_metadata_that_contradicts_the_graph(toy):
    model, _ = toy_model(toy[1]["mean"], toy[1]["sd"], sequence_length=30)
    with pytest.raises(ScoringError, match=r"promises tensor\(float\) \[batch, 30, 17\]"):
        PatternScorer.load(model)
    model, _ = toy_model(toy[1]["mean"], toy[1]["sd"], pattern_names=PATTERNS[:3])
    with pytest.raises(ScoringError, match="has 4 columns but the metadata names 3"):
        PatternScorer.load(model)


def test_threads_and_providers(toy, model_file):
    with pytest.raises(ValueError, match="`intra_op_threads` must be at least 1"):
        PatternScorer.load(model_file, intra_op_threads=0)
    two = PatternScorer.load(model_file, intra_op_threads=2)
    assert two.model_id == "toy" and "toy.onnx" in repr(two)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert default_providers() == ["CPUExecutionProvider"]
        assert two.device == "cpu"


def test_cuda_provider_matches_cpu(toy, windows):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here (CPU-only onnxruntime or no GPU)")
    gpu = PatternScorer.load(toy[0], providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if gpu.device != "cuda":
        pytest.skip("onnxruntime-gpu is installed but no GPU is usable")
    cpu = PatternScorer.load(toy[0], providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(gpu.score(windows), cpu.score(windows), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ no TensorFlow


def test_serving_imports_and_scores_without_tensorflow(model_file, windows, tmp_path):
    np.save(tmp_path / "x.npy", windows[:3])
    code = textwrap.dedent(f"""
        import sys

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in ("tensorflow", "keras", "tf2onnx"):
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Refuse())
        import numpy as np
        import export, export.scorer, export.onnx_metadata, engine.jobs.predict
        import export.onnx_export  # imports TensorFlow only when a function needs it
        from export import PatternScorer
        scores = PatternScorer.load({str(model_file)!r}).score(np.load({str(tmp_path / "x.npy")!r}))
        loaded = sorted(m for m in sys.modules if m.partition(".")[0]
                        in ("tensorflow", "keras", "tf2onnx"))
        print(scores.shape, loaded)
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 4) []"


# ------------------------------------------------------------------ engine predict


@pytest.fixture(scope="module")
def data_dir(bars, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    BarStore(path).write(bars)
    return path


def test_predict_cli_json_equals_score_bars(scorer, bars, data_dir, model_file):
    args = [
        "predict",
        "--model",
        str(model_file),
        "--tickers",
        "AAPL,MSFT",
        "--data-dir",
        str(data_dir),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    want = scorer.score_bars(bars, tickers=["AAPL", "MSFT"])
    got = pl.DataFrame(summary["scores"]).select(want.columns)  # JSON keys come sorted
    got = got.with_columns(pl.col("date").str.to_date())
    np.testing.assert_allclose(
        got.select(pl.exclude("ticker", "date")).to_numpy(),
        want.select(pl.exclude("ticker", "date")).to_numpy(),
        rtol=1e-6,
    )
    assert got.select("ticker", "date").equals(want.select("ticker", "date"))
    assert summary["model_id"] == "toy" and summary["in_sample"] == []


def test_predict_cli_as_of_and_out_file(scorer, bars, data_dir, model_file, tmp_path):
    as_of = bars["date"].sort()[-30]
    out = tmp_path / "scores.parquet"
    args = [
        "predict",
        "--model",
        str(model_file),
        "--tickers",
        "all",
        "--as-of",
        str(as_of),
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "latest pattern confidence" in result.output and "wrote" in result.output
    written = pl.read_parquet(out)
    assert written.equals(scorer.score_bars(bars.filter(pl.col("date") <= as_of)))
    assert written["date"].max() == as_of and written.height == 5


def test_predict_cli_errors_are_one_red_line(data_dir, model_file):
    base = ["predict", "--model", str(model_file), "--data-dir", str(data_dir)]
    result = runner.invoke(app, [*base, "--tickers", "NOPE"])
    assert result.exit_code == 1 and "tickers not in the data directory: NOPE" in result.output
    early = BarStore(data_dir).read_bars(["AAPL"])["date"][100]  # 101 of the 272 bars needed
    result = runner.invoke(app, [*base, "--as-of", early.isoformat()])
    assert result.exit_code == 1 and "too short a history" in result.output
    result = runner.invoke(app, [*base, "--out", "scores.txt"])
    assert result.exit_code == 1 and "must end in .parquet or .csv" in result.output
