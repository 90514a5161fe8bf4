"""Out-of-sample validation: metrics with intervals, a null test and an overfitting monitor.

:func:`validate_predictions` takes a resolved
:class:`engine.model.prediction_sources.PredictionSource` (a run directory,
one model artifact or a bare predictions file) and returns a
:class:`engine.evaluation.validation_report.ValidateReport`; it reads the
predictions and the training histories and writes nothing.

Every prediction must be out of sample: dated after its model's
``train_end`` plus the run's embargo on the bar calendar (recomputed from
the run's settings and stored bars, never read from the file) and after its
``embargo_end``; a file holding an in-sample row, or understating its
``embargo_end``, is refused (:func:`engine.model.run_files.check_predictions`).

The report holds, per pattern (and per pattern and ticker, and per pattern
and window), the metrics of :func:`engine.evaluation.evaluate_frame` with
their stationary-bootstrap intervals and no-skill p-values, each beside its
multiple-testing adjusted value; optionally a permutation test of each
pattern's pooled AUC over ``n_null`` draws of the outcomes permuted in
blocks of dates (:mod:`engine.evaluation.permutation`; the fitted
predictions are reused, nothing is retrained), with every metric on the
first draw; with the market's regime labels
(:func:`engine.evaluation.regimes.market_regimes`), every metric per pattern
and regime and the walk-forward regime coverage; a calibration table; and,
from the training histories, the
train/validation loss gap per epoch with a flag for models whose gap widens
(:mod:`engine.evaluation.diagnostics`).
:mod:`engine.reports.validation` renders it as HTML.

Examples
--------
>>> import datetime as dt, tempfile
>>> from pathlib import Path
>>> import numpy as np, polars as pl
>>> from engine.model.prediction_sources import resolve_prediction_source
>>> rng = np.random.default_rng(0)
>>> n = 240
>>> y = (rng.uniform(size=n) < 0.5).astype(np.int8)
>>> p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.15, n), 0, 1)
>>> days = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n)]
>>> frame = pl.DataFrame({
...     "ticker": "AAA", "date": days, "t1": days, "model_id": "wf00",
...     "train_end": dt.date(2020, 12, 1), "embargo_end": dt.date(2020, 12, 8),
...     "breakout_p": p.astype(np.float32), "breakout": y,
... })
>>> path = Path(tempfile.mkdtemp()) / "predictions.parquet"
>>> frame.write_parquet(path)
>>> report = validate_predictions(resolve_prediction_source(predictions=path), n_boot=50)
>>> report.metrics.select("pattern", "n").rows()
[('breakout', 240)]
>>> bool(report.metrics["auc"][0] > 0.6), report.overfitting is None, report.report is None
(True, True, True)
"""

from __future__ import annotations

import time

import polars as pl

from engine.evaluation import evaluate_frame
from engine.evaluation.diagnostics import (
    CALIBRATION_BINS,
    DEFAULT_OVERFIT_TOLERANCE,
    DEFAULT_OVERFIT_WINDOW,
    SIGNIFICANCE,
    calibration_table,
    null_comparison,
    overfitting_monitor,
)
from engine.evaluation.multiple_testing import adjust_p_values
from engine.evaluation.permutation import DEFAULT_N_NULL, permutation_auc_test
from engine.evaluation.regimes import REGIME_LABELS, label_rows, regime_coverage
from engine.evaluation.validation_report import CORRECTIONS, ValidateReport
from engine.labels.permutations import DEFAULT_NULL_BLOCK, permute_outcomes
from engine.model.prediction_sources import PredictionSource
from engine.model.run_files import RUN_FILE, check_predictions, read_history, read_predictions

__all__ = ["check_validation_settings", "validate_predictions"]


def check_validation_settings(
    *,
    null_block: int = DEFAULT_NULL_BLOCK,
    n_null: int = DEFAULT_N_NULL,
    n_boot: int = 1000,
    overfit_window: int = DEFAULT_OVERFIT_WINDOW,
    overfit_tolerance: float = DEFAULT_OVERFIT_TOLERANCE,
) -> None:
    """Refuse settings :func:`validate_predictions` cannot use, naming the setting and value.

    Raises
    ------
    ValueError
        ``null_block``, ``n_null`` or ``overfit_window`` not an integer >= 1, ``n_boot``
        not an integer >= 10, ``overfit_tolerance`` negative or NaN.

    Examples
    --------
    >>> check_validation_settings(n_boot=5)
    Traceback (most recent call last):
    ...
    ValueError: `n_boot` must be an integer >= 10, got `n_boot=5`
    """
    if int(null_block) != null_block or null_block < 1:
        raise ValueError(f"`null_block` must be an integer >= 1, got `null_block={null_block}`")
    if int(n_null) != n_null or n_null < 1:
        raise ValueError(f"`n_null` must be an integer >= 1, got `n_null={n_null}`")
    if int(n_boot) != n_boot or n_boot < 10:
        raise ValueError(f"`n_boot` must be an integer >= 10, got `n_boot={n_boot}`")
    if int(overfit_window) != overfit_window or overfit_window < 1:
        raise ValueError(
            f"`overfit_window` must be an integer >= 1, got `overfit_window={overfit_window}`"
        )
    if not overfit_tolerance >= 0.0:
        raise ValueError(f"`overfit_tolerance` must be >= 0, got {overfit_tolerance}")


