"""The ``engine backtest`` job: a base strategy, with and without the model's filter.

Data flow: out-of-sample predictions (refused if in-sample) -> base signals
from the stored bars -> meta-labeling at the threshold -> a (days, tickers)
panel -> the Numba simulation (:mod:`kernels.backtest`) run twice, on the
unfiltered and the filtered signals, over the same calendar: the span the
predictions cover -> metrics (:mod:`engine.backtest.metrics`), the filter's
precision and recall, the Sharpe difference with a paired bootstrap
interval and a random-filter null.

The random-filter null answers "is the model better than taking the same
number of signals at random?": it takes, ``n_null`` times, as many
candidate signals as the model did, chosen uniformly among the candidates
(non-zero signals with a confidence), and simulates each. The p-value is
the share of random filters whose Sharpe ratio reaches the model's.

Annualisation: 252 trading days a year; Sharpe and Sortino ratios use a
zero risk-free rate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from engine.backtest.meta_labeling import (
    DEFAULT_THRESHOLD,
    load_out_of_sample_confidence,
    meta_label,
    signal_outcomes,
)
from engine.backtest.metrics import (
    PERIODS_PER_YEAR,
    filter_scores,
    sharpe,
    sharpe_difference,
    summarize,
)
from engine.backtest.signals import STRATEGY_HEADS, check_strategy, compute_signals
from engine.data.loading import benchmark_inputs, synthetic_flags
from engine.data.paths import resolve_data_dir
from engine.data.store import BarStore
from engine.data.universe import MARKET_BENCHMARK
from engine.features.build import bars_fingerprint
from engine.labels.targets import DEFAULT_HORIZON, PATTERN_NAMES
from engine.model.run_files import RUN_FILE
from kernels.backtest import ORDER_NO_PRICE, simulate_portfolio

__all__ = [
    "DEFAULT_COSTS_BPS",
    "BacktestReport",
    "BacktestSettings",
    "Simulation",
    "run_backtest",
    "run_backtest_job",
    "simulate",
]

#: Default cost of trading, in basis points of traded notional (liquid US large caps).
DEFAULT_COSTS_BPS = 5.0
#: ``progress(stage)``: a short description of the stage starting now.
BacktestProgress = Callable[[str], None]


@dataclass(frozen=True)
class BacktestSettings:
    """What ``engine backtest`` simulates.

    Attributes
    ----------
    strategy : {"momentum", "mean_reversion", "ma_cross"}
    threshold : float
        A signal is taken when its head's confidence is at least this.
    costs_bps, slippage_bps : float
        Paid on every fill, in basis points of traded notional.
    fill : {"open", "close"}
        A decision at the close of t fills at the open (or the close) of t+1.
    long_only : bool
        Drop short signals.
    head : str, optional
        Pattern head that filters the strategy (default
        :data:`engine.backtest.signals.STRATEGY_HEADS`).
    horizon : int
        Days ahead that decide whether a signal was right (filter precision).
    n_boot : int
        Bootstrap replicates of the Sharpe difference.
    n_null : int
        Random filters in the null (0 turns it off).
    seed : int
        Seed of the bootstrap and the null.
    """

    strategy: str = "momentum"
    threshold: float = DEFAULT_THRESHOLD
    costs_bps: float = DEFAULT_COSTS_BPS
    slippage_bps: float = 0.0
    fill: Literal["open", "close"] = "open"
    long_only: bool = False
    head: str | None = None
    horizon: int = DEFAULT_HORIZON
    n_boot: int = 1000
    n_null: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"`threshold` must lie in [0, 1], got `threshold={self.threshold}`")
        for name in ("costs_bps", "slippage_bps"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0.0:
                raise ValueError(f"`{name}` must be a finite number >= 0, got `{name}={value}`")
        if self.fill not in ("open", "close"):
            raise ValueError(f"`fill` must be 'open' or 'close', got `fill={self.fill!r}`")
        if self.head is not None and self.head not in PATTERN_NAMES:
            raise ValueError(
                f"unknown head {self.head!r}; the pattern heads are: {', '.join(PATTERN_NAMES)}"
            )
        if self.horizon < 1:
            raise ValueError(f"`horizon` must be >= 1, got `horizon={self.horizon}`")
        if self.n_boot < 10:
            raise ValueError(f"`n_boot` must be >= 10, got `n_boot={self.n_boot}`")
        if self.n_null < 0:
            raise ValueError(f"`n_null` must be >= 0, got `n_null={self.n_null}`")

    @property
    def pattern_head(self) -> str:
        """The head whose confidence filters the strategy."""
        return self.head or STRATEGY_HEADS[self.strategy]

    @property
    def cost_rate(self) -> float:
        """Costs plus slippage as a fraction of traded notional."""
        return (self.costs_bps + self.slippage_bps) / 1e4

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, with the head actually used."""
        return {
            "strategy": self.strategy,
            "head": self.pattern_head,
            "threshold": self.threshold,
            "costs_bps": self.costs_bps,
            "slippage_bps": self.slippage_bps,
            "fill": self.fill,
            "long_only": self.long_only,
            "horizon": self.horizon,
            "n_boot": self.n_boot,
            "n_null": self.n_null,
            "seed": self.seed,
            "periods_per_year": PERIODS_PER_YEAR,
        }


