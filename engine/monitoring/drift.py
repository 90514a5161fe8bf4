"""Drift of a window of bars against a model's stored reference: PSI per feature and head, AUC.

The window is rebuilt exactly as the model saw its training data: features
computed over each ticker's full stored history on the model's price basis
(adjusted or raw, :mod:`engine.data.prices`) with its pinned ``vix_variant``,
market and sector map (so rolling GARCH and the 252-day range equal
training's), then the stride-1 windows whose last day lies in
``[start, end]``. For each window the current sample is

* the feature values on its last day (as the reference holds the last day
  of each training window), and
* the model's confidence per head (as the reference holds its confidence on
  the validation fold).

Labels count only when matured by ``end`` (``t1 <= end``): the bars are
read up to ``end``, so a later outcome is never seen. Each head's AUC on
them comes with its date-block bootstrap interval
(:func:`engine.evaluation.evaluate_frame`) beside the validation AUC stored
at training.

The AUC is out of sample only: windows dated on or before the model's
``embargo_end`` (ONNX metadata ``split.embargo_end``; serving calls them
``in_sample``) were trained or early-stopped on, so they are left out of it
and counted (``auc_in_sample_windows``). The PSI keeps them: a feature's
distribution does not depend on what the model saw. A model that records no
``embargo_end`` keeps every window, and a note says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from engine.data.prices import PriceBasis, apply_basis
from engine.data.universe import sector_benchmark_map
from engine.evaluation import evaluate_frame
from engine.features.build import FEATURE_NAMES, compute_features
from engine.labels.targets import CONFIDENCE_SUFFIX, EVENT_COLUMNS, compute_targets
from engine.model.sequences import SequenceSet, build_sequences
from engine.monitoring.psi import (
    bin_shares,
    min_rows,
    noise_floor,
    psi,
    psi_status,
    worst_status,
)
from engine.monitoring.reference import read_reference

__all__ = [
    "DriftError",
    "DriftResult",
    "DriftRow",
    "IN_SAMPLE_ONLY",
    "model_embargo_end",
    "measure_drift",
    "model_prices",
    "months_before",
    "window_sequences",
]

#: Calendar days of bars read before ``start`` so the first windows have their 20 rows.
_HISTORY_DAYS = 60
#: The AUC of a head whose every labelled window is dated on or before ``embargo_end``.
IN_SAMPLE_ONLY = "insufficient (every labelled row is in sample)"


def model_prices(metadata: dict[str, Any]) -> PriceBasis:
    """The price basis a model was trained on (raw for models from before price bases)."""
    return PriceBasis.from_dict(metadata.get("prices"))


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` months earlier, clipped to that month's end.

    Examples
    --------
    >>> months_before(date(2018, 12, 31), 6), months_before(date(2018, 8, 31), 6)
    (datetime.date(2018, 6, 30), datetime.date(2018, 2, 28))
    """
    import calendar

    total = day.year * 12 + (day.month - 1) - int(months)
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def model_embargo_end(metadata: dict[str, Any]) -> date | None:
    """The last in-sample day of a model (``split.embargo_end``: train end plus embargo), if any.

    Examples
    --------
    >>> model_embargo_end({"split": {"embargo_end": "2015-03-17"}}), model_embargo_end({})
    (datetime.date(2015, 3, 17), None)
    """
    text = (metadata.get("split") or {}).get("embargo_end")
    return date.fromisoformat(str(text)) if text else None


class DriftError(ValueError):
    """A window that cannot be checked (no data in it)."""


@dataclass
class DriftRow:
    """PSI of one feature or head."""

    kind: str  # "feature" or "head"
    name: str
    psi: float
    status: str
    n: int
    n_reference: int
    noise_floor: float
    min_rows: int | None  # None: the reference is too small for any window
    edges: list[float]
    reference: list[float]
    current: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row."""
        return asdict(self)


@dataclass
class DriftResult:
    """Drift of one window against one model."""

    start: date
    end: date
    tickers: list[str]
    rows: list[DriftRow]
    auc: list[dict[str, Any]]
    n_windows: int
    embargo_end: date | None = None
    auc_in_sample_windows: int = 0
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The worst row status (``insufficient`` only when every row is)."""
        return worst_status(r.status for r in self.rows)

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        out = {"ok": 0, "warn": 0, "drift": 0, "insufficient": 0}
        for row in self.rows:
            out[row.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "tickers": self.tickers,
            "n_windows": self.n_windows,
            "status": self.status,
            "counts": self.counts(),
            "features": [r.to_dict() for r in self.rows if r.kind == "feature"],
            "heads": [r.to_dict() for r in self.rows if r.kind == "head"],
            "auc": self.auc,
            "embargo_end": self.embargo_end.isoformat() if self.embargo_end else None,
            "auc_in_sample_windows": self.auc_in_sample_windows,
            "notes": self.notes,
            **self.info,
        }


