"""Block permutations of dates and permuted outcomes (engine/labels/permutations.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.labels.permutations import block_permutation, block_permutations, permute_outcomes

SETTINGS = settings(max_examples=60, deadline=None)


def _blocks_of(order, block):
    """Cut ``order`` into the blocks it is made of; fail if it is not made of whole blocks."""
    n = len(order)
    pieces, i = [], 0
    while i < n:
        start = int(order[i])
        assert start % block == 0, f"position {i} starts a piece at {start}, not a block start"
        length = min(block, n - start)
        np.testing.assert_array_equal(order[i : i + length], np.arange(start, start + length))
        pieces.append(start)
        i += length
    return pieces


@SETTINGS
@given(
    block=st.integers(1, 25),
    extra=st.integers(1, 150),
    seed=st.integers(0, 2**32 - 1),
)
def test_block_permutation_is_a_bijection_of_whole_blocks(block, extra, seed):
    n = block + extra  # at least two blocks
    order = block_permutation(n, block, seed)
    assert order.dtype == np.int64 and order.shape == (n,)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    starts = _blocks_of(order, block)
    assert sorted(starts) == list(range(0, n, block))
    # a derangement of the blocks: none keeps its own place (its real outcomes)
    assert all(s != j * block for j, s in enumerate(starts))
    assert not np.any(order == np.arange(n))


def test_block_permutation_reproducible_and_seed_dependent():
    a = block_permutation(300, 5, 123)
    np.testing.assert_array_equal(a, block_permutation(300, 5, 123))
    np.testing.assert_array_equal(a, block_permutation(300, 5, np.random.default_rng(123)))
    others = [block_permutation(300, 5, s) for s in range(124, 130)]
    assert all(not np.array_equal(a, o) for o in others)
    assert not np.array_equal(a, np.arange(300))


def test_block_permutation_mixes_blocks():
    """Over many seeds every block visits many places (not a fixed shift or reversal)."""
    n, block = 60, 6
    first_block_lands = {
        int(np.flatnonzero(block_permutation(n, block, s) == 0)[0]) for s in range(200)
    }
    assert len(first_block_lands) >= 8
    assert all(p % block == 0 for p in first_block_lands)


@pytest.mark.parametrize("block", [0, -3])
def test_block_permutation_rejects_bad_block(block):
    with pytest.raises(ValueError, match="block"):
        block_permutation(10, block, 0)


@pytest.mark.parametrize(("n", "block"), [(0, 5), (5, 5), (3, 20)])
def test_block_permutation_needs_two_blocks(n, block):
    with pytest.raises(ValueError, match="two blocks"):
        block_permutation(n, block, 0)


# ---------------------------------------------------------------------------
# permute_outcomes


def _frame(seed=0, n_days=40):
    """Three tickers on a shared calendar; one ticker lacks some dates; rows shuffled."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n_days)]
    rows = []
    for k, ticker in enumerate(["AAA", "BBB", "CCC"]):
        for i, d in enumerate(days):
            if ticker == "CCC" and i % 7 == 3:
                continue  # CCC has holes
            rows.append(
                {
                    "ticker": ticker,
                    "date": d,
                    "t1": d + dt.timedelta(days=5),
                    "feature": float(rng.normal()),
                    # the source date's number, recognisable after the permutation
                    "day_code": 1000 * k + i,
                    "label": None if rng.uniform() < 0.3 else int(rng.uniform() < 0.5),
                }
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("label").cast(pl.Int8))
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.mark.parametrize("block", [1, 4, 10])
def test_permute_outcomes_moves_outcomes_by_one_date_permutation(block):
    frame = _frame()
    out = permute_outcomes(frame, ["day_code", "label"], block=block, seed=5)
    # same rows in the same order, other columns untouched
    assert out.columns == frame.columns and out.schema == frame.schema
    assert out.drop("day_code", "label").equals(frame.drop("day_code", "label"))

    calendar = sorted(set(frame["date"].to_list()))
    order = block_permutation(len(calendar), block, 5)
    source = {calendar[i]: calendar[j] for i, j in enumerate(order)}
    original = {(r["ticker"], r["date"]): r for r in frame.iter_rows(named=True)}
    for row in out.iter_rows(named=True):
        src = original.get((row["ticker"], source[row["date"]]))
        if src is None:  # that ticker has no row on the source date
            assert row["day_code"] is None and row["label"] is None
        else:
            assert row["day_code"] == src["day_code"]
            assert row["label"] == src["label"]


def test_permute_outcomes_uses_one_permutation_for_all_tickers():
    frame = _frame(seed=3)
    out = permute_outcomes(frame, ["day_code"], block=3, seed=9)
    source_day = out.drop_nulls("day_code").with_columns(src=pl.col("day_code") % 1000)
    per_date = source_day.group_by("date").agg(pl.col("src").n_unique().alias("k"))
    assert per_date["k"].max() == 1  # every ticker's outcome on a date comes from one date
    assert (source_day["src"] != source_day["date"].rank("dense") - 1).any()  # and it moved


def test_permute_outcomes_reproducible_and_seed_dependent():
    frame = _frame()
    a = permute_outcomes(frame, ["label"], block=4, seed=1)
    assert a.equals(permute_outcomes(frame, ["label"], block=4, seed=1))
    assert not a.equals(permute_outcomes(frame, ["label"], block=4, seed=2))


def test_permute_outcomes_keeps_each_complete_tickers_outcomes():
    frame = _frame()
    out = permute_outcomes(frame, ["label", "day_code"], block=4, seed=0)
    for ticker in ["AAA", "BBB"]:  # present on every date: a permutation of their own values
        before = frame.filter(pl.col("ticker") == ticker)["day_code"].sort()
        after = out.filter(pl.col("ticker") == ticker)["day_code"].sort()
        assert before.equals(after)


def test_permute_outcomes_refuses_repeated_rows():
    frame = _frame()
    with pytest.raises(ValueError, match="one row per"):
        permute_outcomes(pl.concat([frame, frame.head(1)]), ["label"])


def test_permute_outcomes_requires_columns():
    with pytest.raises(ValueError, match="lacks columns"):
        permute_outcomes(_frame().drop("date"), ["label"])
    with pytest.raises(ValueError, match="nope"):
        permute_outcomes(_frame(), ["nope"])


# ---------------------------------------------------------------------------
# many draws at once (the permutation test)


def test_block_permutations_are_the_draws_of_one_generator():
    draws = block_permutations(90, 10, 25, seed=4)
    assert draws.shape == (25, 90) and draws.dtype == np.int64
    rng = np.random.default_rng(4)
    for k in range(25):
        np.testing.assert_array_equal(draws[k], block_permutation(90, 10, rng))
    # draw 0 is the single permutation of the same seed (what permute_outcomes uses)
    np.testing.assert_array_equal(draws[0], block_permutation(90, 10, 4))
    assert len({tuple(d) for d in draws}) > 20  # the draws differ


@pytest.mark.parametrize("n_draws", [0, -1])
def test_block_permutations_need_a_draw(n_draws):
    with pytest.raises(ValueError, match="n_draws"):
        block_permutations(90, 10, n_draws, seed=0)
