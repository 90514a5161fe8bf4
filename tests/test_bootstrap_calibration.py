"""Calibration of pooled inference on panels whose rows share a per-date factor.

Issue "Honest inference everywhere", item 6: a pooled group holds many
tickers per date, and the rows of one date are dependent (the day's factor
moves every outcome and every confidence of that date). The unit of
resampling must then be the date. The former bootstrap resampled blocks of
*rows* sorted by (date, ticker); its blocks cut through dates and its block
length, chosen on the row series, need not span one.

Panels: ``N_TICKERS`` = 30 tickers x ``N_DATES`` = 300 dates, each row kept
with probability ``KEEP`` = 0.7 (events are sparse: about 21 rows per date,
unequal counts). Each ticker sits on one ``side`` (+1 or -1, half the
tickers each, at random) of the day's factors, as cyclicals and defensives
do on a rotation day. Per row ``i`` on date ``t``::

    outcome latent    z = LOADING * side_i * f_t + e
    confidence latent a = LOADING * side_i * g_t + u
    y = 1{z > THRESHOLD},  p = 1 / (1 + exp(-a))

with ``f, g, e, u`` i.i.d. N(0, 1) and ``LOADING`` = 0.6: the latents of two
rows of a date correlate at +-0.26, across dates not at all. The confidence
is independent of the outcome, so the pooled AUC is exactly 0.5 and "no
skill" is true.

Measured (AUC interval covering 0.5 / AUC p < 0.05, nominal 0.95 / 0.05):

* resampling dates (``evaluate_frame`` now, ``n_boot=500``): 0.940 / 0.058
  on the 400 panels of this module; 0.942 / 0.054 on 2000 other panels
  (two seeds: 0.935 / 0.063 and 0.949 / 0.045);
* resampling row blocks (``evaluate_frame`` before the fix, ``n_boot=200``):
  0.890 / 0.050 on the first 100 panels here; 0.911 / 0.067 on 1000 other
  panels. Its block length, chosen on the row series, had a median of 16
  rows against 21 rows per date.

The margin of the date bootstrap over the 0.93 / 0.07 bounds is thin, and
400 panels estimate a coverage to +-0.012 (one standard error), so another
seed can land on either side: the same design with 150 dates measured 0.92
to 0.94 over 400-1000 panels per seed (block lengths estimated on 150 dates
and percentile intervals from a few hundred replicates both run narrow;
forcing ``block=1`` gained about one point, 1000 replicates half a point),
600 dates 0.955. With ``LOADING = 0.5`` this module's seed gave 0.925 (1000
other panels: 0.944 / 0.062).

Why signed exposures: with one-signed loadings (a pure market factor) the
rows of a date are clustered in the outcome and confidence series
themselves, the row-block length came out at 1-3 dates' worth of rows and
covered most of the within-date dependence; both bootstraps then measured
within about two points of each other (0.90-0.95 coverage on 60-100 dates,
300-400 panels per design). With signed exposures those series
show little net clustering and the row blocks stay shorter than a date,
while the AUC's per-row terms of a date still move together
(``side_i^2 = 1``).

The row-block bootstrap is what ``evaluate`` does without ``dates`` on the
rows sorted by (date, ticker): before the fix, ``evaluate_frame`` did exactly
that for a pooled group (checked: equal figures to 1e-14).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.evaluation import evaluate, evaluate_frame

N_TICKERS = 30
N_DATES = 300
KEEP = 0.7
LOADING = 0.6
THRESHOLD = 0.3
N_BOOT = 500
SIMS = 400
ROW_BLOCK_SIMS = 100  # the former bootstrap goes row by row: slower (and far off)
ROW_BLOCK_N_BOOT = 200
PATTERN = "momentum_persistence"


def factor_panel(rng) -> pl.DataFrame:
    """One null panel as a shuffled prediction frame: ticker, date, outcome, confidence."""
    side = rng.permutation(np.repeat([1.0, -1.0], N_TICKERS // 2))
    f, g = rng.standard_normal((2, N_DATES, 1))
    e, u = rng.standard_normal((2, N_DATES, N_TICKERS))
    z = LOADING * side * f + e
    a = LOADING * side * g + u
    kept = rng.uniform(size=z.shape) < KEEP
    date = np.broadcast_to(np.arange(N_DATES)[:, None], z.shape)[kept]
    ticker = np.broadcast_to(np.arange(N_TICKERS)[None, :], z.shape)[kept]
    order = rng.permutation(date.size)  # input order must not matter
    return pl.DataFrame(
        {
            "ticker": np.char.add("T", np.char.zfill(ticker.astype(str), 2))[order],
            "date": date[order],
            PATTERN: (z[kept] > THRESHOLD).astype(np.float64)[order],
            f"{PATTERN}_p": (1.0 / (1.0 + np.exp(-a[kept])))[order],
        }
    )


@pytest.fixture(scope="module")
def null_panels() -> list[pl.DataFrame]:
    rng = np.random.default_rng(2026)
    return [factor_panel(rng) for _ in range(SIMS)]


def _date_bootstrap_rates(panels) -> tuple[float, float]:
    """Share of panels whose pooled AUC interval covers 0.5; share with AUC p < 0.05."""
    cover = reject = 0
    for i, frame in enumerate(panels):
        row = evaluate_frame(frame, [PATTERN], n_boot=N_BOOT, seed=i).row(0, named=True)
        cover += row["auc_ci_low"] <= 0.5 <= row["auc_ci_high"]
        reject += row["auc_p_value"] < 0.05
    return cover / len(panels), reject / len(panels)


def _row_block_rates(panels) -> tuple[float, float]:
    """The same shares for the former bootstrap of row blocks, rows sorted by (date, ticker)."""
    cover = reject = 0
    for i, frame in enumerate(panels):
        g = frame.sort("date", "ticker")
        y, p = g[PATTERN].to_numpy(), g[f"{PATTERN}_p"].to_numpy()
        auc = evaluate(y, p, n_boot=ROW_BLOCK_N_BOOT, seed=i).metrics["auc"]
        cover += auc.ci_low <= 0.5 <= auc.ci_high
        reject += auc.p_value < 0.05
    return cover / len(panels), reject / len(panels)


def test_factor_panel_rows_of_a_date_move_together(null_panels):
    # the design does what the docstring says: unequal rows per date, and the
    # AUC's per-row terms (y - rate)(F(p) - 1/2) of one date move together
    frame = null_panels[0]
    counts = frame.group_by("date").len()["len"]
    assert counts.min() < counts.max()
    ranked = frame.with_columns(
        term=(pl.col(PATTERN) - pl.col(PATTERN).mean())
        * (pl.col(f"{PATTERN}_p").rank() / frame.height - 0.5)
    )
    per_date = ranked.group_by("date").agg(total=pl.col("term").sum(), n=pl.len())
    design_effect = per_date["total"].var() / (ranked["term"].var() * per_date["n"].mean())
    assert design_effect > 1.5  # measured 2.17: rows of a date count as fewer independent ones


@pytest.mark.slow
def test_pooled_no_skill_is_calibrated_under_a_common_date_factor(null_panels):
    # measured 0.940 / 0.058 (see the module docstring for other seeds)
    cover, reject = _date_bootstrap_rates(null_panels)
    assert cover >= 0.93, (cover, reject)
    assert reject <= 0.07, (cover, reject)


@pytest.mark.slow
def test_row_block_bootstrap_fails_the_same_check(null_panels):
    # measured 0.890 / 0.050: the check above fails on the former bootstrap
    cover, reject = _row_block_rates(null_panels[:ROW_BLOCK_SIMS])
    assert cover < 0.93 or reject > 0.07, (cover, reject)
