"""The ``engine validate`` job on hand-made prediction files, run and artifact directories."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.evaluation import evaluate_frame
from engine.evaluation.diagnostics import calibration_table, null_comparison, overfitting_monitor
from engine.evaluation.validation import validate_predictions
from engine.jobs.validate import run_validate_job
from engine.labels.permutations import permute_outcomes
from engine.model.artifacts import ARTIFACT_FORMAT, ArtifactError, sha256_file
from engine.model.prediction_sources import resolve_prediction_source
from engine.reports.validation import FIGURE_FILES, REPORT_FILE

PATTERNS = ("breakout", "reversal")
TICKERS = ("AAA", "BBB", "CCC")
N_BOOT = 60
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def naive_adjusted(p: list[float | None], method: str) -> list[float | None]:
    """Holm / Benjamini-Hochberg by their textbook formulas, O(m^2), nulls left out."""
    known = sorted((v, i) for i, v in enumerate(p) if v is not None and math.isfinite(v))
    m = len(known)
    out: list[float | None] = [None] * len(p)
    for rank, (_, i) in enumerate(known):
        if method == "holm":
            out[i] = min(1.0, max((m - j) * known[j][0] for j in range(rank + 1)))
        else:
            out[i] = min(1.0, min(m * known[j][0] / (j + 1) for j in range(rank, m)))
    return out


def with_adjusted(frame: pl.DataFrame, method: str) -> pl.DataFrame:
    """``frame`` with ``<metric>_p_value_<method>`` after each ``<metric>_p_value``."""
    order = []
    for c in frame.columns:
        order.append(c)
        if c.endswith("_p_value"):
            values = naive_adjusted(frame.get_column(c).to_list(), method)
            frame = frame.with_columns(pl.Series(f"{c}_{method}", values, dtype=pl.Float64))
            order.append(f"{c}_{method}")
    return frame.select(order)


def make_predictions(
    n_dates: int = 240,
    *,
    informative: bool = True,
    seed: int = 0,
    model_ids: tuple[str, ...] = ("wf00", "wf01"),
) -> pl.DataFrame:
    """Predictions in the train-job format; informative confidences track the outcome."""
    rng = np.random.default_rng(seed)
    start = dt.date(2021, 1, 4)
    days = [start + dt.timedelta(days=i) for i in range(n_dates)]
    window = np.arange(n_dates) * len(model_ids) // n_dates
    firsts = {k: days[int(np.flatnonzero(window == k)[0])] for k in range(len(model_ids))}
    rows: dict[str, list] = {
        c: [] for c in ("ticker", "date", "t1", "model_id", "train_end", "embargo_end")
    }
    for i, day in enumerate(days):
        k = int(window[i])
        for ticker in TICKERS:
            rows["ticker"].append(ticker)
            rows["date"].append(day)
            rows["t1"].append(day + dt.timedelta(days=7))
            rows["model_id"].append(model_ids[k])
            rows["train_end"].append(firsts[k] - dt.timedelta(days=12))
            rows["embargo_end"].append(firsts[k] - dt.timedelta(days=3))
    n = len(rows["date"])
    frame = pl.DataFrame(rows)
    columns = []
    for name in PATTERNS:
        y = (rng.uniform(size=n) < 0.4).astype(np.float64)
        if informative:
            p = 1.0 / (1.0 + np.exp(-(1.5 * (2.0 * y - 1.0) + rng.normal(0.0, 1.0, n))))
        else:
            p = rng.uniform(size=n)
        y[rng.uniform(size=n) < 0.3] = np.nan  # no event on these rows
        columns.append(pl.Series(name + "_p", p.astype(np.float32)))
        columns.append(pl.Series(name, y).fill_nan(None).cast(pl.Int8))
    return frame.with_columns(columns)


def history(kind: str, epochs: int = 20) -> pl.DataFrame:
    """Hand-made training histories: 'widening' overfits after epoch 8, 'converging' does not."""
    e = np.arange(1, epochs + 1, dtype=np.float64)
    if kind == "widening":
        train = 0.69 - 0.003 * e
        val = np.where(e <= 8, 0.70 - 0.004 * e, 0.668 + 0.003 * (e - 8))
    elif kind == "converging":
        train = 0.69 - 0.010 * (1.0 - np.exp(-e / 4.0))
        val = 0.70 - 0.012 * (1.0 - np.exp(-e / 4.0))
    elif kind == "plateau":  # flat with noise below the tolerance
        train = 0.690 - 0.0002 * np.sin(e)
        val = 0.695 + 0.0003 * np.cos(e)
    else:
        raise ValueError(kind)
    return pl.DataFrame(
        {
            "epoch": e.astype(np.int64),
            "loss": train + 0.2,
            "train_loss": train,
            "val_loss": val,
            "gap": val - train,
            "val_objective": val + 0.1,
            "learning_rate": 1e-3,
            "seconds": 0.1,
        }
    )


def write_artifact(directory: Path, model_id: str, hist: pl.DataFrame, preds: pl.DataFrame):
    """An artifact directory in the engine.model.artifacts format, without the Keras model."""
    directory.mkdir(parents=True)
    hist.write_csv(directory / "history.csv")
    preds.write_parquet(directory / "test_predictions.parquet")
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir())}
    metadata = {
        "model_id": model_id,
        "feature_names": [],
        "pattern_names": list(PATTERNS),
        "format": ARTIFACT_FORMAT,
        "files": files,
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def write_run(
    root: Path, frame: pl.DataFrame, kinds: dict[str, str], status: str = "complete"
) -> Path:
    out = root / "run"
    windows = []
    for model_id, kind in kinds.items():
        preds = frame.filter(pl.col("model_id") == model_id)
        write_artifact(out / "models" / model_id, model_id, history(kind), preds)
        windows.append({"model_id": model_id, "artifact": f"models/{model_id}"})
    frame.write_parquet(out / "predictions.parquet")
    run = {"status": status, "pattern_names": list(PATTERNS), "windows": windows}
    (out / "run.json").write_text(json.dumps(run))
    return out


@pytest.fixture(scope="module")
def informative() -> pl.DataFrame:
    return make_predictions(informative=True, seed=1)


@pytest.fixture
def predictions_file(tmp_path, informative) -> Path:
    path = tmp_path / "predictions.parquet"
    informative.write_parquet(path)
    return path


@pytest.fixture
def run_dir(tmp_path, informative) -> Path:
    return write_run(tmp_path, informative, {"wf00": "widening", "wf01": "converging"})


# ------------------------------------------------------------------------ metrics


def test_metrics_equal_evaluate_frame(predictions_file):
    report = run_validate_job(predictions=predictions_file, n_boot=N_BOOT, seed=3)
    frame = pl.read_parquet(predictions_file)
    expected = evaluate_frame(frame, PATTERNS, n_boot=N_BOOT, seed=3)
    assert_frame_equal(report.metrics, with_adjusted(expected, "holm"))
    by_model = evaluate_frame(frame, PATTERNS, by=("pattern", "model_id"), n_boot=N_BOOT, seed=3)
    assert_frame_equal(report.by_model, with_adjusted(by_model, "bh"))
    assert report.by_model.height == len(PATTERNS) * 2
    assert report.by_ticker is None and report.null_metrics is None
    assert report.patterns == list(PATTERNS)
    assert report.rows == frame.height and report.tickers == sorted(TICKERS)


def test_by_ticker_rows(predictions_file):
    report = run_validate_job(predictions=predictions_file, by_ticker=True, n_boot=N_BOOT)
    frame = pl.read_parquet(predictions_file)
    expected = evaluate_frame(frame, PATTERNS, by=("pattern", "ticker"), n_boot=N_BOOT, seed=0)
    assert_frame_equal(report.by_ticker, with_adjusted(expected, "bh"))
    assert report.by_ticker.select("pattern", "ticker").rows() == [
        (p, t) for p in sorted(PATTERNS) for t in TICKERS
    ]


def test_planted_skill_is_significant_and_its_null_is_not(predictions_file, informative):
    report = run_validate_job(
        predictions=predictions_file, null=True, null_block=10, n_boot=200, seed=5
    )
    assert report.null_metrics.schema == report.metrics.schema
    assert (report.metrics["auc"] > 0.75).all()
    assert (report.metrics["auc_p_value"] < 0.05).all()
    assert (report.null_metrics["auc_p_value"] >= 0.05).all()
    comparison = report.null_comparison
    assert comparison["pattern"].to_list() == sorted(PATTERNS)
    assert comparison["real_significant"].all()
    assert comparison["permutation_significant"].all()
    assert comparison["n_null"].to_list() == [200, 200]
    assert comparison["permutation_p_value"].to_list() == pytest.approx([1 / 201, 1 / 201])
    assert comparison["confirmed"].all()
    # the null frame is evaluate_frame on permute_outcomes of the same rows
    permuted = permute_outcomes(informative, PATTERNS, block=10, seed=5)
    expected = evaluate_frame(permuted, PATTERNS, n_boot=200, seed=5)
    assert_frame_equal(report.null_metrics, with_adjusted(expected, "holm"))


def test_first_permuted_draw_rejects_at_about_its_level_over_seeds(tmp_path):
    """A strong planted signal: every real test rejects, the first permuted draw's bootstrap
    test about 5 % of the time.

    3 data sets x 8 permutation seeds x 2 patterns = 48 null tests at the 5 % level:
    about 2.4 rejections are expected; 8 or more has probability 0.2 % for
    independent tests (binomial), so the bound fails a null that leaks.
    """
    real = null = 0
    for data_seed in range(3):
        path = tmp_path / f"predictions{data_seed}.parquet"
        make_predictions(informative=True, seed=data_seed).write_parquet(path)
        for seed in range(8):
            report = run_validate_job(
                predictions=path, null=True, null_block=10, n_null=20, n_boot=100, seed=seed
            )
            real += int(report.null_comparison["real_significant"].sum())
            null += int((report.null_metrics["auc_p_value"] < 0.05).sum())
    assert real == 48
    assert null <= 7


def test_null_comparison_flags():
    real = pl.DataFrame(
        {
            "pattern": ["a", "b", "c"],
            "auc": [0.6, 0.6, None],
            "auc_ci_low": [0.55, 0.55, None],
            "auc_ci_high": [0.65, 0.65, None],
            "auc_p_value": [0.001, 0.001, None],
        }
    )
    permutation = pl.DataFrame(
        {
            "pattern": ["a", "b", "c"],
            "auc": [0.6, 0.6, None],
            "n_null": [200, 200, 0],
            "null_auc_mean": [0.5, 0.5, None],
            "null_auc_low": [0.45, 0.45, None],
            "null_auc_high": [0.55, 0.55, None],
            "permutation_p_value": [0.005, 0.2, None],
            "permutation_p_value_se": [0.005, 0.028, None],
        }
    )
    out = null_comparison(real, permutation)
    assert out["auc_p_value_holm"].to_list() == pytest.approx([0.002, 0.002, None])
    assert out["permutation_p_value_holm"].to_list() == pytest.approx([0.01, 0.2, None])
    assert out["real_significant"].to_list() == [True, True, None]
    assert out["permutation_significant"].to_list() == [True, False, None]
    assert out["confirmed"].to_list() == [True, False, None]


def test_pattern_without_labels_and_single_class(tmp_path, informative):
    frame = informative.with_columns(
        pl.lit(None, pl.Int8).alias("breakout"),
        pl.when(pl.col("reversal").is_not_null()).then(pl.lit(1, pl.Int8)).alias("reversal"),
    )
    path = tmp_path / "p.parquet"
    frame.write_parquet(path)
    report = run_validate_job(predictions=path, n_boot=N_BOOT, report_dir=tmp_path / "r")
    rows = {r["pattern"]: r for r in report.metrics.iter_rows(named=True)}
    assert rows["breakout"]["n"] == 0 and rows["breakout"]["auc"] is None
    assert rows["reversal"]["n"] > 0 and rows["reversal"]["base_rate"] == 1.0
    assert rows["reversal"]["auc"] is None
    assert any("no labelled outcome" in n for n in report.notes)
    payload = report.to_dict()
    json.dumps(payload, allow_nan=False)
    assert {r["pattern"]: r["auc"] for r in payload["metrics"]} == {
        "breakout": None,
        "reversal": None,
    }
    assert (tmp_path / "r" / REPORT_FILE).stat().st_size > 0


# ------------------------------------------------------------------------ overfitting


def _monitor(kinds: dict[str, str], **kwargs) -> dict[str, dict]:
    frames = [history(kind).with_columns(model_id=pl.lit(m)) for m, kind in kinds.items()]
    out = overfitting_monitor(pl.concat(frames, how="diagonal_relaxed"), **kwargs)
    return {row["model_id"]: row for row in out.iter_rows(named=True)}


def test_overfitting_flag_fires_on_widening_gap_only():
    rows = _monitor({"w": "widening", "c": "converging", "p": "plateau"})
    assert rows["w"]["overfitting"] is True
    assert rows["w"]["best_epoch"] == 8 and rows["w"]["min_val_loss_epoch"] == 8
    assert rows["w"]["gap_change"] == pytest.approx(0.03)  # 5 epochs x (0.003 + 0.003)
    assert rows["w"]["val_loss_rise"] == pytest.approx(0.036)
    assert "while val_loss" in rows["w"]["reason"]
    assert rows["c"]["overfitting"] is False
    assert rows["c"]["gap_change"] < 0
    assert rows["c"]["best_epoch"] == 20
    assert rows["p"]["overfitting"] is False  # noise below the tolerance
    assert rows["w"]["best_by"] == "val_objective"


def test_best_epoch_from_val_loss_without_val_objective():
    h = history("widening").drop("val_objective").with_columns(model_id=pl.lit("w"))
    row = overfitting_monitor(h).row(0, named=True)
    assert (row["best_epoch"], row["best_by"], row["overfitting"]) == (8, "val_loss", True)
    assert row["best_gap"] == pytest.approx(0.70 - 0.004 * 8 - (0.69 - 0.003 * 8))
    # an older history's val_objective (with the L2 term) decides when present
    shifted = h.with_columns(val_objective=pl.col("val_loss") + 0.01 * pl.col("epoch"))
    assert overfitting_monitor(shifted).row(0, named=True)["best_epoch"] == 1


def test_overfitting_undetermined_on_short_history():
    h = history("widening", epochs=5).with_columns(model_id=pl.lit("short"))
    row = overfitting_monitor(h, window=5).row(0, named=True)
    assert row["overfitting"] is None and "at least 6" in row["reason"]
    assert overfitting_monitor(h, window=4).row(0, named=True)["overfitting"] is False


def test_overfitting_window_and_tolerance_matter():
    rows = _monitor({"w": "widening"}, tolerance=0.05)
    assert rows["w"]["overfitting"] is False
    with pytest.raises(ValueError, match="window"):
        _monitor({"w": "widening"}, window=0)


def test_run_directory_uses_every_history(run_dir):
    report = run_validate_job(run_dir, n_boot=N_BOOT)
    assert report.source == "run" and report.run_status == "complete"
    flags = dict(report.overfitting.select("model_id", "overfitting").rows())
    assert flags == {"wf00": True, "wf01": False}
    assert report.history.height == 40
    assert report.history.columns == [
        "model_id",
        "epoch",
        "train_loss",
        "val_loss",
        "gap",
        "val_objective",
    ]
    frame = pl.read_parquet(run_dir / "predictions.parquet")
    expected = evaluate_frame(frame, PATTERNS, n_boot=N_BOOT)
    assert_frame_equal(report.metrics, with_adjusted(expected, "holm"))
    payload = report.to_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["overfitting"]["window"] == 5
    assert [m["overfitting"] for m in payload["overfitting"]["models"]] == [True, False]
    assert len(payload["overfitting"]["history"]) == 40


def test_domain_validates_a_resolved_run_and_writes_nothing(run_dir):
    """The pipeline's route: resolve the run, validate it, no job module, no file written."""
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    source = resolve_prediction_source(run_dir)
    assert source.kind == "run" and source.predictions == run_dir / "predictions.parquet"
    assert source.histories == {m: run_dir / "models" / m / "history.csv" for m in ("wf00", "wf01")}
    report = validate_predictions(source, n_boot=N_BOOT, seed=2)
    frame = pl.read_parquet(run_dir / "predictions.parquet")
    expected = evaluate_frame(frame, PATTERNS, n_boot=N_BOOT, seed=2)
    assert_frame_equal(report.metrics, with_adjusted(expected, "holm"))
    assert dict(report.overfitting.select("model_id", "overfitting").rows()) == {
        "wf00": True,
        "wf01": False,
    }
    assert report.report is None and report.figures == []
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_validation_domain_imports_no_job_and_no_report():
    code = (
        "import sys, engine.evaluation.validation_report, engine.evaluation.validation, "
        "engine.model.run_files, engine.model.prediction_sources, engine.model.out_of_sample; "
        "bad = sorted(m for m in sys.modules if m.startswith(('engine.jobs', 'engine.reports', "
        "'engine.cli'))); print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_interrupted_run_is_noted(tmp_path, informative):
    out = write_run(tmp_path, informative, {"wf00": "converging"}, status="interrupted")
    report = run_validate_job(out, n_boot=N_BOOT)
    assert any("interrupted" in n for n in report.notes)
    assert any("['wf01'] have no window" in n for n in report.notes)


def test_run_directory_checks_artifact_checksums(run_dir):
    with open(run_dir / "models" / "wf01" / "history.csv", "a") as fh:
        fh.write("21,0.1,0.1,0.1,0.0,0.1,0.001,0.1\n")
    with pytest.raises(ArtifactError, match=r"history.csv is corrupted"):
        run_validate_job(run_dir, n_boot=N_BOOT)


# ------------------------------------------------------------------------ model artifact


def test_model_artifact(tmp_path, informative):
    preds = informative.filter(pl.col("model_id") == "wf01")
    art = write_artifact(tmp_path / "wf01", "wf01", history("widening"), preds)
    report = run_validate_job(art, n_boot=N_BOOT, seed=2)
    assert report.source == "model" and report.rows == preds.height
    assert report.overfitting["overfitting"].to_list() == [True]
    expected = evaluate_frame(preds, PATTERNS, by=("pattern", "model_id"), n_boot=N_BOOT, seed=2)
    # single window: pooled rows reused
    assert_frame_equal(report.by_model, with_adjusted(expected, "bh"))
    pooled = evaluate_frame(preds, PATTERNS, n_boot=N_BOOT, seed=2)
    assert_frame_equal(report.metrics, with_adjusted(pooled, "holm"))


def test_model_artifact_with_another_models_predictions(tmp_path, informative):
    art = write_artifact(tmp_path / "wf00", "wf00", history("converging"), informative)
    with pytest.raises(ValueError, match=r"model_ids \['wf00', 'wf01'\].*artifact is 'wf00'"):
        run_validate_job(art, n_boot=N_BOOT)


def test_model_artifact_written_by_write_model_artifact(tmp_path, informative):
    keras = pytest.importorskip("keras")
    from engine.model.artifacts import write_model_artifact

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    preds = informative.filter(pl.col("model_id") == "wf00")
    art = write_model_artifact(
        tmp_path / "wf00",
        model=model,
        metadata={"model_id": "wf00", "feature_names": ["a"], "pattern_names": list(PATTERNS)},
        history=history("converging"),
        predictions=preds,
    )
    report = run_validate_job(art, n_boot=N_BOOT)
    assert report.overfitting["overfitting"].to_list() == [False]
    assert report.metrics.height == len(PATTERNS)


def test_predictions_file_has_no_monitor(predictions_file):
    report = run_validate_job(predictions=predictions_file, n_boot=N_BOOT)
    assert report.history is None and report.overfitting is None
    assert any("overfitting monitor absent" in n for n in report.notes)
    payload = report.to_dict()
    assert payload["overfitting"] is None and payload["null"] is None
    assert payload["source"]["kind"] == "predictions"


# ------------------------------------------------------------------------ refusals


def test_in_sample_predictions_are_refused(tmp_path, informative):
    leak = informative.with_columns(
        pl.when((pl.col("ticker") == "BBB") & (pl.col("date") == dt.date(2021, 6, 1)))
        .then(pl.col("embargo_end"))
        .otherwise(pl.col("date"))
        .alias("date")
    )
    path = tmp_path / "leak.parquet"
    leak.write_parquet(path)
    with pytest.raises(
        ValueError,
        match=r"1 in-sample rows \(date <= embargo_end\); first: ticker BBB, "
        r"date 2021-05-01, model_id wf01, embargo_end 2021-05-01",
    ):
        run_validate_job(predictions=path, n_boot=N_BOOT)


@pytest.mark.parametrize(
    ("model", "predictions"),
    [pytest.param(None, None, id="neither"), pytest.param("run", "file", id="both")],
)
def test_exactly_one_input(model, predictions, run_dir, predictions_file):
    model = run_dir if model else None
    predictions = predictions_file if predictions else None
    with pytest.raises(ValueError, match="exactly one of --model"):
        run_validate_job(model, predictions)


def _write(tmp_path: Path, frame: pl.DataFrame) -> Path:
    path = tmp_path / "bad.parquet"
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        pytest.param(
            lambda f: f.drop("embargo_end"),
            ValueError,
            r"not a predictions file: it lacks key columns \['embargo_end'\]",
            id="missing key column",
        ),
        pytest.param(
            lambda f: f.drop("breakout_p", "reversal_p"),
            ValueError,
            r"not a predictions file: no pattern columns",
            id="no pattern columns",
        ),
        pytest.param(
            lambda f: f.with_columns(pl.col("breakout").cast(pl.Int16) * 2),
            ValueError,
            r"outcome column 'breakout' must hold 0, 1 or null",
            id="outcome not 0/1",
        ),
        pytest.param(
            lambda f: f.with_columns(pl.col("reversal_p") + 1.0),
            ValueError,
            r"confidence column 'reversal_p' must lie in \[0, 1\]",
            id="confidence > 1",
        ),
        pytest.param(
            lambda f: f.with_columns(pl.col("date").cast(pl.String)),
            ValueError,
            r"column 'date' must hold dates, got String",
            id="date as text",
        ),
        pytest.param(
            lambda f: pl.concat([f, f.head(1)]),
            ValueError,
            r"1 rows repeat a \(ticker, date, model_id\)|2 rows repeat",
            id="duplicate",
        ),
    ],
)
def test_bad_predictions_are_refused(tmp_path, informative, change, error, match):
    path = _write(tmp_path, change(informative))
    with pytest.raises(error, match=match):
        run_validate_job(predictions=path, n_boot=N_BOOT)


