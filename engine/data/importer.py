"""Import OHLCV bars from CSV/Parquet files into a :class:`~engine.data.store.BarStore`.

Two source shapes are accepted:

* a directory of per-ticker files (``AAPL.csv``, ``MSFT.parquet``; the ticker
  is the upper-cased file stem; CSV and Parquet may be mixed; hidden files are
  ignored), e.g. with the Yahoo header ``Date,Open,High,Low,Close,Adj Close,Volume``;
* one long CSV or Parquet file with a ``ticker`` column (a single file
  without one is a per-ticker file: ``AAPL.csv`` holds AAPL).

CSV is read with every column as text, so a bad value becomes a reported
violation (``unparsable_number``, ``unparsable_date``) instead of a crash.
Dates are ISO unless ``date_format`` says otherwise; a source whose dates are
mostly in another format gets one message naming the expected format and the
ones that would parse.

What happens to bad rows (``on_bad_rows``):

* ``"error"`` (default): any violation aborts the import and the data
  directory is left untouched;
* ``"drop"``: bad rows are dropped, counted per rule, and saved verbatim to
  ``<data_dir>/rejected/<TICKER>.csv`` (rows without a valid ticker, with the
  ticker text as given, to ``rejected/_invalid_ticker.<source stem>.csv``,
  so a later import from another source does not overwrite them);
* ``"repair"``: rows whose only faults are the OHLC ordering rules (a high
  below the open or close, a low above them) are kept with high and low
  widened to contain open and close; each such row, with its original
  values, goes to ``<data_dir>/repaired/<TICKER>.csv`` and the metadata
  counts them. Any other violation still aborts the import.

OHLC order is checked within a relative ``tolerance`` (1e-9): float noise is
not a bad row. Such bars are stored as given, not clipped, and counted.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from engine.data.bars import (
    OHLC_TOLERANCE,
    REPAIRABLE_RULES,
    ROW_COLUMN,
    TICKER_PATTERN,
    BarsValidationError,
    Violation,
    check_bars,
    normalise_columns,
)
from engine.data.dates import check_date_format
from engine.data.store import BarStore, WriteReport
from engine.data.universe import VIX3M_TICKER, VIX_TICKER

__all__ = [
    "INVALID_TICKER_FILE",
    "ON_BAD_ROWS",
    "SUFFIXES",
    "ImportReport",
    "discover_sources",
    "import_bars",
    "import_demo",
    "invalid_ticker_file",
]

#: File suffixes an import reads (case-insensitive).
SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
OnBadRows = Literal["error", "drop", "repair"]
ON_BAD_ROWS: tuple[str, ...] = ("error", "drop", "repair")
#: Yahoo's names of the Cboe volatility indices (files ``^VIX.csv``) -> the stored tickers.
YAHOO_INDEX_NAMES: dict[str, str] = {"^VIX": VIX_TICKER, "^VIX3M": VIX3M_TICKER}
#: Prefix of the rejected-rows file for rows whose ticker is empty or invalid
#: (see :func:`invalid_ticker_file`).
INVALID_TICKER_FILE = "_invalid_ticker"
_DROP_HINT = (
    "fix the rows, or import with --on-bad-rows drop to drop them (they are saved under "
    "<data-dir>/rejected/), or, when only high and low are out of order, with "
    "--on-bad-rows repair (repaired rows are saved under <data-dir>/repaired/)"
)
_REPAIR_HINT = (
    f"--on-bad-rows repair fixes only {', '.join(REPAIRABLE_RULES)}; fix the other rows, "
    "or import with --on-bad-rows drop to drop them"
)


@dataclass
class ImportReport:
    """What :func:`import_bars` did.

    Attributes
    ----------
    source : Path
        The file or directory imported.
    on_bad_rows : str
        ``"error"``, ``"drop"`` or ``"repair"``.
    write : WriteReport
        Rows per ticker, tickers replaced (old -> new rows), rejected files.
    files : dict of str to str
        Ticker -> the file it came from.
    dropped : list of Violation
        Every violation of every dropped row (a row breaking two rules appears twice).
    dropped_rows : dict of str to int
        Dropped rows per ticker; rows without a valid ticker under the stem of
        their file (:func:`invalid_ticker_file`).
    dropped_by_rule : dict of str to int
        Dropped rows per rule; a row is counted once, under the first rule it
        breaks (in :data:`engine.data.bars.RULES` order), so the counts sum to the
        number of dropped rows.
    repairs : list of Violation
        Every ordering violation of every repaired row.
    repaired_rows, repaired_by_rule : dict of str to int
        Repaired rows per ticker and per first rule (as for dropped rows).
    tolerance : float
        Relative tolerance of the OHLC ordering rules.
    tolerated_rows : dict of str to int
        Rows per ticker whose OHLC order holds only within the tolerance;
        they are stored as given (not clipped).
    renamed : dict of str to str
        Files named by Yahoo's index names, stored under the engine's ticker
        (``{"^VIX.csv": "VIX"}``, see :data:`YAHOO_INDEX_NAMES`).
    """

    source: Path
    on_bad_rows: str
    write: WriteReport
    files: dict[str, str] = field(default_factory=dict)
    dropped: list[Violation] = field(default_factory=list)
    dropped_rows: dict[str, int] = field(default_factory=dict)
    dropped_by_rule: dict[str, int] = field(default_factory=dict)
    repairs: list[Violation] = field(default_factory=list)
    repaired_rows: dict[str, int] = field(default_factory=dict)
    repaired_by_rule: dict[str, int] = field(default_factory=dict)
    tolerance: float = OHLC_TOLERANCE
    tolerated_rows: dict[str, int] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def tickers(self) -> list[str]:
        """Tickers imported, sorted."""
        return self.write.tickers

    @property
    def total_dropped(self) -> int:
        """Number of rows dropped over all tickers."""
        return sum(self.dropped_rows.values())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return {
            "source": str(self.source),
            "on_bad_rows": self.on_bad_rows,
            "tickers": self.tickers,
            "files": dict(sorted(self.files.items())),
            **self.write.to_dict(),
            "dropped_rows": dict(sorted(self.dropped_rows.items())),
            "dropped_by_rule": dict(sorted(self.dropped_by_rule.items())),
            "dropped": [v.to_dict() for v in self.dropped],
            "repaired_rows": dict(sorted(self.repaired_rows.items())),
            "repaired_by_rule": dict(sorted(self.repaired_by_rule.items())),
            "repairs": [v.to_dict() for v in self.repairs],
            "ohlc_tolerance": self.tolerance,
            "tolerated_rows": dict(sorted(self.tolerated_rows.items())),
            "prices_stored": "as given (within-tolerance bars are not clipped)",
            "renamed": dict(sorted(self.renamed.items())),
        }

    def summary(self) -> str:
        """Return a short human-readable summary."""
        text = f"imported {self.source}: {self.write.summary()}"
        if self.renamed:
            names = ", ".join(f"{f} as {t}" for f, t in sorted(self.renamed.items()))
            text += f"; stored Yahoo's index names under the engine's tickers: {names}"
        if self.total_dropped:
            rules = ", ".join(f"{r}: {n}" for r, n in sorted(self.dropped_by_rule.items()))
            text += (
                f"; dropped {self.total_dropped} bad rows ({rules}), saved under "
                f"{self.write.data_dir / 'rejected'}"
            )
        repaired = sum(self.repaired_rows.values())
        if repaired:
            rules = ", ".join(f"{r}: {n}" for r, n in sorted(self.repaired_by_rule.items()))
            text += (
                f"; repaired {repaired} rows ({rules}): high and low widened to contain open "
                f"and close, originals saved under {self.write.data_dir / 'repaired'}"
            )
        tolerated = sum(self.tolerated_rows.values())
        if tolerated:
            text += (
                f"; {tolerated} rows have OHLC order only within the relative tolerance "
                f"{self.tolerance:g}, stored as given"
            )
        return text


def discover_sources(path: str | os.PathLike[str]) -> list[tuple[Path, str | None]]:
    r"""List the files an import of ``path`` reads, with their ticker.

    Returns
    -------
    list of (Path, str or None)
        For a directory, each ``.csv``/``.parquet`` file (hidden ones skipped)
        with its upper-cased stem as ticker; for a file, the file with ``None``
        (the import then uses its ``ticker`` column, or, when it has none, its
        upper-cased stem).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a file has another suffix, a directory has no such files, or two
        files give the same ticker.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "aapl.csv").write_text("date\n"); _ = (d / ".hidden.csv").write_text("")
    >>> [(p.name, t) for p, t in discover_sources(d)]
    [('aapl.csv', 'AAPL')]
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"import path does not exist: {path}")
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(
                f"cannot import {path}: suffix {path.suffix!r} is not one of {', '.join(SUFFIXES)}"
            )
        return [(path, None)]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
    )
    if not files:
        raise ValueError(
            f"no {' or '.join(SUFFIXES)} files in directory {path} (expected per-ticker files "
            "such as AAPL.csv)"
        )
    by_ticker: dict[str, list[Path]] = {}
    for p in files:
        stem = p.stem.strip().upper()
        by_ticker.setdefault(YAHOO_INDEX_NAMES.get(stem, stem), []).append(p)
    clashes = {t: ps for t, ps in by_ticker.items() if len(ps) > 1}
    if clashes:
        detail = "; ".join(
            f"{t}: {', '.join(p.name for p in ps)}" for t, ps in sorted(clashes.items())
        )
        raise ValueError(f"several files in {path} give the same ticker ({detail}); keep one")
    return [(p, _stem_ticker(p)) for p in files]


