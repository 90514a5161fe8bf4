"""What each scoring endpoint computes, without HTTP: plain functions over a model.

Every function takes the :class:`LoadedModel` a request started with, so a
reload in the middle of a request cannot mix two models. Errors a client
can fix are :class:`UnknownTickers` (404), :class:`TickerRequestError`,
:class:`export.scorer.ScoringError` and
:class:`engine.data.bars.BarsValidationError` (422), each with a message
that names the ticker, row, date or rule. A store that cannot serve raises
:class:`engine.serving.history.StoreUnavailable` (503).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from engine.backtest.signals import MA_SLOW, STRATEGIES, STRATEGY_HEADS
from engine.data.bars import BarsValidationError, check_bars
from engine.data.universe import VOLATILITY_INDICES
from engine.features.source import day_number
from engine.features.tail import tail_start
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.serving.history import HistorySnapshot
from engine.serving.model import LoadedModel

__all__ = [
    "TickerRequestError",
    "UnknownTickers",
    "asks_for_all",
    "latest_scores",
    "resolve_tickers",
    "score_client_bars",
    "score_sequences",
    "signals",
]

_CLIENT_SOURCE = "POST /v1/score/bars"


class UnknownTickers(LookupError):
    """Tickers the store does not hold (HTTP 404)."""


class TickerRequestError(ValueError):
    """A ``tickers`` value the service cannot use: empty, or a volatility index (HTTP 422)."""


def _refuse_indices(wanted: list[str]) -> None:
    """VIX and VIX3M feed ``vix_term_structure``; the model has no score for them."""
    indices = [t for t in wanted if t in VOLATILITY_INDICES]
    if indices:
        what = "is a volatility index" if len(indices) == 1 else "are volatility indices"
        raise TickerRequestError(
            f"{', '.join(indices)} {what} (a feature input), not a security the model scores"
        )


def resolve_tickers(spec: str | list[str], snapshot: HistorySnapshot) -> list[str]:
    """``"all"`` (every stored security), a comma list or a list, checked against the store.

    Raises
    ------
    UnknownTickers
        Tickers not in the store; the message lists them.
    TickerRequestError
        An empty list, or a volatility index (VIX, VIX3M).
    """
    if isinstance(spec, str):
        if asks_for_all(spec):
            return list(snapshot.securities)
        spec = spec.split(",")
    wanted = sorted({t.strip().upper() for t in spec if t.strip()})
    if not wanted:
        raise TickerRequestError("tickers is empty: name at least one ticker, or 'all'")
    _refuse_indices(wanted)
    unknown = [t for t in wanted if t not in snapshot.source.ranges]
    if unknown:
        raise UnknownTickers(
            f"unknown ticker(s): {', '.join(unknown)}; the store holds "
            f"{len(snapshot.securities)} securities (GET /readyz lists the store's last date)"
        )
    return wanted


def asks_for_all(spec: str | list[str]) -> bool:
    """Whether a ``tickers`` value is ``"all"`` (every stored security).

    Examples
    --------
    >>> asks_for_all(" ALL "), asks_for_all("AAPL,MSFT"), asks_for_all(["all"])
    (True, False, False)
    """
    return isinstance(spec, str) and spec.strip().lower() == "all"


def latest_scores(
    model: LoadedModel,
    snapshot: HistorySnapshot,
    tickers: list[str],
    as_of: date | None,
    *,
    skip_unscorable: bool = False,
) -> dict[str, Any]:
    """Exact scores of each ticker's latest window on or before ``as_of``, from the store.

    The features come from the tail mode (:mod:`engine.features.tail`): the
    same numbers as a full-history computation, in milliseconds. With
    ``skip_unscorable`` (``tickers=all``) a ticker that cannot be scored as
    of the day (too short a history, an incomplete latest window) is listed
    under ``"skipped"`` with the scorer's reason instead of failing the
    request; without it such a ticker raises :class:`ScoringError` (422).
    """
    if skip_unscorable:
        X, index, skipped = model.scorer.scorable_windows(
            snapshot.source, tickers, as_of=as_of, sector_map=model.sectors
        )
    else:
        X, index = model.scorer.latest_windows(
            snapshot.source, tickers, as_of=as_of, sector_map=model.sectors
        )
        skipped = {}
    scores = model.scorer.score(X)
    return {
        "model_id": model.model_id,
        "as_of": as_of.isoformat() if as_of else None,
        "scores": _score_rows(model, index, scores),
        "skipped": [{"ticker": t, "reason": why} for t, why in skipped.items()],
    }


def score_sequences(model: LoadedModel, sequences: list[list[list[float]]]) -> dict[str, Any]:
    """Confidences for ready feature windows (already checked for shape and finiteness)."""
    X = np.asarray(sequences, dtype=np.float32)
    scores = model.scorer.score(X)
    return {
        "model_id": model.model_id,
        "patterns": list(model.scorer.pattern_names),
        "scores": scores.tolist(),
    }


def score_client_bars(
    model: LoadedModel, bars: list[dict[str, Any]], tickers: list[str] | None
) -> dict[str, Any]:
    """Latest scores per ticker from a client's own bars (stateless; tail mode).

    The bars are checked by the rules of ``engine data import`` first.
    Exact scores need the same history start as training: rolling GARCH
    anchors its refit grid at each ticker's first bar.

    Raises
    ------
    BarsValidationError
        A bar breaks a rule (the message names the request row, 1-based).
    ScoringError
        A history below the minimum (the message names the number), a
        missing benchmark, a gap in the latest window.
    """
    frame = pl.DataFrame(bars, infer_schema_length=None)
    if "adj_close" in frame.columns and frame.get_column("adj_close").is_null().all():
        frame = frame.drop("adj_close")
    checked = check_bars(frame, source=_CLIENT_SOURCE)
    if checked.violations:
        raise BarsValidationError(checked.violations)
    wanted = None if tickers is None else sorted({t.strip().upper() for t in tickers})
    if wanted is not None:
        _refuse_indices(wanted)
    scored = model.scorer.score_bars(checked.bars, tickers=wanted, sector_map=model.sectors)
    scores = scored.select(f"{p}{CONFIDENCE_SUFFIX}" for p in model.scorer.pattern_names)
    return {
        "model_id": model.model_id,
        "as_of": None,
        "scores": _score_rows(model, scored.select("ticker", "date"), scores.to_numpy()),
    }


def signals(
    model: LoadedModel,
    snapshot: HistorySnapshot,
    strategy: str,
    threshold: float,
    tickers: list[str],
    as_of: date | None,
    *,
    skip_unscorable: bool = False,
) -> dict[str, Any]:
    """Per ticker: the base signal at its latest bar, its head's confidence, taken or not.

    A signal is taken when it is not flat and its head's confidence is at
    least ``threshold`` (the backtest's meta-labeling rule). The signal is
    computed from the closes the model's features use. ``skip_unscorable``
    as for :func:`latest_scores`.
    """
    head = STRATEGY_HEADS[strategy]
    rule = STRATEGIES[strategy]
    latest = latest_scores(model, snapshot, tickers, as_of, skip_unscorable=skip_unscorable)
    day = None if as_of is None else day_number(as_of)
    rows = []
    for score in latest["scores"]:
        ticker = score["ticker"]
        stop = snapshot.source.stop_at(ticker, day)
        start = tail_start(stop - 1, MA_SLOW)  # on the rolling restart grid: exact
        close = snapshot.source.column(ticker, "close")[start:stop]
        signal = int(rule(np.ascontiguousarray(close))[-1])
        confidence = score[head + CONFIDENCE_SUFFIX]
        rows.append(
            {
                "ticker": ticker,
                "date": score["date"],
                "signal": signal,
                "head": head,
                "confidence": confidence,
                "taken": bool(signal != 0 and confidence >= threshold),
                "in_sample": score["in_sample"],
            }
        )
    return {
        "model_id": model.model_id,
        "strategy": strategy,
        "threshold": threshold,
        "as_of": latest["as_of"],
        "signals": rows,
        "skipped": latest["skipped"],
    }


def _score_rows(model: LoadedModel, index: pl.DataFrame, scores: np.ndarray) -> list[dict]:
    embargo = model.embargo_end
    rows = []
    for i, (ticker, day) in enumerate(index.select("ticker", "date").iter_rows()):
        row: dict[str, Any] = {"ticker": ticker, "date": day.isoformat()}
        for j, pattern in enumerate(model.scorer.pattern_names):
            row[pattern + CONFIDENCE_SUFFIX] = float(scores[i, j])
        # unknown (None) when the model does not record where its training data ended
        row["in_sample"] = None if embargo is None else day.isoformat() <= embargo
        rows.append(row)
    return rows
