"""Long OHLCV bars for the oracles and the tests: conversions and random walks.

The oracles work on pandas frames with NaN for a missing value; the engine
takes Polars frames with nulls. These helpers convert between the two and
build consistent random-walk bars. They never import ``engine``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


def to_pandas_bars(bars) -> pd.DataFrame:
    """Long bars (polars or pandas) -> pandas, floats with NaN for missing, sorted."""
    if hasattr(bars, "to_pandas") and not isinstance(bars, pd.DataFrame):
        # polars: go through numpy column by column (nulls -> NaN), no pyarrow needed
        data = {"ticker": np.asarray(bars["ticker"].to_list(), dtype=object)}
        data["date"] = pd.to_datetime(np.asarray(bars["date"].to_numpy(), dtype="datetime64[D]"))
        for c in BAR_COLUMNS:
            data[c] = bars[c].cast(float).to_numpy().astype(np.float64)
        df = pd.DataFrame(data)
    else:
        df = bars.loc[:, ["ticker", "date", *BAR_COLUMNS]].copy()
        df["date"] = pd.to_datetime(df["date"])
        for c in BAR_COLUMNS:
            df[c] = df[c].astype(np.float64)
    for c in BAR_COLUMNS:
        df.loc[~np.isfinite(df[c].to_numpy()), c] = np.nan
    return df.sort_values(["ticker", "date"], kind="mergesort").reset_index(drop=True)


def bars_to_polars(df: pd.DataFrame):
    """pandas long bars (ticker, date, OHLCV with NaN) -> polars with nulls for NaN."""
    import polars as pl

    out = pl.DataFrame(
        {
            "ticker": pl.Series("ticker", list(df["ticker"]), dtype=pl.String),
            "date": pl.Series(
                "date", pd.to_datetime(df["date"]).to_numpy().astype("datetime64[D]")
            ).cast(pl.Date),
            **{c: pl.Series(c, df[c].to_numpy(dtype=np.float64)) for c in BAR_COLUMNS},
        }
    )
    return out.with_columns(pl.col(c).fill_nan(None) for c in BAR_COLUMNS)


def random_walk_bars(
    ticker: str,
    dates,
    rng: np.random.Generator,
    *,
    start: float = 100.0,
    vol: float = 0.015,
    volume_scale: float = 1e6,
) -> pd.DataFrame:
    """Consistent random-walk OHLCV for one ticker on the given dates (pandas)."""
    n = len(dates)
    r = rng.normal(0.0, vol, n)
    r[0] = 0.0
    close = start * np.exp(np.cumsum(r))
    prev = np.r_[start, close[:-1]]
    open_ = prev * np.exp(rng.normal(0.0, vol / 3.0, n))
    hi = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 2.0, n)))
    lo = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2.0, n)))
    volume = np.round(volume_scale * np.exp(rng.normal(0.0, 0.4, n)))
    return pd.DataFrame(
        {"ticker": ticker, "date": pd.DatetimeIndex(dates), "open": open_, "high": hi,
         "low": lo, "close": close, "volume": volume}
    )  # fmt: skip
