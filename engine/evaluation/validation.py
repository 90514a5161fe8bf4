"""Out-of-sample validation: metrics with intervals, a null test and an overfitting monitor.

:func:`validate_predictions` takes a resolved
:class:`engine.model.prediction_sources.PredictionSource` (a run directory,
one model artifact or a bare predictions file) and returns a
:class:`ValidateReport`;
it reads the predictions and the training histories and writes nothing.

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

import math
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

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
from engine.evaluation.multiple_testing import adjust_p_values, correction_line
from engine.evaluation.permutation import DEFAULT_N_NULL, permutation_auc_test
from engine.evaluation.regimes import REGIME_LABELS, label_rows, regime_coverage
from engine.labels.permutations import DEFAULT_NULL_BLOCK, permute_outcomes
from engine.model.json_values import json_value
from engine.model.prediction_sources import PredictionSource
from engine.model.run_files import RUN_FILE, check_predictions, read_history, read_predictions

__all__ = [
    "CORRECTIONS",
    "ValidateReport",
    "check_validation_settings",
    "correction_text",
    "metric_text",
    "number_text",
    "validate_predictions",
]


#: Report table -> the multiple-testing correction of its ``adj. p`` (its rows are one family):
#: Holm for the per-pattern (per-head) verdicts, Benjamini-Hochberg for the screens.
CORRECTIONS = {
    "metrics": "holm",
    "null_metrics": "holm",
    "by_model": "bh",
    "by_ticker": "bh",
    "by_regime": "bh",
}
_FAMILIES = {
    "metrics": "patterns",
    "null_metrics": "patterns",
    "by_model": "pattern x window rows",
    "by_ticker": "pattern x ticker rows",
    "by_regime": "pattern x regime rows",
}


def correction_text(table: str, m: int) -> str:
    """The one line that says which correction the ``adj. p`` of a report table applies.

    Parameters
    ----------
    table : {"metrics", "null_metrics", "by_model", "by_ticker", "by_regime"}
        A key of :data:`CORRECTIONS`.
    m : int
        Tests in the family: the table's rows with an AUC p-value.

    Examples
    --------
    >>> correction_text("by_ticker", 136)
    'adj. p: Benjamini-Hochberg over the 136 pattern x ticker rows (controls the false discovery rate; flagged: adj. p < 0.05)'
    """  # noqa: E501
    return correction_line(CORRECTIONS[table], m, _FAMILIES[table], SIGNIFICANCE)


@dataclass
class ValidateReport:
    """What :func:`validate_predictions` found.

    Attributes
    ----------
    source : {"run", "model", "predictions"}
        What was validated.
    path : Path
        The run directory, model artifact directory or predictions file given.
    predictions_path : Path
        The predictions file that was read.
    patterns : list of str
    rows : int
        Prediction rows (labelled or not).
    tickers : list of str
    windows : polars.DataFrame
        Per ``model_id``: ``train_end``, ``embargo_end``, ``first_date``,
        ``last_date``, ``rows``, ``tickers`` (from the predictions).
    metrics : polars.DataFrame
        Per pattern: :func:`engine.evaluation.evaluate_frame` output, with
        ``<metric>_p_value_holm`` beside every ``<metric>_p_value`` (Holm over
        the patterns). A pattern with no labelled row has ``n = 0`` and null
        metrics.
    by_model : polars.DataFrame
        Per pattern and ``model_id`` (the AUC per window and every other
        metric), with ``<metric>_p_value_bh`` (Benjamini-Hochberg over every
        row of the table).
    by_ticker : polars.DataFrame or None
        Per pattern and ticker, when asked for; ``<metric>_p_value_bh`` as
        ``by_model``.
    null_metrics : polars.DataFrame or None
        ``metrics`` recomputed on the first draw of block-permuted outcomes
        (same schema).
    null_comparison : polars.DataFrame or None
        The permutation test over ``n_null`` draws beside the real AUC, with
        the verdicts; see :func:`engine.evaluation.diagnostics.null_comparison`.
    calibration : polars.DataFrame
        See :func:`engine.evaluation.diagnostics.calibration_table`.
    history : polars.DataFrame or None
        Per model and epoch: ``train_loss``, ``val_loss``, ``gap``,
        ``val_objective`` (None without histories).
    overfitting : polars.DataFrame or None
        See :func:`engine.evaluation.diagnostics.overfitting_monitor` (None without
        histories).
    settings : dict
        The job's settings.
    notes : list of str
        Caveats found on the way (missing histories, an interrupted run, ...).
    run_status : str or None
        ``run.json`` status for a run directory.
    report : Path or None
        ``report.html`` when written (by :func:`engine.reports.validation.write_report`,
        which the ``engine validate`` job calls; None here).
    figures : list of Path
        The PNG files written beside it.
    seconds : float
        Wall time of the validation (the job: including the report).
    by_regime : polars.DataFrame or None
        Per pattern and market regime (``dimension``: ``trend`` or
        ``volatility``; ``regime``: its label), the metrics of ``by_model``
        on the rows dated in that regime, with ``<metric>_p_value_bh``
        (Benjamini-Hochberg over every row of the table). None without the
        benchmark's regime labels.
    coverage : polars.DataFrame or None
        Test days per window in each regime
        (:func:`engine.evaluation.regimes.regime_coverage`), a final ``all`` row.
    """

    source: str
    path: Path
    predictions_path: Path
    patterns: list[str]
    rows: int
    tickers: list[str]
    windows: pl.DataFrame
    metrics: pl.DataFrame
    by_model: pl.DataFrame
    by_ticker: pl.DataFrame | None
    null_metrics: pl.DataFrame | None
    null_comparison: pl.DataFrame | None
    calibration: pl.DataFrame
    history: pl.DataFrame | None
    overfitting: pl.DataFrame | None
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    run_status: str | None = None
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    by_regime: pl.DataFrame | None = None
    coverage: pl.DataFrame | None = None

    @property
    def start(self) -> date | None:
        """First prediction date."""
        return self.windows.get_column("first_date").min() if self.windows.height else None

    @property
    def end(self) -> date | None:
        """Last prediction date."""
        return self.windows.get_column("last_date").max() if self.windows.height else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: frames as lists of row dicts, floats rounded, NaN as None.

        Floats are rounded to 6 decimals (``seconds`` to 3), dates are ISO
        strings and a missing or non-finite value is ``None``, so the result
        passes ``json.dumps(..., allow_nan=False)``.
        """
        null = None
        if self.null_metrics is not None and self.null_comparison is not None:
            null = {
                "block": self.settings["null_block"],
                "n_null": self.settings["n_null"],
                "seed": self.settings["seed"],
                "significance": SIGNIFICANCE,
                "metrics": _rows(self.null_metrics),
                "comparison": _rows(self.null_comparison),
            }
        overfitting = None
        if self.overfitting is not None and self.history is not None:
            overfitting = {
                "window": self.settings["overfit_window"],
                "tolerance": self.settings["overfit_tolerance"],
                "models": _rows(self.overfitting),
                "history": _rows(self.history),
            }
        return {
            "source": {
                "kind": self.source,
                "path": str(self.path),
                "predictions": str(self.predictions_path),
                "run_status": self.run_status,
            },
            "patterns": list(self.patterns),
            "rows": self.rows,
            "tickers": list(self.tickers),
            "start": json_value(self.start),
            "end": json_value(self.end),
            "settings": {k: json_value(v) for k, v in self.settings.items()},
            "windows": _rows(self.windows),
            "metrics": _rows(self.metrics),
            "by_model": _rows(self.by_model),
            "by_ticker": _rows(self.by_ticker) if self.by_ticker is not None else None,
            "by_regime": _rows(self.by_regime) if self.by_regime is not None else None,
            "regime_coverage": _rows(self.coverage) if self.coverage is not None else None,
            "null": null,
            "calibration": _rows(self.calibration),
            "overfitting": overfitting,
            "notes": list(self.notes),
            "report": str(self.report) if self.report else None,
            "figures": [str(p) for p in self.figures],
            "seconds": round(self.seconds, 3),
        }

    def summary_lines(self) -> list[str]:
        """Short human-readable lines: what was read, one line per pattern, flags and notes."""
        num = number_text
        models = self.windows.height
        lines = [
            f"validated {self.source} {self.path}: {self.rows} predictions, "
            f"{len(self.tickers)} tickers, {models} model{'s' if models != 1 else ''}, "
            f"{json_value(self.start)} to {json_value(self.end)}",
        ]
        for row in self.metrics.iter_rows(named=True):
            if not row["n"]:
                lines.append(f"{row['pattern']}: no labelled outcomes")
                continue
            text = (
                f"{row['pattern']}: n={row['n']} events={row['events']} "
                f"base rate {num(row['base_rate'], 3)}; "
                f"AUC {metric_text(row, 'auc', correction=CORRECTIONS['metrics'])}; "
                f"accuracy {num(row['accuracy'], 3)} vs majority {num(row['majority_rate'], 3)}; "
                f"Brier {num(row['brier'], 4)} vs {num(row['brier_reference'], 4)}"
            )
            lines.append(text)
        if self.null_comparison is not None:
            for row in self.null_comparison.iter_rows(named=True):
                verdict = {True: "skill survives the null", False: "not confirmed"}.get(
                    row["confirmed"], "undetermined"
                )
                lines.append(
                    f"null {row['pattern']}: real AUC {num(row['auc'], 3)} "
                    f"(bootstrap p={num(row['auc_p_value'], 4)}, "
                    f"Holm {num(row['auc_p_value_holm'], 4)}); permutation test over "
                    f"{row['n_null']} draws: null AUC {num(row['null_auc_mean'], 3)} "
                    f"[{num(row['null_auc_low'], 3)}, {num(row['null_auc_high'], 3)}], "
                    f"p={num(row['permutation_p_value'], 4)} "
                    f"+/- {num(row['permutation_p_value_se'], 4)} "
                    f"(Holm {num(row['permutation_p_value_holm'], 4)}): {verdict}"
                )
        if self.overfitting is not None:
            for row in self.overfitting.iter_rows(named=True):
                flag = {True: "OVERFITTING", False: "ok"}.get(row["overfitting"], "n/a")
                lines.append(
                    f"{row['model_id']}: {row['epochs']} epochs, best {row['best_epoch']}, "
                    f"{flag} ({row['reason']})"
                )
        lines += [f"note: {n}" for n in self.notes]
        if self.report is not None:
            lines.append(f"wrote {self.report}")
        return lines


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def number_text(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals; ``"-"`` for a missing or non-finite value.

    Examples
    --------
    >>> number_text(0.12345, 3), number_text(float("nan"), 3), number_text(None, 2)
    ('0.123', '-', '-')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def metric_text(
    row: dict[str, Any], name: str, digits: int = 3, *, correction: str | None = None
) -> str:
    """A metric of an evaluation row as ``estimate [low, high] p=p_value``.

    Parameters
    ----------
    row : dict
        A row of :func:`engine.evaluation.evaluate_frame` (``name``,
        ``name_ci_low``, ``name_ci_high``, ``name_p_value``).
    name : str
        The metric.
    digits : int, default 3
        Decimals of the estimate and interval; the p-values have 4.
    correction : {"holm", "bh"}, optional
        Also show the adjusted p-value ``name_p_value_<correction>`` when the
        row has it.

    Examples
    --------
    >>> row = {"auc": 0.61, "auc_ci_low": 0.55, "auc_ci_high": 0.67, "auc_p_value": 0.0012,
    ...        "auc_p_value_holm": 0.0048}
    >>> metric_text(row, "auc")
    '0.610 [0.550, 0.670] p=0.0012'
    >>> metric_text(row, "auc", correction="holm")
    '0.610 [0.550, 0.670] p=0.0012 adj. p=0.0048'
    """
    est = row.get(name)
    if est is None or not math.isfinite(est):
        return "-"
    text = (
        f"{est:.{digits}f} [{number_text(row[name + '_ci_low'], digits)}, "
        f"{number_text(row[name + '_ci_high'], digits)}] p={number_text(row[name + '_p_value'], 4)}"
    )
    adjusted = f"{name}_p_value_{correction}"
    if correction is not None and adjusted in row:
        text += f" adj. p={number_text(row[adjusted], 4)}"
    return text


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
    (:data:`CORRECTIONS`): beside every raw p-value stands its Holm-adjusted
    value over the patterns (the per-head verdicts) or its
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