def test_bad_paths(tmp_path, informative):
    with pytest.raises(FileNotFoundError, match="predictions file .* does not exist"):
        run_validate_job(predictions=tmp_path / "missing.parquet")
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet at all")
    with pytest.raises(ValueError, match=r"notes.parquet is not a predictions file"):
        run_validate_job(predictions=text)
    with pytest.raises(ValueError, match="neither a training run directory"):
        run_validate_job(tmp_path)
    with pytest.raises(ValueError, match="is a file, not a run or model artifact directory"):
        run_validate_job(text)
    with pytest.raises(FileNotFoundError, match="model path .* does not exist"):
        run_validate_job(tmp_path / "nowhere")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "running", "windows": []}))
    with pytest.raises(FileNotFoundError, match=r"predictions.parquet is missing"):
        run_validate_job(run)


def test_run_with_missing_history(run_dir):
    (run_dir / "models" / "wf00" / "history.csv").unlink()
    with pytest.raises(ArtifactError, match=r"history.csv is missing"):
        run_validate_job(run_dir, n_boot=N_BOOT)


# ------------------------------------------------------------------------ calibration


def test_calibration_table_matches_a_naive_count():
    rng = np.random.default_rng(4)
    n = 500
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(np.int8)
    frame = pl.DataFrame({"x": y, "x_p": p})
    out = calibration_table(frame, ["x"], bins=5, strategy="uniform")
    for row in out.iter_rows(named=True):
        lo, hi = row["bin"] / 5, (row["bin"] + 1) / 5
        inside = (p >= lo) & ((p < hi) if row["bin"] < 4 else (p <= hi))
        assert row["n"] == inside.sum()
        assert row["mean_confidence"] == pytest.approx(p[inside].mean())
        assert row["observed_rate"] == pytest.approx(y[inside].mean())
    quantile = calibration_table(frame, ["x"], bins=4)
    assert quantile["n"].to_list() == [125, 125, 125, 125]
    assert quantile["observed_rate"].is_sorted()  # outcome follows the score


