"""The pandas feature oracle (``tests/oracles/features.py``) checked by hand.

Values worked out by hand or with ``statistics`` on tiny arrays, so the oracle
the engine is held to is itself held to the SPEC text. No engine needed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.oracles import features as ref


def _one(close, *, open_=None, high=None, low=None, volume=None, ticker="AAA"):
    """One ticker's bars indexed by business day (H/L 1 % around C unless given)."""
    n = len(close)
    close = np.asarray(close, dtype=float)
    return pd.DataFrame(
        {"open": close if open_ is None else np.asarray(open_, float),
         "high": close * 1.01 if high is None else np.asarray(high, float),
         "low": close * 0.99 if low is None else np.asarray(low, float),
         "close": close,
         "volume": np.full(n, 1000.0) if volume is None else np.asarray(volume, float)},
        index=pd.bdate_range("2020-01-01", periods=n),
    )  # fmt: skip


class TestOracleSelfCheck:
    """The oracle against values worked out by hand or with ``statistics``."""

    def test_end_of_day_momentum_hand_values(self):
        g = _one([10.0, 11.0, 12.0, 5.0], high=[12, 11, 13, 6], low=[8, 11, 10, 4])
        got = ref.end_of_day_momentum(g).to_numpy()
        np.testing.assert_allclose(got, [(10 - 8) / 4 - 0.5, 0.0, (12 - 10) / 3 - 0.5, 0.0])

    def test_momentum_persistence_hand_values(self):
        # r signs over rows 1..7: + + - + + 0 +, R_7(7) > 0 -> 5 of 7 agree
        c = [100, 101, 102, 101, 103, 104, 104, 105]
        got = ref.momentum_persistence(_one(c)).to_numpy()
        assert np.isnan(got[:7]).all()
        assert got[7] == pytest.approx(5 / 7)
        # R_7 = 0 exactly -> 0 even though signs disagree
        c0 = [100, 101, 102, 101, 103, 104, 104, 100]
        assert ref.momentum_persistence(_one(c0)).to_numpy()[7] == 0.0
        down = [100, 99, 98, 99, 97, 96, 95, 94]
        assert ref.momentum_persistence(_one(down)).to_numpy()[7] == pytest.approx(-6 / 7)

    def test_trend_exhaustion_and_price_level_with_statistics(self):
        import statistics

        rng = np.random.default_rng(1)
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
        te = ref.trend_exhaustion(_one(c)).to_numpy()
        pl_ = ref.price_level(_one(c)).to_numpy()
        for t in (19, 150, 299):
            w = list(c[t - 19 : t + 1])
            want = (c[t] - statistics.fmean(w)) / (2 * statistics.stdev(w))
            assert te[t] == pytest.approx(want, rel=1e-10)
        assert np.isnan(te[:19]).all() and np.isnan(pl_[:251]).all()
        w = c[299 - 251 : 300]
        assert pl_[299] == pytest.approx((c[299] - w.min()) / (w.max() - w.min()), rel=1e-12)
        flat = ref.trend_exhaustion(_one(np.full(25, 7.0))).to_numpy()
        assert np.isnan(flat[:19]).all() and (flat[19:] == 0.0).all()
        assert (ref.price_level(_one(np.full(260, 7.0))).to_numpy()[251:] == 0.5).all()

    def test_loop_formulas_match_pandas_reference(self):
        """Naive per-row loops from the SPEC text (two-pass statistics) vs the oracle."""
        import statistics as st

        rng = np.random.default_rng(2)
        n = 160
        c = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        o = c * np.exp(rng.normal(0, 0.005, n))
        h = np.maximum(o, c) * 1.01
        lo = np.minimum(o, c) * 0.985
        v = rng.integers(1000, 5000, n).astype(float)
        g = _one(c, open_=o, high=h, low=lo, volume=v)
        r = [math.nan] + [math.log(c[i] / c[i - 1]) for i in range(1, n)]
        R = lambda t, k: math.log(c[t] / c[t - k])  # noqa: E731
        sd = lambda x, t, k: st.stdev(x[t - k + 1 : t + 1])  # noqa: E731
        t = n - 1
        want = {
            "price_acceleration": (R(t, 5) - R(t - 5, 5)) / (sd(r, t, 20) * math.sqrt(5)),
            "volatility_regime_change": math.log(sd(r, t, 10) / sd(r, t, 60)),
            "overnight_gap": math.log(o[t] / c[t - 1]) / sd(r, t, 20),
            "normalized_volume": math.log((v[t] + 1) / (st.fmean(v[t - 19 : t + 1]) + 1)),
            "multi_timeframe_return": st.fmean(
                [R(t, k) / (sd(r, t, 60) * math.sqrt(k)) for k in (5, 20, 60)]
            ),
            "intraday_range_expansion": ((h[t] - lo[t]) / c[t])
            / st.fmean([(h[i] - lo[i]) / c[i] for i in range(t - 19, t + 1)]),
        }
        dlv = [math.nan] + [math.log1p(v[i]) - math.log1p(v[i - 1]) for i in range(1, n)]
        want["volume_price_divergence"] = st.correlation(r[t - 19 : t + 1], dlv[t - 19 : t + 1])
        q = [x * x for x in r]
        want["volatility_clustering"] = st.correlation(q[t - 59 : t + 1], q[t - 60 : t])
        x = np.array(r[t - 19 : t + 1])
        m2, m3 = ((x - x.mean()) ** 2).mean(), ((x - x.mean()) ** 3).mean()
        want["return_skewness"] = m3 / m2**1.5 * math.sqrt(20 * 19) / 18  # adjusted G1
        for f, w in want.items():
            got = ref.PER_TICKER[f](g).to_numpy()[t]
            assert got == pytest.approx(w, rel=1e-9, abs=1e-12), f

    def test_beta_and_relative_strength_join_on_benchmark_rows(self):
        rng = np.random.default_rng(3)
        n = 200
        full = _one(np.ones(n)).index
        cm = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        ca = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        mkt, a = _one(cm), _one(ca)
        a = a.drop(full[50])  # the stock misses a day: its r spans two days
        mkt = mkt.drop(full[10])  # the market misses a day: r_m missing there
        rm = np.log(mkt["close"] / mkt["close"].shift(1)).reindex(a.index)
        ra = np.log(a["close"] / a["close"].shift(1))
        t = len(a) - 1
        beta = []
        for s in range(t - 59, t + 1):
            xa, xm = ra.iloc[s - 19 : s + 1].to_numpy(), rm.iloc[s - 19 : s + 1].to_numpy()
            beta.append(np.cov(xa, xm)[0, 1] / np.var(xm, ddof=1))
        got = ref.market_beta_instability(a, mkt).to_numpy()
        assert got[t] == pytest.approx(np.std(beta, ddof=1), rel=1e-9)
        # r_m is missing on the market's gap day (row 10 of the stock): betas 10..29 null,
        # so sd_60 is null on rows 10..88 and defined from row 89
        nulls = np.flatnonzero(np.isnan(got))
        assert nulls.min() == 0 and nulls.max() == 88 and not np.isnan(got[89:]).any()
        assert np.isnan(got[10:89]).all()
        # relative strength: R_20 of the benchmark on its own rows
        rs = ref.sector_relative_strength(a, mkt)
        k = mkt.index.get_loc(a.index[-1])
        want = math.log(a["close"].iloc[-1] / a["close"].iloc[-21]) - math.log(
            mkt["close"].iloc[k] / mkt["close"].iloc[k - 20]
        )
        assert rs.iloc[-1] == pytest.approx(want, rel=1e-12)
        assert math.isnan(rs.loc[full[10]]) and not math.isnan(rs.loc[full[40]])

    def test_constant_window_after_moves_has_exactly_zero_sd(self):
        """pandas leaves a ~1e-9 Welford residue on 20 zeros after moves; the oracle must not."""
        r = pd.Series(np.r_[np.random.default_rng(5).normal(0, 0.01, 40), np.zeros(25)])
        assert (ref.rolling_std(r, 20).iloc[59:] == 0.0).all()
        assert (ref.rolling_mean(r, 20).iloc[59:] == 0.0).all()
        c = np.r_[100 * np.exp(np.cumsum(np.random.default_rng(6).normal(0, 0.01, 40))),
                  np.zeros(25)]  # fmt: skip
        c[40:] = c[39]
        g = _one(c)
        assert np.isnan(ref.price_acceleration(g).to_numpy()[59:]).all()  # 0 / 0
        assert np.isnan(ref.return_skewness(g).to_numpy()[59:]).all()
        assert (ref.volume_price_divergence(g).to_numpy()[59:] == 0.0).all()  # constant r
        assert (ref.trend_exhaustion(g).to_numpy()[58:] == 0.0).all()

    def test_trend_exhaustion_exact_agrees_with_two_pass_on_moderate_prices(self):
        rng = np.random.default_rng(4)
        c = 100 + np.cumsum(rng.normal(0, 1, 80))
        np.testing.assert_allclose(
            ref.trend_exhaustion_exact(c), ref.trend_exhaustion(_one(c)).to_numpy(), rtol=1e-11
        )
