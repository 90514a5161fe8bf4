"""Training runs (engine/jobs/train.py): planted signal, walk-forward bookkeeping, Ctrl-C, nulls.

The planted panel is built from noise: 17 i.i.d. normal features per
(ticker, day), and three heads with random event days:

* ``planted``: 1 when feature 0 two rows before the window's last row is
  above 0 (10 % of the labels flipped); a model that sees the window can
  learn it, so its out-of-sample AUC interval must exclude 0.5;
* ``future``: the same rule on feature 0 two days *after* the window's end;
  the window holds no information about it (features are independent in
  time), so a leak-free pipeline shows no skill, while one that let future
  rows into a window would;
* ``coin``: a fair coin, independent of everything.

Both null heads must have AUC intervals that contain 0.5 (level 0.99 for
each, a Bonferroni-style margin for two null checks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluation import evaluate_frame
from engine.features.build import FEATURE_NAMES
from engine.labels.permutations import block_permutation
from engine.labels.targets import compute_targets
from engine.model.artifacts import load_model_artifact, read_metadata
from engine.model.network import ModelConfig
from engine.model.run_files import PREDICTION_KEYS
from engine.model.run_windows import _embargo_end
from engine.model.runs import RunSettings, TrainDataset, prepare_dataset, train_windows
from engine.model.sequences import build_sequences
from engine.model.trainer import predict
from engine.splits import WalkForward

HORIZON = 5
EMBARGO = 5
LAG = 2
PATTERNS = ("planted", "future", "coin")
SPLITTER = WalkForward(
    train_months=12, validation_months=6, test_months=6, step_months=6, embargo_days=EMBARGO
)
SETTINGS = RunSettings(embargo_days=EMBARGO, horizon=HORIZON, seed=3, deterministic=True)
# the pipeline is the point here, not the SPEC network: a small, lightly
# regularised backbone learns the planted rule in a few epochs
CONFIG = ModelConfig(
    lstm_units=16,
    lstm2_units=8,
    dense_units=8,
    lstm_dropout=0.1,
    lstm_recurrent_dropout=0.0,
    head_dropout=0.1,
    learning_rate=1e-2,
    epochs=6,
)
LEVEL = 0.99


def _panel(seed=0, n_tickers=10, n_days=700, flip=0.1, event_rate=0.6):
    """Feature and target frames of the planted panel (see the module docstring)."""
    rng = np.random.default_rng(seed)
    days = np.busday_offset(np.datetime64("2010-01-04", "D"), np.arange(n_days), roll="forward")
    t1 = np.full(n_days, np.datetime64("NaT"), dtype="datetime64[D]")
    t1[:-HORIZON] = days[HORIZON:]
    features, targets = [], []
    for k in range(n_tickers):
        x = rng.normal(size=(n_days, len(FEATURE_NAMES))).astype(np.float32)
        past = np.zeros(n_days, dtype=bool)
        past[LAG:] = x[:-LAG, 0] > 0
        ahead = np.zeros(n_days, dtype=bool)
        ahead[:-LAG] = x[LAG:, 0] > 0
        labels = {}
        for name, rule in (("planted", past), ("future", ahead)):
            flipped = rng.uniform(size=n_days) < flip
            labels[name] = np.where(flipped, ~rule, rule).astype(np.float64)
        labels["coin"] = (rng.uniform(size=n_days) < 0.5).astype(np.float64)
        for values in labels.values():
            values[rng.uniform(size=n_days) >= event_rate] = np.nan  # no event that day
            values[np.isnat(t1)] = np.nan  # outcome not known yet
            values[:LAG] = np.nan
        ticker = f"T{k:02d}"
        features.append(
            pl.DataFrame(
                {"ticker": ticker, "date": days}
                | {name: x[:, j] for j, name in enumerate(FEATURE_NAMES)}
            )
        )
        targets.append(
            pl.DataFrame({"ticker": ticker, "date": days, "t1": t1} | labels).with_columns(
                pl.col(PATTERNS).fill_nan(None).cast(pl.Int8)
            )
        )
    return pl.concat(features), pl.concat(targets), days


def _dataset(features, targets, days, train_stride=1):
    return TrainDataset(
        train_set=build_sequences(features, targets, stride=train_stride, pattern_names=PATTERNS),
        score_set=build_sequences(features, targets, stride=1, pattern_names=PATTERNS),
        calendar=days,
        info={"panel": "planted"},
    )


def _read_run(out):
    return json.loads((out / "run.json").read_text())


def _np_day(value):
    return np.datetime64(str(value), "D")


@pytest.fixture(scope="module")
def panel():
    return _panel()


@pytest.fixture(scope="module")
def dataset(panel):
    return _dataset(*panel)


@pytest.fixture(scope="module")
def planted_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("planted") / "run"
    events = []
    report = train_windows(
        dataset, out, settings=SETTINGS, config=CONFIG, splitter=SPLITTER,
        progress=events.append,
    )  # fmt: skip
    predictions = pl.read_parquet(out / "predictions.parquet")
    return out, report, predictions, events


# ---------------------------------------------------------------------------
# 1. planted signal vs noise, out of sample


def test_planted_signal_is_found_and_nulls_are_not(planted_run):
    out, report, predictions, _ = planted_run
    assert report.status == "complete" and len(report.windows) == 2
    table = evaluate_frame(predictions, PATTERNS, n_boot=1000, seed=0, level=LEVEL)
    print()
    for row in table.iter_rows(named=True):
        print(
            f"{row['pattern']:8s} n={row['n']:5d} AUC={row['auc']:.3f} "
            f"{LEVEL:.0%} CI [{row['auc_ci_low']:.3f}, {row['auc_ci_high']:.3f}] "
            f"p={row['auc_p_value']:.4f}"
        )
    rows = {r["pattern"]: r for r in table.iter_rows(named=True)}
    assert rows["planted"]["auc_ci_low"] > 0.5
    for name in ("future", "coin"):
        assert rows[name]["auc_ci_low"] < 0.5 < rows[name]["auc_ci_high"], name
    # every head was scored on enough events for the intervals to mean something
    assert min(r["n"] for r in rows.values()) > 1000


# ---------------------------------------------------------------------------
# 4. walk-forward bookkeeping


def _independent_split(dataset, bounds):
    """Training and validation rows and their last label date, recomputed by hand.

    From the window's declared bounds and the definitions, not the splitter:
    a training sample is dated in ``[train start, validation start)`` and its
    label ends before the validation start; a validation sample is dated in
    ``[validation start, test start)``; both are kept only when at least
    ``EMBARGO`` trading days lie strictly between their label end and the test
    start (which puts the validation labels before the test start too).
    Returns the kept rows, their last label date and how many rows the
    embargo alone dropped.
    """
    train_start, val_start, test_start = (_np_day(b) for b in bounds[:3])
    index = dataset.train_set.index
    dates = index["date"].to_numpy().astype("datetime64[D]")
    t1 = index["t1"].to_numpy().astype("datetime64[D]")
    calendar = dataset.calendar
    kept = {"train": [], "validation": []}
    embargo_dropped = 0
    for i in range(len(dates)):
        if np.isnat(t1[i]):
            continue
        if train_start <= dates[i] < val_start:
            name, purged = "train", t1[i] >= val_start
        elif val_start <= dates[i] < test_start:
            name, purged = "validation", t1[i] >= test_start
        else:
            continue
        if purged:
            continue
        if ((calendar > t1[i]) & (calendar < test_start)).sum() >= EMBARGO:
            kept[name].append(i)
        else:
            embargo_dropped += 1
    kept_train = np.array(kept["train"], dtype=np.int64)
    kept_val = np.array(kept["validation"], dtype=np.int64)
    train_end = t1[np.concatenate([kept_train, kept_val])].max()
    return kept_train, kept_val, train_end, embargo_dropped


def test_walk_forward_predictions_are_out_of_sample(planted_run, dataset):
    out, report, predictions, _ = planted_run
    run = _read_run(out)
    assert run["status"] == "complete" and run["planned_windows"] == len(run["windows"]) == 2
    assert predictions.columns[: len(PREDICTION_KEYS)] == list(PREDICTION_KEYS)
    # every prediction is dated after its model's embargo end, which is after its train end
    assert predictions.filter(pl.col("date") <= pl.col("embargo_end")).height == 0
    assert predictions.filter(pl.col("embargo_end") < pl.col("train_end")).height == 0
    # each (ticker, date) is predicted exactly once
    assert not predictions.select("ticker", "date").is_duplicated().any()

    windows = run["windows"]
    starts = [_np_day(w["test_start"]) for w in windows]
    ends = [_np_day(w["test_end"]) for w in windows]
    assert starts == sorted(starts)
    for k in range(len(windows) - 1):
        assert ends[k] <= starts[k + 1]  # disjoint test periods, in order
    score_index = dataset.score_set.index
    for w, a, b in zip(windows, starts, ends, strict=True):
        mine = predictions.filter(pl.col("model_id") == w["model_id"])
        days = mine["date"].to_numpy().astype("datetime64[D]")
        assert days.min() >= a and days.max() < b
        # the whole test period is scored: every stride-1 sample in it, no other
        expected = score_index.filter(
            pl.col("date").is_between(a.astype(dt.date), b.astype(dt.date), closed="left")
        ).select("ticker", "date")
        assert (
            mine.select("ticker", "date")
            .sort("ticker", "date")
            .equals(expected.sort("ticker", "date"))
        )
        assert mine.height == w["n_test"]


def test_train_end_is_the_last_label_the_model_used(planted_run, dataset):
    out, _, predictions, _ = planted_run
    calendar = dataset.calendar
    for w in _read_run(out)["windows"]:
        bounds = (w["train_start"], w["validation_start"], w["test_start"])
        kept_train, kept_val, train_end, dropped = _independent_split(dataset, bounds)
        assert _np_day(w["train_end"]) == train_end
        assert (w["n_train"], w["n_validation"]) == (len(kept_train), len(kept_val))
        assert w["embargo_dropped"] == dropped > 0
        # embargo end: the EMBARGO-th trading day after train end
        later = calendar[calendar > train_end]
        assert _np_day(w["embargo_end"]) == later[EMBARGO - 1]
        meta = read_metadata(out / w["artifact"])
        assert meta["split"]["train_end"] == w["train_end"]
        assert meta["split"]["embargo_end"] == w["embargo_end"]
        mine = predictions.filter(pl.col("model_id") == w["model_id"])
        assert mine["train_end"].unique().to_list() == [train_end.astype(dt.date)]
        assert mine["embargo_end"].unique().to_list() == [later[EMBARGO - 1].astype(dt.date)]


def test_prediction_outcomes_are_the_panel_labels(planted_run, panel):
    _, _, predictions, _ = planted_run
    targets = panel[1]
    joined = predictions.select("ticker", "date", *PATTERNS).join(
        targets.select("ticker", "date", *PATTERNS), on=["ticker", "date"], suffix="_label"
    )
    assert joined.height == predictions.height
    for name in PATTERNS:
        assert joined[name].equals(joined[f"{name}_label"], null_equal=True, check_names=False)
        confidence = predictions[f"{name}_p"]
        assert confidence.dtype == pl.Float32
        assert confidence.null_count() == 0 and confidence.is_between(0, 1).all()


def test_artifacts_of_the_run_load_and_reproduce_predictions(planted_run, dataset):
    out, _, predictions, _ = planted_run
    w = _read_run(out)["windows"][1]
    artifact = load_model_artifact(out / w["artifact"])
    assert artifact.model_id == w["model_id"]
    saved = pl.read_parquet(out / w["artifact"] / "test_predictions.parquet")
    assert saved.equals(predictions.filter(pl.col("model_id") == w["model_id"]))
    rows = np.flatnonzero(
        dataset.score_set.index["date"].is_in(saved["date"].unique().implode()).to_numpy()
    )
    confidence = predict(artifact.model, dataset.score_set.X[rows])
    np.testing.assert_allclose(confidence[:, 0], saved["planted_p"].to_numpy(), atol=1e-6)


def test_progress_events(planted_run):
    _, report, _, events = planted_run
    kinds = [e["kind"] for e in events]
    assert kinds.count("window") == kinds.count("window_done") == len(report.windows)
    assert kinds.count("epoch") == sum(w.epochs for w in report.windows)
    assert kinds[0] == "window" and kinds[-1] == "window_done"


# ---------------------------------------------------------------------------
# 2. normalization from the training fold only, in a run


@pytest.fixture(scope="module")
def interrupted_run(dataset, planted_run, tmp_path_factory):
    """Same panel with the first window's test-period features scaled and shifted;
    Ctrl-C at the second window's first epoch."""
    first_test = _np_day(_read_run(planted_run[0])["windows"][0]["test_start"])

    def scramble(seqs):
        after = seqs.index["date"].to_numpy().astype("datetime64[D]") >= first_test
        X = seqs.X.copy()
        X[after] = X[after] * 5.0 + 2.0
        return dataclasses.replace(seqs, X=X)

    changed = dataclasses.replace(
        dataset, train_set=scramble(dataset.train_set), score_set=scramble(dataset.score_set)
    )
    out = tmp_path_factory.mktemp("interrupted") / "run"

    def ctrl_c(event):
        if event["kind"] == "epoch" and event["model_id"] == "wf01" and event["epoch"] == 1:
            raise KeyboardInterrupt

    config = dataclasses.replace(CONFIG, epochs=1)
    with pytest.raises(KeyboardInterrupt):
        train_windows(
            changed, out, settings=SETTINGS, config=config, splitter=SPLITTER, progress=ctrl_c
        )
    return out, changed


