r"""Embedded demo universe: real index data plus a seeded synthetic factor model.

``engine data demo`` needs no network. Everything here is built from the data
sets shipped inside the ``arch`` package:

* ``SPY`` is the real S&P 500 index (``arch.data.sp500``, daily OHLCV,
  1999-01-04 .. 2018-12-31), used as a proxy for the ETF.
* ``QQQ`` is the real NASDAQ Composite index (``arch.data.nasdaq``, same
  range), used as a proxy for the ETF.
* ``VIX`` is the real CBOE VIX (``arch.data.vix``, 2014-01-03 .. 2019-01-03).
  It holds closes only, so ``open = high = low = close``, ``volume = 0``. Its
  non-trading days (weekday holidays, stored as NaN) are dropped.

The real rows are used as they are. Each one is checked against the data rules
(finite values, positive prices, ``volume >= 0``, ``high >= max(open, close)``,
``low <= min(open, close)``); a row that breaks a rule would be repaired
minimally (high/low widened) or dropped (NaN / non-positive), and the counts are
recorded in that ticker's ``info``. The arch data as shipped break none of the
OHLC rules; VIX has 46 NaN (non-trading) days, which are dropped.

The other 32 securities (the 31 single stocks of
:data:`engine.data.universe.STOCKS` plus ``XLK``) are **synthetic**. On SPY's
trading calendar each one follows the factor model

.. math::

    r_{i,t} = \beta_i m_t + \gamma_i f_t + e_{i,t}

where ``m_t`` is the real S&P 500 close-to-close log return and ``f_t`` is a
technology factor: the OLS residual (with intercept) of the real NASDAQ log
return on ``m_t``. The idiosyncratic part is a GARCH(1,1) process

.. math::

    e_{i,t} = \sigma_{i,t} z_{i,t}, \qquad
    \sigma^2_{i,t} = \omega_i + \alpha_i e^2_{i,t-1} + b_i \sigma^2_{i,t-1}

with Student-t innovations ``z`` (5-8 degrees of freedom, scaled to unit
variance), persistence ``alpha + b`` in [0.90, 0.98] and an unconditional
annualised volatility in [15%, 40%]. ``beta ~ U(0.8, 1.6)``,
``gamma ~ U(0.3, 1.5)``. ``XLK`` is the sector ETF: ``beta = 1.05``,
``gamma = 1.0`` and 4% idiosyncratic volatility.

Bars are derived from the returns:

* close: ``C_t = C_{t-1} exp(r_t)`` from a start price drawn log-uniformly in
  [15, 250], which is the close of the first bar;
* open: the overnight gap ``g_t = ln(O_t / C_{t-1}) = beta_i * G_t + eta_t``
  with ``G_t`` the real S&P 500 overnight gap and ``eta_t`` normal noise with
  standard deviation ``0.25 sigma_{i,t}``; the intraday part is ``r_t - g_t``;
* high/low: ``max(O, C) exp(u)``, ``min(O, C) exp(-v)`` with ``u, v``
  exponential with mean ``0.3 s_t``, ``s_t`` the day's conditional volatility
  (``sqrt(sigma_{i,t}^2 + beta_i^2 P_t^2)``, ``P_t`` the real S&P 500
  Parkinson volatility of the day);
* volume: ``base_i * exp(a_i |r_t| / s_t + noise)``, rounded to whole shares,
  with ``base_i`` log-uniform in [1e6, 5e7] so volume rises with volatility;
* ``adj_close = close`` (no corporate actions).

A few tickers list later than 1999 (:data:`LISTING_DATES`) to give a ragged
panel; their first bar is the listing date. UBER, ZM and DDOG really listed in
2019, after the data end, so their 2016-01-04 listing date is fictional.

All randomness comes from ``np.random.SeedSequence(seed)``: one child
generator per synthetic ticker (in the fixed order of
:data:`SYNTHETIC_TICKERS`) draws that ticker's parameters and then its
innovations in a fixed order. The same seed gives bit-identical frames; a
different seed changes only the synthetic tickers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.data.universe import STOCKS, VIX_TICKER

__all__ = [
    "DemoUniverse",
    "LISTING_DATES",
    "FICTIONAL_LISTING_DATES",
    "REAL_TICKERS",
    "SYNTHETIC_TICKERS",
    "generate_demo_universe",
]

#: Synthetic securities, in the order their child generators are spawned.
SYNTHETIC_TICKERS: tuple[str, ...] = (*STOCKS, "XLK")
#: Real series taken from ``arch.data``.
REAL_TICKERS: tuple[str, ...] = ("SPY", "QQQ", VIX_TICKER)

#: Listing date (first bar) of the synthetic tickers that start after the
#: first day of the calendar (1999-01-04). All others start on that day.
LISTING_DATES: dict[str, dt.date] = {
    "FTNT": dt.date(2009, 11, 18),
    "TSLA": dt.date(2010, 6, 29),
    "META": dt.date(2012, 5, 18),
    "NOW": dt.date(2012, 6, 29),
    "PANW": dt.date(2012, 7, 20),
    "UBER": dt.date(2016, 1, 4),
    "ZM": dt.date(2016, 1, 4),
    "DDOG": dt.date(2016, 1, 4),
}
#: Tickers whose listing date is fictional (they really listed in 2019, after
#: the arch data end).
FICTIONAL_LISTING_DATES: frozenset[str] = frozenset({"UBER", "ZM", "DDOG"})

_TRADING_DAYS = 252
_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
_XLK_PARAMS = {"beta": 1.05, "gamma": 1.0, "idio_vol_annual": 0.04}
_GAP_NOISE_SCALE = 0.25  # overnight-gap noise sd, in units of sigma_{i,t}
_RANGE_SCALE = 0.30  # mean of u, v, in units of the conditional vol s_t
_PARKINSON = 1.0 / np.sqrt(4.0 * np.log(2.0))


@dataclass(frozen=True)
class DemoUniverse:
    """The demo data set.

    Attributes
    ----------
    bars : polars.DataFrame
        Long frame with columns ``ticker`` (String), ``date`` (Date),
        ``open``, ``high``, ``low``, ``close``, ``volume``, ``adj_close``
        (Float64), sorted by ``(ticker, date)`` without duplicates.
    info : dict of str to dict
        Per ticker: ``synthetic`` (bool), ``source`` (str) and, for synthetic
        tickers, the model parameters and listing date; for real tickers the
        data-rule check counts.
    seed : int
        Seed the synthetic tickers were generated with.
    """

    bars: pl.DataFrame
    info: dict[str, dict]
    seed: int


def _to_dates(index) -> np.ndarray:
    """Convert a pandas DatetimeIndex to ``datetime64[D]``."""
    return np.asarray(index.values).astype("datetime64[D]")


def _check_and_repair(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...], dict[str, int]]:
    """Check real OHLCV rows against the data rules and repair minimally.

    Parameters
    ----------
    o, h, low, c, v : numpy.ndarray
        Open, high, low, close and volume.

    Returns
    -------
    keep : numpy.ndarray
        Boolean mask of the rows kept (rows with NaN, non-positive prices or
        negative volume cannot be repaired without inventing data and are
        dropped).
    arrays : tuple of numpy.ndarray
        ``(open, high, low, close, volume)`` of the kept rows, with high
        widened to ``max(open, high, close)`` and low to
        ``min(open, low, close)`` where needed.
    counts : dict of str to int
        Number of rows affected per rule.
    """
    stacked = np.vstack([o, h, low, c, v])
    nan_rows = ~np.isfinite(stacked).all(axis=0)
    with np.errstate(invalid="ignore"):
        nonpos = ~nan_rows & (np.vstack([o, h, low, c]) <= 0).any(axis=0)
        negvol = ~nan_rows & ~nonpos & (v < 0)
    keep = ~(nan_rows | nonpos | negvol)
    o, h, low, c, v = (x[keep] for x in (o, h, low, c, v))
    hi_bad = h < np.maximum(o, c)
    lo_bad = low > np.minimum(o, c)
    h = np.where(hi_bad, np.maximum(o, c), h)
    low = np.where(lo_bad, np.minimum(o, c), low)
    counts = {
        "dropped_nan_rows": int(nan_rows.sum()),
        "dropped_nonpositive_price_rows": int(nonpos.sum()),
        "dropped_negative_volume_rows": int(negvol.sum()),
        "high_widened_rows (high < max(open, close))": int(hi_bad.sum()),
        "low_widened_rows (low > min(open, close))": int(lo_bad.sum()),
    }
    return keep, (o, h, low, c, v), counts


def _load_real() -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict]]:
    """Load SPY, QQQ and VIX from ``arch.data`` as float64 arrays."""
    from arch.data import nasdaq, sp500, vix

    series: dict[str, dict[str, np.ndarray]] = {}
    info: dict[str, dict] = {}
    sources = {
        "SPY": (sp500, "arch.data.sp500 (S&P 500 index, used as SPY proxy)"),
        "QQQ": (nasdaq, "arch.data.nasdaq (NASDAQ Composite index, used as QQQ proxy)"),
    }
    for ticker, (module, source) in sources.items():
        df = module.load()
        cols = [df[k].to_numpy(dtype=np.float64) for k in ("Open", "High", "Low", "Close")]
        volume = df["Volume"].to_numpy(dtype=np.float64)
        adj = df["Adj Close"].to_numpy(dtype=np.float64)
        keep, (o, h, low, c, v), counts = _check_and_repair(*cols, volume)
        series[ticker] = {
            "date": _to_dates(df.index)[keep],
            "open": o,
            "high": h,
            "low": low,
            "close": c,
            "volume": v,
            "adj_close": adj[keep],
        }
        info[ticker] = {
            "synthetic": False,
            "source": source,
            "data_rule_repairs": counts,
            "zero_volume_rows": int((v == 0).sum()),
        }

    df = vix.load()
    close = df["vix"].to_numpy(dtype=np.float64)
    keep, (o, h, low, c, v), counts = _check_and_repair(
        close, close, close, close, np.zeros_like(close)
    )
    series[VIX_TICKER] = {
        "date": _to_dates(df.index)[keep],
        "open": o,
        "high": h,
        "low": low,
        "close": c,
        "volume": v,
        "adj_close": c.copy(),
    }
    info[VIX_TICKER] = {
        "synthetic": False,
        "source": (
            "arch.data.vix (CBOE VIX index, closes only: open = high = low = close, "
            "volume = 0; NaN non-trading days dropped)"
        ),
        "data_rule_repairs": counts,
    }
    return series, info


def _draw_params(rng: np.random.Generator, ticker: str) -> dict:
    """Draw one synthetic ticker's model parameters (fixed draw order)."""
    beta = rng.uniform(0.8, 1.6)
    gamma = rng.uniform(0.3, 1.5)
    persistence = rng.uniform(0.90, 0.98)
    alpha = rng.uniform(0.04, 0.12)
    idio_vol = rng.uniform(0.15, 0.40)
    nu = rng.uniform(5.0, 8.0)
    start_price = float(np.exp(rng.uniform(np.log(15.0), np.log(250.0))))
    volume_base = float(np.exp(rng.uniform(np.log(1e6), np.log(5e7))))
    volume_loading = rng.uniform(0.25, 0.45)
    volume_noise = rng.uniform(0.15, 0.30)
    if ticker == "XLK":
        beta = _XLK_PARAMS["beta"]
        gamma = _XLK_PARAMS["gamma"]
        idio_vol = _XLK_PARAMS["idio_vol_annual"]
    daily_var = idio_vol**2 / _TRADING_DAYS
    return {
        "beta": float(beta),
        "gamma": float(gamma),
        "garch_omega": float(daily_var * (1.0 - persistence)),
        "garch_alpha": float(alpha),
        "garch_beta": float(persistence - alpha),
        "garch_persistence": float(persistence),
        "idio_vol_annual": float(idio_vol),
        "t_dof": float(nu),
        "start_price": start_price,
        "volume_base": volume_base,
        "volume_abs_return_loading": float(volume_loading),
        "volume_noise_sd": float(volume_noise),
    }