def _stem_ticker(path: Path) -> str:
    ticker = path.stem.strip().upper()
    ticker = YAHOO_INDEX_NAMES.get(ticker, ticker)  # ^VIX.csv holds the index VIX
    if not re.match(TICKER_PATTERN, ticker):
        raise ValueError(
            f"cannot use the file name of {path} as a ticker: {ticker!r} does not match "
            f"{TICKER_PATTERN}; rename the file (e.g. AAPL.csv)"
        )
    return ticker


def _read(path: Path) -> pl.DataFrame:
    """Read one source; CSV columns are all text so bad values can be reported."""
    try:
        if path.suffix.lower() == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        else:
            frame = pl.read_parquet(path)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    frame = normalise_columns(frame)
    frame = frame.with_row_index(ROW_COLUMN, offset=1)
    # blank lines come back as all-null rows: skip them, keeping row numbers
    data_cols = [c for c in frame.columns if c != ROW_COLUMN]
    if data_cols:
        blank = pl.all_horizontal(
            [pl.col(c).cast(pl.String).str.strip_chars().fill_null("") == "" for c in data_cols]
        )
        frame = frame.filter(~blank)
    return frame


def import_bars(
    path: str | os.PathLike[str],
    store: BarStore | str | os.PathLike[str] | None = None,
    on_bad_rows: OnBadRows = "error",
    overwrite: bool = False,
    *,
    tolerance: float = OHLC_TOLERANCE,
    date_format: str | None = None,
) -> ImportReport:
    r"""Import bars from a directory of per-ticker files or one long file.

    Parameters
    ----------
    path : path-like
        A directory of ``<TICKER>.csv`` / ``<TICKER>.parquet`` files, or one
        CSV/Parquet file with a ``ticker`` column (without one, the file's
        upper-cased stem is its ticker).
    store : BarStore or path-like, optional
        Where to store the bars (a data directory is wrapped in a
        :class:`BarStore`; ``None`` resolves the default data directory).
    on_bad_rows : {"error", "drop", "repair"}, default "error"
        ``"error"``: any violation raises and nothing is written.
        ``"drop"``: bad rows are dropped (for ``duplicate_date`` the first
        occurrence that breaks no other rule is kept), counted, and saved to
        ``rejected/<TICKER>.csv``.
        ``"repair"``: rows breaking only the OHLC ordering rules are kept
        with high and low widened to contain open and close, counted, and
        saved with their original values to ``repaired/<TICKER>.csv``; any
        other violation raises and nothing is written.
    overwrite : bool, default False
        Replace tickers that are already stored.
    tolerance : float, default 1e-9
        Relative tolerance of the OHLC ordering rules (``--ohlc-tolerance``).
        Bars within it are stored as given and counted.
    date_format : str, optional
        strftime pattern of the dates (``--date-format``, e.g. ``%m/%d/%Y``);
        default ISO ``YYYY-MM-DD``.

    Returns
    -------
    ImportReport
        Tickers, rows, replacements and dropped rows.

    Raises
    ------
    BarsValidationError
        On any violation with ``on_bad_rows="error"``, on any violation
        ``"repair"`` cannot fix; always for ``missing_columns``, mostly
        unparsable dates (``date_format``), an empty source, or a ticker
        whose rows are all bad.
        The message names file, row, ticker, date and rule.
    FileExistsError
        If a ticker is already stored and ``overwrite`` is False.
    ValueError, FileNotFoundError
        For a bad path, an unreadable file or an unknown ``on_bad_rows``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "AAPL.csv"
    >>> _ = src.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n"
    ...                    "2020-01-02,10,11,9,10.5,10.4,1000\n")
    >>> report = import_bars(src.parent, BarStore(tempfile.mkdtemp()))
    >>> report.write.rows
    {'AAPL': 1}
    """
    if on_bad_rows not in ON_BAD_ROWS:
        raise ValueError(
            f"--on-bad-rows must be one of {', '.join(ON_BAD_ROWS)}, got {on_bad_rows!r}"
        )
    if not (isinstance(tolerance, int | float) and 0 <= tolerance < 1):
        raise ValueError(f"--ohlc-tolerance must be in [0, 1), got {tolerance!r}")
    check_date_format(date_format)
    if not isinstance(store, BarStore):
        store = BarStore(store)
    sources = discover_sources(path)

    structural: list[Violation] = []
    checks = []
    for file, ticker in sources:
        frame = _read(file)
        name = str(file)
        if ticker is None and "ticker" not in frame.columns:
            ticker = _stem_ticker(file)  # a single per-ticker file such as AAPL.csv
        if frame.height == 0:
            structural.append(Violation(name, ticker, None, None, "no_rows", "no data rows"))
            continue
        try:
            checked = check_bars(
                frame,
                source=name,
                ticker=ticker,
                tolerance=tolerance,
                date_format=date_format,
                repair=on_bad_rows == "repair",
            )
            checks.append((file, ticker, checked))
        except BarsValidationError as exc:  # missing_columns: no row can be checked
            structural += exc.violations
    if structural:
        raise BarsValidationError(structural)

    violations = [v for _, _, c in checks for v in c.violations]
    if violations and on_bad_rows == "error":
        raise BarsValidationError(violations, hint=_DROP_HINT)
    if violations and on_bad_rows == "repair":
        raise BarsValidationError(violations, hint=_REPAIR_HINT)

    good = [c.bars for _, _, c in checks if c.bars.height]
    files: dict[str, str] = {}
    for file, _, c in checks:
        for t in c.bars.get_column("ticker").unique().to_list():
            files[t] = str(file)
    rejected = pl.concat([c.rejected for _, _, c in checks], how="diagonal_relaxed")
    emptied = _emptied_tickers(checks)
    if emptied:
        lost = [v for v in violations if v.ticker in emptied]
        raise BarsValidationError(
            lost,
            headline=f"every row of {', '.join(emptied)} breaks a rule; nothing was imported",
        )
    if not good:  # only rows without a usable ticker
        raise BarsValidationError(
            violations, headline=f"no row of {path} has a usable ticker; nothing was imported"
        )

    rejected_by_name: dict[str, pl.DataFrame] = {}
    kept = pl.col("ticker").is_in(list(files))
    for (t,), part in rejected.filter(kept).group_by("ticker", maintain_order=True):
        rejected_by_name[t] = part
    orphan = rejected.filter(~kept.fill_null(False))
    if orphan.height:  # rows whose ticker is empty or invalid
        rejected_by_name[invalid_ticker_file(path)] = orphan

    repaired = pl.concat([c.repaired for _, _, c in checks], how="diagonal_relaxed")
    repaired_by_name = {t: part for (t,), part in repaired.group_by("ticker", maintain_order=True)}
    tolerated: Counter[str] = Counter()
    for _, _, c in checks:
        tolerated.update(c.tolerated)
    info = {
        t: {
            "synthetic": False,
            "source": f,
            "ohlc_tolerance": tolerance,
            "tolerated_rows": tolerated.get(t, 0),
        }
        for t, f in files.items()
    }
    write = store.write(
        pl.concat(good, how="diagonal_relaxed"),
        info,
        overwrite=overwrite,
        rejected=rejected_by_name,
        repaired=repaired_by_name,
        source=str(Path(path).expanduser().resolve()),
        tolerance=tolerance,
    )

    repairs = [v for _, _, c in checks for v in c.repairs]
    per_name = Counter(
        t if t in files else invalid_ticker_file(path)
        for t in rejected.get_column("ticker").fill_null("").to_list()
    )
    return ImportReport(
        source=Path(path).expanduser().resolve(),
        on_bad_rows=on_bad_rows,
        write=write,
        files=files,
        dropped=violations,
        dropped_rows=dict(sorted(per_name.items())),
        dropped_by_rule=_first_rule_counts(violations),
        repairs=repairs,
        repaired_rows={t: part.height for t, part in sorted(repaired_by_name.items())},
        repaired_by_rule=_first_rule_counts(repairs),
        tolerance=float(tolerance),
        tolerated_rows={t: n for t, n in sorted(tolerated.items()) if n},
        renamed={f.name: t for f, t, _ in checks if t is not None and f.stem.strip().upper() != t},
    )


