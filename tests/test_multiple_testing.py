"""Holm and Benjamini-Hochberg against statsmodels, hand-worked cases and their properties."""

from __future__ import annotations

import gc

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from engine.evaluation.multiple_testing import (
    adjust_p_values,
    benjamini_hochberg,
    correction_line,
    holm,
)


@pytest.fixture(scope="module", autouse=True)
def _statsmodels_without_gc_collect():
    """statsmodels' Holm runs ``gc.collect()`` on every call: 0.2 s alone, about 1 s in the
    full suite's heap. Collecting garbage cannot change a p-value: this module skips it
    (the collector's automatic runs go on)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gc, "collect", lambda generation=2: 0)
        yield


METHODS = {"holm": (holm, "holm"), "bh": (benjamini_hochberg, "fdr_bh")}
P_VALUES = st.lists(
    st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from([0.0, 0.01, 0.05, 0.5, 1.0]),  # ties
    ),
    min_size=1,
    max_size=60,
)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(5))
def test_equals_statsmodels(method, seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=40) ** 3, rng.choice([0.01, 0.2], size=10)])
    ours, theirs = METHODS[method]
    expected = multipletests(p, method=theirs)[1]
    np.testing.assert_allclose(ours(p), expected, rtol=0, atol=1e-15)


def test_equals_statsmodels_on_many_inputs():
    """Sizes 1..60, ties, zeros and ones."""
    rng = np.random.default_rng(11)
    for _ in range(25):
        m = int(rng.integers(1, 61))
        p = rng.uniform(size=m) ** rng.uniform(0.5, 4.0)
        tied = rng.uniform(size=m) < 0.3
        p[tied] = rng.choice([0.0, 0.01, 0.05, 0.5, 1.0], size=int(tied.sum()))
        for ours, theirs in METHODS.values():
            np.testing.assert_allclose(ours(p), multipletests(p, method=theirs)[1], atol=1e-12)


def test_hand_worked():
    # sorted: 0.005, 0.01, 0.03, 0.04; m = 4
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, max(1*0.04, 0.06)=0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: 4/1*0.005=0.02, 4/2*0.01=0.02, 4/3*0.03=0.04, 4/4*0.04=0.04, running min from the top
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    # one test: nothing to adjust
    assert holm([0.03])[0] == benjamini_hochberg([0.03])[0] == 0.03
    # capped at 1
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])


def test_missing_p_values_stay_missing_and_do_not_count():
    p = [0.01, np.nan, 0.04]
    np.testing.assert_allclose(holm(p), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, np.nan, 0.04])
    assert np.isnan(holm([np.nan, np.nan])).all()
    assert holm([]).shape == (0,)


@pytest.mark.parametrize("bad", [[-0.1], [1.5], [[0.1, 0.2]]])
def test_refuses_what_is_not_a_p_value(bad):
    with pytest.raises(ValueError, match="p-values"):
        holm(bad)


@settings(max_examples=200, deadline=None)
@given(p=P_VALUES)
def test_adjusted_is_at_least_raw_at_most_one_and_keeps_the_order(p):
    raw = np.asarray(p)
    for adjust in (holm, benjamini_hochberg):
        adj = adjust(raw)
        assert np.all(adj >= raw - 1e-15)
        assert np.all(adj <= 1.0)
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(adj[order]) >= -1e-15)  # monotone in the raw p-value
    assert np.all(holm(raw) >= benjamini_hochberg(raw) - 1e-15)  # Holm is the stricter


def test_adjust_p_values_adds_a_column_beside_each_raw_one():
    frame = pl.DataFrame(
        {
            "pattern": ["a", "b", "c"],
            "auc": [0.6, 0.55, None],
            "auc_p_value": [0.01, 0.04, None],
            "brier_p_value": [0.5, 0.02, 0.03],
        }
    )
    out = adjust_p_values(frame, "bh")
    assert out.columns == [
        "pattern", "auc", "auc_p_value", "auc_p_value_bh", "brier_p_value", "brier_p_value_bh",
    ]  # fmt: skip
    assert out["auc_p_value_bh"].to_list() == pytest.approx([0.02, 0.04, None])
    assert out["brier_p_value_bh"].to_list() == pytest.approx([0.5, 0.045, 0.045])
    with pytest.raises(ValueError, match="method"):
        adjust_p_values(frame, "bonferroni")


def test_correction_line_names_the_method_and_family():
    line = correction_line("bh", 136, "pattern x ticker rows")
    assert line.startswith("adj. p: Benjamini-Hochberg over the 136 pattern x ticker rows")
    assert "false discovery rate" in line
