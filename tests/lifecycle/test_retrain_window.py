"""The retrain evaluation window keeps every label that matured by the latest bar."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.features.build import build_features
from engine.labels.targets import compute_targets
from engine.model.runs import RunSettings
from engine.monitoring.retrain import evaluation_dataset, evaluation_rows

TICKERS = ["AAPL", "MSFT"]
SETTINGS = RunSettings(
    split="walk-forward", train_months=12, validation_months=3, test_months=2, embargo_days=5
)


def test_the_freshest_matured_labels_are_evaluated(demo_store):
    bars = demo_store.read_bars([*TICKERS, "SPY", "XLK", "VIX"])
    features = build_features(bars, tickers=TICKERS)
    targets = compute_targets(bars, horizon=5, tickers=TICKERS, features=features.frame)
    latest = bars.filter(pl.col("ticker").is_in(TICKERS)).get_column("date").max()
    dataset, eval_end = evaluation_dataset(
        bars, TICKERS, SETTINGS, features=features, targets=targets, latest=latest,
        eval_months=2,
    )  # fmt: skip
    rows, _ = evaluation_rows(dataset, SETTINGS, 2)
    index = dataset.score_set.index[rows]
    patterns = list(dataset.score_set.pattern_names)
    # the reference: the labels themselves, kept when their outcome is known by the latest bar
    expected = index.join(targets, on=["ticker", "date"], how="left").with_columns(
        [pl.when(pl.col("t1") <= latest).then(pl.col(p)).otherwise(None).alias(p) for p in patterns]
    )
    got = dataset.score_set.y[rows]
    for j, pattern in enumerate(patterns):
        want = expected.get_column(pattern).cast(pl.Float64).to_numpy()
        np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(want), err_msg=pattern)
    # the last days of the window carry labels that mature after eval_end but by the latest bar
    late = expected.filter(pl.col("t1") > np.datetime64(eval_end))
    assert late.height > 0