def test_normalization_ignores_validation_and_test_data(planted_run, interrupted_run, dataset):
    out, _, _, _ = planted_run
    w = _read_run(out)["windows"][0]
    original = read_metadata(out / w["artifact"])["normalization"]
    changed_out, changed = interrupted_run
    changed_meta = read_metadata(changed_out / "models" / w["model_id"])
    assert changed_meta["normalization"] == original
    # and it is the training fold's per-feature mean and variance, by NumPy
    bounds = (w["train_start"], w["validation_start"], w["test_start"])
    kept_train, *_ = _independent_split(dataset, bounds)
    rows = dataset.train_set.X[kept_train].reshape(-1, len(FEATURE_NAMES)).astype(np.float64)
    np.testing.assert_allclose(original["mean"], rows.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(original["variance"], rows.var(axis=0), rtol=1e-10)
    model = load_model_artifact(changed_out / "models" / w["model_id"]).model
    layer = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(layer.mean), rows.mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.ravel(layer.variance), rows.var(axis=0), rtol=1e-6)
    # the scrambled test features did reach the model: its predictions differ
    before = pl.read_parquet(out / w["artifact"] / "test_predictions.parquet")
    after = pl.read_parquet(changed_out / "models" / w["model_id"] / "test_predictions.parquet")
    assert before.select("ticker", "date").equals(after.select("ticker", "date"))
    assert np.abs(before["planted_p"].to_numpy() - after["planted_p"].to_numpy()).max() > 1e-3


