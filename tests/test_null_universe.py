"""Targets + metrics end to end: no skill on a random walk, skill on a planted signal.

Random-walk universe: i.i.d. returns, so no pattern is predictable. Two
"models" score every event: pure noise, and a squashed feature observed at t
(``overnight_gap``). Eight tests are made (4 patterns x 2 scorers), so each
uses a Bonferroni level (interval 1 - 0.05/8, p-value threshold 0.05/8)
rather than a seed that happens to pass at 5 %.

Planted universe: part of each overnight gap carries into the next five
days' drift, so a rule that reads the gap at t predicts the direction
patterns; their AUC intervals must exclude 0.5.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.evaluation import evaluate_frame
from engine.features.build import compute_features
from engine.labels.targets import PATTERN_NAMES, compute_targets

N_TESTS = len(PATTERN_NAMES) * 2
ALPHA = 0.05 / N_TESTS
DIRECTION_PATTERNS = ("momentum_persistence", "trend_exhaustion", "volume_divergence")


def _universe(seed: int, carry: float, n_days: int = 1500, n_stocks: int = 6) -> pl.DataFrame:
    """OHLCV bars: overnight gap g and intraday move; the drift over the next
    five days is ``carry * mean(g over the last five days)``."""
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2005-01-03"), np.datetime64("2005-01-03") + 2 * n_days)
    days = days[np.is_busday(days)][:n_days]
    frames = []
    for ticker in [f"S{i}" for i in range(n_stocks)] + ["SPY", "XLK"]:
        gap = rng.normal(0, 0.005, n_days)
        lagged = np.convolve(gap, np.ones(5) / 5)[:n_days]
        drift = carry * np.concatenate(([0.0], lagged[:-1]))
        intraday = rng.normal(0, 0.01, n_days) + drift
        close = 50 * np.exp(np.cumsum(gap + intraday))
        open_ = close * np.exp(-intraday)
        spread = np.abs(rng.normal(0, 0.006, (2, n_days)))
        frames.append(
            pl.DataFrame(
                {
                    "ticker": ticker,
                    "date": days,
                    "open": open_,
                    "high": np.maximum(open_, close) * np.exp(spread[0]),
                    "low": np.minimum(open_, close) * np.exp(-spread[1]),
                    "close": close,
                    "volume": rng.lognormal(14, 0.4, n_days).round(),
                }
            )
        )
    return pl.concat(frames)


def _scored(bars: pl.DataFrame, scores: dict[str, pl.Expr]) -> pl.DataFrame:
    """Outcomes from compute_targets beside one confidence column per pattern."""
    targets = compute_targets(bars)
    features = compute_features(bars, ["overnight_gap", "trend_exhaustion"]).rename(
        {"trend_exhaustion": "trend_exhaustion_feature"}  # the label has the same name
    )
    close = pl.col("close")
    extra = bars.sort("ticker", "date").select(
        "ticker",
        "date",
        r7=(close / close.shift(7)).log().over("ticker"),
        is_high=(close == close.rolling_max(20)).over("ticker"),
    )
    frame = targets.join(features, on=["ticker", "date"]).join(extra, on=["ticker", "date"])
    frame = frame.with_columns(**{f"{p}_p": scores[p] for p in PATTERN_NAMES})
    # an event the model cannot score (a feature still warming up) is not evaluated
    return frame.with_columns(
        pl.when(pl.col(f"{p}_p").is_not_null()).then(pl.col(p)).alias(p) for p in PATTERN_NAMES
    )


def _squash(expr: pl.Expr) -> pl.Expr:
    return 1.0 / (1.0 + (-expr).exp())


def _report(result: pl.DataFrame) -> str:
    return "; ".join(
        f"{p} AUC {a:.3f} [{lo:.3f}, {hi:.3f}] p={pv:.3f} events={n}"
        for p, a, lo, hi, pv, n in result.select(
            "pattern", "auc", "auc_ci_low", "auc_ci_high", "auc_p_value", "n"
        ).rows()
    )


@pytest.fixture(scope="module")
def random_walk() -> pl.DataFrame:
    return _universe(seed=11, carry=0.0)


@pytest.mark.parametrize("scorer", ["random", "lagged-feature"])
def test_random_walk_universe_shows_no_skill(random_walk, scorer):
    rng = np.random.default_rng(5)
    if scorer == "random":
        noise = pl.Series(rng.random(random_walk.height))
        scores = {p: pl.lit(noise) for p in PATTERN_NAMES}
    else:
        scores = {p: _squash(pl.col("overnight_gap")) for p in PATTERN_NAMES}
    frame = _scored(random_walk, scores)
    result = evaluate_frame(frame, PATTERN_NAMES, n_boot=400, seed=1, level=1 - ALPHA)
    print(f"null ({scorer}): {_report(result)}")
    assert set(result.get_column("pattern")) == set(PATTERN_NAMES)
    assert (result.get_column("n") > 300).all()
    assert (result.get_column("auc_ci_low") < 0.5).all(), _report(result)
    assert (result.get_column("auc_ci_high") > 0.5).all(), _report(result)
    assert (result.get_column("auc_p_value") > ALPHA).all(), _report(result)


def test_planted_signal_universe_shows_skill():
    bars = _universe(seed=12, carry=2.0)
    gap = pl.col("overnight_gap")
    scores = {
        "momentum_persistence": _squash(pl.col("r7").sign() * gap),
        "trend_exhaustion": _squash(-pl.col("trend_exhaustion_feature").sign() * gap),
        "volume_divergence": _squash(pl.when(pl.col("is_high")).then(-gap).otherwise(gap)),
        "volatility_regime": pl.lit(0.5),  # nothing planted in volatility
    }
    frame = _scored(bars, scores)
    result = evaluate_frame(frame, list(DIRECTION_PATTERNS), n_boot=400, seed=1)
    print(f"planted: {_report(result)}")
    assert (result.get_column("auc_ci_low") > 0.5).all(), _report(result)
    assert (result.get_column("auc_p_value") < 0.01).all(), _report(result)
