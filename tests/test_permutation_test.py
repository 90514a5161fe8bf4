"""The ``--null`` permutation test: N block permutations of the outcomes, never a retrain.

The null AUC of every draw is checked against scikit-learn's AUC of the same
permuted frame, the p-value against its formula, and the test's calibration
on no-skill predictions over many seeds.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from engine.cli.app import app
from engine.evaluation.permutation import permutation_auc_draws, permutation_auc_test
from engine.jobs.validate import run_validate_job
from engine.labels.permutations import block_permutations

PATTERNS = ("breakout", "reversal")


def make_predictions(
    n_dates: int = 150,
    tickers: tuple[str, ...] = ("AAA", "BBB", "CCC"),
    *,
    skill: float = 0.0,
    persistence: float = 0.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Outcomes and confidences; ``skill`` 0: independent; ``persistence``: AR(1) latents."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n_dates)]
    frame = pl.DataFrame({
        "ticker": [t for _ in days for t in tickers], "date": [d for d in days for _ in tickers],
    }).with_columns(
        t1=pl.col("date") + pl.duration(days=7), model_id=pl.lit("wf00"),
        train_end=pl.lit(dt.date(2020, 12, 1)), embargo_end=pl.lit(dt.date(2020, 12, 8)),
    )  # fmt: skip
    n = frame.height

    def latent() -> np.ndarray:
        shocks = rng.normal(size=(n_dates, len(tickers)))
        out = np.empty_like(shocks)
        out[0] = shocks[0]
        for i in range(1, n_dates):
            out[i] = persistence * out[i - 1] + math.sqrt(1 - persistence**2) * shocks[i]
        return out.reshape(-1)

    cols = {}
    for name in PATTERNS:
        z = latent()
        y = (z + 0.3 * rng.normal(size=n) > 0.25).astype(np.float64)
        score = skill * z + latent()
        p = 1.0 / (1.0 + np.exp(-score))
        y[rng.uniform(size=n) < 0.3] = np.nan
        cols[name + "_p"] = pl.Series(p)
        cols[name] = pl.Series(y).fill_nan(None).cast(pl.Int8)
    return frame.with_columns(**cols)


def sklearn_auc(frame: pl.DataFrame, pattern: str) -> float:
    rows = frame.filter(pl.col(pattern).is_not_null())
    return roc_auc_score(rows[pattern].to_numpy(), rows[pattern + "_p"].to_numpy())


def permuted_by_join(frame: pl.DataFrame, order: np.ndarray) -> pl.DataFrame:
    """The outcome of (ticker, d) becomes that of (ticker, calendar[order[d]]) (a plain join)."""
    calendar = frame.get_column("date").unique().sort()
    source = pl.DataFrame({"date": calendar, "source": calendar.gather(order)})
    outcomes = frame.select("ticker", pl.col("date").alias("source"), *PATTERNS)
    return (
        frame.drop(PATTERNS)
        .join(source, on="date", how="left")
        .join(outcomes, on=["ticker", "source"], how="left")
    )


def test_every_null_auc_is_the_auc_of_a_block_permuted_frame():
    frame = make_predictions(skill=0.5, seed=3).sample(fraction=1.0, shuffle=True, seed=1)
    observed, null = permutation_auc_draws(frame, list(PATTERNS), block=10, n_null=30, seed=7)
    orders = block_permutations(frame["date"].n_unique(), 10, 30, seed=7)
    for pattern in PATTERNS:
        assert observed[pattern] == pytest.approx(sklearn_auc(frame, pattern), abs=1e-12)
        assert null[pattern].shape == (30,)
        expected = [sklearn_auc(permuted_by_join(frame, o), pattern) for o in orders]
        np.testing.assert_allclose(null[pattern], expected, rtol=0, atol=1e-12)


def test_p_value_and_its_monte_carlo_error():
    frame = make_predictions(skill=0.15, seed=5)
    out = permutation_auc_test(frame, list(PATTERNS), block=10, n_null=99, seed=2)
    observed, null = permutation_auc_draws(frame, list(PATTERNS), block=10, n_null=99, seed=2)
    assert out["pattern"].to_list() == list(PATTERNS)
    for row in out.iter_rows(named=True):
        draws = null[row["pattern"]]
        p = (1 + np.sum(draws >= observed[row["pattern"]])) / (1 + 99)
        assert row["n_null"] == 99
        assert row["auc"] == pytest.approx(observed[row["pattern"]])
        assert row["permutation_p_value"] == pytest.approx(p)
        assert row["permutation_p_value_se"] == pytest.approx(math.sqrt(p * (1 - p) / 99))
        assert row["null_auc_mean"] == pytest.approx(draws.mean())
        assert row["null_auc_low"] == pytest.approx(np.quantile(draws, 0.025))
        assert row["null_auc_high"] == pytest.approx(np.quantile(draws, 0.975))


def test_planted_skill_gets_the_smallest_p():
    frame = make_predictions(skill=1.5, seed=4)
    out = permutation_auc_test(frame, list(PATTERNS), block=10, n_null=200, seed=0)
    assert out["permutation_p_value"].to_list() == pytest.approx([1 / 201, 1 / 201])


def overlapping_labels(seed: int, n_dates: int = 250, n_tickers: int = 3) -> pl.DataFrame:
    """No skill, realistic dependence: labels ``sum of the next 5 returns > 0`` (overlapping,
    so serially dependent) against a slow confidence (AR(1), phi 0.98) independent of them."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n_dates)]
    parts = []
    for k in range(n_tickers):
        moves = np.convolve(rng.normal(size=n_dates + 5), np.ones(5), "valid")[1:]
        z = np.empty(n_dates)
        z[0] = rng.normal()
        for i in range(1, n_dates):
            z[i] = 0.98 * z[i - 1] + math.sqrt(1 - 0.98**2) * rng.normal()
        cols = {"ticker": f"T{k}", "date": days}
        for j, name in enumerate(PATTERNS):
            y = (np.roll(moves, j) > 0).astype(np.int8)
            cols[name] = y
            cols[name + "_p"] = 1.0 / (1.0 + np.exp(-np.roll(z, 7 * j)))
        parts.append(pl.DataFrame(cols))
    return pl.concat(parts)