@dataclass
class Simulation:
    """One kernel run: arrays over the backtest calendar (see :mod:`kernels.backtest`)."""

    returns: np.ndarray
    weights: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    orders: np.ndarray
    trade_returns: np.ndarray
    open_trade_returns: np.ndarray

    def all_trade_returns(self) -> np.ndarray:
        """Returns of the closed trades, then of the trades open at the end (marked)."""
        closed = self.trade_returns[np.isfinite(self.trade_returns)]
        still_open = self.open_trade_returns[np.isfinite(self.open_trade_returns)]
        return np.concatenate([closed, still_open])

    def metrics(self, dates: np.ndarray, benchmark: np.ndarray | None) -> dict[str, Any]:
        """:func:`engine.backtest.metrics.summarize` of this run."""
        out = summarize(
            self.returns,
            dates,
            weights=self.weights,
            turnover=self.turnover,
            trade_returns=self.all_trade_returns(),
            benchmark=benchmark,
        )
        out["costs_paid"] = float(self.costs.sum())
        out["orders_without_price"] = int((self.orders == ORDER_NO_PRICE).sum())
        out["trades_open_at_end"] = int(np.isfinite(self.open_trade_returns).sum())
        return out


def simulate(
    open_: np.ndarray, close: np.ndarray, signal: np.ndarray, settings: BacktestSettings
) -> Simulation:
    """Run :func:`kernels.backtest.simulate_portfolio` on (days, tickers) arrays."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (open_, close, signal)]
    out = simulate_portfolio(*arrays, settings.cost_rate, settings.fill == "close")
    return Simulation(*out)


@dataclass
class Panel:
    """Bars and signals on one calendar: arrays of shape (days, tickers)."""

    dates: np.ndarray  # datetime64[D]
    tickers: list[str]
    open: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: pl.DataFrame, tickers: list[str], start: date, end: date) -> Panel:
        """The union calendar of ``tickers`` within ``[start, end]``; NaN where no bar."""
        kept = bars.filter(pl.col("ticker").is_in(tickers) & pl.col("date").is_between(start, end))
        dates = kept.get_column("date").unique().sort()
        return cls(
            dates=dates.to_numpy().astype("datetime64[D]"),
            tickers=tickers,
            open=cls._wide(kept, dates, tickers, "open"),
            close=cls._wide(kept, dates, tickers, "close"),
        )

    @staticmethod
    def _wide(frame: pl.DataFrame, dates: pl.Series, tickers: list[str], column: str):
        wide = frame.pivot(on="ticker", index="date", values=column)
        wide = pl.DataFrame({"date": dates}).join(
            wide, on="date", how="left", maintain_order="left"
        )
        missing = [t for t in tickers if t not in wide.columns]
        wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(t) for t in missing)
        return np.ascontiguousarray(
            wide.select(pl.col(t).cast(pl.Float64) for t in tickers).to_numpy(), dtype=np.float64
        )

    def signal_array(self, signals: pl.DataFrame, column: str) -> np.ndarray:
        """``column`` of a (ticker, date) frame on this calendar; 0 where absent."""
        calendar = pl.Series("date", self.dates).cast(pl.Date)
        return np.nan_to_num(self._wide(signals, calendar, self.tickers, column))


def _benchmark_returns(bars: pl.DataFrame, dates: np.ndarray) -> np.ndarray | None:
    """SPY close-to-close returns on ``dates`` (0 on the first day and where SPY has no bar)."""
    spy = bars.filter(pl.col("ticker") == MARKET_BENCHMARK)
    if spy.height == 0:
        return None
    calendar = pl.DataFrame({"date": pl.Series(dates).cast(pl.Date)})
    close = (
        calendar.join(spy.select("date", "close"), on="date", how="left", maintain_order="left")
        .get_column("close")
        .forward_fill()
        .to_numpy()
    )
    out = np.zeros(close.shape[0])
    ok = np.isfinite(close[1:]) & np.isfinite(close[:-1])
    out[1:][ok] = close[1:][ok] / close[:-1][ok] - 1.0
    return out


@dataclass
class BacktestReport:
    """Everything ``engine backtest`` measured; :meth:`to_dict` is its JSON."""

    settings: BacktestSettings
    source: str
    tickers: list[str]
    dates: np.ndarray
    benchmark: np.ndarray | None
    unfiltered: Simulation
    filtered: Simulation
    metrics: dict[str, dict[str, Any]]
    filter: dict[str, Any]
    sharpe_difference: dict[str, Any]
    null: dict[str, Any] | None
    signals: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays)."""
        return {
            "settings": self.settings.to_dict(),
            "predictions": self.source,
            "tickers": self.tickers,
            "start": str(self.dates[0]),
            "end": str(self.dates[-1]),
            "days": int(self.dates.shape[0]),
            "metrics": self.metrics,
            "filter": self.filter,
            "sharpe_difference": self.sharpe_difference,
            "null": self.null,
            **self.info,
            "notes": self.notes,
            "seconds": self.seconds,
            "files": self.files,
        }

    def daily(self) -> pl.DataFrame:
        """Per day: return, equity, drawdown, turnover, costs and exposure of each run."""
        columns: dict[str, Any] = {"date": pl.Series(self.dates).cast(pl.Date)}
        runs = {"unfiltered": self.unfiltered.returns, "filtered": self.filtered.returns}
        if self.benchmark is not None:
            runs[MARKET_BENCHMARK] = self.benchmark
        for name, returns in runs.items():
            equity = np.cumprod(1.0 + returns)
            columns[f"{name}_return"] = returns
            columns[f"{name}_equity"] = equity
            columns[f"{name}_drawdown"] = equity / np.maximum.accumulate(
                np.maximum(equity, 1.0)) - 1.0  # fmt: skip
        for name, run in (("unfiltered", self.unfiltered), ("filtered", self.filtered)):
            columns[f"{name}_turnover"] = run.turnover
            columns[f"{name}_costs"] = run.costs
            columns[f"{name}_gross_exposure"] = np.abs(run.weights).sum(axis=1)
        return pl.DataFrame(columns)