def invalid_ticker_file(source: str | os.PathLike[str]) -> str:
    """Stem of ``rejected/`` file for the rows of ``source`` without a valid ticker.

    One file per source stem, so an import from another source keeps it.

    Examples
    --------
    >>> invalid_ticker_file("/data/yahoo prices.csv")
    '_invalid_ticker.yahoo_prices'
    """
    path = Path(source)
    stem = path.stem if path.suffix.lower() in SUFFIXES else path.name
    return f"{INVALID_TICKER_FILE}.{re.sub(r'[^A-Za-z0-9._-]', '_', stem) or 'source'}"


def _first_rule_counts(violations: list[Violation]) -> dict[str, int]:
    """Rows per rule, each row counted once under the first rule it breaks."""
    first_rule: dict[tuple[str, int], str] = {}
    for v in violations:
        first_rule.setdefault((v.file, v.row or 0), v.rule)
    return dict(sorted(Counter(first_rule.values()).items()))


def _emptied_tickers(checks: list) -> list[str]:
    """Return the tickers that had rows but kept none."""
    had: set[str] = set()
    kept: set[str] = set()
    for _, ticker, c in checks:
        kept.update(c.bars.get_column("ticker").unique().to_list())
        if ticker is not None:
            had.add(ticker)
        else:
            named = c.rejected.get_column("ticker").drop_nulls().unique().to_list()
            had.update(t for t in named if re.match(TICKER_PATTERN, t))
    return sorted(had - kept)


def import_demo(
    store: BarStore | str | os.PathLike[str] | None = None,
    seed: int = 7,
    overwrite: bool = False,
) -> WriteReport:
    """Generate the embedded demo universe and store it (no network needed).

    Parameters
    ----------
    store : BarStore or path-like, optional
        Target store or data directory.
    seed : int, default 7
        Seed of the synthetic tickers; recorded as ``demo_seed`` in the
        store-level metadata. The same seed gives byte-identical files.
    overwrite : bool, default False
        Replace tickers that are already stored.

    Returns
    -------
    WriteReport
        Rows per ticker and the tickers replaced.

    Raises
    ------
    FileExistsError
        If a demo ticker is already stored and ``overwrite`` is False.
    """
    from engine.data.demo import generate_demo_universe

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got seed={seed!r}")
    if not isinstance(store, BarStore):
        store = BarStore(store)
    universe = generate_demo_universe(seed=seed)
    return store.write(
        universe.bars,
        universe.info,
        overwrite=overwrite,
        store_info={"demo_seed": int(universe.seed)},
        source="engine.demo",
    )
