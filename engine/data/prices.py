"""Which prices the engine computes on: total-return adjusted (default) or raw.

Vendors such as Yahoo give ``close`` adjusted for splits only and
``adj_close`` adjusted for splits *and* dividends. On an ex-dividend day the
raw close drops by the dividend, a return no holder lost. With
``prices="adjusted"`` (the default) each bar's open, high, low and close are
multiplied by ``adj_close / close`` of that day, so every price series is a
total-return series and the ex-dividend drop disappears. With Yahoo's
factor (closes before an ex-date times ``1 - dividend / previous close``),
``adj_close_t / adj_close_{t-1} = close_t / (close_{t-1} - dividend_t)``: the
return of a holder who reinvests the dividend at the ex-dividend price.
Volume is left as given (dividends do not change share counts; splits are
already in the vendor's close and volume).

A ticker without ``adj_close`` cannot be adjusted and keeps its raw prices;
one whose ``adj_close`` equals ``close`` on every bar is unchanged. The
:class:`PriceBasis` of a computation lists which tickers are which; jobs write
it into their manifests and model metadata, and the scorer applies the same
basis when it serves the model.

Examples
--------
>>> import datetime as dt
>>> bars = pl.DataFrame({"ticker": ["A", "A"], "date": [dt.date(2020, 1, 2), dt.date(2020, 1, 3)],
...                      "open": [100.0, 98.0], "high": [101.0, 99.0], "low": [99.0, 97.0],
...                      "close": [100.0, 98.0], "volume": [1.0, 1.0],
...                      "adj_close": [98.0, 98.0]})    # a 2.00 dividend, ex on Jan 3
>>> adjusted, basis = apply_prices(bars)
>>> adjusted.get_column("close").to_list(), basis.adjusted
([98.0, 98.0], ('A',))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from engine.data.schema import ADJ_CLOSE

__all__ = [
    "DEFAULT_PRICES",
    "PRICE_MODES",
    "PriceBasis",
    "apply_basis",
    "apply_prices",
    "check_price_mode",
]

#: Price bases, the default first.
PRICE_MODES: tuple[str, ...] = ("adjusted", "raw")
DEFAULT_PRICES = "adjusted"
_ADJUSTED = ("open", "high", "low", "close")


def check_price_mode(mode: str) -> str:
    """Return ``mode`` if it is a price basis, else raise naming ``--prices``.

    Examples
    --------
    >>> check_price_mode("raw")
    'raw'
    """
    if mode not in PRICE_MODES:
        raise ValueError(f"--prices must be one of {', '.join(PRICE_MODES)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class PriceBasis:
    """The prices a computation used, per ticker.

    Attributes
    ----------
    mode : {"adjusted", "raw"}
        What was asked for.
    adjusted : tuple of str
        Tickers whose OHLC were multiplied by ``adj_close / close``.
    unchanged : tuple of str
        Tickers whose ``adj_close`` equals ``close`` on every bar (nothing to
        adjust), or, with ``mode="raw"``, whose ``adj_close`` was ignored.
    without_adj_close : tuple of str
        Tickers without ``adj_close``: raw prices whatever the mode.
    """

    mode: str
    adjusted: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    without_adj_close: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in manifests and model metadata."""
        return {
            "mode": self.mode,
            "adjusted": list(self.adjusted),
            "unchanged": list(self.unchanged),
            "without_adj_close": list(self.without_adj_close),
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> PriceBasis:
        """Read :meth:`to_dict`; ``None`` (files written before price bases) means raw.

        Examples
        --------
        >>> PriceBasis.from_dict(None).mode
        'raw'
        """
        if value is None:
            return cls(mode="raw")
        return cls(
            mode=check_price_mode(str(value["mode"])),
            adjusted=tuple(value.get("adjusted", ())),
            unchanged=tuple(value.get("unchanged", ())),
            without_adj_close=tuple(value.get("without_adj_close", ())),
        )

    def describe(self) -> str:
        """One line for a console.

        Examples
        --------
        >>> PriceBasis("adjusted", adjusted=("SPY",), without_adj_close=("VIX",)).describe()
        'prices: adjusted (total return, adj_close / close) for SPY; raw for VIX (no adj_close)'
        """
        if self.mode == "raw":
            return "prices: raw (adj_close ignored)"
        parts = []
        if self.adjusted:
            parts.append(f"adjusted (total return, adj_close / close) for {_few(self.adjusted)}")
        else:
            parts.append("adjusted, but no ticker's adj_close differs from its close")
        if self.without_adj_close:
            parts.append(f"raw for {_few(self.without_adj_close)} (no adj_close)")
        return "prices: " + "; ".join(parts)


def _few(tickers: tuple[str, ...], shown: int = 6) -> str:
    if len(tickers) <= shown:
        return ", ".join(tickers)
    return f"{', '.join(tickers[:shown])} and {len(tickers) - shown} more"


def apply_prices(bars: pl.DataFrame, mode: str = DEFAULT_PRICES) -> tuple[pl.DataFrame, PriceBasis]:
    """Put ``bars`` on the chosen price basis.

    Parameters
    ----------
    bars : pl.DataFrame
        Long bars frame; ``adj_close`` optional (null for tickers without it).
    mode : {"adjusted", "raw"}
        ``"adjusted"``: open, high, low and close times ``adj_close / close``
        where ``adj_close`` is present. ``"raw"``: the prices as stored.

    Returns
    -------
    (pl.DataFrame, PriceBasis)
        The bars (same rows, order and columns; an adjusted ``close`` equals
        ``adj_close`` up to rounding) and which tickers were adjusted.

    Raises
    ------
    ValueError
        An unknown ``mode``, or a ticker with ``adj_close`` on some bars only.
    """
    check_price_mode(mode)
    tickers = bars.get_column("ticker").unique().sort().to_list()
    if ADJ_CLOSE not in bars.columns:
        return bars, PriceBasis(mode, without_adj_close=tuple(tickers))
    per_ticker = bars.group_by("ticker").agg(
        pl.col(ADJ_CLOSE).is_null().all().alias("none"),
        pl.col(ADJ_CLOSE).is_null().any().alias("some_missing"),
        (pl.col(ADJ_CLOSE) != pl.col("close")).any().alias("differs"),
    )
    partial = per_ticker.filter(~pl.col("none") & pl.col("some_missing"))
    if partial.height:
        raise ValueError(
            "adj_close is missing on some bars of "
            f"{', '.join(sorted(partial.get_column('ticker').to_list()))}; a ticker needs it on "
            "every bar or on none (re-import it), or pass --prices raw"
        )
    without = sorted(per_ticker.filter(pl.col("none")).get_column("ticker").to_list())
    differs = set(per_ticker.filter(~pl.col("none") & pl.col("differs")).get_column("ticker"))
    with_adj = [t for t in tickers if t not in without]
    if mode == "raw":
        return bars, PriceBasis(mode, unchanged=tuple(with_adj), without_adj_close=tuple(without))
    factor = pl.when(pl.col(ADJ_CLOSE).is_not_null()).then(pl.col(ADJ_CLOSE) / pl.col("close"))
    # one factor for all four prices, so their order (low <= open, close <= high) survives
    adjusted = bars.with_columns((pl.col(c) * factor.fill_null(1.0)).alias(c) for c in _ADJUSTED)
    basis = PriceBasis(
        mode,
        adjusted=tuple(t for t in with_adj if t in differs),
        unchanged=tuple(t for t in with_adj if t not in differs),
        without_adj_close=tuple(without),
    )
    return adjusted, basis


def apply_basis(bars: pl.DataFrame, basis: PriceBasis, tickers: list[str]) -> pl.DataFrame:
    """Put ``bars`` on the price basis a model was trained on (serving, export checks).

    The basis is reproduced ticker by ticker. ``"raw"``: the bars as given.
    ``"adjusted"``: tickers that training adjusted are adjusted (they must
    still have ``adj_close``); tickers it kept raw (no ``adj_close``, or one
    equal to ``close``) stay raw, whatever ``adj_close`` says now; tickers it
    never saw are adjusted where they have ``adj_close``.

    Parameters
    ----------
    bars : pl.DataFrame
        Raw bars, ``adj_close`` optional.
    basis : PriceBasis
        The model's (``PriceBasis.from_dict(metadata["prices"])``).
    tickers : list of str
        The tickers the computation reads (scored tickers and benchmarks);
        only these are checked.

    Raises
    ------
    ValueError
        A ticker adjusted in training whose bars lack ``adj_close``.
    """
    if basis.mode == "raw":
        return bars
    present = set(bars.get_column("ticker").unique().to_list()) & set(tickers)
    with_adj: set[str] = set()
    if ADJ_CLOSE in bars.columns:
        with_adj = set(
            bars.filter(pl.col(ADJ_CLOSE).is_not_null()).get_column("ticker").unique().to_list()
        )
    lacking = sorted((present & set(basis.adjusted)) - with_adj)
    if lacking:
        raise ValueError(
            f"the model was trained on dividend-adjusted prices of {', '.join(lacking)}, but "
            "their bars lack adj_close; pass bars with adj_close (the same prices as in "
            "training)"
        )
    if ADJ_CLOSE not in bars.columns:
        return bars
    keep_raw = pl.col("ticker").is_in([*basis.without_adj_close, *basis.unchanged])
    bars = bars.with_columns(pl.when(keep_raw).then(None).otherwise(ADJ_CLOSE).alias(ADJ_CLOSE))
    adjusted, _ = apply_prices(bars, "adjusted")
    return adjusted
