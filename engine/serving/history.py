"""The server's copy of the stored history, and the daily append.

Scoring the latest bars of 34 tickers must not read 35 Parquet files per
request. :class:`StoredHistory` keeps every stored ticker's bars in memory,
on the served model's price basis, as one :class:`SortedBars`, and rebuilds
it only when the store changes: ``metadata.json`` is rewritten last by every
store write, so its size and modification time (one ``stat`` per request)
say when to reload, whichever worker or process wrote; so does its inode, as
every write renames a new file into place.

:meth:`StoredHistory.append` is ``POST /v1/bars``: the rows are checked by
the rules of ``engine data import`` (:func:`engine.data.bars.check_bars`),
must come after the ticker's last stored date (an append never rewrites
history; resending a stored bar unchanged is accepted and counted), and are
written through :meth:`BarStore.write`, which stages every file and renames
it into place. The append holds the store's lock (:meth:`BarStore.lock`)
from reading the stored bars to writing them back, so neither another
worker's append nor an ``engine data import`` can come in between and be
lost.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.bars import (
    ADJ_CLOSE,
    OHLC_TOLERANCE,
    BarsValidationError,
    Violation,
    check_bars,
)
from engine.data.prices import apply_basis
from engine.data.store import BarStore
from engine.data.universe import VOLATILITY_INDICES
from engine.features.source import SortedBars
from engine.serving.model import LoadedModel

__all__ = [
    "APPEND_SOURCE",
    "AppendReport",
    "HistorySnapshot",
    "StoreUnavailable",
    "StoredHistory",
]

#: How appended rows are named in validation errors and in the store's provenance.
APPEND_SOURCE = "POST /v1/bars"
_PRICES = ("open", "high", "low", "close", "volume", ADJ_CLOSE)


class StoreUnavailable(RuntimeError):
    """The store cannot serve: empty, unreadable or corrupt (HTTP 503, a server fault)."""


@dataclass(frozen=True)
class HistorySnapshot:
    """The stored bars at one moment, ready for the tail mode.

    Attributes
    ----------
    source : SortedBars
        Every stored ticker, on the model's price basis.
    securities : list of str
        Stored tickers that can be scored (not the volatility indices).
    last_date : date or None
        The latest stored date over all tickers.
    synthetic : dict of str to bool
        Whether each ticker is marked synthetic in the store's metadata.
    """

    source: SortedBars
    securities: list[str]
    last_date: date | None
    synthetic: dict[str, bool]


@dataclass
class AppendReport:
    """What :meth:`StoredHistory.append` wrote."""

    appended: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    new_tickers: list[str] = field(default_factory=list)
    last_date: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the response of ``POST /v1/bars``)."""
        return {
            "appended": dict(sorted(self.appended.items())),
            "unchanged": dict(sorted(self.unchanged.items())),
            "new_tickers": sorted(self.new_tickers),
            "last_date": dict(sorted(self.last_date.items())),
        }


