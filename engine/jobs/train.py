"""The ``engine train`` job: stored bars in, a training run directory out.

It loads the requested tickers with their benchmarks on the chosen price
basis (:class:`engine.data.loading.BarInputs`), builds the dataset
(:func:`engine.model.runs.prepare_dataset`) and trains one model per split
window (:func:`engine.model.runs.train_windows`). The price basis, market and
sector map go into every model's metadata (``data``), so export and serving
compute the features the same way. Tickers whose history is too short to give
a single labelled window are listed (``data.short_history``), not passed over
in silence.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from engine.data.loading import BarInputs, load_bars, short_histories, synthetic_flags
from engine.data.store import BarStore
from engine.features.build import build_features
from engine.model.runs import RunProgress, RunSettings, TrainReport, prepare_dataset, train_windows
from engine.tracking import tracked
from kernels.garch import GARCH_MIN_OBS

__all__ = ["default_run_dir", "run_train_job"]


def default_run_dir(store: BarStore, settings: RunSettings) -> Path:
    """``<data-dir>/runs/<split>-<YYYYmmdd-HHMMSS>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return store.data_dir / "runs" / f"{settings.split}-{stamp}"


@tracked("train")
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
    inputs: BarInputs | None = None,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    resume: bool = False,
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
    inputs : BarInputs, optional
        Price basis, market and sector map (``--prices``, ``--market``,
        ``--sector-map``).
    backend, workers, address
        Where and how many windows are fitted at once (``--backend``,
        ``--workers``; :func:`train_windows`).
    resume : bool
        Continue the interrupted or failed run at ``out`` (which must be
        given): only its unfinished windows are trained (:func:`train_windows`).

    Returns
    -------
    TrainReport
    """
    if resume and out is None:
        raise ValueError("--resume needs --out: the directory of the run to continue")
    settings = settings or RunSettings()
    loaded = load_bars(store, tickers, start, end, inputs)
    wanted, bars = loaded.tickers, loaded.bars
    features = build_features(
        bars, tickers=wanted, market=loaded.inputs.market, sector_map=loaded.sectors
    )
    dataset = prepare_dataset(bars, wanted, settings, start=start, end=end, features=features)
    dataset.info.update(loaded.info())
    # a labelled window needs the features' warm-up, one window and the label horizon
    min_bars = GARCH_MIN_OBS + settings.sequence_length + settings.horizon
    dataset.info["short_history"] = short_histories(bars, wanted, min_bars)
    dataset.info["short_history_min_bars"] = min_bars
    per_ticker = dict(dataset.train_set.index.group_by("ticker").len().iter_rows())
    dataset.info["sequences_per_ticker"] = {t: int(per_ticker.get(t, 0)) for t in wanted}
    dataset.info["synthetic_tickers"] = sorted(
        t for t, s in synthetic_flags(store, wanted).items() if s
    )
    dataset.info["data_dir"] = str(store.data_dir)
    if progress:
        progress({"kind": "data", **dataset.info})
    out = Path(out) if out is not None else default_run_dir(store, settings)
    return train_windows(dataset, out, settings=settings, config=config, overwrite=overwrite,
                         progress=progress, backend=backend, workers=workers,
                         address=address, resume=resume)  # fmt: skip
