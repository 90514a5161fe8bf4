"""``--end`` keeps labels from reading bars after it (issue 12, item 8).

A sample dated on or before ``end`` used to keep its label even when its
outcome window ran past ``end``. Labels with ``t1 > end`` are now null, in the
targets job and in training datasets; ``t1`` stays for purging.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine.data.demo import generate_demo_universe
from engine.labels.targets import PATTERN_NAMES, censor_after, compute_targets
from engine.model.runs import RunSettings, prepare_dataset

END = dt.date(2015, 6, 30)
TICKERS = ["AAPL", "MSFT"]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    wanted = [*TICKERS, "SPY", "XLK", "VIX"]
    return generate_demo_universe(seed=7).bars.filter(pl.col("ticker").is_in(wanted))


@pytest.fixture(scope="module")
def targets(bars) -> pl.DataFrame:
    return compute_targets(bars, tickers=TICKERS)


def test_censor_after_matches_a_row_by_row_rule(targets):
    kept = targets.filter(pl.col("date") <= END)
    got = censor_after(kept, END)
    assert got.select("ticker", "date", "t1").equals(kept.select("ticker", "date", "t1"))
    for before, after in zip(kept.iter_rows(named=True), got.iter_rows(named=True), strict=True):
        late = before["t1"] is not None and before["t1"] > END
        for p in PATTERN_NAMES:
            assert after[p] == (None if late else before[p]), (before, after)
    # the rule bites: some labels near END had an outcome and lost it
    late = kept.filter(pl.col("t1") > END)
    assert late.height > 0
    assert late.select(pl.any_horizontal(pl.col(PATTERN_NAMES).is_not_null()).any()).item()


def test_training_datasets_never_carry_a_label_past_end(bars):
    dataset = prepare_dataset(bars, TICKERS, RunSettings(), end=END)
    for seqs in (dataset.train_set, dataset.score_set):
        late = (seqs.index.get_column("t1") > END).fill_null(False).to_numpy()
        assert late.any()  # such samples exist ...
        assert not (seqs.y[late] == seqs.y[late]).any()  # ... but all their labels are NaN
        assert (seqs.index.get_column("date") <= END).all()


def test_targets_cli_end_censors_late_labels(bars, tmp_path):
    from typer.testing import CliRunner

    from engine.cli import app
    from engine.data.store import BarStore

    BarStore(tmp_path / "data").write(bars)
    out = tmp_path / "targets.parquet"
    result = CliRunner().invoke(
        app,
        ["targets", "--tickers", ",".join(TICKERS), "--end", END.isoformat(),
         "--data-dir", str(tmp_path / "data"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pl.read_parquet(out)
    late = written.filter(pl.col("t1") > END)
    assert late.height > 0
    assert late.select(pl.all_horizontal(pl.col(PATTERN_NAMES).is_null()).all()).item()
