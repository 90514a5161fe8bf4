"""Training on uneven real history (issue 17, items 3, 5, 6), end to end through ``engine train``.

The universe mimics the real trial: two tickers (and the market) exist from
the start, three more join about 18 months later and one (SHORT) has only 200
bars, fewer than one labelled window needs. It has no SPY or XLK: the market
is MKT (``--market``), which pays dividends (``adj_close`` differs from
``close``), and every ticker's sector is MKT (``--sector-map``).

* Walk-forward windows whose training fold holds fewer sequences than
  ``--min-train-sequences`` are skipped and listed; the minimum is set
  between the smallest and the largest fold, counted independently from the
  training grid (samples dated in the training period whose label ends
  before the validation start).
* SHORT is reported, with its bar count, and contributes no sequence.
* The model metadata records the price basis, the market and the sector map;
  the exported ONNX file carries them and the scorer applies them: scores from
  raw bars with ``adj_close`` equal scores of windows computed from bars
  adjusted by hand, and bars that lack the ``adj_close`` the model was
  trained with are refused.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from engine.data.loading import BarInputs, load_bars
from engine.data.store import BarStore
from engine.features.build import FEATURE_NAMES, build_features, compute_features
from engine.jobs.train import run_train_job
from engine.model.runs import RunSettings, prepare_dataset

pytestmark = pytest.mark.slow

N_DAYS = 1100
LATE = 380  # CCC, DDD and EEE start here
SETTINGS = dict(train_months=12, validation_months=6, test_months=6, step_months=6, seed=1)
INPUTS = BarInputs(
    market="MKT",
    sector_map={t: "MKT" for t in ("AAA", "BBB", "CCC", "DDD", "EEE", "SHORT")},
)


def _universe(seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.busday_offset(np.datetime64("2012-01-02", "D"), np.arange(N_DAYS), roll="forward")
    market = rng.normal(0.0003, 0.01, N_DAYS)
    spans = {t: (0, N_DAYS) for t in ("MKT", "AAA", "BBB")}
    spans |= {t: (LATE, N_DAYS) for t in ("CCC", "DDD", "EEE")}
    spans["SHORT"] = (N_DAYS - 200, N_DAYS)
    frames = []
    for ticker, (a, b) in spans.items():
        r = market[a:b] * (1.0 if ticker == "MKT" else rng.uniform(0.5, 1.5))
        if ticker != "MKT":
            r = r + rng.normal(0, 0.012, b - a)
        close = 30 * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, 0.004, b - a))
        frame = pl.DataFrame(
            {"ticker": ticker, "date": [d.astype(dt.date) for d in days[a:b]], "open": open_,
             "high": np.maximum(open_, close) * 1.006, "low": np.minimum(open_, close) * 0.994,
             "close": close, "volume": rng.integers(1_000, 20_000, b - a).astype(float)}
        )  # fmt: skip
        if ticker == "MKT":  # a 1 % dividend every 63 days: adj_close differs from close
            factor = np.ones(b - a)
            for ex in range(63, b - a, 63):
                factor[:ex] *= 0.99
            frame = frame.with_columns(adj_close=pl.Series(close * factor))
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed")


def _train_folds(store: BarStore, settings: RunSettings) -> list[int]:
    """Training-fold sizes per window, counted from the training grid by hand."""
    loaded = load_bars(store, "all", inputs=INPUTS)
    features = build_features(
        loaded.bars, tickers=loaded.tickers, market="MKT", sector_map=loaded.sectors
    )
    dataset = prepare_dataset(loaded.bars, loaded.tickers, settings, features=features)
    index = dataset.train_set.index
    dates = index.get_column("date").to_numpy().astype("datetime64[D]")
    t1 = index.get_column("t1").to_numpy().astype("datetime64[D]")
    sizes = []
    for train_start, val_start, _, _ in settings.splitter().windows(index):
        in_train = (dates >= train_start) & (dates < val_start) & (t1 < val_start)
        sizes.append(int(in_train.sum()))
    return sizes


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from engine.model.network import ModelConfig

    root = tmp_path_factory.mktemp("history")
    store = BarStore(root / "data")
    store.write(_universe())
    probe = RunSettings(**SETTINGS)
    sizes = _train_folds(store, probe)
    minimum = (min(sizes) + max(sizes)) // 2
    settings = RunSettings(**SETTINGS, min_train_sequences=minimum)
    config = ModelConfig(lstm_units=8, lstm2_units=4, dense_units=4, epochs=1, batch_size=128)
    report = run_train_job(store, "all", settings=settings, config=config, out=root / "run",
                           inputs=INPUTS)  # fmt: skip
    return store, report, sizes, minimum


def test_windows_below_the_minimum_are_skipped_and_listed(trained):
    _, report, sizes, minimum = trained
    assert min(sizes) < minimum <= max(sizes)
    expected_skipped = [f"wf{k:02d}" for k, n in enumerate(sizes) if n < minimum]
    assert expected_skipped  # the early windows, with two tickers only
    assert [w["model_id"] for w in report.skipped_windows] == expected_skipped
    assert [w["n_train"] for w in report.skipped_windows] == [n for n in sizes if n < minimum]
    trained_ids = [w.model_id for w in report.windows]
    assert trained_ids == [f"wf{k:02d}" for k, n in enumerate(sizes) if n >= minimum]
    assert [w.n_train for w in report.windows] == [n for n in sizes if n >= minimum]
    run = json.loads((report.out / "run.json").read_text())
    assert [w["model_id"] for w in run["skipped_windows"]] == expected_skipped
    assert sorted(p.name for p in (report.out / "models").iterdir()) == trained_ids
    predictions = pl.read_parquet(report.predictions)
    assert sorted(predictions.get_column("model_id").unique()) == trained_ids


def test_a_ticker_too_short_for_one_window_is_reported(trained):
    _, report, _, _ = trained
    assert report.data["short_history"] == {"SHORT": 200}
    assert report.data["sequences_per_ticker"]["SHORT"] == 0
    assert all(report.data["sequences_per_ticker"][t] > 0 for t in ("AAA", "CCC", "MKT"))


def test_the_model_records_prices_market_and_sector_map(trained):
    _, report, _, _ = trained
    metadata = json.loads((report.out / "models" / report.windows[-1].model_id /
                           "metadata.json").read_text())  # fmt: skip
    data = metadata["data"]
    assert data["prices"]["mode"] == "adjusted" and data["prices"]["adjusted"] == ["MKT"]
    assert data["market"] == "MKT"
    assert data["sector_map"] == dict(INPUTS.sector_map) | {"MKT": "MKT"}  # the market: itself


def test_nothing_is_trained_when_every_window_is_too_small(trained, tmp_path):
    store, _, sizes, _ = trained
    settings = RunSettings(**SETTINGS, min_train_sequences=max(sizes) + 1)
    with pytest.raises(ValueError, match="every walk-forward window has fewer than"):
        run_train_job(store, "all", settings=settings, out=tmp_path / "run", inputs=INPUTS)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    from export.onnx_export import export_onnx

    store, report, _, _ = trained
    model_dir = report.out / "models" / report.windows[-1].model_id
    export_onnx(model_dir, data_dir=store.data_dir)  # model_dir/model.onnx
    return store, report, model_dir


def test_pandas_bars_are_refused_with_the_conversion_to_use(exported):
    from export.scorer import PatternScorer, ScoringError

    store, _, model_dir = exported
    scorer = PatternScorer.load(model_dir / "model.onnx")
    stored = store.read_bars()
    with pytest.raises(ScoringError, match=r"a pandas DataFrame; convert it with pl\.from_pandas"):
        scorer.score_bars(stored.to_pandas(), tickers=["AAA"])
    converted = pl.from_pandas(stored.to_pandas())  # what the message says to do works
    assert scorer.score_bars(converted, tickers=["AAA"]).equals(
        scorer.score_bars(stored, tickers=["AAA"])
    )
    with pytest.raises(ScoringError, match="bars must be a polars DataFrame, got list"):
        scorer.score_bars(stored.to_dicts(), tickers=["AAA"])


def test_sector_map_may_extend_but_not_contradict_the_model(exported):
    from export.scorer import PatternScorer, ScoringError

    store, _, model_dir = exported
    scorer = PatternScorer.load(model_dir / "model.onnx")
    with pytest.raises(ScoringError, match="AAA: MKT in the model, XLK given"):
        scorer.score_bars(store.read_bars(), tickers=["AAA"], sector_map={"AAA": "XLK"})
    same = scorer.score_bars(store.read_bars(), tickers=["AAA"], sector_map={"AAA": "MKT"})
    assert same.equals(scorer.score_bars(store.read_bars(), tickers=["AAA"]))


def test_cli_predict_takes_the_artifact_directory_and_checks_the_pins(exported, tmp_path):
    from typer.testing import CliRunner

    from engine.cli import app

    store, report, model_dir = exported
    runner = CliRunner()
    base = ["predict", "--tickers", "AAA,CCC", "--data-dir", str(store.data_dir)]
    result = runner.invoke(app, [*base, "--model", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == str(model_dir / "model.onnx")
    assert summary["prices"]["mode"] == "adjusted" and summary["market"] == "MKT"
    refused = runner.invoke(app, [*base, "--model", str(model_dir), "--market", "SPY"])
    assert refused.exit_code == 1 and "trained with the market MKT" in refused.output
    refused = runner.invoke(app, [*base, "--model", str(model_dir), "--prices", "raw"])
    assert refused.exit_code == 1 and "trained on adjusted prices" in refused.output
    run_dir = runner.invoke(app, [*base, "--model", str(report.out)])
    assert run_dir.exit_code == 1 and "is a training run, not an ONNX model" in run_dir.output
    assert "Traceback" not in run_dir.output


def test_cli_export_on_a_run_directory_lists_its_models(exported):
    from typer.testing import CliRunner

    from engine.cli import app

    _, report, _ = exported
    result = CliRunner().invoke(app, ["export-onnx", "--model", str(report.out)])
    assert result.exit_code == 1
    assert "is a training run, not one model" in result.output
    assert report.windows[-1].model_id in result.output
    assert "Traceback" not in result.output


def test_the_scorer_applies_the_models_price_basis(exported):
    from export.scorer import PatternScorer, ScoringError

    store, _, model_dir = exported
    scorer = PatternScorer.load(model_dir / "model.onnx")
    assert scorer.prices.mode == "adjusted"
    stored = store.read_bars()  # raw prices with adj_close, as a user would pass them
    scores = scorer.score_bars(stored, tickers=["AAA", "MKT"])

    by_hand = stored.with_columns(  # OHLC x adj_close / close where adj_close exists
        pl.col(c) * pl.coalesce(pl.col("adj_close") / pl.col("close"), pl.lit(1.0))
        for c in ("open", "high", "low", "close")
    )
    features = compute_features(
        by_hand, tickers=["AAA", "MKT"], market="MKT",
        sector_map=dict(INPUTS.sector_map) | {"MKT": "MKT"},
        vix_variant=scorer.vix_variant,
    )  # fmt: skip
    expected = scorer.score(_last_windows(features, scorer.sequence_length))
    got = scores.select([f"{p}_p" for p in scorer.pattern_names]).to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    unadjusted = compute_features(
        stored, tickers=["AAA", "MKT"], market="MKT",
        sector_map=dict(INPUTS.sector_map) | {"MKT": "MKT"}, vix_variant=scorer.vix_variant,
    )  # fmt: skip
    wrong = scorer.score(_last_windows(unadjusted, scorer.sequence_length))
    assert np.abs(wrong - expected).max() > 1e-4  # the basis matters: the check can fail

    # MKT was adjusted in training: bars without its adj_close cannot give the same features
    with pytest.raises(ScoringError, match="adj_close"):
        scorer.score_bars(stored.drop("adj_close"), tickers=["AAA"])


def _last_windows(features: pl.DataFrame, length: int) -> np.ndarray:
    """Each ticker's last ``length`` feature rows as a float32 batch."""
    last = features.group_by("ticker", maintain_order=True).tail(length)
    values = last.select(FEATURE_NAMES).to_numpy().astype(np.float32)
    return values.reshape(-1, length, len(FEATURE_NAMES))


def test_serve_settings_confirm_the_models_pins_and_extend_its_sectors(exported):
    from engine.serving.model import load_model
    from engine.serving.settings import ServeSettings
    from export.scorer import ScoringError

    _, _, model_dir = exported
    onnx = str(model_dir / "model.onnx")
    with pytest.raises(ScoringError, match="--market SPY: the model was trained with the market"):
        load_model(ServeSettings(model=onnx, market="SPY"))
    with pytest.raises(ScoringError, match="--prices raw: the model was trained on adjusted"):
        load_model(ServeSettings(model=onnx, prices="raw"))
    with pytest.raises(ScoringError, match="AAA: MKT in the model, XLK given"):
        load_model(ServeSettings(model=onnx, sector_map={"AAA": "XLK"}))
    settings = ServeSettings(model=onnx, market="MKT", prices="adjusted", sector_map={"NEW": "MKT"})
    assert ServeSettings.from_json(settings.to_json()) == settings  # travels to the workers
    assert load_model(settings).sectors == {"NEW": "MKT"}