def _filter_null(
    panel: Panel, candidates: pl.DataFrame, n_taken: int, settings: BacktestSettings,
    real_sharpe: float | None,
) -> dict[str, Any] | None:  # fmt: skip
    """Sharpe ratios of ``n_null`` random filters that take ``n_taken`` candidates each."""
    if settings.n_null == 0 or candidates.height == 0 or real_sharpe is None:
        return None
    row_of = {d: k for k, d in enumerate(panel.dates.astype("datetime64[D]").tolist())}
    col_of = {t: k for k, t in enumerate(panel.tickers)}
    rows = np.array([row_of[d] for d in candidates.get_column("date").to_list()])
    cols = np.array([col_of[t] for t in candidates.get_column("ticker").to_list()])
    signs = candidates.get_column("signal").to_numpy().astype(np.float64)
    rng = np.random.default_rng(settings.seed)
    values = []
    signal = np.zeros_like(panel.close)
    for _ in range(settings.n_null):
        pick = rng.choice(candidates.height, size=n_taken, replace=False)
        signal[:] = 0.0
        signal[rows[pick], cols[pick]] = signs[pick]
        values.append(sharpe(simulate(panel.open, panel.close, signal, settings).returns))
    usable = np.array([v for v in values if v is not None])
    if usable.size == 0:
        return None
    return {
        "n": int(usable.size),
        "taken_per_filter": int(n_taken),
        "sharpe_median": float(np.median(usable)),
        "sharpe_low": float(np.quantile(usable, 0.025)),
        "sharpe_high": float(np.quantile(usable, 0.975)),
        "p_value": float((1 + np.sum(usable >= real_sharpe)) / (1 + usable.size)),
    }


