"""The ``engine train`` job: stored bars in, a training run directory out.

It loads the requested tickers with their benchmarks, builds the dataset
(:func:`engine.model.runs.prepare_dataset`) and trains one model per split
window (:func:`engine.model.runs.train_windows`).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from engine.data.loading import load_job_bars, synthetic_flags
from engine.data.store import BarStore
from engine.model.runs import RunProgress, RunSettings, TrainReport, prepare_dataset, train_windows

__all__ = ["default_run_dir", "run_train_job"]


def default_run_dir(store: BarStore, settings: RunSettings) -> Path:
    """``<data-dir>/runs/<split>-<YYYYmmdd-HHMMSS>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return store.data_dir / "runs" / f"{settings.split}-{stamp}"


def run_train_job(
    store: BarStore,
    tickers: str = "all",
    *,
    settings: RunSettings | None = None,
    config: Any = None,
    out: Path | None = None,
    start: date | None = None,
    end: date | None = None,
    overwrite: bool = False,
    progress: RunProgress | None = None,
) -> TrainReport:
    """Train on stored bars: the ``engine train`` job.

    Parameters
    ----------
    store : BarStore
    tickers : str
        ``"all"``, a named list or a comma list.
    settings : RunSettings, optional
    config : engine.model.network.ModelConfig, optional
    out : Path, optional
        Run directory (default :func:`default_run_dir`).
    start, end : date, optional
        Keep samples whose window ends in ``[start, end]``.
    overwrite : bool
        Replace a previous run at ``out``.
    progress : callable, optional
        See :func:`train_windows`; also ``{"kind": "data", ...}`` once the
        sequences are built.

    Returns
    -------
    TrainReport
    """
    settings = settings or RunSettings()
    wanted, bars = load_job_bars(store, tickers, start, end)
    dataset = prepare_dataset(bars, wanted, settings, start=start, end=end)
    dataset.info["synthetic_tickers"] = sorted(
        t for t, s in synthetic_flags(store, wanted).items() if s
    )
    dataset.info["data_dir"] = str(store.data_dir)
    if progress:
        progress({"kind": "data", **dataset.info})
    out = Path(out) if out is not None else default_run_dir(store, settings)
    return train_windows(
        dataset, out, settings=settings, config=config, overwrite=overwrite, progress=progress
    )
