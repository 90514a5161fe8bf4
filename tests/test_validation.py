"""Tests for the leakage-free date splitters (engine/splits/).

Hypothesis draws pooled panels: a business-day calendar with random holes,
2-6 tickers with their own start/end dates and a few missing days each, a
sampling stride, and a label horizon h in 1..10 (t1 = the ticker's date h bars
later; null for the last h bars). Samples are shuffled, as in a pooled set.
Every split is checked against invariants and against a brute-force loop that
recomputes the purge and the embargo from the definitions.
"""

from __future__ import annotations

import datetime as dt
import doctest
import itertools
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import engine.splits
import engine.splits.base
import engine.splits.dates
import engine.splits.kfold
import engine.splits.leakage
import engine.splits.windows
from engine.splits import (
    CombinatorialPurgedCV,
    GappedTimeSeriesCV,
    Holdout,
    LeakageError,
    PurgedKFold,
    WalkForward,
    check_no_leakage,
)

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAT = np.datetime64("NaT", "D")


# ---------------------------------------------------------------------------
# panels


def make_panel(rng, n_days, n_tickers, h, hole_p=0.1, stride=1, start="2003-03-03"):
    """Return (dates, t1, tickers, bars): shuffled samples and the bar calendar.

    ``bars`` holds every trading day (the business days minus the holes); each
    ticker trades on its own subset of them.
    """
    bdays = np.busday_offset(np.datetime64(start, "D"), np.arange(n_days), roll="forward")
    cal = bdays[rng.random(n_days) >= hole_p]
    dates, t1s, tickers = [], [], []
    for k in range(n_tickers):
        a = int(rng.integers(0, max(1, len(cal) // 4)))
        b = int(rng.integers(3 * len(cal) // 4, len(cal) + 1))
        own = cal[a:b]
        own = own[rng.random(len(own)) >= 0.03]  # the ticker's own missing days
        end = np.full(len(own), NAT)
        end[: max(len(own) - h, 0)] = own[h:]
        offset = int(rng.integers(0, stride))
        dates.append(own[offset::stride])
        t1s.append(end[offset::stride])
        tickers += [f"T{k}"] * len(own[offset::stride])
    dates, t1, tickers = np.concatenate(dates), np.concatenate(t1s), np.array(tickers)
    order = rng.permutation(len(dates))
    return dates[order], t1[order], tickers[order], cal


@st.composite
def panels(draw, min_days=60, max_days=200):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_days = draw(st.integers(min_days, max_days))
    n_tickers = draw(st.integers(2, 6))
    h = draw(st.integers(1, 10))
    hole_p = draw(st.sampled_from([0.0, 0.05, 0.25]))
    stride = draw(st.sampled_from([1, 1, 2, 5]))
    return make_panel(rng, n_days, n_tickers, h, hole_p=hole_p, stride=stride)


embargoes = st.one_of(st.just(0), st.integers(0, 12))


# ---------------------------------------------------------------------------
# brute-force oracle and invariants


def calendar_of(dates, t1):
    return np.unique(dates[~np.isnat(t1)])


def runs(cal, test_days):
    """Consecutive-calendar runs of test days, as [(start, end)], by a plain loop."""
    out = []
    index = {d: i for i, d in enumerate(cal.tolist())}
    for d in sorted(test_days):
        if out and index[d] == index[out[-1][1]] + 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [tuple(r) for r in out]


def spans_of(dates, t1, cal, test_days):
    """[(first date, end of the label span)] per run of test days, by plain loops.

    The label span of a run ends at the latest t1 of the usable samples dated
    in the run (never before its last date).
    """
    out = []
    test_days = {d.item() if isinstance(d, np.datetime64) else d for d in test_days}
    for first, last in runs(cal, test_days):
        ends = [
            t1[i].item()
            for i in range(len(dates))
            if not np.isnat(t1[i]) and first <= dates[i].item() <= last
        ]
        out.append((first, max([last, *ends])))
    return out


def brute_train(dates, t1, train_dates, spans, embargo_days=0, bars=None):
    """Expected (train, purged, embargoed) sets from the definitions.

    Purged: the label interval [date, t1] overlaps a label span. Embargoed: not
    purged, and dated within ``embargo_days`` trading days of ``bars`` after a
    span's end.
    """
    bar_list = [] if bars is None else bars.tolist()
    train, purged, embargoed = set(), set(), set()
    for i in range(len(dates)):
        if np.isnat(t1[i]):
            continue
        d, e = dates[i].item(), t1[i].item()
        if d not in train_dates:
            continue
        if any(d <= se and e >= ss for ss, se in spans):
            purged.add(i)
            continue
        hit = any(
            se < d and sum(1 for c in bar_list if se < c <= d) <= embargo_days for _, se in spans
        )
        if hit:
            embargoed.add(i)
        else:
            train.add(i)
    return train, purged, embargoed


def assert_empty_split_raises(cv, dates, t1, method="split", calendar=None):
    """A split whose train (or validation) set would be empty raises at the call."""
    event("empty split")
    with pytest.raises(ValueError, match=r"split \d+ of \w+ has an empty"):
        getattr(cv, method)(dates, dates=dates, t1=t1, calendar=calendar)


def samples_on(dates, t1, days):
    days = set(days)
    return {i for i in range(len(dates)) if not np.isnat(t1[i]) and dates[i].item() in days}


def assert_index_array(a, n):
    assert isinstance(a, np.ndarray) and a.dtype == np.int64 and a.ndim == 1
    assert np.all(np.diff(a) > 0), "indices must be sorted and unique"
    assert a.size == 0 or (a.min() >= 0 and a.max() < n)


def assert_clean_cut(train, test, dates, t1, whole_dates=True):
    """Disjoint; no null t1; the cut is by date; no train window contains a test date.

    ``whole_dates=False`` for a WalkForward validation set, which is itself purged
    against the test period (so a validation date may keep only some tickers).
    """
    n = len(dates)
    assert_index_array(train, n)
    assert_index_array(test, n)
    assert np.intersect1d(train, test).size == 0
    assert not np.isnat(t1[train]).any() and not np.isnat(t1[test]).any()
    test_days = set(dates[test].tolist())
    # every usable sample (any ticker) on a test date is in test
    if whole_dates:
        assert samples_on(dates, t1, test_days) == set(test.tolist())
    for i in train:
        d, e = dates[i].item(), t1[i].item()
        assert d not in test_days
        assert not any(d < td <= e for td in test_days), f"sample {i} sees a test date"


# ---------------------------------------------------------------------------
# PurgedKFold


@SETTINGS
@given(panel=panels(), n_splits=st.integers(2, 6), embargo=embargoes)
def test_purged_kfold_matches_brute_force(panel, n_splits, embargo):
    dates, t1, _, bars = panel
    cal = calendar_of(dates, t1)
    cv = PurgedKFold(n_splits=n_splits, embargo_days=embargo)
    blocks = np.array_split(cal, n_splits)
    expected = []
    for block in blocks:
        spans = spans_of(dates, t1, cal, set(block.tolist()))
        assert len(spans) == 1
        train_dates = set(cal.tolist()) - set(block.tolist())
        expected.append(brute_train(dates, t1, train_dates, spans, embargo, bars))
    if not all(e[0] for e in expected):
        return assert_empty_split_raises(cv, dates, t1, calendar=bars)
    splits = list(cv.split(dates, dates=dates, t1=t1, calendar=bars))
    infos = cv.split_info(dates, dates=dates, t1=t1, calendar=bars)
    assert cv.get_n_splits(dates) == len(splits) == n_splits
    seen = []
    for (train, test), info, block, exp in zip(splits, infos, blocks, expected, strict=True):
        np.testing.assert_array_equal(train, info.train)
        np.testing.assert_array_equal(test, info.test)
        assert_clean_cut(train, test, dates, t1)
        assert set(test.tolist()) == samples_on(dates, t1, block.tolist())
        exp_train, exp_purged, exp_emb = exp
        assert set(train.tolist()) == exp_train
        assert set(info.purged.tolist()) == exp_purged
        assert set(info.embargoed.tolist()) == exp_emb
        check_no_leakage(train, test, dates, t1, embargo_days=embargo, calendar=bars)
        seen.append(test)
    # the folds' test sets partition the usable samples
    all_test = np.sort(np.concatenate(seen))
    np.testing.assert_array_equal(all_test, np.flatnonzero(~np.isnat(t1)))


def test_purged_kfold_golden():
    d = np.arange("2020-01-01", "2020-01-10", dtype="datetime64[D]")
    t1 = d + 2
    cv = PurgedKFold(n_splits=3, embargo_days=1)
    got = [(a.tolist(), b.tolist()) for a, b in cv.split(d, dates=d, t1=t1, calendar=d)]
    assert got == [
        # test labels run to 01-05: 3, 4 purged, 5 (01-06) embargoed
        ([6, 7, 8], [0, 1, 2]),
        # test 01-04..01-06, labels to 01-08: 1, 2 (labels reach 01-04) and 6, 7 purged,
        # 8 (01-09) embargoed
        ([0], [3, 4, 5]),
        ([0, 1, 2, 3], [6, 7, 8]),  # 4, 5 purged (labels reach 01-07)
    ]
    info = cv.split_info(d, dates=d, t1=t1, calendar=d)[1]
    assert info.purged.tolist() == [1, 2, 6, 7] and info.embargoed.tolist() == [8]


def label_span_overlaps(train, test, dates, t1):
    """Training samples whose label interval [t, t1] meets a test block's label span.

    A test block is a run of consecutive calendar dates among the test dates;
    its label span runs from its first date to the latest t1 of its samples
    (Lopez de Prado's purge). Plain loops, independent of engine.splits.
    """
    cal = calendar_of(dates, t1)
    spans = []
    for first, last in runs(cal, set(dates[test].tolist())):
        in_block = [j for j in test if first <= dates[j].item() <= last]
        spans.append((first, max(t1[j].item() for j in in_block)))
    return {
        int(i)
        for i in train
        if any(dates[i].item() <= end and t1[i].item() >= start for start, end in spans)
    }


@pytest.mark.parametrize(
    "cv", [PurgedKFold(5), CombinatorialPurgedCV(6, 2)], ids=["PurgedKFold(5)", "CPCV(6, 2)"]
)
def test_training_labels_stay_clear_of_the_test_label_span(cv):
    """With no embargo, a training sample just after a test block must not share its
    label interval with the block's last test labels (it was kept before the fix)."""
    dates, t1, *_ = small_panel()
    leaky = 0
    after_block = 0  # purged samples whose label reaches no test date: they follow a block
    for train, test in cv.split(dates, dates=dates, t1=t1):
        leaky += len(label_span_overlaps(train, test, dates, t1))
        check_no_leakage(train, test, dates, t1)
    for info in cv.split_info(dates, dates=dates, t1=t1):
        test_days = np.unique(dates[info.test])
        after_block += sum(
            1 for i in info.purged if not ((test_days > dates[i]) & (test_days <= t1[i])).any()
        )
    print(f"{cv}: {leaky} training samples inside a test label span")
    assert leaky == 0
    assert after_block > 0  # the purge now reaches past the block, not only before it


def test_check_no_leakage_catches_the_old_date_only_purge():
    """The old purge (labels against the test *dates* only) built by hand leaks: the
    check names exactly the training samples inside a test block's label span."""
    dates, t1, *_ = small_panel()
    cal = calendar_of(dates, t1)
    caught = 0
    for block in np.array_split(cal, 5):
        first, last = block[0], block[-1]
        usable = ~np.isnat(t1)
        test = np.flatnonzero(usable & (dates >= first) & (dates <= last))
        outside = usable & ((dates < first) | (dates > last))
        # old purge: drop a sample only when (date, t1] reaches [first, last]
        reaches = (dates < last) & (t1 >= first)
        old_train = np.flatnonzero(outside & ~reaches)
        expected = label_span_overlaps(old_train, test, dates, t1)
        if not expected:
            check_no_leakage(old_train, test, dates, t1)
            continue
        with pytest.raises(LeakageError, match="label span") as err:
            check_no_leakage(old_train, test, dates, t1)
        assert set(err.value.samples.tolist()) == expected
        for i in expected:
            assert any(r.startswith(f"sample {i} (date {dates[i]}") for r in err.value.reasons)
        caught += len(expected)
    print(f"old date-only purge: {caught} leaking training samples caught")
    assert caught > 0


def grid_panel(bars, own_days, stride=5, h=5):
    """Samples on a stride grid of the bar calendar, as the training sequences are.

    ``own_days`` maps each ticker to its own trading days (a subset of
    ``bars``). A ticker has a sample on every grid date (bar position
    ``k % stride == 0``) where it has a bar; its t1 is its own ``h``-th bar
    later (null when it has none yet). Returns (dates, t1, tickers).
    """
    grid = set(bars[::stride].tolist())
    dates, t1s, tickers = [], [], []
    for name, own in own_days.items():
        for k, d in enumerate(own):
            if d.item() in grid:
                dates.append(d)
                t1s.append(own[k + h] if k + h < len(own) else NAT)
                tickers.append(name)
    return np.array(dates, dtype="datetime64[D]"), np.array(t1s, dtype="datetime64[D]"), tickers


def bars_after(bars, end, day):
    """Number of trading days of ``bars`` in ``(end, day]``, by a plain count."""
    return sum(1 for c in bars.tolist() if end < c <= day.item())


@pytest.mark.parametrize("embargo_days", [0, 4, 5, 12])
def test_embargo_days_count_trading_days_of_the_bar_calendar(embargo_days):
    """On a stride-5 grid, ``embargo_days=5`` embargoes 5 trading days (one grid date),
    not 5 grid dates (25 trading days, what ``TradingDays(5)`` meant)."""
    bars = np.busday_offset(np.datetime64("2020-01-02", "D"), np.arange(300), roll="forward")
    dates, t1, _ = grid_panel(bars, {"A": bars, "B": bars[7:]})
    cv = PurgedKFold(4, embargo_days=embargo_days)
    infos = cv.split_info(dates=dates, t1=t1, calendar=bars)
    embargoed_dates = []
    for info in infos:
        test = info.test
        span_end = t1[test].max().item()  # one block per fold
        for i in info.embargoed:
            assert 1 <= bars_after(bars, span_end, dates[i]) <= embargo_days
        # every training candidate dated within the embargo after the span is out
        for i in info.train:
            if dates[i].item() > span_end:
                assert bars_after(bars, span_end, dates[i]) > embargo_days
        embargoed_dates.append(len(set(dates[info.embargoed].tolist())))
        check_no_leakage(info.train, test, dates, t1, embargo_days=embargo_days, calendar=bars)
    # grid dates embargoed after each inner block: one per 5 trading days
    assert embargoed_dates[:-1] == [embargo_days // 5] * 3
    assert embargoed_dates[-1] == 0  # nothing follows the last block


def test_embargo_days_need_the_bar_calendar():
    bars = np.busday_offset(np.datetime64("2020-01-02", "D"), np.arange(100), roll="forward")
    dates, t1, _ = grid_panel(bars, {"A": bars})
    with pytest.raises(ValueError, match=r"`embargo_days=5` counts trading days .* `calendar=`"):
        PurgedKFold(3, embargo_days=5).split(dates=dates, t1=t1)
    with pytest.raises(ValueError, match=r"`embargo_days=2` counts trading days"):
        check_no_leakage([0], [5], dates, t1, embargo_days=2)
    # without an embargo nothing is counted: no calendar needed
    PurgedKFold(3).split(dates=dates, t1=t1)
    # a calendar that misses a sample's date is not the bar calendar
    with pytest.raises(ValueError, match=r"sample 4 is dated 2020-01-30, not a day of `calendar`"):
        PurgedKFold(3, embargo_days=5).split(dates=dates, t1=t1, calendar=bars[bars != dates[4]])
    with pytest.raises(ValueError, match="`calendar` must not hold null dates"):
        PurgedKFold(3, embargo_days=5).split(dates=dates, t1=t1, calendar=np.r_[bars, NAT])


# ---------------------------------------------------------------------------
# GappedTimeSeriesCV


def horizon_in_dates(dates, t1, cal):
    """Median number of calendar dates in (date, t1] (the nominal h)."""
    ok = ~np.isnat(t1)
    spans = [int(np.sum((cal > d) & (cal <= e))) for d, e in zip(dates[ok], t1[ok], strict=True)]
    return math.ceil(np.median(spans))


@SETTINGS
@given(
    panel=panels(),
    n_splits=st.integers(2, 5),
    test_size=st.one_of(st.none(), st.integers(1, 12)),
    extra_gap=st.integers(0, 3),
)
def test_gapped_time_series_cv(panel, n_splits, test_size, extra_gap):
    dates, t1, *_ = panel
    cal = calendar_of(dates, t1)
    n = len(cal)
    gap = horizon_in_dates(dates, t1, cal) + extra_gap
    cv = GappedTimeSeriesCV(n_splits=n_splits, test_size=test_size, gap=gap)
    size = test_size if test_size is not None else n // (n_splits + 1)
    first = n - n_splits * size
    event(f"enough dates: {not (size < 1 or first - gap < 1)}")
    if size < 1 or first - gap < 1:
        with pytest.raises(ValueError, match="not enough dates"):
            cv.split(dates, dates=dates, t1=t1)  # raises at the call, no next()
        return
    expected = []
    for k in range(n_splits):
        start = first + k * size
        test_days = cal[start : start + size]
        train_dates = set(cal[: start - gap].tolist())
        exp = brute_train(dates, t1, train_dates, spans_of(dates, t1, cal, test_days))
        expected.append((test_days, exp))
    if not all(exp[0] for _, exp in expected):
        return assert_empty_split_raises(cv, dates, t1)
    splits = list(cv.split(dates, dates=dates, t1=t1))
    infos = cv.split_info(dates, dates=dates, t1=t1)
    assert cv.get_n_splits() == len(splits) == n_splits
    previous = set()
    for (train, test), info, (test_days, exp) in zip(splits, infos, expected, strict=True):
        assert_clean_cut(train, test, dates, t1)
        assert set(test.tolist()) == samples_on(dates, t1, test_days.tolist())
        assert set(train.tolist()) == exp[0]
        assert set(info.purged.tolist()) == exp[1]  # labels longer than the gap
        event(f"purged: {bool(exp[1])}")
        assert info.embargoed.size == 0
        # last training date + gap < first test date, in calendar positions
        pos = np.searchsorted(cal, dates)
        assert pos[train].max() + gap < pos[test].min()
        assert previous <= set(train.tolist())  # expanding window
        previous = set(train.tolist())
        check_no_leakage(train, test, dates, t1)


def test_gapped_gap_below_horizon_raises_at_call():
    rng = np.random.default_rng(0)
    dates, t1, *_ = make_panel(rng, 120, 3, h=5, hole_p=0.0)
    cv = GappedTimeSeriesCV(n_splits=3, gap=4)
    with pytest.raises(ValueError, match=r"`gap` must be at least the label horizon \(5 dates"):
        cv.split(dates, dates=dates, t1=t1)
    infos = GappedTimeSeriesCV(n_splits=3, gap=5).split_info(dates, dates=dates, t1=t1)
    assert len(infos) == 3
    # a ticker that misses a day has 5-bar labels spanning 6 dates: purged, not leaked
    assert sum(i.purged.size for i in infos) > 0


# ---------------------------------------------------------------------------
# CombinatorialPurgedCV


@SETTINGS
@given(
    panel=panels(),
    n_groups=st.integers(3, 7),
    k=st.integers(1, 3),
    embargo=embargoes,
)
def test_combinatorial_purged_cv(panel, n_groups, k, embargo):
    k = min(k, n_groups - 1)
    dates, t1, _, bars = panel
    cal = calendar_of(dates, t1)
    cv = CombinatorialPurgedCV(n_groups=n_groups, n_test_groups=k, embargo_days=embargo)
    groups = np.array_split(cal, n_groups)
    combos = list(itertools.combinations(range(n_groups), k))
    expected = []
    for combo in combos:
        test_days = set(np.concatenate([groups[g] for g in combo]).tolist())
        train_dates = set(cal.tolist()) - test_days
        spans = spans_of(dates, t1, cal, test_days)
        exp = brute_train(dates, t1, train_dates, spans, embargo, bars)
        expected.append((test_days, exp))
    if not all(exp[0] for _, exp in expected):
        return assert_empty_split_raises(cv, dates, t1, calendar=bars)
    splits = list(cv.split(dates, dates=dates, t1=t1, calendar=bars))
    infos = cv.split_info(dates, dates=dates, t1=t1, calendar=bars)
    assert cv.get_n_splits() == len(splits) == math.comb(n_groups, k)
    gid = cv.group_ids(dates, dates=dates, t1=t1)
    for g, block in enumerate(groups):
        assert set(np.flatnonzero(gid == g).tolist()) == samples_on(dates, t1, block.tolist())
    assert np.all((gid == -1) == np.isnat(t1))
    assert cv.test_groups() == combos
    for (train, test), info, (test_days, exp) in zip(splits, infos, expected, strict=True):
        assert_clean_cut(train, test, dates, t1)
        assert set(test.tolist()) == samples_on(dates, t1, test_days)
        assert set(train.tolist()) == exp[0]
        assert set(info.purged.tolist()) == exp[1]
        assert set(info.embargoed.tolist()) == exp[2]
        event(f"embargoed: {bool(exp[2])}")
        check_no_leakage(train, test, dates, t1, embargo_days=embargo, calendar=bars)
    # backtest paths
    paths = cv.paths()
    n_paths = math.comb(n_groups, k) * k // n_groups
    assert cv.n_paths == n_paths and paths.shape == (n_paths, n_groups)
    used = set()
    for p in range(n_paths):
        for g in range(n_groups):
            assert g in combos[paths[p, g]]  # each group predicted by a split testing it
            used.add((int(paths[p, g]), g))
    # every (split, test group) pair is used by exactly one path: each path covers
    # every group exactly once and no prediction is reused
    assert len(used) == n_paths * n_groups == sum(len(c) for c in combos)


@pytest.mark.parametrize(("n", "k"), [(6, 2), (10, 2), (8, 3), (5, 1)])
def test_cpcv_counts_formulas(n, k):
    cv = CombinatorialPurgedCV(n_groups=n, n_test_groups=k)
    assert cv.get_n_splits() == math.comb(n, k)
    assert cv.n_paths == math.comb(n, k) * k // n
    assert sorted(cv.paths().ravel().tolist()) == sorted(
        s for s, c in enumerate(cv.test_groups()) for _ in c
    )


# ---------------------------------------------------------------------------
# WalkForward


def add_months(day, months):
    """Oracle for month arithmetic: pandas DateOffset (clips to the month's end)."""
    return (pd.Timestamp(day) + pd.DateOffset(months=months)).to_datetime64().astype("M8[D]")


def declared_three_way(dates, t1, bounds, embargo_days=0, bars=None):
    """Train / validation / test sets from declared half-open bounds, by a plain loop.

    Training labels must end before the declared validation start, validation
    labels before the declared test start (not merely before the first test
    sample, which can come later when days are missing); both must end at least
    ``embargo_days`` trading days of ``bars`` before the declared test start.
    Returns dicts of sets: ``train`` / ``validation`` with ``kept``,
    ``purged``, ``embargoed``, and the ``test`` set.
    """
    a, v, t, e = (b.item() for b in bounds)
    bar_list = [] if bars is None else bars.tolist()
    out = {name: {"kept": set(), "purged": set(), "embargoed": set()} for name in ("train", "val")}
    test = set()
    for i in range(len(dates)):
        if np.isnat(t1[i]):
            continue
        d, end = dates[i].item(), t1[i].item()
        if t <= d < e:
            test.add(i)
            continue
        if a <= d < v:
            name, start = "train", v
        elif v <= d < t:
            name, start = "val", t
        else:
            continue
        between = sum(1 for c in bar_list if end < c < t)  # trading days before the test
        if end >= start:
            out[name]["purged"].add(i)
        elif embargo_days and between < embargo_days:
            out[name]["embargoed"].add(i)
        else:
            out[name]["kept"].add(i)
    return out["train"], out["val"], test


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    panel=panels(min_days=150, max_days=320),
    train_m=st.integers(1, 4),
    val_m=st.integers(1, 3),
    test_m=st.integers(1, 3),
    step=st.integers(1, 3),
    embargo=embargoes,
)
def test_walk_forward(panel, train_m, val_m, test_m, step, embargo):
    dates, t1, _, bars = panel
    cal = calendar_of(dates, t1)
    cv = WalkForward(train_m, val_m, test_m, step, embargo_days=embargo)
    d0, last = cal[0], cal[-1]
    total = train_m + val_m + test_m
    expected = []
    k = 0
    while add_months(d0, k * step + total) <= last + 1:
        s = k * step
        expected.append(tuple(add_months(d0, s + m) for m in (0, train_m, train_m + val_m, total)))
        k += 1
    event(f"windows: {min(len(expected), 3)}")
    if not expected:
        with pytest.raises(ValueError, match="not enough data"):
            cv.split_three(dates, dates=dates, t1=t1, calendar=bars)
        return
    assert cv.windows(dates, dates=dates, t1=t1) == expected
    brute = [declared_three_way(dates, t1, w, embargo, bars) for w in expected]
    if not all(b[0]["kept"] and b[1]["kept"] and b[2] for b in brute):
        return assert_empty_split_raises(cv, dates, t1, "split_three", calendar=bars)
    triples = list(cv.split_three(dates, dates=dates, t1=t1, calendar=bars))
    pairs = list(cv.split(dates, dates=dates, t1=t1, calendar=bars))
    infos = cv.split_info(dates, dates=dates, t1=t1, calendar=bars)
    assert cv.get_n_splits(dates, dates=dates, t1=t1) == len(pairs) == len(triples)
    assert len(triples) == len(expected)
    for (train, val, test), pair, info, w, (exp, exp_val, exp_test) in zip(
        triples, pairs, infos, expected, brute, strict=True
    ):
        np.testing.assert_array_equal(pair[0], train)
        np.testing.assert_array_equal(pair[1], test)
        np.testing.assert_array_equal(info.validation, val)
        # contiguous, non-overlapping windows of the stated month lengths
        assert w[0] < w[1] < w[2] < w[3]
        assert (
            set(test.tolist())
            == exp_test
            == samples_on(dates, t1, cal[(cal >= w[2]) & (cal < w[3])].tolist())
        )
        assert_clean_cut(train, test, dates, t1)
        assert_clean_cut(train, val, dates, t1, whole_dates=False)
        assert_clean_cut(val, test, dates, t1)
        assert dates[train].max() < dates[val].min() <= dates[val].max() < dates[test].min()
        # training labels end before the declared validation start, validation
        # labels before the declared test start
        # labels, and at least ``embargo`` trading days before the declared test start
        assert set(train.tolist()) == exp["kept"]
        assert set(info.purged.tolist()) == exp["purged"]
        assert set(info.embargoed.tolist()) == exp["embargoed"]
        assert set(val.tolist()) == exp_val["kept"]
        assert set(info.validation_purged.tolist()) == exp_val["purged"]
        assert set(info.validation_embargoed.tolist()) == exp_val["embargoed"]
        event(f"embargoed: {bool(exp_val['embargoed'])}")
        assert (t1[train] < w[1]).all() and (t1[val] < w[2]).all()
        check_no_leakage(train, val, dates, t1, test_start=w[1])
        for earlier in (train, val):
            check_no_leakage(
                earlier, test, dates, t1, test_start=w[2], embargo_days=embargo, calendar=bars
            )
    if step == 1 and len(expected) > 1:
        for a, b in itertools.pairwise(expected):
            months = lambda d: d.astype("M8[M]").astype(int)  # noqa: E731
            assert months(b[2]) - months(a[2]) == 1  # test windows shifted by one month
            assert (b[2] < a[3]) == (test_m > 1)  # ... and overlapping when longer


def test_three_way_splits_purge_against_the_declared_bounds():
    """Stride-5 grid, a ticker that misses days: the first grid date on or after a
    declared boundary is missing, so the first sample of the period comes a grid
    step later. Labels must still end before the declared start."""
    bars = np.busday_offset(np.datetime64("2015-01-05", "D"), np.arange(800), roll="forward")
    cv = WalkForward(train_months=12, validation_months=6, test_months=6, step_months=6)
    full, full_t1, _ = grid_panel(bars, {"B": bars})
    grid = full  # every grid date (B complete)
    boundaries = [b for w in cv.windows(dates=full, t1=full_t1) for b in w[1:3]]
    missing = {grid[grid >= b][0].item() for b in boundaries}  # first grid date at/after each
    rng = np.random.default_rng(3)
    missing |= {d.item() for d in bars[rng.random(len(bars)) < 0.03] if d != bars[0]}
    own = np.array([d for d in bars if d.item() not in missing])
    dates, t1, _ = grid_panel(bars, {"B": own})
    assert cv.windows(dates=dates, t1=t1) == cv.windows(dates=full, t1=full_t1)
    triples = list(cv.split_three(dates=dates, t1=t1))
    windows = cv.windows(dates=dates, t1=t1)
    late = {"validation": 0, "train": 0}  # labels ending inside a later declared period
    for (train, val, _), w in zip(triples, windows, strict=True):
        late["validation"] += int((t1[val] >= w[2]).sum())
        late["train"] += int((t1[train] >= w[1]).sum())
    print(f"labels ending inside a later declared period: {late}")
    assert late == {"validation": 0, "train": 0}
    for (train, val, test), w in zip(triples, windows, strict=True):
        exp_train, exp_val, exp_test = declared_three_way(dates, t1, w)
        assert set(train.tolist()) == exp_train["kept"]
        assert set(val.tolist()) == exp_val["kept"]
        assert set(test.tolist()) == exp_test
    holdout = Holdout(0.2, 0.2)
    ((train, val, test),) = holdout.split_three(dates=dates, t1=t1)
    ((a, v, t, _),) = holdout.windows(dates=dates, t1=t1)
    assert t1[train].max() < v and t1[val].max() < t


@settings(max_examples=100, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 4), min_size=1, max_size=60),
    embargo=st.integers(0, 8),
    data=st.data(),
)
def test_label_cut_keeps_exactly_the_labels_ending_early_enough(gaps, embargo, data):
    """A label ending on trading day c passes the cut before a declared start (a trading
    day or not) exactly when ``embargo`` trading days lie strictly between c and it."""
    bars = np.datetime64("2015-06-01", "D") + np.cumsum(gaps).astype("timedelta64[D]")
    span = int((bars[-1] - bars[0]).astype(np.int64))
    start = bars[0] + np.timedelta64(data.draw(st.integers(-3, span + 3)), "D")
    days = bars.astype(np.int64)
    cut = engine.splits.dates._label_cut(int(start.astype(np.int64)), embargo, days)
    for c in bars[bars < start]:
        between = int(((bars > c) & (bars < start)).sum())
        assert (int(c.astype(np.int64)) < cut) == (between >= embargo), (c, cut, between)


def test_walk_forward_default_windows_36_12_12():
    rng = np.random.default_rng(1)
    bdays = np.arange("1999-01-04", "2010-01-01", dtype="datetime64[D]")
    bdays = bdays[np.is_busday(bdays)]
    dates = np.concatenate([bdays, bdays[100:]])
    t1 = np.concatenate([np.r_[bdays[5:], [NAT] * 5], np.r_[bdays[105:], [NAT] * 5]])
    order = rng.permutation(len(dates))
    dates, t1 = dates[order], t1[order]
    cv = WalkForward()
    w = cv.windows(dates, dates=dates, t1=t1)
    D = lambda s: np.datetime64(s, "D")  # noqa: E731
    assert w[0] == (D("1999-01-04"), D("2002-01-04"), D("2003-01-04"), D("2004-01-04"))
    assert w[-1] == (D("2004-01-04"), D("2007-01-04"), D("2008-01-04"), D("2009-01-04"))
    assert cv.get_n_splits(dates, dates=dates, t1=t1) == 6  # 2010-01-04 is past the data
    # partial_test adds the window whose test period the data cut short
    w_partial = WalkForward(partial_test=True).windows(dates, dates=dates, t1=t1)
    assert len(w_partial) == 7 and w_partial[-1][3] == D("2010-01-04")
    monthly = WalkForward(step_months=1)
    assert monthly.get_n_splits(dates, dates=dates, t1=t1) == 72
    wm = monthly.windows(dates, dates=dates, t1=t1)
    assert wm[1] == (D("1999-02-04"), D("2002-02-04"), D("2003-02-04"), D("2004-02-04"))
    train, val, test = next(cv.split_three(dates, dates=dates, t1=t1))
    assert dates[train].min() == D("1999-01-04") and dates[train].max() < D("2002-01-04")
    assert dates[val].min() >= D("2002-01-04") and dates[test].max() < D("2004-01-04")
    # 5-bar labels: the last 5 training dates of each ticker are purged
    info = cv.split_info(dates, dates=dates, t1=t1)[0]
    assert info.purged.size == 10 and info.validation_purged.size == 10


def test_walk_forward_month_end_clipping():
    d = np.arange("2000-01-31", "2000-06-30", dtype="datetime64[D]")
    cv = WalkForward(1, 1, 1, step_months=1)
    w = cv.windows(d, dates=d, t1=d + 1)
    D = lambda s: np.datetime64(s, "D")  # noqa: E731
    assert w[0] == (D("2000-01-31"), D("2000-02-29"), D("2000-03-31"), D("2000-04-30"))
    assert w[1] == (D("2000-02-29"), D("2000-03-31"), D("2000-04-30"), D("2000-05-31"))


# ---------------------------------------------------------------------------
# check_no_leakage


def hand_panel():
    # two tickers, same 10 dates; t1 = 2 dates later
    days = np.arange("2021-03-01", "2021-03-11", dtype="datetime64[D]")
    dates = np.concatenate([days, days])
    t1 = np.concatenate([np.r_[days[2:], [NAT] * 2]] * 2)
    return dates, t1


def test_check_no_leakage_names_the_leaking_sample():
    dates, t1 = hand_panel()
    test = np.array([3, 4, 13, 14])  # 03-04, 03-05 for both tickers; labels to 03-07
    clean_train = np.array([0, 10, 7, 17])  # labels end 03-03, or dated after 03-07
    check_no_leakage(clean_train, test, dates, t1)
    with pytest.raises(LeakageError, match=r"sample 12 \(date 2021-03-03, t1 2021-03-05\)") as e:
        check_no_leakage(np.r_[clean_train, 12], test, dates, t1)
    assert e.value.samples.tolist() == [12]
    assert isinstance(e.value, ValueError)
    assert "2021-03-04..2021-03-05, labels to 2021-03-07" in str(e.value)
    # after the test dates but inside the span of the test labels
    with pytest.raises(LeakageError, match=r"sample 16 .* overlapping a test label span") as e:
        check_no_leakage(np.r_[clean_train, 16], test, dates, t1)
    assert e.value.samples.tolist() == [16]
    # embargo: 03-08 is the first trading day after the test label span
    days = np.unique(dates)
    with pytest.raises(LeakageError, match=r"sample 7 .* 1-trading-day embargo") as e:
        check_no_leakage(clean_train, test, dates, t1, embargo_days=1, calendar=days)
    assert e.value.samples.tolist() == [7, 17]
    check_no_leakage(np.array([0, 10]), test, dates, t1, embargo_days=5, calendar=days)
    # a calendar that misses a sample's date is not the bar calendar
    with pytest.raises(ValueError, match="sample 6 is dated 2021-03-07, not a day of"):
        check_no_leakage(
            clean_train, test, dates, t1, embargo_days=1, calendar=days[days != days[6]]
        )


def test_check_no_leakage_with_a_declared_test_start():
    """The test period starts at its declared start, even when its first sample is later."""
    dates, t1 = hand_panel()
    days = np.unique(dates)
    test = np.array([5, 15])  # 03-06; the period is declared from 03-05 (a missing day)
    start = np.datetime64("2021-03-05")
    check_no_leakage([2, 12], test, dates, t1)  # labels end 03-05, before the first test date
    with pytest.raises(
        LeakageError, match=r"inside the declared test period \(from 2021-03-05"
    ) as e:
        check_no_leakage([1, 2, 12], test, dates, t1, test_start=start)
    assert e.value.samples.tolist() == [2, 12]
    # embargo before the declared start: a label ending 03-04 has no trading day
    # between it and 03-05; one ending 03-03 has one (03-04)
    check_no_leakage([1], test, dates, t1, test_start=start)
    with pytest.raises(LeakageError, match="fewer than 1 trading days before the declared test"):
        check_no_leakage([1], test, dates, t1, test_start=start, embargo_days=1, calendar=days)
    check_no_leakage([0], test, dates, t1, test_start=start, embargo_days=1, calendar=days)
    with pytest.raises(ValueError, match="`test_start` 2021-03-07 must not follow the first test"):
        check_no_leakage([0], test, dates, t1, test_start=dt.date(2021, 3, 7))


@pytest.mark.parametrize(
    ("train", "match"),
    [
        pytest.param([0, 5], "sample 5 .* in both train and test", id="overlap"),
        pytest.param([0, 9], r"sample 9 \(date 2021-03-10, t1 null\) has an unknown", id="null"),
        pytest.param([0, 14], "sample 14 .* shares a date", id="same date, other ticker"),
    ],
)
def test_check_no_leakage_other_violations(train, match):
    dates, t1 = hand_panel()
    test = np.array([4, 5])  # 03-05 and 03-06 of ticker 0 only
    with pytest.raises(LeakageError, match=match):
        check_no_leakage(train, test, dates, t1)


def test_check_no_leakage_lists_every_offender():
    dates, t1 = hand_panel()
    with pytest.raises(LeakageError) as e:
        check_no_leakage([2, 3, 4, 12, 13], [5, 15], dates, t1)
    assert e.value.samples.tolist() == [3, 4, 13] and len(e.value.reasons) == 3


# ---------------------------------------------------------------------------
# inputs and errors


def small_panel():
    rng = np.random.default_rng(7)
    return make_panel(rng, 90, 3, h=3, hole_p=0.1)


def test_dataframe_and_date_forms_give_the_same_splits():
    dates, t1, tickers, bars = small_panel()
    cv = PurgedKFold(n_splits=4, embargo_days=2)
    ref = [(a.tolist(), b.tolist()) for a, b in cv.split(dates, dates=dates, t1=t1, calendar=bars)]
    assert sum(len(i.embargoed) for i in cv.split_info(dates=dates, t1=t1, calendar=bars)) > 0
    polars_df = pl.DataFrame({"ticker": tickers, "date": dates, "t1": t1})
    assert polars_df.schema["date"] == pl.Date and polars_df["t1"].null_count() > 0
    pandas_df = pd.DataFrame({"ticker": tickers, "date": dates, "t1": t1})
    pydates = [d.item() for d in dates]
    pyt1 = [None if np.isnat(e) else e.item() for e in t1]
    shuffled = bars[np.random.default_rng(0).permutation(len(bars))]
    forms = [
        dict(X=polars_df, calendar=pl.Series(bars)),
        dict(X=pandas_df, calendar=pd.Series(bars)),
        dict(X=np.zeros((len(dates), 2)), dates=pydates, t1=pyt1, calendar=bars.tolist()),
        dict(X=None, dates=polars_df["date"], t1=polars_df["t1"], calendar=shuffled),
        dict(X=None, dates=pandas_df["date"], t1=pandas_df["t1"], calendar=np.r_[bars, bars]),
        dict(
            X=list(range(len(dates))),
            dates=dates.astype("M8[ns]"),
            t1=t1.astype("M8[s]"),
            calendar=bars.astype("M8[ns]"),
        ),
    ]
    for form in forms:
        X = form.pop("X")
        got = [(a.tolist(), b.tolist()) for a, b in cv.split(X, **form)]
        assert got == ref


def test_split_raises_at_call_time():
    dates, t1, *_ = small_panel()
    cv = PurgedKFold(n_splits=3)
    cv.n_splits = 1  # mutated after construction: split() re-validates eagerly
    with pytest.raises(ValueError, match=r"`n_splits` must be at least 2, got `n_splits=1`"):
        cv.split(dates, dates=dates, t1=t1)
    wf = WalkForward(36, 12, 12, 12)
    with pytest.raises(ValueError, match="not enough data for one walk-forward window"):
        wf.split(dates, dates=dates, t1=t1)
    with pytest.raises(ValueError, match="not enough data for one walk-forward window"):
        wf.split_three(dates, dates=dates, t1=t1)
    with pytest.raises(ValueError, match="at most the number of unique dates"):
        PurgedKFold(n_splits=10_000).split(dates, dates=dates, t1=t1)
    with pytest.raises(ValueError, match="at most the number of unique dates"):
        CombinatorialPurgedCV(n_groups=10_000, n_test_groups=2).split(dates, dates=dates, t1=t1)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        pytest.param(lambda: PurgedKFold(1), ValueError, "`n_splits` must be at least 2", id="kf"),
        pytest.param(lambda: PurgedKFold(2.5), TypeError, "must be an integer", id="kf float"),
        pytest.param(
            lambda: PurgedKFold(3, embargo_days=-1),
            ValueError,
            "`embargo_days` must be at least 0, got `embargo_days=-1`",
            id="emb",
        ),
        pytest.param(
            lambda: PurgedKFold(3, embargo_days="5d"),
            TypeError,
            "`embargo_days` must be an integer",
            id="emb str",
        ),
        pytest.param(
            lambda: CombinatorialPurgedCV(4, 2, embargo_days=dt.timedelta(days=5)),
            TypeError,
            "`embargo_days` must be an integer",
            id="emb timedelta",
        ),
        pytest.param(
            lambda: PurgedKFold(3, embargo_days=True),
            TypeError,
            "`embargo_days` must be an integer",
            id="emb bool",
        ),
        pytest.param(
            lambda: GappedTimeSeriesCV(gap=-1), ValueError, "`gap` must be at least 0", id="gap"
        ),  # noqa: E501
        pytest.param(lambda: GappedTimeSeriesCV(1), ValueError, "`n_splits=1`", id="gapped n"),
        pytest.param(
            lambda: GappedTimeSeriesCV(3, test_size=0), ValueError, "`test_size=0`", id="ts"
        ),  # noqa: E501
        pytest.param(
            lambda: WalkForward(0), ValueError, "`train_months` must be at least 1", id="wf"
        ),  # noqa: E501
        pytest.param(lambda: WalkForward(step_months=0), ValueError, "`step_months=0`", id="step"),
        pytest.param(
            lambda: CombinatorialPurgedCV(4, 4),
            ValueError,
            "`n_test_groups` must be smaller",
            id="cp",
        ),
        pytest.param(lambda: CombinatorialPurgedCV(1, 1), ValueError, "`n_groups=1`", id="cp n"),
    ],
)
def test_parameter_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param(dict(X=np.zeros(4)), TypeError, "pass `dates=` explicitly", id="no dates"),
        pytest.param(
            dict(X=pl.DataFrame({"date": [dt.date(2020, 1, 1)]})),
            ValueError,
            "X has no `t1` column",
            id="no t1 column",
        ),
        pytest.param(
            dict(X=None, dates=np.arange(4), t1=np.arange(4)),
            TypeError,
            "`dates` must hold dates",
            id="int dates",
        ),
        pytest.param(
            dict(X=None, dates=[dt.date(2020, 1, 2)], t1=[dt.date(2020, 1, 1)]),
            ValueError,
            "`t1` must not precede `dates`; sample 0",
            id="t1 before date",
        ),
        pytest.param(
            dict(X=None, dates=[None, dt.date(2020, 1, 2)], t1=[None, dt.date(2020, 1, 3)]),
            ValueError,
            "sample 0 has a null date",
            id="null date",
        ),
        pytest.param(
            dict(X=np.zeros(3), dates=[dt.date(2020, 1, 2)], t1=[dt.date(2020, 1, 3)]),
            ValueError,
            "X has 3 samples but `dates` has 1",
            id="length",
        ),
        pytest.param(
            dict(X=None, dates=[dt.date(2020, 1, 2)], t1=[None]),
            ValueError,
            "no sample has a known label end date",
            id="all null t1",
        ),
        pytest.param(
            dict(X=None, dates=pl.Series([1, 2]), t1=pl.Series([1, 2])),
            TypeError,
            "got a Polars Int64 series",
            id="polars ints",
        ),
    ],
)
def test_input_errors_raise_at_call(kwargs, error, match):
    for cv in (
        PurgedKFold(2),
        GappedTimeSeriesCV(2, gap=0),
        CombinatorialPurgedCV(3, 1),
        WalkForward(1, 1, 1, 1),
    ):
        X = kwargs.get("X")
        rest = {k: v for k, v in kwargs.items() if k != "X"}
        with pytest.raises(error, match=match):
            cv.split(X, **rest)


def test_walk_forward_get_n_splits_needs_data():
    with pytest.raises(ValueError, match="needs the data"):
        WalkForward().get_n_splits()


def test_null_t1_samples_are_never_used():
    dates, t1, *_ = small_panel()
    null = set(np.flatnonzero(np.isnat(t1)).tolist())
    assert null
    for cv in (PurgedKFold(3), CombinatorialPurgedCV(4, 2), GappedTimeSeriesCV(3, gap=10)):
        for train, test in cv.split(dates, dates=dates, t1=t1):
            assert not null & (set(train.tolist()) | set(test.tolist()))


def test_repr():
    assert repr(PurgedKFold(4, embargo_days=2)) == "PurgedKFold(n_splits=4, embargo_days=2)"
    assert repr(WalkForward()).startswith("WalkForward(train_months=36, validation_months=12")


def test_docstring_examples_run():
    attempted = 0
    for module in (
        engine.splits,
        engine.splits.base,
        engine.splits.dates,
        engine.splits.kfold,
        engine.splits.leakage,
        engine.splits.windows,
    ):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 10