# ---------------------------------------------------------------------------
# 8. Ctrl-C, refusing to overwrite


def test_ctrl_c_keeps_finished_windows(interrupted_run):
    out, _ = interrupted_run
    run = _read_run(out)
    assert run["status"] == "interrupted"
    assert [w["model_id"] for w in run["windows"]] == ["wf00"]
    assert os.listdir(out / "models") == ["wf00"]  # no half-written wf01, no staging directory
    artifact = load_model_artifact(out / "models" / "wf00")  # checksums verified
    assert artifact.metadata["split"]["window"] == 0
    predictions = pl.read_parquet(out / "predictions.parquet")
    assert predictions["model_id"].unique().to_list() == ["wf00"]
    assert predictions.equals(pl.read_parquet(out / "models" / "wf00" / "test_predictions.parquet"))


def test_failed_run_says_so(dataset, tmp_path):
    def broken(event):
        if event["kind"] == "window":
            raise RuntimeError("feature store went away")

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="went away"):
        train_windows(dataset, out, settings=SETTINGS, config=CONFIG, splitter=SPLITTER,
                      progress=broken)  # fmt: skip
    run = _read_run(out)
    assert run["status"] == "failed"
    assert "feature store went away" in run["error"]
    assert run["windows"] == []


def test_existing_run_directory_is_not_overwritten(interrupted_run, tmp_path):
    out, changed = interrupted_run
    before = (out / "run.json").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        train_windows(changed, out, settings=SETTINGS, config=CONFIG, splitter=SPLITTER)
    assert (out / "run.json").read_bytes() == before
    stranger = tmp_path / "not_a_run"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a training run"):
        train_windows(
            changed, stranger, settings=SETTINGS, config=CONFIG, splitter=SPLITTER, overwrite=True
        )
    assert (stranger / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------
# the embargo helpers, by their definitions


@st.composite
def calendars(draw):
    n = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    return np.datetime64("2015-06-01", "D") + np.cumsum(gaps).astype("timedelta64[D]")


def test_the_run_embargo_lives_in_the_splitter(dataset, tmp_path):
    """RunSettings.splitter() carries embargo_days; a splitter that disagrees is refused."""
    for split in ("walk-forward", "holdout"):
        settings_ = dataclasses.replace(SETTINGS, split=split, embargo_days=7)
        assert settings_.splitter().embargo_days == 7
    other = WalkForward(train_months=12, validation_months=6, test_months=6, step_months=6)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"embargo_days=0 differs from settings.embargo_days=5"):
        train_windows(dataset, out, settings=SETTINGS, config=CONFIG, splitter=other)
    assert not out.exists()