def run_backtest(
    bars: pl.DataFrame,
    confidence: pl.DataFrame,
    settings: BacktestSettings | None = None,
    *,
    source: str = "predictions",
    progress: BacktestProgress | None = None,
) -> BacktestReport:
    """Backtest ``settings.strategy`` unfiltered and filtered by ``confidence``.

    Parameters
    ----------
    bars : polars.DataFrame
        Bars of every ticker in ``confidence`` (and ``SPY`` for the
        benchmark statistics, if available), with history before the first
        prediction so the signals are warmed up.
    confidence : polars.DataFrame
        From :func:`engine.backtest.meta_labeling.load_out_of_sample_confidence`.
    settings : BacktestSettings, optional
    source : str
        Named in the report.
    progress : callable, optional
        Called with the name of each stage.

    Returns
    -------
    BacktestReport
    """
    started = time.perf_counter()
    settings = settings or BacktestSettings()
    say = progress or (lambda stage: None)
    if confidence.height == 0:
        raise ValueError(f"{source} holds no out-of-sample confidence for {settings.pattern_head}")
    tickers = sorted(confidence.get_column("ticker").unique().to_list())
    stored = set(bars.get_column("ticker").unique().to_list())
    lacking = [t for t in tickers if t not in stored]
    if lacking:
        raise ValueError(f"{source} scores tickers with no bars in the data directory: {lacking}")
    start = confidence.get_column("date").min()
    end = confidence.get_column("date").max()
    if start == end:
        raise ValueError(
            f"{source} covers a single day ({start}); a backtest needs predictions on at "
            "least 2 trading days"
        )

    say("signals")
    traded_bars = bars.filter(pl.col("ticker").is_in(tickers))
    signals = compute_signals(traded_bars, settings.strategy, long_only=settings.long_only)
    signals = signal_outcomes(traded_bars, signals, settings.horizon)
    signals = meta_label(signals, confidence, settings.threshold)
    signals = signals.filter(pl.col("date").is_between(start, end))

    say("simulation")
    panel = Panel.of(bars, tickers, start, end)
    unfiltered = simulate(panel.open, panel.close, panel.signal_array(signals, "signal"), settings)
    filtered = simulate(
        panel.open, panel.close, panel.signal_array(signals, "filtered_signal"), settings
    )

    say("metrics")
    benchmark = _benchmark_returns(bars, panel.dates)
    metrics = {
        "unfiltered": unfiltered.metrics(panel.dates, benchmark),
        "filtered": filtered.metrics(panel.dates, benchmark),
    }
    if benchmark is not None:
        metrics[MARKET_BENCHMARK] = summarize(benchmark, panel.dates, benchmark=None)
    active = signals.filter(pl.col("signal") != 0)
    candidates = active.filter(pl.col("confidence").is_not_null())
    scored = candidates.filter(pl.col("outcome").is_not_null())
    scores = filter_scores(
        scored.get_column("taken").to_numpy(), scored.get_column("outcome").to_numpy() == 1
    )
    scores.update(
        signals=int(active.height),
        signals_without_confidence=int(active.height - candidates.height),
        signals_without_outcome=int(candidates.height - scored.height),
        taken=int(candidates.get_column("taken").sum()),
        take_rate=float(candidates.get_column("taken").mean()) if candidates.height else None,
    )
    diff, low, high = sharpe_difference(
        filtered.returns, unfiltered.returns, n_boot=settings.n_boot, seed=settings.seed
    )
    difference = {"estimate": diff, "ci_low": low, "ci_high": high, "level": 0.95}
    say("random-filter null")
    null = _filter_null(panel, candidates, scores["taken"], settings, metrics["filtered"]["sharpe"])

    notes = []
    if scores["signals_without_confidence"]:
        notes.append(
            f"{scores['signals_without_confidence']} signals have no out-of-sample confidence "
            "(no prediction for that ticker and day): the filtered strategy stays flat there"
        )
    if benchmark is None:
        notes.append(f"no {MARKET_BENCHMARK} bars: beta and information ratio are not reported")
    return BacktestReport(
        settings=settings,
        source=source,
        tickers=tickers,
        dates=panel.dates,
        benchmark=benchmark,
        unfiltered=unfiltered,
        filtered=filtered,
        metrics=metrics,
        filter=scores,
        sharpe_difference=difference,
        null=null,
        signals=signals,
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def _run_data(predictions: Path) -> dict[str, Any]:
    """The ``data`` block of the ``run.json`` beside a run's predictions (or {})."""
    run_file = predictions.parent / RUN_FILE
    if not run_file.is_file():
        return {}
    try:
        return dict(json.loads(run_file.read_text()).get("data") or {})
    except (OSError, ValueError):
        return {}


def run_backtest_job(
    predictions: str | Path,
    settings: BacktestSettings | None = None,
    *,
    data_dir: str | Path | None = None,
    report_dir: str | Path | None = None,
    progress: BacktestProgress | None = None,
) -> BacktestReport:
    """``engine backtest``: load the predictions and bars, backtest, optionally write a report.

    Parameters
    ----------
    predictions : path
        ``predictions.parquet`` of a training run (or any file with the same
        columns).
    settings : BacktestSettings, optional
    data_dir : path, optional
        Where the bars are (default: the training run's data directory from
        the ``run.json`` beside the predictions, else ``$ENGINE_DATA_DIR`` or
        the default directory).
    report_dir : path, optional
        Write ``report.html``, the figures, ``metrics.json``,
        ``daily.parquet`` and ``signals.parquet`` there.
    progress : callable, optional

    Returns
    -------
    BacktestReport
    """
    settings = settings or BacktestSettings()
    predictions = Path(predictions)
    say = progress or (lambda stage: None)
    say("predictions")
    confidence = load_out_of_sample_confidence(predictions, settings.pattern_head)
    run_data = _run_data(predictions)
    if data_dir is None and run_data.get("data_dir"):
        data_dir = run_data["data_dir"]
    store = BarStore(resolve_data_dir(data_dir))
    available = store.tickers()
    if not available:
        raise ValueError(f"no bars in {store.data_dir}; pass --data-dir with the training bars")
    tickers = sorted(confidence.get_column("ticker").unique().to_list())
    lacking = [t for t in tickers if t not in available]
    if lacking:
        raise ValueError(
            f"{predictions} scores tickers with no bars in {store.data_dir}: {lacking}"
        )
    bars = store.read_bars(sorted(set(tickers) | ({MARKET_BENCHMARK} & set(available))))
    report = run_backtest(bars, confidence, settings, source=str(predictions), progress=say)
    report.info["data_dir"] = str(store.data_dir)
    report.info["synthetic_tickers"] = sorted(
        t for t, synthetic in synthetic_flags(store, tickers).items() if synthetic
    )
    if run_data.get("fingerprint") and run_data.get("tickers"):
        trained = store.read_bars(benchmark_inputs(list(run_data["tickers"]), available))
        match = bars_fingerprint(trained) == run_data["fingerprint"]
        report.info["fingerprint_match"] = match
        if not match:
            report.notes.append(
                f"the bars in {store.data_dir} differ from the bars the model was trained on "
                "(fingerprint mismatch): prices and predictions may not line up"
            )
    if report_dir is not None:
        from engine.reports.backtest import write_backtest_report

        say("report")
        report.files = [str(p) for p in write_backtest_report(report, Path(report_dir))]
    return report
