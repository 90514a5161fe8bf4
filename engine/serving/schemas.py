"""Request and response bodies of the HTTP service (pydantic).

A malformed request gets a 422 whose ``detail`` lists each problem with its
location, e.g. ``["body", "bars", 3, "close"]``: the field, and for a list
the row (0-based). Numbers must be finite: JSON has no NaN, and a NaN that
slips through as ``NaN`` is refused here, not by the model.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.serving.settings import MAX_BATCH

__all__ = [
    "Bar",
    "BarsAppendRequest",
    "BarsScoreRequest",
    "ScoreRequest",
    "ScoreResponse",
    "SignalsRequest",
]

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
FeatureRow = Annotated[list[FiniteFloat], Field(min_length=17, max_length=17)]
Window = Annotated[list[FeatureRow], Field(min_length=20, max_length=20)]
Ticker = Annotated[str, Field(min_length=1, max_length=32)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(_Strict):
    """``POST /v1/score``: raw feature windows, oldest row first, features in the model's order."""

    sequences: Annotated[list[Window], Field(min_length=1, max_length=MAX_BATCH)]


class ScoreResponse(_Strict):
    """One confidence per pattern head for each window, in the model's head order."""

    model_id: str
    patterns: list[str]
    scores: list[list[float]]


class Bar(_Strict):
    """One daily bar. Prices must be positive and consistent, volume non-negative."""

    ticker: Ticker
    date: date
    open: FiniteFloat
    high: FiniteFloat
    low: FiniteFloat
    close: FiniteFloat
    volume: FiniteFloat
    adj_close: FiniteFloat | None = None


class BarsScoreRequest(_Strict):
    """``POST /v1/score/bars``: a client's own history (benchmarks included), stateless."""

    bars: Annotated[list[Bar], Field(min_length=1)]
    tickers: list[Ticker] | None = None


class BarsAppendRequest(_Strict):
    """``POST /v1/bars``: new daily bars to append to the store."""

    bars: Annotated[list[Bar], Field(min_length=1)]


class SignalsRequest(_Strict):
    """``POST /v1/signals``: a base strategy's signal filtered by its head's confidence."""

    strategy: Literal["momentum", "mean_reversion", "ma_cross"]
    threshold: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.6
    tickers: Annotated[list[Ticker], Field(min_length=1)] | Literal["all"] = "all"
    as_of: date | None = None