def _draw_innovations(rng: np.random.Generator, nu: float, n: int) -> dict[str, np.ndarray]:
    """Draw one synthetic ticker's innovations (fixed draw order)."""
    return {
        "z": rng.standard_t(nu, n) / np.sqrt(nu / (nu - 2.0)),
        "gap": rng.standard_normal(n),
        "up": rng.standard_exponential(n),
        "down": rng.standard_exponential(n),
        "volume": rng.standard_normal(n),
    }


def _garch_sigma(
    z: np.ndarray, omega: np.ndarray, alpha: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run the GARCH(1,1) recursion for all tickers at once.

    Parameters
    ----------
    z : numpy.ndarray
        Unit-variance innovations, shape ``(T, N)``.
    omega, alpha, beta : numpy.ndarray
        GARCH parameters, shape ``(N,)``.

    Returns
    -------
    e : numpy.ndarray
        Idiosyncratic returns ``sigma * z``, shape ``(T, N)``.
    sigma : numpy.ndarray
        Conditional standard deviations, shape ``(T, N)``; the first row is
        the unconditional level.
    """
    n_time, n_tickers = z.shape
    var = np.empty((n_time, n_tickers))
    e = np.empty((n_time, n_tickers))
    v = omega / (1.0 - alpha - beta)
    for t in range(n_time):
        var[t] = v
        e[t] = np.sqrt(v) * z[t]
        v = omega + alpha * e[t] ** 2 + beta * v
    return e, np.sqrt(var)


def _synthetic(
    seed: int, spy: dict[str, np.ndarray], qqq: dict[str, np.ndarray]
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict]]:
    """Generate the synthetic tickers on SPY's calendar."""
    dates = spy["date"]
    n_time = dates.size
    if not np.array_equal(dates, qqq["date"]):
        raise ValueError("S&P 500 and NASDAQ calendars differ")

    # Real factors; undefined on the first day of the calendar -> 0.
    m = np.zeros(n_time)
    m[1:] = np.diff(np.log(spy["close"]))
    nas = np.zeros(n_time)
    nas[1:] = np.diff(np.log(qqq["close"]))
    design = np.column_stack([np.ones(n_time - 1), m[1:]])
    coef, *_ = np.linalg.lstsq(design, nas[1:], rcond=None)
    f = np.zeros(n_time)
    f[1:] = nas[1:] - design @ coef
    gap_mkt = np.zeros(n_time)
    gap_mkt[1:] = np.log(spy["open"][1:] / spy["close"][:-1])
    park = np.log(spy["high"] / spy["low"]) * _PARKINSON

    children = np.random.SeedSequence(seed).spawn(len(SYNTHETIC_TICKERS))
    params: list[dict] = []
    draws: list[dict[str, np.ndarray]] = []
    for ticker, child in zip(SYNTHETIC_TICKERS, children, strict=True):
        rng = np.random.default_rng(child)
        p = _draw_params(rng, ticker)
        params.append(p)
        draws.append(_draw_innovations(rng, p["t_dof"], n_time))

    def _col(key: str) -> np.ndarray:
        return np.array([p[key] for p in params])

    def _stack(key: str) -> np.ndarray:
        return np.column_stack([d[key] for d in draws])

    beta, gamma = _col("beta"), _col("gamma")
    e, sigma = _garch_sigma(
        _stack("z"), _col("garch_omega"), _col("garch_alpha"), _col("garch_beta")
    )
    r = m[:, None] * beta + f[:, None] * gamma + e
    s = np.sqrt(sigma**2 + (beta * park[:, None]) ** 2)
    gap = gap_mkt[:, None] * beta + _GAP_NOISE_SCALE * sigma * _stack("gap")
    cum = np.cumsum(r, axis=0)
    log_volume = (
        np.log(_col("volume_base"))
        + _col("volume_abs_return_loading") * np.abs(r) / s
        + _col("volume_noise_sd") * _stack("volume")
    )
    volume = np.maximum(np.round(np.exp(log_volume)), 1.0)
    up = _RANGE_SCALE * s * _stack("up")
    down = _RANGE_SCALE * s * _stack("down")

    series: dict[str, dict[str, np.ndarray]] = {}
    info: dict[str, dict] = {}
    source = f"synthetic factor model (seed {seed}) driven by real S&P 500 / NASDAQ returns"
    for j, ticker in enumerate(SYNTHETIC_TICKERS):
        listing = LISTING_DATES.get(ticker, dt.date.fromisoformat(str(dates[0])))
        start = int(np.searchsorted(dates, np.datetime64(listing, "D")))
        if start >= n_time or dates[start] != np.datetime64(listing, "D"):
            raise ValueError(f"listing date {listing} of {ticker} is not a trading day")
        close = params[j]["start_price"] * np.exp(cum[start:, j] - cum[start, j])
        open_ = close * np.exp(gap[start:, j] - r[start:, j])
        high = np.maximum(open_, close) * np.exp(up[start:, j])
        low = np.minimum(open_, close) * np.exp(-down[start:, j])
        series[ticker] = {
            "date": dates[start:],
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume[start:, j],
            "adj_close": close.copy(),
        }
        entry = {"synthetic": True, "source": source, **params[j]}
        entry["listing_date"] = listing.isoformat()
        entry["listing_date_fictional"] = ticker in FICTIONAL_LISTING_DATES
        if ticker in FICTIONAL_LISTING_DATES:
            entry["note"] = (
                f"{ticker} really listed in 2019, after the arch data end; "
                "its listing date here is fictional"
            )
        if ticker == "XLK":
            entry["note"] = "sector ETF proxy: fixed beta, gamma and idiosyncratic volatility"
        info[ticker] = entry
    return series, info


def generate_demo_universe(seed: int = 7) -> DemoUniverse:
    """Build the embedded demo universe.

    Parameters
    ----------
    seed : int, default 7
        Seed of the synthetic tickers (real tickers do not depend on it).

    Returns
    -------
    DemoUniverse
        Bars of the 34 securities plus VIX (35 tickers), per-ticker info and
        the seed.

    Examples
    --------
    >>> demo = generate_demo_universe(seed=7)
    >>> demo.bars["ticker"].n_unique()
    35
    >>> demo.info["SPY"]["synthetic"], demo.info["AAPL"]["synthetic"]
    (False, True)
    """
    seed = int(seed)
    real, real_info = _load_real()
    synth, synth_info = _synthetic(seed, real["SPY"], real["QQQ"])
    series = {**real, **synth}
    info = {**real_info, **synth_info}

    tickers = sorted(series)
    frames = []
    for ticker in tickers:
        data = series[ticker]
        n = data["date"].size
        frames.append(
            pl.DataFrame(
                {
                    "ticker": pl.Series("ticker", [ticker] * n, dtype=pl.String),
                    "date": pl.Series("date", data["date"], dtype=pl.Date),
                    **{
                        k: pl.Series(k, data[k], dtype=pl.Float64)
                        for k in ("open", "high", "low", "close", "volume", "adj_close")
                    },
                }
            )
        )
    bars = pl.concat(frames, how="vertical").sort(["ticker", "date"])
    return DemoUniverse(bars=bars, info={t: info[t] for t in tickers}, seed=seed)