# ------------------------------------------------------------------------ report files


def test_report_files(run_dir, tmp_path):
    out = tmp_path / "report"
    report = run_validate_job(run_dir, null=True, by_ticker=True, n_boot=N_BOOT, report_dir=out)
    assert report.report == out / REPORT_FILE
    assert sorted(p.name for p in report.figures) == sorted(FIGURE_FILES.values())
    page = (out / REPORT_FILE).read_text()
    for name in FIGURE_FILES.values():
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        assert f'href="{name}"' in page
        assert base64.b64encode(data).decode() in page  # embedded: the page stands alone
    assert page.count("data:image/png;base64,") == len(FIGURE_FILES)
    for text in ("Overfitting monitor", "Null test", "wf00", "breakout", "reversal", "CCC"):
        assert text in page
    payload = report.to_dict()
    assert payload["report"] == str(out / REPORT_FILE)
    assert len(payload["figures"]) == len(FIGURE_FILES)


def test_report_without_histories_or_null(predictions_file, tmp_path):
    out = tmp_path / "report"
    report = run_validate_job(predictions=predictions_file, n_boot=N_BOOT, report_dir=out)
    assert sorted(p.name for p in report.figures) == ["auc_by_window.png", "calibration.png"]
    page = (out / REPORT_FILE).read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "no training histories" in page


