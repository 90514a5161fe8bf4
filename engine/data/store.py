"""On-disk bar store: one Parquet file per ticker plus a metadata index.

Layout of a data directory::

    <data_dir>/bars/<TICKER>.parquet   canonical bars, sorted by date
    <data_dir>/metadata.json           per-ticker rows, dates, provenance, sha256
    <data_dir>/rejected/<TICKER>.csv   rows an import dropped (--on-bad-rows drop)
    <data_dir>/repaired/<TICKER>.csv   rows an import repaired, with their original
                                       values (--on-bad-rows repair)

Every file is written atomically: the bytes go to a hidden temporary file in
the same directory, are fsync'ed, and the temporary file is renamed over the
target with :func:`os.replace`. A failed write leaves the old file intact and
no temporary file behind. ``metadata.json`` is written last, with sorted keys
and no timestamps, so the same data always gives the same bytes. A stored
file that cannot be read (truncated, corrupt) is reported with its path and
the command that rewrites it.

Writers take the store's lock (:meth:`BarStore.lock`, an exclusive ``flock``
on ``<data_dir>/.store.lock``) from reading ``metadata.json`` to renaming the
new one into place, so two processes writing at once (an import and the
service's daily append) cannot lose each other's tickers. Readers take no
lock: every file they see is whole, old or new.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.bars import (
    ADJ_CLOSE,
    CANONICAL_COLUMNS,
    OHLC_TOLERANCE,
    ROW_COLUMN,
    BarsValidationError,
    check_bars,
    empty_bars,
    normalise_columns,
    validate_bars,
)
from engine.data.paths import resolve_data_dir
from engine.data.universe import VOLATILITY_INDICES
from engine.io import csv_bytes, exclusive_lock, fsync_dir, parquet_bytes, stage_bytes

__all__ = [
    "METADATA_VERSION",
    "BarStore",
    "WriteReport",
    "ticker_role",
]

METADATA_VERSION = 1
_ROLES = ("security", "volatility_index")
_INFO_KEYS = ("synthetic", "source", "role")
_LOCK_FILE = ".store.lock"


def ticker_role(ticker: str) -> str:
    """Return ``"volatility_index"`` for VIX-like tickers, else ``"security"``.

    Examples
    --------
    >>> ticker_role("VIX"), ticker_role("AAPL")
    ('volatility_index', 'security')
    """
    return "volatility_index" if ticker in VOLATILITY_INDICES else "security"


def _json_default(value: Any) -> Any:
    """Turn numpy scalars/arrays and dates into JSON values."""
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalar or array
        return value.tolist()
    raise TypeError(f"{value!r} of type {type(value).__name__} is not JSON-serialisable")


def _validated(frames: pl.DataFrame, source: str, tolerance: float) -> pl.DataFrame:
    """Validate a long frame ticker by ticker (``adj_close`` may be absent for some)."""
    if not isinstance(frames, pl.DataFrame):
        raise TypeError(f"frames must be a polars DataFrame, got {type(frames).__name__}")
    if frames.height == 0:
        raise ValueError(f"no bars to write from {source} (the frame is empty)")
    frames = normalise_columns(frames)
    if "ticker" not in frames.columns:
        raise BarsValidationError(validate_bars(frames, source))
    frames = frames.with_row_index(ROW_COLUMN, offset=1)
    # group by the ticker as check_bars reads it, so 'aapl' and 'AAPL' are one ticker
    key = pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase()
    parts, violations = [], []
    for _, part in frames.group_by(key, maintain_order=True):
        if ADJ_CLOSE in part.columns and part.get_column(ADJ_CLOSE).is_null().all():
            part = part.drop(ADJ_CLOSE)
        checked = check_bars(part, source=source, tolerance=tolerance)
        violations += checked.violations
        parts.append(checked.bars)
    if violations:
        violations.sort(key=lambda v: v.row or 0)
        raise BarsValidationError(violations)
    return pl.concat(parts, how="diagonal_relaxed").sort(["ticker", "date"])


@dataclass
class WriteReport:
    """What :meth:`BarStore.write` did.

    Attributes
    ----------
    data_dir : Path
        The data directory written to.
    rows : dict of str to int
        Rows written per ticker.
    replaced : dict of str to tuple of (int, int)
        Tickers that already existed: ``(old rows, new rows)``.
    rejected_files : dict of str to Path
        ``rejected/<TICKER>.csv`` files written alongside.
    repaired_files : dict of str to Path
        ``repaired/<TICKER>.csv`` files written alongside.
    """

    data_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, tuple[int, int]] = field(default_factory=dict)
    rejected_files: dict[str, Path] = field(default_factory=dict)
    repaired_files: dict[str, Path] = field(default_factory=dict)

    @property
    def tickers(self) -> list[str]:
        """Tickers written, sorted."""
        return sorted(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return {
            "data_dir": str(self.data_dir),
            "rows": dict(sorted(self.rows.items())),
            "replaced": {
                t: {"old_rows": o, "new_rows": n} for t, (o, n) in sorted(self.replaced.items())
            },
            "rejected_files": {t: str(p) for t, p in sorted(self.rejected_files.items())},
            "repaired_files": {t: str(p) for t, p in sorted(self.repaired_files.items())},
        }

    def summary(self) -> str:
        """Return a short human-readable summary."""
        new = [t for t in self.tickers if t not in self.replaced]
        total = sum(self.rows.values())
        parts = [f"wrote {total} rows for {len(self.rows)} tickers to {self.data_dir}"]
        if new:
            parts.append(f"new: {', '.join(new)}")
        if self.replaced:
            parts.append(
                "replaced: "
                + ", ".join(f"{t} ({o} -> {n} rows)" for t, (o, n) in sorted(self.replaced.items()))
            )
        return "; ".join(parts)


class BarStore:
    """Parquet-per-ticker bar storage under a data directory.

    Parameters
    ----------
    data_dir : path-like, optional
        The data directory; resolved with :func:`engine.data.paths.resolve_data_dir`
        (argument, then ``ENGINE_DATA_DIR``, then ``~/.local/share/engine``).
        It is created on the first write.

    Examples
    --------
    >>> import tempfile
    >>> store = BarStore(tempfile.mkdtemp())
    >>> bars = pl.DataFrame({"ticker": ["AAPL"], "date": [date(2020, 1, 2)], "open": [1.0],
    ...                      "high": [1.0], "low": [1.0], "close": [1.0], "volume": [5.0]})
    >>> store.write(bars, {"AAPL": {"synthetic": False, "source": "example"}}).rows
    {'AAPL': 1}
    >>> store.tickers(), store.read_bars().height
    (['AAPL'], 1)
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir: Path = resolve_data_dir(data_dir)
        self._held = threading.local()  # how deep this thread holds the lock

    def __repr__(self) -> str:
        return f"BarStore({str(self.data_dir)!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the data directory only: a lock held here is not held in another process."""
        return {k: v for k, v in self.__dict__.items() if k != "_held"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the data directory with a fresh, unheld lock depth."""
        self.__dict__.update(state)
        self._held = threading.local()

    # ------------------------------------------------------------------ paths
    @property
    def bars_dir(self) -> Path:
        """Directory of the per-ticker Parquet files."""
        return self.data_dir / "bars"

    @property
    def rejected_dir(self) -> Path:
        """Directory of the rows dropped by imports."""
        return self.data_dir / "rejected"

    @property
    def repaired_dir(self) -> Path:
        """Directory of the rows repaired by imports, with their original values."""
        return self.data_dir / "repaired"

    @property
    def metadata_path(self) -> Path:
        """Path of ``metadata.json``."""
        return self.data_dir / "metadata.json"

    def bars_path(self, ticker: str) -> Path:
        """Return the Parquet path of ``ticker``."""
        return self.bars_dir / f"{ticker}.parquet"

    # ------------------------------------------------------------------ locking
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's write lock (across threads and processes; re-entrant).

        :meth:`write` takes it; hold it around a read-modify-write of stored
        bars (read a ticker, append to it, write it back) so that no other
        writer comes in between.
        """
        depth = getattr(self._held, "depth", 0)
        if depth:  # this thread holds it already (flock would wait for itself)
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        with exclusive_lock(self.data_dir / _LOCK_FILE):
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0

    # ------------------------------------------------------------------ reading
    def metadata(self) -> dict[str, Any]:
        """Return a copy of the metadata (``{"version", "store", "tickers"}``).

        Raises
        ------
        ValueError
            If ``metadata.json`` exists but is not valid metadata.
        """
        path = self.metadata_path
        if not path.exists():
            return {"version": METADATA_VERSION, "store": {}, "tickers": {}}
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); restore or delete it") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("tickers"), dict):
            raise ValueError(f"{path} has no 'tickers' mapping; restore or delete it")
        meta.setdefault("store", {})
        return meta

    def tickers(self) -> list[str]:
        """Return the stored tickers, sorted."""
        return sorted(self.metadata()["tickers"])

    def listing(self) -> list[dict[str, Any]]:
        """Return one summary dict per ticker (for ``engine data list``).

        Keys: ticker, first_date, last_date, rows, synthetic, role, source.
        """
        out = []
        for ticker, entry in sorted(self.metadata()["tickers"].items()):
            out.append(
                {
                    "ticker": ticker,
                    "first_date": entry.get("first_date"),
                    "last_date": entry.get("last_date"),
                    "rows": entry.get("rows"),
                    "synthetic": entry.get("synthetic"),
                    "role": entry.get("role", ticker_role(ticker)),
                    "source": entry.get("source"),
                }
            )
        return out

    def read_bars(
        self,
        tickers: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pl.DataFrame:
        """Read bars as one long frame sorted by (ticker, date).

        Parameters
        ----------
        tickers : sequence of str, optional
            Tickers to read (default: every stored ticker).
        start, end : datetime.date, optional
            Inclusive date bounds.

        Returns
        -------
        pl.DataFrame
            Canonical schema. ``adj_close`` is present when any requested
            ticker has it (null for tickers that do not).

        Raises
        ------
        ValueError
            If the store is empty, a ticker is unknown (all unknown tickers are
            named) or ``start > end``.
        """
        for name, bound in (("start", start), ("end", end)):
            if bound is not None and not isinstance(bound, date):
                raise TypeError(f"{name} must be a datetime.date, got {bound!r}")
        if start is not None and end is not None and start > end:
            raise ValueError(f"start must be <= end, got start={start}, end={end}")
        stored = self.tickers()
        if tickers is None:
            if not stored:
                raise ValueError(
                    f"no bars in {self.data_dir}; run `engine data demo` or "
                    "`engine data import PATH` first"
                )
            wanted = stored
        else:
            if isinstance(tickers, str):
                raise TypeError(f"tickers must be a list of str, got the string {tickers!r}")
            wanted = sorted(set(tickers))
            unknown = [t for t in wanted if t not in stored]
            if unknown:
                raise ValueError(
                    f"unknown tickers: {', '.join(unknown)} (not in {self.data_dir}; "
                    f"stored: {', '.join(stored) or 'none'})"
                )
        frames = [self._read_one(ticker, start, end) for ticker in wanted]
        with_adj = any(ADJ_CLOSE in f.columns for f in frames)
        if not frames:
            return empty_bars(with_adj)
        out = pl.concat(frames, how="diagonal_relaxed")
        cols = [c for c in CANONICAL_COLUMNS if c != ADJ_CLOSE or with_adj]
        return out.select(cols).sort(["ticker", "date"])

    def _read_one(self, ticker: str, start: date | None, end: date | None) -> pl.DataFrame:
        """One ticker's stored bars; a missing or unreadable file names itself and the fix."""
        path = self.bars_path(ticker)
        fix = (
            f"re-import {ticker} with `engine data import PATH --overwrite` "
            "(or `engine data demo --overwrite` for the demo universe)"
        )
        if not path.is_file():
            raise ValueError(f"stored bars of {ticker} are missing: {path} does not exist; {fix}")
        lf = pl.scan_parquet(path)
        if start is not None:
            lf = lf.filter(pl.col("date") >= start)
        if end is not None:
            lf = lf.filter(pl.col("date") <= end)
        try:
            return lf.collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"stored bars of {ticker} cannot be read: {path} is truncated or corrupt "
                f"({reason}); {fix}"
            ) from None

    def verify(self) -> list[str]:
        """Check every Parquet file against its recorded sha256.

        Returns
        -------
        list of str
            One line per problem (missing file or checksum mismatch); empty when
            the store is intact.
        """
        problems = []
        for ticker, entry in sorted(self.metadata()["tickers"].items()):
            path = self.bars_path(ticker)
            if not path.exists():
                problems.append(f"{ticker}: {path} is missing")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
                problems.append(f"{ticker}: {path} does not match its recorded sha256")
        return problems

    # ------------------------------------------------------------------ writing
    def write(
        self,
        frames: pl.DataFrame,
        info: Mapping[str, Mapping[str, Any]] | None = None,
        overwrite: bool = False,
        *,
        store_info: Mapping[str, Any] | None = None,
        rejected: Mapping[str, pl.DataFrame] | None = None,
        repaired: Mapping[str, pl.DataFrame] | None = None,
        source: str = "<frame>",
        tolerance: float = OHLC_TOLERANCE,
    ) -> WriteReport:
        """Validate and store bars for one or more tickers.

        Parameters
        ----------
        frames : pl.DataFrame
            Long bars frame with a ``ticker`` column.
        info : dict of str to dict, optional
            Per ticker: ``synthetic`` (bool, default False), ``source`` (str,
            default ``source``), optional ``role``; any other key goes into the
            ticker's free-form ``extra`` metadata.
        overwrite : bool, default False
            Replace tickers that are already stored. Without it, nothing at all
            is written when any ticker exists.
        store_info : dict, optional
            Store-level metadata to merge in (e.g. ``{"demo_seed": 7}``).
        rejected : dict of str to pl.DataFrame, optional
            Rows an import dropped, written to ``rejected/<TICKER>.csv``.
        repaired : dict of str to pl.DataFrame, optional
            Rows an import repaired, with their original values, written to
            ``repaired/<TICKER>.csv``; the metadata counts them.
        source : str, default "<frame>"
            Name used in validation errors and as the default provenance.
        tolerance : float, default 1e-9
            Relative tolerance of the OHLC ordering rules.

        Returns
        -------
        WriteReport
            Rows per ticker and the tickers replaced (old rows -> new rows).

        Raises
        ------
        BarsValidationError
            If the bars break a rule (nothing is written).
        FileExistsError
            If a ticker is already stored and ``overwrite`` is False; the
            message names the tickers and the data directory.
        ValueError
            If ``info`` is malformed or names tickers not in ``frames``.
        """
        bars = _validated(frames, source, tolerance)
        present = bars.get_column("ticker").unique().sort().to_list()
        entries = self._entries(present, info or {}, source)
        for name, extra in (
            ("store_info", store_info),
            ("rejected", rejected),
            ("repaired", repaired),
        ):
            if extra is not None and not isinstance(extra, Mapping):
                raise TypeError(f"{name} must be a mapping, got {type(extra).__name__}")
        rejected, repaired = dict(rejected or {}), dict(repaired or {})
        bad_names = [
            n
            for n in [*rejected, *repaired]
            if not re.match(r"^[A-Za-z0-9_^][A-Za-z0-9.\-_^=]*$", n)
        ]
        if bad_names:
            raise ValueError(f"rejected file names must be plain file stems, got {bad_names}")

        with self.lock():
            return self._write_locked(
                bars, present, entries, overwrite, store_info, rejected, repaired
            )

    def _write_locked(
        self,
        bars: pl.DataFrame,
        present: list[str],
        entries: dict[str, dict[str, Any]],
        overwrite: bool,
        store_info: Mapping[str, Any] | None,
        rejected: dict[str, pl.DataFrame],
        repaired: dict[str, pl.DataFrame],
    ) -> WriteReport:
        """:meth:`write` from reading the metadata on, under the store's lock."""
        meta = self.metadata()
        existing = [t for t in present if t in meta["tickers"] or self.bars_path(t).exists()]
        if existing and not overwrite:
            raise FileExistsError(
                f"{len(existing)} ticker{'s' if len(existing) != 1 else ''} already in "
                f"{self.data_dir}: {', '.join(existing)}; nothing was written. "
                "Pass --overwrite (overwrite=True) to replace them"
            )

        report = WriteReport(data_dir=self.data_dir)
        payloads: list[tuple[Path, bytes]] = []
        for ticker, part in bars.group_by("ticker", maintain_order=True):
            name = ticker[0]
            if ADJ_CLOSE in part.columns and part.get_column(ADJ_CLOSE).is_null().all():
                part = part.drop(ADJ_CLOSE)
            data = parquet_bytes(part.sort("date"))
            entry = entries[name]
            entry.update(
                rows=part.height,
                first_date=part.get_column("date").min().isoformat(),
                last_date=part.get_column("date").max().isoformat(),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            payloads.append((self.bars_path(name), data))
            if name in existing:
                old = meta["tickers"].get(name, {}).get("rows")
                if old is None and self.bars_path(name).exists():
                    old = pl.scan_parquet(self.bars_path(name)).select(pl.len()).collect().item()
                report.replaced[name] = (int(old or 0), part.height)
            report.rows[name] = part.height
        stale = []
        # rejected/<T>.csv and repaired/<T>.csv always belong to the stored version of T
        for directory, side_files, files_written, count_key in (
            (self.rejected_dir, rejected, report.rejected_files, "rejected_rows"),
            (self.repaired_dir, repaired, report.repaired_files, "repaired_rows"),
        ):
            for name in present:
                if name not in side_files and (directory / f"{name}.csv").exists():
                    stale.append(directory / f"{name}.csv")
            for name, frame in sorted(side_files.items()):
                if frame.height:
                    path = directory / f"{name}.csv"
                    payloads.append((path, csv_bytes(frame)))
                    files_written[name] = path
                    if name in entries:
                        entries[name]["extra"][count_key] = frame.height

        meta["tickers"].update(entries)
        meta["store"].update(dict(store_info or {}))
        meta["version"] = METADATA_VERSION
        meta_text = json.dumps(meta, sort_keys=True, indent=2, default=_json_default) + "\n"
        payloads.append((self.metadata_path, meta_text.encode("utf-8")))
        self._commit(payloads)
        for path in stale:
            path.unlink(missing_ok=True)
        return report

    def _entries(
        self, present: list[str], info: Mapping[str, Mapping[str, Any]], source: str
    ) -> dict[str, dict[str, Any]]:
        if not isinstance(info, Mapping):
            raise TypeError(f"info must be a mapping of ticker -> dict, got {type(info).__name__}")
        unknown = sorted(set(info) - set(present))
        if unknown:
            raise ValueError(f"info given for tickers not in the bars: {', '.join(unknown)}")
        entries = {}
        for ticker in present:
            given = dict(info.get(ticker, {}))
            synthetic = given.get("synthetic", False)
            if not isinstance(synthetic, bool):
                raise ValueError(f"info[{ticker!r}]['synthetic'] must be a bool, got {synthetic!r}")
            src = given.get("source", source)
            if not isinstance(src, str):
                raise ValueError(f"info[{ticker!r}]['source'] must be a str, got {src!r}")
            role = given.get("role", ticker_role(ticker))
            if role not in _ROLES:
                raise ValueError(f"info[{ticker!r}]['role'] must be one of {_ROLES}, got {role!r}")
            extra = {k: v for k, v in given.items() if k not in (*_INFO_KEYS, "extra")}
            if isinstance(given.get("extra"), Mapping):
                extra.update(given["extra"])
            try:
                extra = json.loads(json.dumps(extra, sort_keys=True, default=_json_default))
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"info[{ticker!r}] extra values must be JSON-serialisable: {exc}"
                ) from exc
            entries[ticker] = {"synthetic": synthetic, "source": src, "role": role, "extra": extra}
        return entries

    def _commit(self, payloads: list[tuple[Path, bytes]]) -> None:
        """Stage every file, then rename them all; metadata.json comes last."""
        staged: list[tuple[Path, Path]] = []
        try:
            for path, data in payloads:
                staged.append((stage_bytes(path, data), path))
            while staged:
                tmp, path = staged[0]
                os.replace(tmp, path)
                staged.pop(0)
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        for directory in sorted({p.parent for p, _ in payloads}):
            fsync_dir(directory)