def validate_predictions(
    source: PredictionSource,
    *,
    by_ticker: bool = False,
    null: bool = False,
    null_block: int = DEFAULT_NULL_BLOCK,
    n_null: int = DEFAULT_N_NULL,
    n_boot: int = 1000,
    seed: int = 0,
    overfit_window: int = DEFAULT_OVERFIT_WINDOW,
    overfit_tolerance: float = DEFAULT_OVERFIT_TOLERANCE,
    regimes: pl.DataFrame | None = None,
) -> ValidateReport:
    """Validate the out-of-sample predictions of a resolved source; write nothing.

    Parameters
    ----------
    source : PredictionSource
        From :func:`engine.model.prediction_sources.resolve_prediction_source`:
        the predictions file (format of :data:`engine.model.run_files.PREDICTION_KEYS`
        then ``<pattern>_p`` and ``<pattern>`` per pattern), the expected
        patterns and the training histories (none: no overfitting monitor).
    by_ticker : bool
        Also evaluate each pattern per ticker.
    null : bool
        Also test each pattern's pooled AUC against ``n_null`` draws of the
        outcomes permuted in blocks of ``null_block`` dates (one permutation
        for all tickers per draw, every block moved; the fitted predictions
        are reused), :func:`engine.evaluation.permutation.permutation_auc_test`
        with ``seed``; and evaluate every metric on the first draw
        (:func:`engine.labels.permutations.permute_outcomes` with ``seed``).
    null_block : int, default 20
    n_null : int, default 200
        Draws of the permutation test; its p-value is ``(1 + #{null AUC >=
        AUC}) / (1 + n_null)``, so at least ``1 / (1 + n_null)``.
    n_boot : int, default 1000
        Stationary-bootstrap replicates of every evaluation.
    seed : int, default 0
        Bootstrap seed (every group) and permutation seed.
    overfit_window, overfit_tolerance
        See :func:`engine.evaluation.diagnostics.overfitting_monitor`.
    regimes : polars.DataFrame, optional
        The market's regime label of every date (``date``, ``trend``,
        ``volatility``; :func:`engine.evaluation.regimes.market_regimes`).
        Given: every metric per pattern and regime (``by_regime``) and the
        test days per window in each regime (``coverage``); rows dated
        without a label count in no regime (a note says how many).

    Returns
    -------
    ValidateReport
        ``report`` and ``figures`` empty; ``seconds`` the time taken here.

    Raises
    ------
    ValueError
        Settings refused by :func:`check_validation_settings`; a file that is
        not a predictions file; missing or malformed columns; in-sample rows
        (on or before ``train_end`` plus the embargo, or ``date <=
        embargo_end``); an understated ``embargo_end``; an artifact's
        predictions of another model;
        a null test over fewer than two blocks of dates; a malformed history.
    FileNotFoundError
        A missing predictions file or history.

    Notes
    -----
    Metrics come from :func:`engine.evaluation.evaluate_frame` (rows in date
    order, stationary bootstrap, one-sided no-skill p-values). The by-window
    rows of a single-window source are the pooled rows (same sample, same
    order, same seed). Each table is one family of tests
    (:data:`engine.evaluation.validation_report.CORRECTIONS`): beside every raw
    p-value stands its Holm-adjusted value over the patterns (the per-head
    verdicts) or its
    Benjamini-Hochberg-adjusted value over every row of the per-window and
    per-ticker tables (screens); a result is flagged when the adjusted value
    is below ``SIGNIFICANCE``.
    """
    began = time.perf_counter()
    check_validation_settings(
        null_block=null_block,
        n_null=n_null,
        n_boot=n_boot,
        overfit_window=overfit_window,
        overfit_tolerance=overfit_tolerance,
    )
    raw = read_predictions(source.predictions)
    frame, patterns = check_predictions(
        raw,
        source.patterns,
        source=str(source.predictions),
        calendar=source.calendar,
        embargo_days=source.embargo_days,
    )
    notes = list(source.notes)

    found = sorted(frame.get_column("model_id").unique().to_list())
    if source.model_ids is not None:
        extra = [m for m in found if m not in source.model_ids]
        if source.kind == "model" and extra:
            raise ValueError(
                f"{source.predictions} holds model_ids {found}, but the artifact is "
                f"{source.model_ids[0]!r}"
            )
        if extra:
            notes.append(f"predictions of model_ids {extra} have no window in {RUN_FILE}")
        absent = [m for m in source.model_ids if m not in found]
        if absent:
            notes.append(f"windows {absent} have no predictions")
    shared = frame.select("ticker", "date").is_duplicated().sum()
    if shared:
        notes.append(
            f"{shared} rows share a (ticker, date) with another model's prediction; pooled "
            "metrics count each prediction"
        )
    unlabelled = [p for p in patterns if frame.get_column(p).null_count() == frame.height]
    if unlabelled:
        notes.append(f"patterns {unlabelled} have no labelled outcome: no metrics")

    metrics = _evaluate(frame, patterns, ("pattern",), n_boot, seed)
    by_model = adjust_p_values(
        _by_model(frame, patterns, metrics, n_boot, seed), CORRECTIONS["by_model"]
    )
    metrics = adjust_p_values(metrics, CORRECTIONS["metrics"])
    per_ticker = None
    if by_ticker:
        per_ticker = adjust_p_values(
            _evaluate(frame, patterns, ("pattern", "ticker"), n_boot, seed),
            CORRECTIONS["by_ticker"],
        )
    null_metrics = comparison = None
    if null:
        shuffled = _permuted(frame, patterns, int(null_block), seed)
        null_metrics = adjust_p_values(
            _evaluate(shuffled, patterns, ("pattern",), n_boot, seed), CORRECTIONS["null_metrics"]
        )
        permutation = permutation_auc_test(
            frame, patterns, block=int(null_block), n_null=int(n_null), seed=seed
        )
        comparison = null_comparison(metrics, permutation)

    by_regime = coverage = None
    if regimes is not None:
        by_regime, coverage, regime_notes = _regime_tables(frame, patterns, regimes, n_boot, seed)
        notes += regime_notes

    history = monitor = None
    if source.histories:
        history = pl.concat([read_history(path, m) for m, path in source.histories.items()])
        monitor = overfitting_monitor(history, window=overfit_window, tolerance=overfit_tolerance)

    return ValidateReport(
        source=source.kind,
        path=source.path,
        predictions_path=source.predictions,
        patterns=patterns,
        rows=frame.height,
        tickers=sorted(frame.get_column("ticker").unique().to_list()),
        windows=_windows(frame),
        metrics=metrics,
        by_model=by_model,
        by_ticker=per_ticker,
        null_metrics=null_metrics,
        null_comparison=comparison,
        calibration=calibration_table(frame, patterns),
        history=history,
        overfitting=monitor,
        settings={
            "by_ticker": by_ticker,
            "by_regime": regimes is not None,
            "null": null,
            "null_block": int(null_block),
            "n_null": int(n_null),
            "n_boot": int(n_boot),
            "seed": seed,
            "overfit_window": int(overfit_window),
            "overfit_tolerance": float(overfit_tolerance),
            "calibration_bins": CALIBRATION_BINS,
            "significance": SIGNIFICANCE,
            "corrections": dict(CORRECTIONS),
        },
        notes=notes,
        run_status=source.run_status,
        seconds=time.perf_counter() - began,
        by_regime=by_regime,
        coverage=coverage,
    )