def window_sequences(
    bars: pl.DataFrame,
    metadata: dict[str, Any],
    tickers: list[str],
    start: date,
    end: date,
) -> SequenceSet:
    """The stride-1 windows of ``tickers`` ending in ``[start, end]``, with labels matured by end.

    Parameters
    ----------
    bars : pl.DataFrame
        The tickers and their benchmarks as stored (raw prices, ``adj_close``
        optional), full history up to at least ``end``.
    metadata : dict
        The model's metadata (``prices``, ``market``, ``sector_map``,
        ``vix_variant``, ``horizon``, ``sequence_length``, ``pattern_names``).
    tickers : list of str
    start, end : date
        Inclusive bounds of the windows' last days.

    Raises
    ------
    DriftError
        No complete window ends in ``[start, end]``.
    """
    if start > end:
        raise DriftError(f"--start {start} is after --end {end}")
    market = metadata.get("market") or "SPY"
    sector_map = metadata.get("sector_map") or None
    readers = [*tickers, market, *sector_benchmark_map(tickers, sector_map, market).values()]
    bars = apply_basis(bars.filter(pl.col("date") <= end), model_prices(metadata), readers)
    features = compute_features(
        bars,
        tickers=tickers,
        market=market,
        sector_map=sector_map,
        vix_variant=metadata.get("vix_variant") or "auto",
    )
    targets = compute_targets(
        bars,
        horizon=int(metadata.get("horizon", 5)),
        tickers=tickers,
        market=market,
        sector_map=sector_map,
        features=features,
    )
    targets = targets.drop([c for c in EVENT_COLUMNS if c in targets.columns])
    patterns = list(metadata["pattern_names"])
    targets = targets.select("ticker", "date", "t1", *patterns)
    lo = start - timedelta(days=_HISTORY_DAYS)
    features = features.filter(pl.col("date").is_between(lo, end))
    targets = targets.filter(pl.col("date").is_between(lo, end))
    if features.height == 0:
        raise DriftError(f"no bars of {', '.join(tickers)} between {start} and {end}")
    seqs = build_sequences(
        features,
        targets,
        length=int(metadata.get("sequence_length", 20)),
        stride=1,
        feature_names=FEATURE_NAMES,
        pattern_names=patterns,
    )
    keep = seqs.index.get_column("date").is_between(start, end).to_numpy()
    if not keep.any():
        raise DriftError(
            f"no complete 20-day window of {', '.join(tickers)} ends between {start} and {end} "
            "(no bars there, or a gap in every window); choose another --start/--end"
        )
    rows = np.flatnonzero(keep)
    y = None if seqs.y is None else seqs.y[rows]
    return SequenceSet(
        X=seqs.X[rows],
        y=y,
        index=seqs.index[rows],
        feature_names=seqs.feature_names,
        pattern_names=seqs.pattern_names,
        dropped=seqs.dropped,
    )


def _rows(
    kind: str, entries: dict[str, Any], values: np.ndarray, names: list[str]
) -> list[DriftRow]:
    out = []
    for j, name in enumerate(names):
        entry = entries.get(name)
        if entry is None:
            raise DriftError(f"the model's reference has no {kind} {name!r}")
        edges = np.asarray(entry["edges"], dtype=np.float64)
        ref = np.asarray(entry["shares"], dtype=np.float64)
        column = values[:, j]
        n = int(np.isfinite(column).sum())
        current = bin_shares(column, edges) if n else np.zeros_like(ref)
        n_ref = int(entry["n"])
        bins = ref.size
        value = psi(ref, current) if n else float("nan")
        out.append(
            DriftRow(
                kind=kind,
                name=name,
                psi=value,
                status=psi_status(value, n, n_ref, bins) if n else "insufficient",
                n=n,
                n_reference=n_ref,
                noise_floor=noise_floor(n, n_ref, bins),
                min_rows=min_rows(n_ref, bins),
                edges=edges.tolist(),
                reference=ref.tolist(),
                current=np.asarray(current).tolist(),
            )
        )
    return out


