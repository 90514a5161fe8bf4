"""The Holdout splitter (engine/splits/windows.py): date fractions, purge, argument checks.

Hypothesis draws pooled panels (several tickers with holes, t1 = the
ticker's date h bars later, null for its last h bars, rows shuffled); every
split is compared with the sets computed from the definitions by a plain
loop.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.splits import Holdout, check_no_leakage

NAT = np.datetime64("NaT", "D")
SETTINGS = settings(max_examples=60, deadline=None)


def _panel(rng, n_days, n_tickers, h, hole_p=0.1):
    """Shuffled (dates, t1) of a pooled panel, and its bar calendar (every trading day)."""
    bdays = np.busday_offset(np.datetime64("2011-02-01", "D"), np.arange(n_days), roll="forward")
    cal = bdays[rng.random(n_days) >= hole_p]
    dates, t1s = [], []
    for _ in range(n_tickers):
        own = cal[rng.random(len(cal)) >= 0.05]
        end = np.full(len(own), NAT)
        end[: max(len(own) - h, 0)] = own[h:]
        dates.append(own)
        t1s.append(end)
    dates, t1 = np.concatenate(dates), np.concatenate(t1s)
    order = rng.permutation(len(dates))
    return dates[order], t1[order], cal


@st.composite
def cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dates, t1, bars = _panel(
        rng,
        n_days=draw(st.integers(40, 160)),
        n_tickers=draw(st.integers(1, 4)),
        h=draw(st.integers(1, 8)),
        hole_p=draw(st.sampled_from([0.0, 0.1, 0.3])),
    )
    val = draw(st.sampled_from([0.1, 0.15, 0.2, 0.3]))
    test = draw(st.sampled_from([0.1, 0.2, 0.25, 0.4]))
    embargo = draw(st.sampled_from([0, 0, 1, 5, 12]))
    return dates, t1, val, test, embargo, bars


def _expected(dates, t1, val_first, test_first, embargo_days=0, bars=None):
    """Train / validation / test index sets by a plain loop over the samples.

    With ``embargo_days``, training and validation labels must also leave at
    least that many trading days of ``bars`` before the test start.
    """
    train, val, test = [], [], []
    for i in range(len(dates)):
        if np.isnat(t1[i]):
            continue  # unknown label: in no set
        d, e = dates[i], t1[i]
        clear = embargo_days == 0 or ((bars > e) & (bars < test_first)).sum() >= embargo_days
        if d >= test_first:
            test.append(i)
        elif d >= val_first:
            if e < test_first and clear:  # its label stops before the test period
                val.append(i)
        elif e < val_first and clear:  # its label stops before the validation period
            train.append(i)
    return np.array(train, dtype=np.int64), np.array(val, np.int64), np.array(test, np.int64)


@SETTINGS
@given(cases())
def test_holdout_matches_definition(case):
    dates, t1, vf, tf, embargo, bars = case
    cv = Holdout(validation_fraction=vf, test_fraction=tf, embargo_days=embargo)
    cal = np.unique(dates[~np.isnat(t1)])
    n = len(cal)
    ((a, v, t, e),) = cv.windows(dates=dates, t1=t1)
    # half-open bounds on calendar dates; the periods hold the requested shares
    assert a == cal[0] and e == cal[-1] + 1
    assert v in cal and t in cal
    n_val, n_test = int(((cal >= v) & (cal < t)).sum()), int((cal >= t).sum())
    assert abs(n_test - n * tf) <= 0.5 and abs(n_val - n * vf) <= 0.5
    assert n - n_val - n_test >= 1

    exp_train, exp_val, exp_test = _expected(dates, t1, v, t, embargo, bars)
    if min(len(exp_train), len(exp_val)) == 0:  # long labels can purge a short period away
        with pytest.raises(ValueError, match="empty (train|validation) set"):
            cv.split_three(dates=dates, t1=t1, calendar=bars)
        return
    train, val, test = next(cv.split_three(dates=dates, t1=t1, calendar=bars))
    np.testing.assert_array_equal(train, exp_train)
    np.testing.assert_array_equal(val, exp_val)
    np.testing.assert_array_equal(test, exp_test)
    # no label of an earlier set reaches a later period, nor the embargo before the test
    embargo_check = dict(embargo_days=embargo, calendar=bars, test_start=t)
    check_no_leakage(train, test, dates, t1, **embargo_check)
    check_no_leakage(train, val, dates, t1, test_start=v)
    check_no_leakage(val, test, dates, t1, **embargo_check)
    # split() is split_three() without the validation set
    (tr2, te2), *rest = list(cv.split(dates=dates, t1=t1, calendar=bars))
    assert not rest and cv.get_n_splits() == 1
    np.testing.assert_array_equal(tr2, train)
    np.testing.assert_array_equal(te2, test)


@pytest.mark.parametrize(("vf", "tf"), [(0.2, 0.2), (0.1, 0.3), (0.25, 0.15)])
def test_holdout_period_shares(vf, tf):
    """On a clean daily calendar the periods hold the requested shares of the dates."""
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + 200)
    frame = pl.DataFrame({"date": days, "t1": days + 1})
    cv = Holdout(vf, tf)
    train, val, test = next(cv.split_three(frame))
    assert len(test) == pytest.approx(200 * tf, abs=0.5)
    assert len(val) == pytest.approx(200 * vf - 1, abs=0.5)  # its last day's label hits test
    assert len(train) == pytest.approx(200 * (1 - vf - tf) - 1, abs=0.5)
    assert days[train].max() < days[val].min() and days[val].max() < days[test].min()
    assert days[test].max() == days[-1]


def test_holdout_pooled_cut_is_by_date():
    rng = np.random.default_rng(5)
    dates, t1, _ = _panel(rng, n_days=120, n_tickers=5, h=5)
    train, val, test = next(Holdout(0.2, 0.2).split_three(dates=dates, t1=t1))
    for part in (train, val, test):
        assert len(part) > 0
    # every ticker's samples on a test date are in the test set
    test_days = set(dates[test].tolist())
    usable = ~np.isnat(t1)
    assert set(test.tolist()) == {i for i in np.flatnonzero(usable) if dates[i].item() in test_days}
    assert t1[train].max() < dates[val].min()
    assert t1[val].max() < dates[test].min()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"validation_fraction": 0.0}, "validation_fraction", id="zero val"),
        pytest.param({"test_fraction": 1.0}, "test_fraction", id="test 1"),
        pytest.param({"test_fraction": -0.2}, "test_fraction", id="negative"),
        pytest.param({"validation_fraction": True}, "validation_fraction", id="bool"),
        pytest.param({"test_fraction": "0.2"}, "test_fraction", id="string"),
        pytest.param({"validation_fraction": 0.5, "test_fraction": 0.5}, "below 1", id="sum is 1"),
        pytest.param(
            {"validation_fraction": 0.7, "test_fraction": 0.4}, "below 1", id="sum above 1"
        ),
    ],
)
def test_holdout_rejects_bad_fractions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Holdout(**kwargs)


def test_holdout_rejects_too_few_dates():
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-04"))
    with pytest.raises(ValueError, match="too few"):
        Holdout(0.1, 0.1).windows(dates=days, t1=days + 1)


def test_holdout_rejects_empty_train_after_purge():
    """Labels so long that every training label reaches the validation period."""
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-11"))
    with pytest.raises(ValueError, match="empty train"):
        Holdout(0.2, 0.2).split_three(dates=days, t1=days + 30)


def test_holdout_repr():
    assert repr(Holdout(0.1, 0.3, embargo_days=5)) == (
        "Holdout(validation_fraction=0.1, test_fraction=0.3, embargo_days=5)"
    )


def test_holdout_embargo_needs_the_bar_calendar():
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-03-01"))
    with pytest.raises(ValueError, match=r"`embargo_days=5` counts trading days .* `calendar=`"):
        Holdout(0.2, 0.2, embargo_days=5).split_three(dates=days, t1=days + 1)
    with pytest.raises(ValueError, match="`embargo_days` must be at least 0"):
        Holdout(0.2, 0.2, embargo_days=-1)
