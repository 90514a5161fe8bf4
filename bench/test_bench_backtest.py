"""Backtest: the Numba portfolio kernel plus the full metrics, against vectorbt on the same orders.

Groups ``backtest|demo`` (the 34 demo securities, ~5,031 days, momentum
signals of :func:`engine.backtest.signals.compute_signals`) and ``backtest|500`` (500
synthetic lognormal random walks x 5,000 days with overnight gaps; signal =
sign of the 20-day return), each with:

* ``engine`` (ours): :func:`engine.backtest.simulation.simulate` plus
  :meth:`engine.backtest.simulation.Simulation.metrics` (the full
  :func:`engine.backtest.summary.summarize`, SPY or an equal-weight index as
  the benchmark), JIT compiled before timing;
* ``kernel`` (variant): :func:`kernels.backtest.simulate_portfolio` alone;
* ``vectorbt`` (baseline, target >= 10x): ``vbt.Portfolio.from_orders`` on
  the same orders, then ``pf.stats()``;
* ``vbt-orders`` (baseline): the ``from_orders`` simulation alone;
* ``pandas`` (baseline): :func:`pandas_backtest`, the backtest oracle of
  the kernel tests (:func:`tests.oracles.backtest.reference_backtest`: share
  counts, a loop over days vectorised across tickers, without its trade
  ledger) plus :func:`tests.oracles.backtest.reference_metrics` in pandas. It
  is the issue's fallback (it carries the ">= 10x" target when vectorbt is
  not installed, and the vectorbt tests skip) and a second opinion beside
  vectorbt.

Why ``from_orders`` and not ``from_signals``: our kernel rebalances every
open position to its target weight every day (weights drift between fills,
and a new entry resizes all the others). ``from_signals`` only trades when an
entry or exit signal fires and accepts only ``size_type`` amount / value /
percent ("target percentage ... not compatible with signals"), so it cannot
place these orders. ``from_orders`` with ``size_type="targetpercent"`` and
one cash-sharing group can, given (see :func:`vectorbt_inputs`):

* ``size[t] = target weight from signal[t-1]`` (NaN on day 0: no order), with
  ``price = open[t]``: decided at the close of t-1, filled at the open of t;
* ``val_price`` = the last finite price seen (open, else the previous mark):
  the group is valued at the fill prices, as the kernel sizes its targets;
  ``close`` = the close, else the last mark, for the end-of-day value;
* ``update_value=False`` (the default): every target of a day is sized on the
  value before that day's first fill, as in the kernel;
* ``fees = cost_rate``, ``direction="both"`` (shorts), ``min_size=0``;
* a **credit line**: vectorbt never lets cash go below zero and cuts a buy
  to the cash left (``allow_partial``), while the kernel lets cash dip below
  zero (a loan at zero rate) whenever the day's targets and costs need more
  than the cash: a fully invested long book that pays fees, or a ticker
  without an open price keeping its holding. Exactly that loan is a column
  ``CREDIT`` with a constant price of 1 and no fees, shorted once on day 0
  (``size_type="targetamount"``): it adds ``CREDIT_LINE`` to cash and the
  same liability, so it changes no value and no return (a book that needs
  more than the line would show up as different fills, which the checks
  catch). With it the order of fills within a day cannot change any fill, so
  the cheaper ``call_seq="default"`` gives the same orders as ``"auto"``;
* ``init_cash = 1e6``: vectorbt's order tolerances are absolute (it ignores
  orders below 1e-12 shares), so a portfolio worth 1 (the kernel's scale)
  would have its smallest rebalancing orders dropped on the 500-ticker panel.

``test_vectorbt_places_the_same_orders`` holds this to 1e-10 on the daily
returns on a small panel (with and without fees and price gaps, with shorts);
the benchmarks check the same on the full panels. Input preparation (the
shifted targets, the marks, the DataFrames) is done before timing, as a
vectorbt user would hold them: only ``from_orders`` and ``stats()`` are timed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.backtest.signals import MOMENTUM_LOOKBACK, compute_signals
from engine.backtest.simulation import BacktestSettings, PriceGrid, Simulation, simulate
from kernels.backtest import OrderStatus, simulate_portfolio
from tests.oracles.backtest import reference_backtest, reference_metrics

try:
    import vectorbt as vbt
except ImportError:  # pragma: no cover - the pandas baseline takes over
    vbt = None

SETTINGS = BacktestSettings()  # 5 bps per fill, open fills: what `engine backtest` runs
COST_RATE = SETTINGS.cost_rate
PERIODS_PER_YEAR = 252
#: vectorbt's starting cash (the kernel starts at 1; returns do not depend on scale).
INIT_CASH = 1e6
#: The zero-rate loan the kernel implies, as cash (see the module docstring).
CREDIT_LINE = 10 * INIT_CASH
SYN_TICKERS, SYN_DAYS, SYN_SEED = 500, 5000, 20240611
#: Rounds of the slow baselines, per panel.
BASELINE_ROUNDS = {"demo": 5, "500": 3}
#: Tickers of the 500-ticker panel in the smoke run (``--benchmark-disable``).
SMOKE_TICKERS = 20
#: Largest |vectorbt - kernel| daily return accepted on a full panel.
FULL_PANEL_ATOL = 1e-9


@dataclass(frozen=True)
class BacktestPanel:
    """(days, tickers) arrays of one backtest; ``benchmark`` is (days,) returns."""

    dates: np.ndarray  # datetime64[D]
    tickers: list[str]
    open: np.ndarray
    close: np.ndarray
    signal: np.ndarray
    benchmark: np.ndarray

    @property
    def rows(self) -> int:
        return self.close.size

    def head(self, n_tickers: int) -> BacktestPanel:
        """The first ``n_tickers`` tickers (same calendar and benchmark)."""

        def cut(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a[:, :n_tickers])

        return replace(
            self,
            tickers=self.tickers[:n_tickers],
            open=cut(self.open),
            close=cut(self.close),
            signal=cut(self.signal),
        )


# ---------------------------------------------------------------------------
# panels
# ---------------------------------------------------------------------------
def close_to_close(close: np.ndarray) -> np.ndarray:
    """Simple returns of a (days,) close, 0 on day 0 and wherever a close is missing."""
    out = np.zeros(close.shape[0])
    ok = np.isfinite(close[1:]) & np.isfinite(close[:-1])
    out[1:][ok] = close[1:][ok] / close[:-1][ok] - 1.0
    return out


def synthetic_panel(n_tickers: int, n_days: int, seed: int) -> BacktestPanel:
    """Lognormal random walks with overnight gaps; signal = sign of the 20-day return.

    Per ticker: a daily volatility U(1 %, 3 %) and drift N(3e-4, 3e-4); the
    overnight log return is N(0, (vol/3)^2) (the open gaps away from the
    previous close), the open-to-close one N(drift, vol^2).
    """
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.01, 0.03, n_tickers)
    drift = rng.normal(3e-4, 3e-4, n_tickers)
    gap = rng.normal(0.0, 1.0, (n_days, n_tickers)) * (vol / 3.0)
    day = drift + rng.normal(0.0, 1.0, (n_days, n_tickers)) * vol
    gap[0] = 0.0
    log_close = rng.normal(np.log(50.0), 0.8, n_tickers) + np.cumsum(gap + day, axis=0)
    log_open = log_close - day
    k = MOMENTUM_LOOKBACK
    momentum = np.zeros_like(log_close)
    momentum[k:] = np.sign(log_close[k:] - log_close[:-k])
    close = np.exp(log_close)
    dates = pd.bdate_range("2000-01-03", periods=n_days).to_numpy().astype("datetime64[D]")
    return BacktestPanel(
        dates=dates,
        tickers=[f"S{i:03d}" for i in range(n_tickers)],
        open=np.ascontiguousarray(np.exp(log_open)),
        close=np.ascontiguousarray(close),
        signal=np.ascontiguousarray(momentum),
        benchmark=np.r_[0.0, np.mean(close[1:] / close[:-1] - 1.0, axis=1)],  # equal weight
    )


@pytest.fixture(scope="module")
def demo_panel(demo_bars: pl.DataFrame) -> BacktestPanel:
    """The 34 demo securities (VIX is an index, not traded) with momentum signals."""
    tickers = sorted(set(demo_bars.get_column("ticker").unique().to_list()) - {"VIX"})
    bars = demo_bars.filter(pl.col("ticker").is_in(tickers))
    dates = bars.get_column("date")
    panel = PriceGrid.of(bars, tickers, dates.min(), dates.max())
    signal = panel.signal_array(compute_signals(bars, "momentum"), "signal")
    return BacktestPanel(
        dates=panel.dates,
        tickers=tickers,
        open=panel.open,
        close=panel.close,
        signal=np.ascontiguousarray(signal, dtype=np.float64),
        benchmark=close_to_close(panel.close[:, tickers.index("SPY")]),
    )


@pytest.fixture(scope="module")
def wide_panel() -> BacktestPanel:
    return synthetic_panel(SYN_TICKERS, SYN_DAYS, SYN_SEED)


def _panel(request, name: str) -> BacktestPanel:
    return request.getfixturevalue("demo_panel" if name == "demo" else "wide_panel")


# ---------------------------------------------------------------------------
# ours
# ---------------------------------------------------------------------------
def engine_backtest(p: BacktestPanel) -> tuple[Simulation, dict]:
    """What ``engine backtest`` runs per strategy: the kernel, then the full metrics."""
    sim = simulate(p.open, p.close, p.signal, SETTINGS)
    return sim, sim.metrics(p.dates, p.benchmark)


def kernel_only(p: BacktestPanel):
    return simulate_portfolio(p.open, p.close, p.signal, COST_RATE, False)


# ---------------------------------------------------------------------------
# vectorbt on the same orders
# ---------------------------------------------------------------------------
def target_weights(signal: np.ndarray) -> np.ndarray:
    """``signal / max(1, sum |signal|)`` per day, NaN as 0 (the kernel's rule, same rounding)."""
    s = np.where(np.isfinite(signal), signal, 0.0)
    gross = np.abs(s).sum(axis=1, keepdims=True)
    return s * np.where(gross > 1.0, 1.0 / np.maximum(gross, 1.0), 1.0)


def valuation_marks(open_: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last finite price seen at each open and each close, in time order (NaN before any)."""
    days, n = close.shape
    both = np.empty((2 * days, n))
    both[0::2], both[1::2] = open_, close
    both = pd.DataFrame(both).ffill().to_numpy()
    return both[0::2], both[1::2]


def vectorbt_inputs(p: BacktestPanel, cost_rate: float = COST_RATE, *, credit: bool = True) -> dict:
    """Keyword arguments of ``vbt.Portfolio.from_orders`` that place the kernel's orders."""
    from vectorbt.portfolio.enums import SizeType

    days, n = p.close.shape
    size = np.full((days, n), np.nan)
    size[1:] = target_weights(p.signal)[:-1]  # decided at the close of t-1, filled at t
    price = p.open
    val_price, close = valuation_marks(p.open, p.close)
    size_type = np.full(n, SizeType.TargetPercent)
    fees = np.full(n, cost_rate)
    columns = list(p.tickers)
    if credit:
        ones = np.ones((days, 1))
        size = np.hstack([size, np.full((days, 1), -CREDIT_LINE)])  # short once, then hold
        price, val_price, close = (np.hstack([a, ones]) for a in (price, val_price, close))
        size_type = np.append(size_type, SizeType.TargetAmount)
        fees = np.append(fees, 0.0)
        columns.append("CREDIT")
    return dict(
        close=pd.DataFrame(close, index=pd.DatetimeIndex(p.dates), columns=columns),
        size=size,
        size_type=size_type[None, :],
        price=price,
        val_price=val_price,
        fees=fees[None, :],
        direction="both",
        min_size=0.0,
        init_cash=INIT_CASH,
        cash_sharing=True,
        group_by=True,
        call_seq="default" if credit else "auto",
        freq="1D",
    )


def vectorbt_orders(inputs: dict):
    return vbt.Portfolio.from_orders(**inputs)


def vectorbt_stats(inputs: dict):
    """``from_orders`` then ``stats()`` annualised on 252 days, as ``summarize`` is."""
    pf = vbt.Portfolio.from_orders(**inputs)
    with warnings.catch_warnings():  # vectorbt's own numpy warnings are not under test here
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = pf.stats(settings=dict(year_freq=f"{PERIODS_PER_YEAR} days"))
    return pf, stats


def vectorbt_returns(pf) -> np.ndarray:
    return pf.returns().to_numpy()


# ---------------------------------------------------------------------------
# pandas baseline (used when vectorbt is not installed)
# ---------------------------------------------------------------------------
def pandas_backtest(p: BacktestPanel, cost_rate: float = COST_RATE) -> dict:
    """The backtest oracle (share counts, no trade ledger) and its pandas metrics."""
    out = reference_backtest(p.open, p.close, p.signal, cost_rate, False, trades=False)
    metrics = reference_metrics(p.dates, out["returns"], out["turnover"], out["weights"],
                                p.benchmark)  # fmt: skip
    return {"returns": out["returns"], **metrics}


# ---------------------------------------------------------------------------
# equivalence on a small panel (plain tests: they run in the smoke run too)
# ---------------------------------------------------------------------------
def small_panel(*, gaps: bool, n_tickers: int = 5, n_days: int = 300, seed: int = 3):
    """A short synthetic panel; with ``gaps``, 3 % of opens and 3 % of closes are NaN."""
    p = synthetic_panel(n_tickers, n_days, seed)
    if not gaps:
        return p
    rng = np.random.default_rng(seed + 1)
    open_, close = p.open.copy(), p.close.copy()
    open_[rng.random(open_.shape) < 0.03] = np.nan
    close[rng.random(close.shape) < 0.03] = np.nan
    return replace(p, open=open_, close=close)


def _kernel(p: BacktestPanel, cost_rate: float) -> Simulation:
    return Simulation(*simulate_portfolio(p.open, p.close, p.signal, cost_rate, False))


def _filled(pf, n_tickers: int) -> np.ndarray:
    """(days, tickers) mask of vectorbt's filled orders, the credit column left out."""
    rec = pf.orders.values
    out = np.zeros((pf.wrapper.shape[0], n_tickers), dtype=bool)
    mine = rec["col"] < n_tickers
    out[rec["idx"][mine], rec["col"][mine]] = True
    return out


@pytest.mark.parametrize("gaps", [False, True], ids=["no-gaps", "nan-prices"])
@pytest.mark.parametrize("cost_rate", [0.0, 0.001], ids=["no-fees", "10bps"])
def test_vectorbt_places_the_same_orders(cost_rate, gaps):
    pytest.importorskip("vectorbt")
    p = small_panel(gaps=gaps)
    assert (p.signal < 0).any() and (p.signal > 0).any()  # shorts and longs
    sim = _kernel(p, cost_rate)
    pf, stats = vectorbt_stats(vectorbt_inputs(p, cost_rate))

    diff = np.abs(vectorbt_returns(pf) - sim.returns)
    assert diff.max() <= 1e-10, f"max |vectorbt - kernel| daily return {diff.max():.3g}"
    # the same fills, day by day and ticker by ticker, short positions included
    assert np.array_equal(_filled(pf, len(p.tickers)), sim.orders == OrderStatus.FILLED)
    assert (pf.assets().to_numpy()[:, : len(p.tickers)] < 0).any()
    # the same costs, in money: the kernel's are fractions of the previous day's value
    value_before = np.r_[1.0, np.cumprod(1.0 + sim.returns)[:-1]]
    fees = pf.orders.values["fees"][pf.orders.values["col"] < len(p.tickers)].sum() / INIT_CASH
    np.testing.assert_allclose(fees, (sim.costs * value_before).sum(), rtol=1e-10, atol=1e-15)
    # and the same headline metrics
    ours = sim.metrics(p.dates, None)
    for theirs, mine, scale in [
        ("Total Return [%]", "total_return", 100.0),
        ("Max Drawdown [%]", "max_drawdown", -100.0),
        ("Sharpe Ratio", "sharpe", 1.0),
        ("Sortino Ratio", "sortino", 1.0),
        ("Calmar Ratio", "calmar", 1.0),
    ]:
        assert stats[theirs] == pytest.approx(ours[mine] * scale, rel=1e-8, abs=1e-12), theirs


def test_vectorbt_without_the_credit_line_cuts_buys():
    """Why the credit line: without it vectorbt trims the day's last buy to the cash left."""
    pytest.importorskip("vectorbt")
    p = small_panel(gaps=False)
    sim = _kernel(p, 0.001)
    pf = vectorbt_orders(vectorbt_inputs(p, 0.001, credit=False))
    diff = np.abs(vectorbt_returns(pf) - sim.returns)
    assert diff.max() > 1e-7
    # the first day that differs filled a fully invested long book (net target weight 1):
    # the kernel pays those fees with a loan, vectorbt buys less
    first = int(np.flatnonzero(diff > 1e-12)[0])
    w = target_weights(p.signal)[first - 1]
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert pf.cash().min() >= 0.0


def test_pandas_baseline_matches_kernel():
    p = small_panel(gaps=True)
    sim = _kernel(p, 0.001)
    got = pandas_backtest(p, 0.001)
    np.testing.assert_allclose(got["returns"], sim.returns, rtol=0, atol=1e-12)
    ours = sim.metrics(p.dates, p.benchmark)
    for key in ("total_return", "sharpe", "sortino", "max_drawdown", "var", "cvar", "turnover"):
        assert got[key] == pytest.approx(ours[key], rel=1e-9, abs=1e-12), key
    for key in ("exposure", "net_exposure", "beta", "information_ratio"):
        assert got[key] == pytest.approx(ours[key], rel=1e-9, abs=1e-12), key


# ---------------------------------------------------------------------------
# benchmarks
# ---------------------------------------------------------------------------
PANELS = ["demo", "500"]


def _warm_engine(p: BacktestPanel) -> None:
    engine_backtest(p.head(3))  # compile (or load) the kernel outside the timing


@pytest.mark.parametrize("panel", PANELS)
def test_backtest_engine(benchmark, request, panel):
    p = _panel(request, panel)
    _warm_engine(p)
    benchmark.group = f"backtest|{panel}"
    benchmark.extra_info.update(role="ours", label="engine", rows=p.rows)
    sim, metrics = benchmark.pedantic(
        engine_backtest, args=(p,), rounds=20 if panel == "demo" else 10, iterations=1,
        warmup_rounds=1,
    )  # fmt: skip
    assert metrics["days"] == p.close.shape[0]
    assert metrics["trades"] > 0 and np.isfinite(sim.returns).all()


@pytest.mark.parametrize("panel", PANELS)
def test_backtest_kernel(benchmark, request, panel):
    p = _panel(request, panel)
    _warm_engine(p)
    benchmark.group = f"backtest|{panel}"
    benchmark.extra_info.update(role="variant", label="kernel", rows=p.rows)
    out = benchmark.pedantic(
        kernel_only, args=(p,), rounds=30 if panel == "demo" else 10, iterations=1,
        warmup_rounds=1,
    )  # fmt: skip
    assert out[0].shape == (p.close.shape[0],)


def _baseline_panel(benchmark, p: BacktestPanel, panel: str) -> BacktestPanel:
    if benchmark.disabled and panel == "500":
        # Smoke run: the same code path on 20 tickers instead of ~20 s for all 500.
        return p.head(SMOKE_TICKERS)
    return p


@pytest.mark.parametrize("panel", PANELS)
def test_backtest_vectorbt_stats(benchmark, request, panel):
    """vectorbt ``from_orders`` + ``stats()`` on the kernel's orders: the issue's baseline."""
    pytest.importorskip("vectorbt")
    p = _baseline_panel(benchmark, _panel(request, panel), panel)
    inputs = vectorbt_inputs(p)
    benchmark.group = f"backtest|{panel}"
    benchmark.extra_info.update(
        role="baseline", label="vectorbt", rows=p.rows, target=">= 10x",
        call="Portfolio.from_orders(size_type=targetpercent, cash_sharing) + stats()",
    )  # fmt: skip
    pf, stats = benchmark.pedantic(
        vectorbt_stats, args=(inputs,), rounds=BASELINE_ROUNDS[panel], iterations=1,
        warmup_rounds=1,
    )  # fmt: skip
    sim, metrics = engine_backtest(p)
    diff = float(np.abs(vectorbt_returns(pf) - sim.returns).max())
    benchmark.extra_info["max_abs_return_diff"] = diff
    assert diff <= FULL_PANEL_ATOL
    filled = _filled(pf, len(p.tickers))
    assert np.array_equal(filled, sim.orders == OrderStatus.FILLED)
    benchmark.extra_info["orders"] = int(filled.sum())
    assert stats["Total Return [%]"] == pytest.approx(100 * metrics["total_return"], rel=1e-7)
    assert stats["Sharpe Ratio"] == pytest.approx(metrics["sharpe"], rel=1e-7)


@pytest.mark.parametrize("panel", PANELS)
def test_backtest_pandas(benchmark, request, panel):
    """The pandas baseline: the issue's fallback, and a second opinion beside vectorbt."""
    p = _panel(request, panel)
    benchmark.group = f"backtest|{panel}"
    target = ">= 10x" if vbt is None else None  # it stands in for vectorbt only without it
    benchmark.extra_info.update(role="baseline", label="pandas", rows=p.rows, target=target)
    got = benchmark.pedantic(
        pandas_backtest, args=(p,), rounds=BASELINE_ROUNDS[panel] * 2, iterations=1
    )
    diff = float(np.abs(got["returns"] - kernel_only(p)[0]).max())
    benchmark.extra_info["max_abs_return_diff"] = diff
    assert diff <= FULL_PANEL_ATOL


@pytest.mark.parametrize("panel", PANELS)
def test_backtest_vectorbt_orders(benchmark, request, panel):
    """The ``from_orders`` simulation alone (returns computed outside the timing)."""
    pytest.importorskip("vectorbt")
    p = _baseline_panel(benchmark, _panel(request, panel), panel)
    inputs = vectorbt_inputs(p)
    benchmark.group = f"backtest|{panel}"
    benchmark.extra_info.update(role="baseline", label="vbt-orders", rows=p.rows)
    pf = benchmark.pedantic(
        vectorbt_orders, args=(inputs,), rounds=BASELINE_ROUNDS[panel], iterations=1,
        warmup_rounds=1,
    )  # fmt: skip
    assert np.abs(vectorbt_returns(pf) - kernel_only(p)[0]).max() <= FULL_PANEL_ATOL