def _auc(
    seqs: SequenceSet,
    confidence: np.ndarray,
    validation_auc: dict[str, Any],
    n_boot: int,
    seed: int,
    in_sample: np.ndarray,
) -> list[dict[str, Any]]:
    """AUC per head on the labelled windows not in ``in_sample`` (a boolean row mask)."""
    patterns = list(seqs.pattern_names)
    assert seqs.y is not None
    full = seqs.index.select("ticker", "date").with_columns(
        *(pl.Series(p, seqs.y[:, j]).fill_nan(None).cast(pl.Int8) for j, p in enumerate(patterns)),
        *(pl.Series(p + CONFIDENCE_SUFFIX, confidence[:, j]) for j, p in enumerate(patterns)),
    )
    frame = full.filter(~pl.Series(in_sample))
    left_out = full.filter(pl.Series(in_sample))
    out = []
    usable = [p for p in patterns if frame.get_column(p).drop_nulls().n_unique() == 2]
    table = {}
    if usable:
        evaluated = evaluate_frame(frame.sort("date", "ticker"), usable, n_boot=n_boot, seed=seed)
        table = {row["pattern"]: row for row in evaluated.to_dicts()}
    for p in patterns:
        row = table.get(p, {})
        labelled = int(frame.get_column(p).drop_nulls().len())
        dropped = int(left_out.get_column(p).drop_nulls().len())
        out.append(
            {
                "pattern": p,
                "labelled": labelled,
                "in_sample_labelled": dropped,
                "auc_note": IN_SAMPLE_ONLY if labelled == 0 and dropped else None,
                "base_rate": row.get("base_rate"),
                "auc": row.get("auc"),
                "auc_ci_low": row.get("auc_ci_low"),
                "auc_ci_high": row.get("auc_ci_high"),
                "auc_p_value": row.get("auc_p_value"),
                "validation_auc": validation_auc.get(p),
            }
        )
    return out


def measure_drift(
    metadata: dict[str, Any],
    seqs: SequenceSet,
    confidence: np.ndarray,
    *,
    start: date,
    end: date,
    n_boot: int = 1000,
    seed: int = 0,
    source: str = "",
) -> DriftResult:
    """PSI of every feature and head of a window against the model's reference, and AUC.

    Parameters
    ----------
    metadata : dict
        The model's metadata, with its ``reference`` (see
        :mod:`engine.monitoring.reference`).
    seqs : SequenceSet
        The window (:func:`window_sequences`).
    confidence : ndarray, shape (n, n_patterns)
        The model's confidence on ``seqs.X``.
    start, end : date
    n_boot, seed : int
        Bootstrap of the AUC intervals.
    source : str
        Named in errors.

    Raises
    ------
    engine.monitoring.reference.ReferenceError
        The model stores no reference distributions.
    """
    reference = read_reference(metadata, source=source)
    features = seqs.X[:, -1, :].astype(np.float64)
    names = list(seqs.feature_names)
    rows = _rows("feature", reference["features"], features, names)
    rows += _rows(
        "head", reference["heads"], confidence.astype(np.float64), list(seqs.pattern_names)
    )
    last_seen = model_embargo_end(metadata)
    dates = seqs.index.get_column("date")
    in_sample = (dates <= last_seen).to_numpy() if last_seen else np.zeros(len(seqs), bool)
    validation_auc = reference.get("validation_auc") or {}
    auc = _auc(seqs, confidence, validation_auc, n_boot, seed, in_sample)
    tickers = sorted(seqs.index.get_column("ticker").unique().to_list())
    return DriftResult(
        start=start,
        end=end,
        tickers=tickers,
        rows=rows,
        auc=auc,
        n_windows=len(seqs),
        embargo_end=last_seen,
        auc_in_sample_windows=int(in_sample.sum()),
        notes=_auc_notes(last_seen, int(in_sample.sum()), auc),
    )


def _auc_notes(last_seen: date | None, left_out: int, auc: list[dict[str, Any]]) -> list[str]:
    if last_seen is None:
        return [
            "the model records no embargo_end (split.embargo_end): the AUC may include "
            "windows it trained or early-stopped on; re-export it to record one"
        ]
    if not left_out:
        return []
    notes = [
        f"{left_out:,} windows dated on or before the model's embargo_end {last_seen} "
        "(trained or early-stopped on) are left out of the AUC; the PSI keeps them"
    ]
    empty = [r["pattern"] for r in auc if r["auc_note"] == IN_SAMPLE_ONLY]
    if empty:
        notes.append(f"AUC of {', '.join(empty)}: {IN_SAMPLE_ONLY}")
    return notes