def _regime_tables(
    frame: pl.DataFrame, patterns: list[str], regimes: pl.DataFrame, n_boot: int, seed: int
) -> tuple[pl.DataFrame | None, pl.DataFrame, list[str]]:
    """Metrics per pattern and regime (BH over all rows), the coverage, notes.

    Each dimension is evaluated on its labelled rows with ``by=("pattern",
    dim)``, so the intervals come from the same date-clustered bootstrap as
    every other table; the rows of both dimensions form one family. A regime
    with fewer than two labelled test dates (for some pattern) has no
    interval and is left out, with a note; None when no row is left.
    """
    labelled = label_rows(frame, regimes)
    notes = []
    unknown = labelled.filter(pl.col("trend").is_null() | pl.col("volatility").is_null()).height
    if unknown:
        notes.append(
            f"{unknown} predictions fall on dates without a regime label (benchmark "
            "warm-up or no benchmark bar that day); they count in no regime"
        )
    parts = []
    for dim in REGIME_LABELS:
        known = labelled.filter(pl.col(dim).is_not_null())
        heads = [p for p in patterns if known.get_column(p).null_count() < known.height]
        if not heads:
            continue
        dates = known.group_by(dim).agg(
            pl.min_horizontal(
                pl.col("date").filter(pl.col(p).is_not_null()).n_unique() for p in heads
            ).alias("dates")
        )
        few = dates.filter(pl.col("dates") < 2).sort(dim)
        if few.height:
            notes.append(
                f"{dim} regimes {few.get_column(dim).to_list()} have fewer than two labelled "
                "test dates: no interval, left out of the per-regime table"
            )
        known = known.filter(~pl.col(dim).is_in(few.get_column(dim).implode()))
        if not known.height:
            continue
        rows = _evaluate(known, patterns, ("pattern", dim), n_boot, seed)
        order = {label: i for i, label in enumerate(REGIME_LABELS[dim])}
        parts.append(
            rows.rename({dim: "regime"})
            .with_columns(pl.lit(dim).alias("dimension"))
            .sort("pattern", pl.col("regime").replace_strict(order, return_dtype=pl.Int64))
        )
    coverage = regime_coverage(labelled)
    if not parts:
        return None, coverage, notes
    by_regime = pl.concat(parts, how="vertical_relaxed").select(
        "pattern", "dimension", "regime", pl.exclude("pattern", "dimension", "regime")
    )
    return adjust_p_values(by_regime, CORRECTIONS["by_regime"]), coverage, notes