# ------------------------------------------------------------------------ to_dict layout


def test_to_dict_layout(run_dir):
    report = run_validate_job(run_dir, null=True, by_ticker=True, n_boot=N_BOOT)
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(payload) == {
        "source",
        "patterns",
        "rows",
        "tickers",
        "start",
        "end",
        "settings",
        "windows",
        "metrics",
        "by_model",
        "by_ticker",
        "by_regime",
        "regime_coverage",
        "null",
        "calibration",
        "overfitting",
        "notes",
        "report",
        "figures",
        "seconds",
    }
    assert payload["start"] == "2021-01-04" and payload["end"] == "2021-08-31"
    assert [w["model_id"] for w in payload["windows"]] == ["wf00", "wf01"]
    metric = payload["metrics"][0]
    for key in (
        "pattern",
        "n",
        "events",
        "base_rate",
        "auc",
        "auc_ci_low",
        "auc_ci_high",
        "auc_p_value",
        "brier_reference",
        "log_loss_reference",
        "point_biserial",
    ):
        assert key in metric
    assert metric["auc"] == round(metric["auc"], 6)
    assert len(payload["by_ticker"]) == len(PATTERNS) * len(TICKERS)
    assert set(payload["null"]) == {
        "block",
        "n_null",
        "seed",
        "significance",
        "metrics",
        "comparison",
    }
    assert payload["null"]["comparison"][0]["confirmed"] is True
    assert report.summary_lines()[0].startswith(f"validated run {run_dir}")