@pytest.mark.parametrize("data", ["iid", "overlapping labels"])
def test_calibrated_on_no_skill_predictions(data):
    """40 no-skill data sets x 2 heads: p roughly uniform, about 5 % below 0.05.

    80 tests at the 5 % level: about 4 rejections are expected; the bound 8
    (10 %) fails a test whose null is too narrow (a single draw judged by
    the bootstrap, or blocks far shorter than the dependence).
    """
    p_values = []
    for seed in range(40):
        if data == "iid":
            frame = make_predictions(seed=100 + seed)
        else:
            frame = overlapping_labels(seed=100 + seed)
        out = permutation_auc_test(frame, list(PATTERNS), block=20, n_null=200, seed=seed)
        p_values += out["permutation_p_value"].to_list()
    p_values = np.asarray(p_values)
    rejected = int(np.sum(p_values < 0.05))
    print(f"{data}: {rejected}/80 rejected at 0.05, mean p {p_values.mean():.3f}")
    assert rejected <= 8
    assert 0.35 <= p_values.mean() <= 0.65
    assert np.sum(p_values < 0.5) >= 25  # not piled up near 1 either


def test_needs_two_blocks_and_a_draw():
    frame = make_predictions(n_dates=15)
    with pytest.raises(ValueError, match="two blocks"):
        permutation_auc_test(frame, list(PATTERNS), block=20, n_null=10, seed=0)
    with pytest.raises(ValueError, match="n_null"):
        permutation_auc_test(frame, list(PATTERNS), block=5, n_null=0, seed=0)


# ------------------------------------------------------------------------ engine validate


@pytest.fixture
def skilled_file(tmp_path):
    path = tmp_path / "predictions.parquet"
    make_predictions(skill=1.0, seed=8).write_parquet(path)
    return path


def test_validate_null_is_a_permutation_test_with_n_draws(skilled_file):
    report = run_validate_job(
        predictions=skilled_file, null=True, null_block=10, n_null=50, n_boot=50, seed=1
    )
    comparison = report.null_comparison
    assert comparison["n_null"].to_list() == [50, 50]
    assert comparison["permutation_p_value"].to_list() == pytest.approx([1 / 51, 1 / 51])
    assert comparison["confirmed"].all()
    frame = pl.read_parquet(skilled_file)
    expected = permutation_auc_test(frame, list(PATTERNS), block=10, n_null=50, seed=1)
    assert comparison["permutation_p_value"].to_list() == expected["permutation_p_value"].to_list()
    assert report.settings["n_null"] == 50
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["null"]["n_null"] == 50
    row = payload["null"]["comparison"][0]
    for key in ("permutation_p_value", "permutation_p_value_se", "permutation_p_value_holm",
                "null_auc_mean", "null_auc_low", "null_auc_high", "confirmed"):  # fmt: skip
        assert key in row
    assert any("permutation" in line for line in report.summary_lines())


def test_validate_default_is_200_draws(skilled_file):
    report = run_validate_job(predictions=skilled_file, null=True, null_block=10, n_boot=20)
    assert report.null_comparison["n_null"].to_list() == [200, 200]


def test_no_skill_is_not_confirmed(tmp_path):
    path = tmp_path / "predictions.parquet"
    make_predictions(seed=12).write_parquet(path)
    report = run_validate_job(predictions=path, null=True, null_block=10, n_null=100, n_boot=50)
    assert not report.null_comparison["confirmed"].any()


def test_cli_n_null(skilled_file):
    result = CliRunner().invoke(app, ["validate", "--predictions", str(skilled_file), "--null",
                                      "--null-block", "10", "--n-null", "30", "--n-boot", "20",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["null"]["n_null"] == 30
    assert payload["settings"]["n_null"] == 30
    bad = CliRunner().invoke(app, ["validate", "--predictions", str(skilled_file), "--null",
                                   "--n-null", "0"])  # fmt: skip
    assert bad.exit_code != 0
