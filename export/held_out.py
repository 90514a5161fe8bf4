"""The inputs of the ONNX parity check: real held-out windows and random windows.

The held-out windows are the model's own test-period windows, rebuilt from
the bars it was trained on (:func:`held_out_sequences`) or picked from the
sequences a caller already holds (:func:`select_held_out`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.data.loading import benchmark_inputs
from engine.data.paths import resolve_data_dir
from engine.data.prices import PriceBasis, apply_basis
from engine.data.store import BarStore
from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import bars_fingerprint, compute_features
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.artifacts import PREDICTIONS_FILE
from engine.model.sequences import SequenceSet, build_sequences

__all__ = [
    "N_RANDOM",
    "ExportError",
    "HeldOut",
    "check_against_stored",
    "held_out_sequences",
    "random_sequences",
    "select_held_out",
    "training_bars",
]

#: Random windows in the parity check.
N_RANDOM = 1024


class ExportError(ValueError):
    """The export cannot be trusted: parity above tolerance, a non-native graph, wrong data."""


@dataclass
class HeldOut:
    """The artifact's test-period windows rebuilt from bars.

    Attributes
    ----------
    X : ndarray, shape (n, 20, 17), float32
    y : ndarray, shape (n, n_patterns), float32
        Labels (1, 0, NaN where a head has no event).
    index : pl.DataFrame
        ``ticker, date`` of each window's last day.
    info : dict
        Where they came from: test period, tickers, fingerprint match.
    """

    X: np.ndarray
    y: np.ndarray
    index: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def training_bars(metadata: dict[str, Any], data_dir: str | Path | None) -> pl.DataFrame:
    """The stored bars a model was trained on: its tickers and their benchmarks.

    ``data_dir`` defaults to the training run's data directory.
    """
    data = metadata.get("data", {})
    store = BarStore(resolve_data_dir(data_dir if data_dir is not None else data.get("data_dir")))
    tickers = list(data.get("tickers", []))
    available = store.tickers()
    missing = sorted(set(tickers) - set(available))
    if missing:
        raise ExportError(
            "the parity check rebuilds the model's held-out windows from the bars it was "
            f"trained on, but {store.data_dir} lacks {', '.join(missing)}; pass --data-dir "
            "(the data directory of the training run)"
        )
    extra = {data.get("market") or MARKET_BENCHMARK, *(data.get("sector_map") or {}).values()}
    wanted = sorted(set(benchmark_inputs(tickers, available)) | (extra & set(available)))
    return store.read_bars(wanted)


def _iso_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def held_out_sequences(metadata: dict[str, Any], bars: pl.DataFrame) -> HeldOut:
    """The artifact's test-period windows at stride 1, rebuilt from ``bars`` as in training.

    ``bars`` are the prices as stored; the model's price basis is applied here.

    Raises
    ------
    ExportError
        ``bars`` lack the model's tickers, or no window falls in the test period.
    """
    from engine.labels.targets import compute_targets

    data = metadata.get("data", {})
    tickers = list(data.get("tickers", []))
    market = data.get("market") or MARKET_BENCHMARK
    sector_map = data.get("sector_map") or None
    absent = sorted(set(tickers) - set(bars.get_column("ticker").unique().to_list()))
    if not tickers or absent:
        raise ExportError(
            f"the bars lack the model's training ticker(s) {', '.join(absent) or '(none listed)'}"
        )
    try:  # the prices training computed on (the fingerprint is of these bars)
        basis = PriceBasis.from_dict(data.get("prices"))
        bars = apply_basis(bars, basis, bars.get_column("ticker").unique().to_list())
    except ValueError as exc:
        raise ExportError(f"cannot rebuild the model's held-out windows: {exc}") from None
    features = compute_features(
        bars,
        tickers=tickers,
        market=market,
        sector_map=sector_map,
        vix_variant=data.get("vix_variant") or "auto",
    )
    targets = compute_targets(
        bars,
        horizon=int(metadata["horizon"]),
        tickers=tickers,
        market=market,
        sector_map=sector_map,
    )
    start, end = _iso_date(data.get("start")), _iso_date(data.get("end"))
    if start is not None or end is not None:  # as prepare_dataset trims before windowing
        lo, hi = start or date.min, end or date.max
        features = features.filter(pl.col("date").is_between(lo, hi))
        targets = targets.filter(pl.col("date").is_between(lo, hi))
    seqs = build_sequences(features, targets, length=int(metadata["sequence_length"]), stride=1)
    return select_held_out(metadata, seqs, fingerprint=bars_fingerprint(bars))


def select_held_out(metadata: dict[str, Any], seqs: SequenceSet, *, fingerprint: str) -> HeldOut:
    """The artifact's test-period windows among ``seqs`` (stride-1 sequences with targets).

    ``seqs`` must be built as in training: the run's features and targets,
    trimmed to its sample dates. The pipeline passes the sequences it
    trained on, so the check needs no second pass over the features.

    Raises
    ------
    ExportError
        Heads that differ from the model's, or no window in the test period.
    """
    data = metadata.get("data", {})
    tickers = list(data.get("tickers", []))
    if list(seqs.pattern_names) != list(metadata["pattern_names"]):
        raise ExportError(
            f"rebuilt targets {list(seqs.pattern_names)} differ from the model's heads "
            f"{metadata['pattern_names']}"
        )
    test_start, test_end = (date.fromisoformat(d) for d in metadata["split"]["test"])
    dates = seqs.index.get_column("date")
    rows = np.flatnonzero(((dates >= test_start) & (dates < test_end)).to_numpy())
    if rows.size == 0:
        raise ExportError(f"no window of the bars ends in the test period {test_start}..{test_end}")
    assert seqs.y is not None
    info = {
        "test_period": [str(test_start), str(test_end)],
        "tickers": tickers,
        "rows": int(rows.size),
        "fingerprint_match": fingerprint == data.get("fingerprint"),
    }
    return HeldOut(
        X=seqs.X[rows], y=seqs.y[rows], index=seqs.index[rows].select("ticker", "date"), info=info
    )


def random_sequences(metadata: dict[str, Any], n: int = N_RANDOM, seed: int = 0) -> np.ndarray:
    """``n`` windows with each feature drawn from N(mean, variance) of the model's normalization.

    Examples
    --------
    >>> meta = {"sequence_length": 20, "normalization": {"mean": [0.0] * 17,
    ...                                                   "variance": [1.0] * 17}}
    >>> random_sequences(meta, 3).shape
    (3, 20, 17)
    """
    norm = metadata["normalization"]
    mean = np.asarray(norm["mean"], dtype=np.float64)
    sd = np.sqrt(np.asarray(norm["variance"], dtype=np.float64))
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n, int(metadata["sequence_length"]), mean.shape[0]))
    return (mean + sd * draws).astype(np.float32)


def check_against_stored(
    model_dir: Path,
    held_out: HeldOut,
    keras_scores: np.ndarray,
    patterns: list[str],
    tolerance: float,
) -> None:
    """Compare Keras on the rebuilt rows with the test predictions stored at training time."""
    path = model_dir / PREDICTIONS_FILE
    info = held_out.info
    if not path.is_file():
        info["stored_predictions"] = None
        if not info["fingerprint_match"]:
            raise ExportError(
                "the bars' fingerprint differs from the model's training data and the artifact "
                f"holds no {PREDICTIONS_FILE} to check the rebuilt windows against; pass the "
                "bars (--data-dir) the model was trained on"
            )
        return
    columns = [p + CONFIDENCE_SUFFIX for p in patterns]
    stored = pl.read_parquet(path, columns=["ticker", "date", *columns])
    joined = held_out.index.with_row_index("row").join(
        stored, on=["ticker", "date"], how="full", coalesce=True
    )
    unmatched = joined.filter(pl.col("row").is_null() | pl.col(columns[0]).is_null()).height
    diff = np.inf
    if unmatched == 0:
        joined = joined.sort("row")
        diff = float(np.abs(joined.select(columns).to_numpy() - keras_scores).max())
    info["stored_predictions"] = {
        "rows": stored.height,
        "unmatched": unmatched,
        "max_abs_diff": diff,
    }
    if unmatched or diff > tolerance:
        raise ExportError(
            f"the rebuilt held-out windows are not the ones the model was tested on: "
            f"{unmatched} row(s) unmatched, Keras vs stored {PREDICTIONS_FILE} max abs diff "
            f"{diff:.3g} (fingerprint match: {info['fingerprint_match']}); pass the bars "
            "(--data-dir) the model was trained on"
        )
