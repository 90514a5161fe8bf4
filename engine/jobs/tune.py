"""The ``engine tune`` job: stored bars in, a tuning run directory out.

It checks the search space and the backend first (before any data is
read), loads the tickers with their benchmarks, builds the dataset as
``engine train`` does (:func:`engine.model.runs.prepare_dataset`) and runs
:func:`engine.tuning.tune.tune`.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from engine.data.loading import BarInputs, load_bars, synthetic_flags
from engine.data.store import BarStore
from engine.features.build import build_features
from engine.model.network import ModelConfig
from engine.model.runs import RunSettings, prepare_dataset
from engine.parallel import require_ray
from engine.tracking import tracked
from engine.tuning.report import TUNE_FILE, TuneReport
from engine.tuning.space import load_space
from engine.tuning.study import check_study_name, open_storage
from engine.tuning.tune import TuneProgress, TuneSettings, tune

__all__ = ["default_tune_dir", "run_tune_job"]


def default_tune_dir(store: BarStore) -> Path:
    """``<data-dir>/runs/tune-<YYYYmmdd-HHMMSS>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return store.data_dir / "runs" / f"tune-{stamp}"


@tracked("tune")
def run_tune_job(
    store: BarStore,
    tickers: str = "all",
    *,
    run_settings: RunSettings | None = None,
    base: ModelConfig | None = None,
    settings: TuneSettings | None = None,
    space: str | Path | None = None,
    out: Path | None = None,
    start: date | None = None,
    end: date | None = None,
    progress: TuneProgress | None = None,
    inputs: BarInputs | None = None,
) -> TuneReport:
    """Tune on stored bars: the ``engine tune`` job.

    Parameters
    ----------
    store : BarStore
    tickers : str
        ``"all"``, a named list or a comma list.
    run_settings : RunSettings, optional
        Split, windows, embargo and seed.
    base : ModelConfig, optional
        The default configuration (epochs, precision and every setting the
        space does not search).
    settings : TuneSettings, optional
    space : path, optional
        TOML file overriding keys of the default space.
    out : Path, optional
        Run directory (default :func:`default_tune_dir`). With
        ``settings.resume`` and the default storage, the earlier run's
        directory.
    start, end : date, optional
        Keep samples whose window ends in ``[start, end]``.
    progress : callable, optional
        See :func:`engine.tuning.tune.tune`; also ``{"kind": "data", ...}``.
    inputs : BarInputs, optional
        Price basis, market and sector map, as for ``engine train``.

    Returns
    -------
    TuneReport

    Raises
    ------
    ValueError
        A bad space file, ``--resume`` without the earlier run's ``--out``
        or ``--storage`` or without such a study, or ``--backend ray``
        without Ray (:class:`engine.parallel.BackendUnavailable`).
    FileExistsError
        An ``--out`` that holds another tuning run, or a study name that
        exists without ``--resume``.
    PermissionError
        A storage path that cannot be written.
    """
    run_settings = run_settings or RunSettings()
    base = base or ModelConfig()
    settings = settings or TuneSettings()
    searched = load_space(space)  # a bad file fails before any data is read
    if settings.backend == "ray":
        require_ray()
    if settings.resume and out is None and settings.storage is None:
        raise ValueError(
            "--resume continues a study: give the earlier run's --out (its study.journal) "
            "or the --storage that holds it"
        )
    out = Path(out) if out is not None else default_tune_dir(store)
    if (out / TUNE_FILE).exists() and not settings.resume:
        raise FileExistsError(
            f"{out} already holds a tuning run ({TUNE_FILE}); pass --resume to continue its "
            "study, or choose another --out"
        )
    # an unwritable storage or a study name clash fails before any data is read
    storage, where = open_storage(settings.storage, out)
    check_study_name(storage, where, settings.study, settings.resume)
    del storage
    loaded = load_bars(store, tickers, start, end, inputs)
    wanted, bars = loaded.tickers, loaded.bars
    features = build_features(
        bars, tickers=wanted, market=loaded.inputs.market, sector_map=loaded.sectors
    )
    dataset = prepare_dataset(bars, wanted, run_settings, start=start, end=end, features=features)
    dataset.info.update(loaded.info())
    dataset.info["synthetic_tickers"] = sorted(
        t for t, s in synthetic_flags(store, wanted).items() if s
    )
    dataset.info["data_dir"] = str(store.data_dir)
    if progress:
        progress({"kind": "data", **dataset.info})
    return tune(dataset, bars, out, run_settings=run_settings, base=base, space=searched,
                settings=settings, progress=progress)  # fmt: skip