class StoredHistory:
    """The bar store, held in memory and reloaded when it changes.

    Parameters
    ----------
    store : BarStore
    """

    def __init__(self, store: BarStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        # (key, snapshot) in one tuple: replaced whole, read once, never torn
        self._cached: tuple[tuple[Any, ...], HistorySnapshot] | None = None

    def snapshot(self, model: LoadedModel) -> HistorySnapshot:
        """The current bars on ``model``'s price basis (rebuilt if the store changed).

        The snapshot is keyed on the store's stamp and the model's price
        basis, not on its version: a reload to a model with the same basis
        keeps the snapshot, so requests in flight on the old model and new
        requests on the new one do not rebuild it in turn.

        Raises
        ------
        StoreUnavailable
            An empty store, an unreadable or corrupt file, or bars the
            model's price basis cannot use.
        """
        key = (self._stamp(), model.scorer.prices)
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            cached = self._cached
            if cached is None or cached[0] != key:
                cached = (key, self._build(model))
                self._cached = cached
            return cached[1]

    def tickers(self) -> dict[str, dict[str, Any]]:
        """The store's metadata per ticker.

        Raises
        ------
        StoreUnavailable
            ``metadata.json`` cannot be read or is not valid metadata.
        """
        try:
            return self.store.metadata()["tickers"]
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"cannot read the store's metadata: {exc}") from None

    def append(self, rows: pl.DataFrame) -> AppendReport:
        """Validate ``rows`` like ``engine data import`` and append them to the store.

        Raises
        ------
        BarsValidationError
            A rule of the bars schema is broken, or a row is dated on or
            before its ticker's last stored date with other values; every
            violation names the request row, ticker, date and rule, and
            nothing is written.
        """
        checked = check_bars(rows, source=APPEND_SOURCE)
        if checked.violations:
            raise BarsValidationError(checked.violations)
        new = checked.bars
        row_of = {
            (str(t).strip().upper(), d): i + 1
            for i, (t, d) in enumerate(rows.select("ticker", "date").iter_rows())
        }
        with self.store.lock():  # no other writer between the read and the write
            meta = self.tickers()
            stored = [t for t in new.get_column("ticker").unique().sort().to_list() if t in meta]
            old = self.store.read_bars(stored) if stored else None
            report = AppendReport()
            merged, violations, info, rejected, repaired = [], [], {}, {}, {}
            for (ticker,), part in new.group_by("ticker", maintain_order=True):
                if ticker in meta:
                    stored_rows = old.filter(pl.col("ticker") == ticker)
                    violations += _adj_close_kept(part, stored_rows, row_of)
                    fresh, same, problems = _split_new(part, stored_rows, row_of)
                    violations += problems
                    merged.append(old.filter(pl.col("ticker") == ticker))
                    info[ticker] = _info(meta[ticker])
                    rejected.update(self._side_file(self.store.rejected_dir, ticker))
                    repaired.update(self._side_file(self.store.repaired_dir, ticker))
                else:
                    fresh, same = part, 0
                    report.new_tickers.append(ticker)
                    info[ticker] = {"synthetic": False, "source": APPEND_SOURCE}
                report.appended[ticker] = fresh.height
                report.unchanged[ticker] = same
                merged.append(fresh)
            if violations:
                raise BarsValidationError(
                    violations,
                    hint="POST /v1/bars only appends: send bars dated after each ticker's last "
                    "stored date (a stored bar may be resent unchanged)",
                )
            frame = pl.concat(merged, how="diagonal_relaxed").sort("ticker", "date")
            if any(report.appended.values()):
                # the appended rows passed the default rules above; the stored history is
                # re-checked by the loosest rule it was imported under, never a stricter one
                self.store.write(
                    frame,
                    info,
                    overwrite=True,
                    rejected=rejected,
                    repaired=repaired,
                    source=APPEND_SOURCE,
                    tolerance=_stored_tolerance(info.values()),
                )
            for (ticker,), part in frame.group_by("ticker"):
                report.last_date[ticker] = part.get_column("date").max().isoformat()
        return report

    # ---------------------------------------------------------------- internals

    def _stamp(self) -> tuple[int, int, int] | None:
        """``metadata.json``'s inode, mtime and size (it is replaced by rename on every write)."""
        try:
            st = os.stat(self.store.metadata_path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _build(self, model: LoadedModel) -> HistorySnapshot:
        meta = self.tickers()
        if not meta:
            raise StoreUnavailable(
                f"no bars in {self.store.data_dir}; run `engine data demo` or "
                "`engine data import PATH`, or POST /v1/bars"
            )
        try:
            bars = self.store.read_bars()
            bars = apply_basis(bars, model.scorer.prices, sorted(meta))
            source = SortedBars.of(bars)
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            raise StoreUnavailable(
                f"cannot load the bars of {self.store.data_dir} on the model's price basis: {exc}"
            ) from None
        last = max((date.fromisoformat(e["last_date"]) for e in meta.values()), default=None)
        return HistorySnapshot(
            source=source,
            securities=[t for t in source.tickers if t not in VOLATILITY_INDICES],
            last_date=last,
            synthetic={t: bool(e.get("synthetic", False)) for t, e in meta.items()},
        )

    def _side_file(self, directory: Path, ticker: str) -> dict[str, pl.DataFrame]:
        """An import's ``rejected/`` or ``repaired/<TICKER>.csv``, to pass back to the write.

        :meth:`BarStore.write` removes the side files of a ticker it writes
        unless they are given again, so an append must hand them back.
        """
        path = directory / f"{ticker}.csv"
        if not path.exists():
            return {}
        return {ticker: pl.read_csv(path, infer_schema=False)}


def _info(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored ticker's metadata, to write back unchanged."""
    return {
        "synthetic": bool(entry.get("synthetic", False)),
        "source": str(entry.get("source", APPEND_SOURCE)),
        "role": entry.get("role", "security"),
        "extra": dict(entry.get("extra") or {}),
    }


def _stored_tolerance(entries: Any) -> float:
    """The largest OHLC tolerance the tickers were imported with (at least the default).

    Examples
    --------
    >>> _stored_tolerance([{"extra": {"ohlc_tolerance": 1e-6}}, {"extra": {}}])
    1e-06
    >>> _stored_tolerance([{"source": "POST /v1/bars"}]) == OHLC_TOLERANCE
    True
    """
    recorded = [(e.get("extra") or {}).get("ohlc_tolerance") for e in entries]
    return max([OHLC_TOLERANCE, *(float(t) for t in recorded if t is not None)])


def _adj_close_kept(
    part: pl.DataFrame, stored: pl.DataFrame, row_of: dict[tuple[str, date], int]
) -> list[Violation]:
    """A ticker stored with ``adj_close`` must get it on every appended bar (and vice versa)."""
    has = ADJ_CLOSE in stored.columns and stored.get_column(ADJ_CLOSE).is_not_null().any()
    given = part.get_column(ADJ_CLOSE) if ADJ_CLOSE in part.columns else None
    if has:
        lacking = part if given is None else part.filter(given.is_null())
        what = "adj_close is missing; the ticker is stored with adj_close"
    else:
        lacking = part.head(0) if given is None else part.filter(given.is_not_null())
        what = "adj_close is given; the ticker is stored without it"
    return [
        Violation(APPEND_SOURCE, t, row_of.get((t, d)), d.isoformat(), "adj_close_mismatch", what)
        for t, d in lacking.select("ticker", "date").iter_rows()
    ]


def _split_new(
    part: pl.DataFrame, stored: pl.DataFrame, row_of: dict[tuple[str, date], int]
) -> tuple[pl.DataFrame, int, list[Violation]]:
    """Rows after the last stored date, the count of stored rows resent unchanged, violations.

    ``row_of`` maps (ticker, date) to the 1-based row of the request.
    """
    last = stored.get_column("date").max()
    fresh = part.filter(pl.col("date") > last)
    old = part.filter(pl.col("date") <= last)
    if old.height == 0:
        return fresh, 0, []
    columns = [c for c in _PRICES if c in old.columns and c in stored.columns]
    joined = old.join(stored, on=["ticker", "date"], how="left", suffix="__stored")
    violations = []
    same = 0
    for row in joined.iter_rows(named=True):
        differs = [c for c in columns if row.get(f"{c}__stored") != row[c]]
        if row.get("close__stored") is not None and not differs:
            same += 1
            continue
        what = (
            f"{', '.join(differs)} differ from the stored bar"
            if row.get("close__stored") is not None
            else f"dated before the last stored date {last}"
        )
        at = row_of.get((row["ticker"], row["date"]))
        violations.append(
            Violation(
                APPEND_SOURCE,
                row["ticker"],
                at,
                row["date"].isoformat(),
                "not_an_append",
                f"{what}; appending never rewrites history",
            )  # fmt: skip
        )
    return fresh, same, violations