@settings(max_examples=100, deadline=None)
@given(calendars(), st.integers(0, 8), st.data())
def test_embargo_end_is_the_nth_trading_day_after(calendar, embargo, data):
    offset = data.draw(st.integers(0, int((calendar[-1] - calendar[0]).astype(np.int64))))
    train_end = calendar[0] + np.timedelta64(offset, "D")  # a trading day or not
    end = _embargo_end(calendar, train_end, embargo)
    assert end >= train_end
    later = calendar[calendar > train_end]
    if embargo == 0:
        assert end == train_end
    elif embargo <= len(later):
        assert end == later[embargo - 1]


# ---------------------------------------------------------------------------
# a null-label run on the demo universe


@pytest.fixture(scope="module")
def demo_bars():
    from engine.data.demo import generate_demo_universe

    bars = generate_demo_universe(seed=7).bars
    return bars.filter(
        pl.col("ticker").is_in(["AAPL", "SPY", "XLK"]) & (pl.col("date") >= dt.date(2010, 1, 1))
    )


def test_null_label_run(demo_bars, tmp_path):
    settings_ = RunSettings(split="holdout", null_labels=True, null_block=20, seed=4)
    real = prepare_dataset(demo_bars, ["AAPL"], dataclasses.replace(settings_, null_labels=False))
    null = prepare_dataset(demo_bars, ["AAPL"], settings_)
    # same windows, same features; only the labels moved
    assert null.score_set.index.equals(real.score_set.index)
    np.testing.assert_array_equal(null.score_set.X, real.score_set.X)
    assert null.info["null_labels"] and not real.info["null_labels"]
    # the labels are the real ones of block-permuted dates (one permutation, block 20)
    targets = compute_targets(demo_bars, horizon=HORIZON, tickers=["AAPL"]).sort("date")
    calendar = targets["date"]
    order = block_permutation(calendar.len(), 20, 4)
    patterns = null.score_set.pattern_names
    source = dict(zip(calendar.to_list(), calendar.gather(order).to_list(), strict=True))
    by_date = {r["date"]: r for r in targets.iter_rows(named=True)}
    y = null.score_set.y
    for i, d in enumerate(null.score_set.index["date"].to_list()):
        want = [by_date[source[d]][p] for p in patterns]
        want = np.array([np.nan if v is None else v for v in want], dtype=np.float32)
        np.testing.assert_array_equal(y[i], want)
    assert not np.array_equal(np.nan_to_num(y, nan=-1), np.nan_to_num(real.score_set.y, nan=-1))

    out = tmp_path / "null_run"
    report = train_windows(null, out, settings=settings_, config=ModelConfig(epochs=1))
    assert report.status == "complete" and len(report.windows) == 1
    run = _read_run(out)
    assert run["status"] == "complete" and run["data"]["null_labels"] is True
    meta = read_metadata(out / report.windows[0].artifact)
    assert meta["settings"]["null_labels"] is True
    predictions = pl.read_parquet(out / "predictions.parquet")
    assert predictions["model_id"].unique().to_list() == ["holdout00"]
    assert predictions.filter(pl.col("date") <= pl.col("embargo_end")).height == 0