def _evaluate(
    frame: pl.DataFrame, patterns: list[str], by: tuple[str, ...], n_boot: int, seed: int
) -> pl.DataFrame:
    """``evaluate_frame`` on the patterns with labels; pooled rows ``n = 0`` for the others."""
    labelled = [p for p in patterns if frame.get_column(p).null_count() < frame.height]
    result = evaluate_frame(frame, labelled, by=by, n_boot=n_boot, seed=seed)
    empty = [p for p in patterns if p not in labelled]
    if empty and by == ("pattern",):
        filler = pl.DataFrame(
            [{"pattern": p, "n": 0, "events": 0, "n_boot": int(n_boot)} for p in empty],
            schema=result.schema,
        )
        result = pl.concat([result, filler]).sort("pattern")
    return result


def _by_model(
    frame: pl.DataFrame, patterns: list[str], pooled: pl.DataFrame, n_boot: int, seed: int
) -> pl.DataFrame:
    ids = frame.get_column("model_id").unique()
    if ids.len() == 1:
        # one window: its group is the pooled sample, rows in the same order -> same numbers
        rest = [c for c in pooled.columns if c != "pattern"]
        return (
            pooled.filter(pl.col("n") > 0)
            .with_columns(pl.lit(ids[0], pl.String).alias("model_id"))
            .select("pattern", "model_id", *rest)
        )
    return _evaluate(frame, patterns, ("pattern", "model_id"), n_boot, seed)


def _permuted(frame: pl.DataFrame, patterns: list[str], block: int, seed: int) -> pl.DataFrame:
    """Outcomes block-permuted by date (one permutation for all tickers and models).

    The permutation runs on the ``(ticker, date)`` outcome table, then joins
    back, so a date scored by two models keeps one outcome per ticker. When
    ``(ticker, date)`` is unique this equals
    ``permute_outcomes(frame, patterns, block=block, seed=seed)``; every block
    of dates moves (:func:`engine.labels.permutations.block_permutation`).
    """
    outcomes = frame.select("ticker", "date", *patterns).unique(
        subset=["ticker", "date"], keep="first", maintain_order=True
    )
    n_dates = outcomes.get_column("date").n_unique()
    if n_dates <= block:
        raise ValueError(
            f"the null test needs at least two blocks: the predictions span {n_dates} dates, "
            f"null_block is {block}"
        )
    shuffled = permute_outcomes(outcomes, patterns, block=block, seed=seed)
    return (
        frame.drop(patterns)
        .join(shuffled, on=["ticker", "date"], how="left", maintain_order="left")
        .select(frame.columns)
    )


def _windows(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("model_id")
        .agg(
            pl.col("train_end").max(),
            pl.col("embargo_end").max(),
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("ticker").n_unique().cast(pl.Int64).alias("tickers"),
        )
        .sort("first_date", "model_id")
    )
