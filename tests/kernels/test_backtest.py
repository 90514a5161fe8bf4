"""Backtest kernel against the share-count oracle, hand sums and properties."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kernels.backtest import (
    ORDER_FILLED,
    ORDER_NO_PRICE,
    ORDER_NONE,
    OrderStatus,
    simulate_portfolio,
    simulate_portfolio_py,
    target_weights,
    target_weights_py,
)
from tests.oracles import ORACLES
from tests.oracles.backtest import OUTPUTS as NAMES

NONE, FILLED, NO_PRICE = OrderStatus.NONE, OrderStatus.FILLED, OrderStatus.NO_PRICE
NAN = np.nan


def _run(kernel, open_, close, signal, cost_rate, fill_at_close):
    out = kernel(
        np.ascontiguousarray(open_, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        np.ascontiguousarray(signal, dtype=np.float64),
        cost_rate,
        fill_at_close,
    )
    return dict(zip(NAMES, out, strict=True))


def simulate(open_, close, signal, cost_rate=0.0, fill_at_close=False):
    return _run(simulate_portfolio, open_, close, signal, cost_rate, fill_at_close)


def _assert_matches(got, expected):
    for name in ("returns", "weights", "turnover", "costs"):
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(got["orders"], expected["orders"], err_msg="orders")
    for name in ("trade_returns", "open_trade_returns"):
        np.testing.assert_array_equal(np.isnan(got[name]), np.isnan(expected[name]), err_msg=name)
        np.testing.assert_allclose(
            got[name], expected[name], rtol=1e-12, atol=1e-15, equal_nan=True, err_msg=name
        )


# --------------------------------------------------------------------------------------
# Random panels
# --------------------------------------------------------------------------------------


def _panel(seed, n_tickers, n_days, signals="ternary", nan_prices=False, nan_signals=False):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_days, n_tickers)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.005, (n_days, n_tickers)))
    if signals == "ternary":
        signal = rng.integers(-1, 2, (n_days, n_tickers)).astype(np.float64)
    else:
        signal = rng.uniform(-1.0, 1.0, (n_days, n_tickers))
        signal[rng.random((n_days, n_tickers)) < 0.15] = 0.0
    if nan_signals:
        signal[rng.random((n_days, n_tickers)) < 0.15] = NAN
    if nan_prices:
        for i in range(n_tickers):
            kind = i % 5
            if kind == 0:  # listed late
                start = int(rng.integers(1, max(2, n_days // 2 + 1)))
                open_[:start, i] = close[:start, i] = NAN
            elif kind == 1:  # a gap of missing bars
                a = int(rng.integers(0, n_days))
                b = int(rng.integers(a + 1, min(n_days, a + 8) + 1))
                open_[a:b, i] = close[a:b, i] = NAN
            elif kind == 2:  # delisted early
                end = int(rng.integers(max(1, n_days // 2), n_days))
                open_[end:, i] = close[end:, i] = NAN
            elif kind == 3:  # no opening print on some days
                open_[rng.random(n_days) < 0.2, i] = NAN
            else:  # no closing print on some days
                close[rng.random(n_days) < 0.2, i] = NAN
    return open_, close, signal


SHAPES = [(1, 2), (1, 30), (3, 40), (6, 80)]
NAN_CASES = {
    "clean": {},
    "nan-prices": {"nan_prices": True},
    "nan-prices-and-signals": {"nan_prices": True, "nan_signals": True},
}


@pytest.mark.parametrize("cost_rate", [0.0, 0.0015], ids=["free", "15bp"])
@pytest.mark.parametrize("fill_at_close", [False, True], ids=["fill-open", "fill-close"])
@pytest.mark.parametrize("nan_case", list(NAN_CASES))
@pytest.mark.parametrize("signals", ["ternary", "fractional"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"N{n}xT{t}" for n, t in SHAPES])
def test_kernel_matches_share_count_oracle(shape, signals, nan_case, fill_at_close, cost_rate):
    n_tickers, n_days = shape
    seed = zlib.crc32(f"{shape}-{signals}-{nan_case}".encode())
    open_, close, signal = _panel(seed, n_tickers, n_days, signals, **NAN_CASES[nan_case])
    got = simulate(open_, close, signal, cost_rate, fill_at_close)
    expected = ORACLES["backtest"]["pandas"](open_, close, signal, cost_rate, fill_at_close)
    _assert_matches(got, expected)


def test_reference_panels_exercise_every_path():
    # The random grid above must actually meet flips, exits, missing fill prices and open
    # trades, or matching the reference proves little.
    seen = {"flip": 0, "exit": 0, "no_price": 0, "open_trade": 0, "closed_trade": 0}
    for fill_at_close in (False, True):
        for shape in SHAPES[2:]:
            seed = zlib.crc32(f"{shape}-ternary-nan-prices-and-signals".encode())
            open_, close, signal = _panel(
                seed, *shape, "ternary", nan_prices=True, nan_signals=True
            )
            out = simulate(open_, close, signal, 0.0015, fill_at_close)
            w = out["weights"]
            seen["flip"] += int(np.sum(w[1:] * w[:-1] < 0))
            seen["exit"] += int(np.sum((w[1:] == 0) & (w[:-1] != 0)))
            seen["no_price"] += int(np.sum(out["orders"] == NO_PRICE))
            seen["open_trade"] += int(np.sum(np.isfinite(out["open_trade_returns"])))
            seen["closed_trade"] += int(np.sum(np.isfinite(out["trade_returns"])))
    assert all(count > 0 for count in seen.values()), seen


@pytest.mark.parametrize("fill_at_close", [False, True], ids=["fill-open", "fill-close"])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_python_twin_equals_kernel(seed, fill_at_close):
    open_, close, signal = _panel(seed, 4, 60, "fractional", nan_prices=True, nan_signals=True)
    jitted = _run(simulate_portfolio, open_, close, signal, 0.001, fill_at_close)
    twin = _run(simulate_portfolio_py, open_, close, signal, 0.001, fill_at_close)
    for name in NAMES:
        assert jitted[name].dtype == twin[name].dtype, name
        np.testing.assert_array_equal(jitted[name], twin[name], err_msg=name)
    assert jitted["orders"].dtype == np.int8


def test_order_status_is_an_int_enum_and_the_old_names_are_its_plain_values():
    assert [type(c) for c in (ORDER_NONE, ORDER_FILLED, ORDER_NO_PRICE)] == [int, int, int]
    assert (ORDER_NONE, ORDER_FILLED, ORDER_NO_PRICE) == (NONE, FILLED, NO_PRICE)
    assert len({int(status) for status in OrderStatus}) == len(OrderStatus)
    out = simulate(_col(100, NAN, 100), _col(100, 100, 100), _col(1, 1, 1))
    assert [OrderStatus(code) for code in out["orders"][:, 0]] == [NONE, NO_PRICE, FILLED]


# --------------------------------------------------------------------------------------
# Hand-made examples (cost_rate 0.001 = 10 bps)
# --------------------------------------------------------------------------------------

C = 0.001


def _col(*values):
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def test_hand_long_round_trip_filled_at_open():
    open_ = _col(100, 100, 120, 130)
    close = _col(100, 110, 125, 128)
    signal = _col(1, 0, 0, 0)  # buy decided at the close of day 0, exit at the close of day 1
    out = simulate(open_, close, signal, C, fill_at_close=False)
    # Day 0: nothing held, V0 = 1.
    # Day 1 open 100: buy 1.0 of stock (0.01 shares), cost 0.001, cash = -0.001.
    #   close 110: stock 1.1, V1 = 1.099, return 0.099.
    # Day 2 open 120: stock 1.2, value at the fill 1.199; sell 1.2, cost 0.0012,
    #   cash = -0.001 + 1.2 - 0.0012 = 1.1978 = V2.
    # Day 3: flat, V3 = V2.
    np.testing.assert_allclose(
        out["returns"], [0.0, 0.099, 1.1978 / 1.099 - 1, 0.0], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(out["turnover"], [0.0, 1.0, 1.2 / 1.199, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["costs"], [0.0, 0.001, 0.0012 / 1.099, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["weights"][:, 0], [0.0, 1.1 / 1.099, 0.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(out["orders"][:, 0], [NONE, FILLED, FILLED, NONE])
    # Trade: entry notional 1.0; P&L = (1.2 - 1.0) - 0.001 entry - 0.0012 exit = 0.1978.
    np.testing.assert_allclose(out["trade_returns"][2, 0], 0.1978, rtol=1e-12)
    assert np.isnan(out["trade_returns"][[0, 1, 3], 0]).all()
    assert np.isnan(out["open_trade_returns"][0])


def test_hand_long_round_trip_filled_at_close():
    open_ = _col(100, 100, 120, 130)  # never used when filling at the close
    close = _col(100, 110, 125, 128)
    signal = _col(1, 0, 0, 0)
    out = simulate(open_, close, signal, C, fill_at_close=True)
    # Day 1 close 110: buy 1.0 (1/110 shares), cost 0.001, cash -0.001; V1 = 0.999.
    # Day 2 close 125: stock 125/110, value at the fill 125/110 - 0.001; sell it all,
    #   cost 0.001 * 125/110; V2 = cash = -0.001 + 0.999 * 125/110.
    v2 = -0.001 + 0.999 * 125 / 110
    np.testing.assert_allclose(out["returns"], [0.0, -0.001, v2 / 0.999 - 1, 0.0], atol=1e-15)
    np.testing.assert_allclose(
        out["turnover"], [0.0, 1.0, (125 / 110) / (125 / 110 - 0.001), 0.0], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        out["costs"], [0.0, 0.001, 0.001 * 125 / 110 / 0.999, 0.0], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(out["weights"][:, 0], [0.0, 1 / 0.999, 0.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(out["orders"][:, 0], [NONE, FILLED, FILLED, NONE])
    # Trade: (125/110 - 1) - 0.001 - 0.001 * 125/110 = (15 - 0.11 - 0.125) / 110 = 14.765/110.
    np.testing.assert_allclose(out["trade_returns"][2, 0], 14.765 / 110, rtol=1e-12)
    # Same trade with a changed open: nothing moves.
    other = simulate(open_ * 1.7, close, signal, C, fill_at_close=True)
    for name in NAMES:
        np.testing.assert_array_equal(other[name], out[name], err_msg=name)


def test_hand_flip_long_to_short_closes_long_and_opens_short():
    open_ = _col(100, 100, 80)
    close = _col(100, 90, 76)
    signal = _col(1, -1, -1)
    out = simulate(open_, close, signal, C, fill_at_close=False)
    # Day 1 open 100: buy 1.0, cost 0.001, cash -0.001. Close 90: stock 0.9, V1 = 0.899.
    # Day 2 open 80: stock 0.8, value at the fill 0.799, target -0.799.
    #   Traded 0.8 + 0.799 = 1.599, cost 0.001599 = 0.0008 (exit) + 0.000799 (entry).
    #   Long trade: (0.8 - 1.0) - 0.001 - 0.0008 = -0.2018 over entry 1.0.
    #   cash = -0.001 + 1.599 - 0.001599 = 1.596401.
    #   Close 76: short = -0.799 * 76/80 = -0.75905, V2 = 1.596401 - 0.75905 = 0.837351.
    #   Open short: (0.799 - 0.75905 - 0.000799) / 0.799 = 0.05 - 0.001 = 0.049.
    np.testing.assert_allclose(
        out["returns"], [0.0, -0.101, 0.837351 / 0.899 - 1], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(out["turnover"], [0.0, 1.0, 1.599 / 0.799], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["costs"], [0.0, 0.001, 0.001599 / 0.899], rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        out["weights"][:, 0], [0.0, 0.9 / 0.899, -0.75905 / 0.837351], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(out["trade_returns"][2, 0], -0.2018, rtol=1e-12)
    assert np.isnan(out["trade_returns"][:2, 0]).all()
    np.testing.assert_allclose(out["open_trade_returns"][0], 0.049, rtol=1e-12)


def test_hand_constant_signal_flat_prices_pays_only_entry_without_costs_drift():
    prices = _col(100, 100, 100, 100)
    signal = _col(1, 1, 1, 1)
    free = simulate(prices, prices, signal, 0.0, fill_at_close=False)
    # Buy 1.0 on day 1; afterwards the holding already equals its target.
    np.testing.assert_array_equal(free["returns"], 0.0)
    np.testing.assert_array_equal(free["costs"], 0.0)
    np.testing.assert_array_equal(free["turnover"], [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(free["orders"][:, 0], [0, FILLED, NONE, NONE])
    np.testing.assert_array_equal(free["open_trade_returns"], [0.0])

    paid = simulate(prices, prices, signal, C, fill_at_close=False)
    # Day 1: buy 1.0, cost C; V1 = 1 - C and the stock (1.0) is C over its target weight.
    # Day 2: target 1 - C, sell C, cost C^2; V2 = 1 - C - C^2. Day 3: sell C^2, cost C^3.
    # So after entry each fill only trims the previous fill's cost.
    v = [1.0, 1 - C, 1 - C - C**2, 1 - C - C**2 - C**3]
    np.testing.assert_allclose(
        paid["returns"], [0.0, -C, v[2] / v[1] - 1, v[3] / v[2] - 1], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        paid["costs"], [0.0, C, C**2 / v[1], C**3 / v[2]], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        paid["turnover"], [0.0, 1.0, C / v[1], C**2 / v[2]], rtol=0, atol=1e-15
    )
    # The trade: entry 1.0, P&L = -(C + C^2 + C^3) from costs alone.
    np.testing.assert_allclose(paid["open_trade_returns"][0], -(C + C**2 + C**3), rtol=1e-12)


def test_hand_cost_of_a_two_day_two_ticker_fill():
    open_ = np.array([[10.0, 20.0], [11.0, 18.0]])
    close = np.array([[10.0, 20.0], [12.0, 19.0]])
    signal = np.array([[1.0, -1.0], [0.0, 0.0]])
    out = simulate(open_, close, signal, 0.002, fill_at_close=False)
    # Targets 1/2 and -1/2 of V = 1: buy 0.5 of A, short 0.5 of B: traded 1.0, cost 0.002.
    # cash = 1 - 0.5 + 0.5 - 0.002 = 0.998. Close: A 0.5*12/11, B -0.5*19/18.
    v1 = 0.998 + 0.5 * 12 / 11 - 0.5 * 19 / 18
    assert out["costs"][1] == pytest.approx(0.002, abs=1e-16)
    assert out["turnover"][1] == pytest.approx(1.0, abs=1e-16)
    assert out["returns"][1] == pytest.approx(v1 - 1.0, abs=1e-15)
    np.testing.assert_allclose(
        out["weights"][1], [0.5 * 12 / 11 / v1, -0.5 * 19 / 18 / v1], rtol=0, atol=1e-15
    )
    # Open trades: A (12/11 - 1) - 0.002 = 1/11 - 0.002; B (1 - 19/18) - 0.002.
    np.testing.assert_allclose(
        out["open_trade_returns"], [1 / 11 - 0.002, -1 / 18 - 0.002], rtol=1e-12
    )


def test_nan_fill_price_reports_no_price_and_keeps_the_holding():
    # Ticker A: bought on day 1, no opening price on day 2. Ticker B: listed on day 2 and
    # ticker C never priced, both with signal 0: unpriced but flat, so NONE.
    open_ = np.array([[100, NAN, NAN], [100, NAN, NAN], [NAN, 50, NAN], [90, 52, NAN]])
    close = np.array([[100, NAN, NAN], [110, NAN, NAN], [105, 55, NAN], [95, 53, NAN]])
    signal = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=np.float64)
    out = simulate(open_, close, signal, C, fill_at_close=False)
    # Day 1: buy 1.0 of A at 100, cash -0.001; close 110 -> A 1.1, V1 = 1.099.
    # Day 2: the exit can't fill (open NaN) -> NO_PRICE, A kept; close 105 -> A 1.05,
    #   V2 = 1.049, nothing traded, nothing paid.
    # Day 3 open 90: A 0.9, sell it, cost 0.0009; V3 = -0.001 + 0.9 - 0.0009 = 0.8981.
    np.testing.assert_array_equal(
        out["orders"],
        [[0, 0, 0], [FILLED, 0, 0], [NO_PRICE, 0, 0], [FILLED, 0, 0]],
    )
    np.testing.assert_allclose(
        out["returns"], [0.0, 0.099, 1.049 / 1.099 - 1, 0.8981 / 1.049 - 1], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(out["weights"][:, 0], [0, 1.1 / 1.099, 1.05 / 1.049, 0], atol=1e-15)
    np.testing.assert_array_equal(out["weights"][:, 1:], 0.0)
    np.testing.assert_allclose(out["turnover"], [0.0, 1.0, 0.0, 0.9 / 0.899], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["costs"], [0.0, 0.001, 0.0, 0.0009 / 1.049], rtol=0, atol=1e-15)
    # Trade: (0.9 - 1.0) - 0.001 - 0.0009 = -0.1019, closed on day 3 (not day 2).
    assert np.isnan(out["trade_returns"][2, 0])
    np.testing.assert_allclose(out["trade_returns"][3, 0], -0.1019, rtol=1e-12)


def test_buy_before_listing_waits_for_the_first_price():
    open_ = _col(NAN, NAN, 50, 60)
    close = _col(NAN, NAN, 55, 66)
    signal = _col(1, 1, 1, 1)
    for fill_at_close in (False, True):
        out = simulate(open_, close, signal, 0.0, fill_at_close)
        # Flat and unpriced: the buy wanted on day 1 has no price; day 2 fills (at 50 or 55).
        np.testing.assert_array_equal(out["orders"][:, 0], [0, NO_PRICE, FILLED, 0])
        np.testing.assert_array_equal(out["weights"][:2], 0.0)
        np.testing.assert_array_equal(out["returns"][:2], 0.0)
        day2 = 0.0 if fill_at_close else 0.1  # filled at 50, closed at 55
        np.testing.assert_allclose(out["returns"], [0, 0, day2, 0.2], rtol=0, atol=1e-15)
        np.testing.assert_allclose(out["open_trade_returns"], [(1 + day2) * 1.2 - 1], rtol=1e-12)


def test_nothing_traded_pays_nothing():
    open_, close, _ = _panel(5, 4, 50, nan_prices=True)
    for signal in (np.zeros_like(close), np.full_like(close, NAN)):
        for fill_at_close in (False, True):
            out = simulate(open_, close, signal, 0.01, fill_at_close)
            for name in ("returns", "weights", "turnover", "costs"):
                np.testing.assert_array_equal(out[name], 0.0, err_msg=name)
            np.testing.assert_array_equal(out["orders"], NONE)
            assert np.isnan(out["trade_returns"]).all()
            assert np.isnan(out["open_trade_returns"]).all()


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

panels = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n_tickers": st.integers(1, 5),
        "n_days": st.integers(2, 40),
        "signals": st.sampled_from(["ternary", "fractional"]),
        "nan_prices": st.booleans(),
        "nan_signals": st.booleans(),
    }
)


def _prefix(out, stop):
    return {name: out[name][:stop] for name in NAMES if name != "open_trade_returns"}


@settings(max_examples=80, deadline=None)
@given(
    spec=panels,
    cut=st.integers(0, 39),
    changed=st.sampled_from(["open", "close", "signal", "everything"]),
    fill_at_close=st.booleans(),
    cost_rate=st.sampled_from([0.0, 0.002]),
)
def test_no_look_ahead(spec, cut, changed, fill_at_close, cost_rate):
    open_, close, signal = _panel(**spec)
    n_days, n = close.shape
    t = min(cut, n_days - 2)
    rng = np.random.default_rng(spec["seed"] ^ 0x5EED)
    new_open, new_close, new_signal = open_.copy(), close.copy(), signal.copy()
    bars = (slice(t + 1, None), slice(None))
    shape = (n_days - t - 1, n)
    if changed in ("open", "everything"):
        new_open[bars] = np.where(rng.random(shape) < 0.2, NAN, 150 * rng.random(shape) + 1)
    if changed in ("close", "everything"):
        new_close[bars] = np.where(rng.random(shape) < 0.2, NAN, 150 * rng.random(shape) + 1)
    if changed in ("signal", "everything"):
        # The signal of day t itself is decided at its close: it only trades on day t + 1.
        new_signal[t:] = np.where(
            rng.random((n_days - t, n)) < 0.2, NAN, rng.integers(-1, 2, (n_days - t, n))
        )
    base = simulate(open_, close, signal, cost_rate, fill_at_close)
    moved = simulate(new_open, new_close, new_signal, cost_rate, fill_at_close)
    for name, value in _prefix(base, t + 1).items():
        np.testing.assert_array_equal(moved[name][: t + 1], value, err_msg=name)
    # Truncating the panel after day t gives the same first t + 1 days.
    cut_off = simulate(open_[: t + 1], close[: t + 1], signal[: t + 1], cost_rate, fill_at_close)
    for name, value in _prefix(base, t + 1).items():
        np.testing.assert_array_equal(cut_off[name], value, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(spec=panels, cut=st.integers(0, 39), cost_rate=st.sampled_from([0.0, 0.002]))
def test_fill_at_open_does_not_see_that_days_close(spec, cut, cost_rate):
    open_, close, signal = _panel(**spec)
    n_days, n = close.shape
    t = min(cut, n_days - 2)  # the fill happens at the open of day t + 1
    rng = np.random.default_rng(spec["seed"] ^ 0xC105E)
    new_open, new_close, new_signal = open_.copy(), close.copy(), signal.copy()
    new_close[t + 1 :] = 150 * rng.random((n_days - t - 1, n)) + 1
    new_open[t + 2 :] = 150 * rng.random((n_days - t - 2, n)) + 1
    new_signal[t + 1 :] = rng.integers(-1, 2, (n_days - t - 1, n))
    base = simulate(open_, close, signal, cost_rate, fill_at_close=False)
    moved = simulate(new_open, new_close, new_signal, cost_rate, fill_at_close=False)
    for name in ("turnover", "costs", "orders", "trade_returns"):
        np.testing.assert_array_equal(moved[name][: t + 2], base[name][: t + 2], err_msg=name)


@settings(max_examples=60, deadline=None)
@given(
    spec=panels,
    fill_at_close=st.booleans(),
    low=st.sampled_from([0.0, 0.0005, 0.001]),
    extra=st.sampled_from([0.0005, 0.003, 0.01]),
)
def test_higher_costs_never_raise_final_equity(spec, fill_at_close, low, extra):
    open_, close, signal = _panel(**spec)
    cheap = simulate(open_, close, signal, low, fill_at_close)
    dear = simulate(open_, close, signal, low + extra, fill_at_close)
    equity_cheap = np.prod(1.0 + cheap["returns"])
    equity_dear = np.prod(1.0 + dear["returns"])
    assert equity_dear <= equity_cheap
    if np.any(cheap["turnover"] > 0):
        assert equity_dear < equity_cheap
    else:
        assert equity_dear == equity_cheap == 1.0
    for out in (cheap, dear):
        assert np.all(out["costs"] >= 0.0)
        np.testing.assert_array_equal(out["costs"][out["turnover"] == 0.0], 0.0)


@settings(max_examples=60, deadline=None)
@given(
    spec=panels,
    fill_at_close=st.booleans(),
    cost_rate=st.sampled_from([0.0, 0.0015, 0.01]),
)
def test_costs_are_rate_times_turnover_scaled_to_previous_close(spec, fill_at_close, cost_rate):
    spec = {**spec, "nan_prices": False}
    open_, close, signal = _panel(**spec)
    out = simulate(open_, close, signal, cost_rate, fill_at_close)
    fill = close if fill_at_close else open_
    # The value at the fill over V_{t-1}: yesterday's weights marked to the fill prices.
    growth = 1.0 + np.sum(out["weights"][:-1] * (fill[1:] / close[:-1] - 1.0), axis=1)
    expected = cost_rate * out["turnover"][1:] * growth
    np.testing.assert_allclose(out["costs"][1:], expected, rtol=0, atol=1e-14)
    if fill_at_close:  # from the outputs alone: V_fill = V_t + cost paid
        alt = cost_rate * out["turnover"] * (1.0 + out["returns"] + out["costs"])
        np.testing.assert_allclose(out["costs"], alt, rtol=0, atol=1e-14)
    assert out["costs"][0] == 0.0 and out["turnover"][0] == 0.0 and out["returns"][0] == 0.0


# --------------------------------------------------------------------------------------
# target_weights
# --------------------------------------------------------------------------------------


def _weights(fn, row):
    out = np.full(len(row), 99.0)
    fn(np.asarray(row, dtype=np.float64), out)
    return out


@pytest.mark.parametrize("fn", [target_weights, target_weights_py], ids=["jit", "twin"])
@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([1, -1, 0, 1], [1 / 3, -1 / 3, 0, 1 / 3]),
        ([1, 1], [0.5, 0.5]),
        ([-1], [-1.0]),
        ([0, 0, 0], [0, 0, 0]),
        ([0.2, -0.3, 0.1], [0.2, -0.3, 0.1]),
        ([0.5, -0.5], [0.5, -0.5]),
        ([0.9, 0.6], [0.6, 0.4]),
        ([NAN, 1, -1], [0, 0.5, -0.5]),
        ([NAN, 0.25], [0, 0.25]),
        ([NAN, NAN], [0, 0]),
    ],
    ids=[
        "ternary-equal-weight",
        "two-longs",
        "one-short",
        "all-flat",
        "fractional-under-gross-1",
        "fractional-gross-exactly-1",
        "fractional-over-gross-1",
        "nan-is-zero",
        "nan-is-zero-fractional",
        "all-nan",
    ],
)
def test_target_weights_examples(fn, row, expected):
    np.testing.assert_allclose(_weights(fn, row), expected, rtol=0, atol=1e-15)


signal_rows = arrays(
    np.float64,
    st.integers(1, 8),
    elements=st.one_of(
        st.floats(-1.0, 1.0, allow_subnormal=False), st.sampled_from([-1.0, 0.0, 1.0, NAN])
    ),
)


@settings(max_examples=100, deadline=None)
@given(row=signal_rows)
def test_target_weights_properties(row):
    got = _weights(target_weights, row)
    np.testing.assert_array_equal(got, _weights(target_weights_py, row))
    assert np.isfinite(got).all()
    clean = np.nan_to_num(row, nan=0.0)
    gross = np.abs(clean).sum()
    assert np.abs(got).sum() <= 1.0 + 1e-12
    if gross <= 1.0:
        np.testing.assert_array_equal(got, clean)
    else:
        np.testing.assert_allclose(got, clean / gross, rtol=1e-15, atol=0)
    assert np.all(np.sign(got) == np.sign(clean))
    if np.all(np.isin(clean, [-1.0, 0.0, 1.0])) and gross > 0:
        np.testing.assert_allclose(np.abs(got[clean != 0]), 1.0 / max(gross, 1.0), rtol=1e-15)
