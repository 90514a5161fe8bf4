"""After the search: the selected and the default configuration on the clean test rows.

Only now are test-period predictions made, and only on test rows that no
tuning validation period has seen (:func:`engine.tuning.windows.clean_test_rows`).
Each window with clean rows is fitted twice, with the selected and with the
default configuration, with the window's seed (so the selected model is the
one the trial fitted), and scored there. The report gives each skill with its
date-block bootstrap interval, and the difference selected - default with a
paired interval (the same resampled dates for both).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.fit_tasks import FitTask, run_fit_task
from engine.model.runs import TrainDataset
from engine.parallel import WorkerFailure, make_executor
from engine.tuning.scoring import base_rates, paired_interval, skill_interval
from engine.tuning.windows import TuningWindow, clean_test_data, clean_test_rows

__all__ = ["score_clean_tests"]


def score_clean_tests(
    dataset: TrainDataset,
    plan: list[TuningWindow],
    selected: dict[str, Any],
    default: dict[str, Any],
    *,
    seed: int,
    objective: str,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    n_boot: int = 1000,
) -> tuple[dict[str, Any] | None, pl.DataFrame | None]:
    """Fit and score both configurations on the clean test rows of the tuned windows.

    Parameters
    ----------
    dataset : TrainDataset
    plan : list of TuningWindow
    selected, default : dict
        :meth:`ModelConfig.to_dict` of the two configurations.
    seed : int
        Window ``w`` is fitted with ``seed + w.number``.
    objective : str
    backend, workers, address
        See :func:`engine.parallel.make_executor`.
    n_boot : int

    Returns
    -------
    summary : dict or None
        None when no tuned window has a clean test row.
    predictions : polars.DataFrame or None
        ``ticker, date, t1, model_id``, then per pattern the outcome and
        ``<pattern>_p_selected`` / ``<pattern>_p_default``.
    """
    rows = clean_test_rows(dataset, plan)
    data, keep = clean_test_data(dataset, plan, rows)
    if not keep:
        return None, None
    same = selected == default
    configs = {"selected": selected} if same else {"selected": selected, "default": default}
    confidence: dict[tuple[str, int], np.ndarray] = {}
    with make_executor(backend, run_fit_task, data, workers=workers, address=address) as ex:
        keys = {}
        for pos, i in enumerate(keep):
            for name, config in configs.items():
                task = FitTask(key=(name, pos), fold=pos, config=config,
                               seed=seed + plan[i].number, deterministic=True,
                               threads=ex.threads)  # fmt: skip
                keys[ex.submit(task)] = (name, pos)
        while keys:
            done, _ = ex.wait(list(keys))
            for handle, result, error in done:
                key = keys.pop(handle)
                if error is not None:
                    raise WorkerFailure(
                        f"fitting the {key[0]} configuration on the test windows failed: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                confidence[key] = result.confidence
    score_set = dataset.score_set
    assert score_set.y is not None
    used = [rows[i] for i in keep]
    y = np.concatenate([score_set.y[r] for r in used])
    rates = np.concatenate([np.tile(base_rates(score_set.y[r]), (r.size, 1)) for r in used])
    p_sel = np.concatenate([confidence[("selected", pos)] for pos in range(len(keep))])
    p_def = (
        p_sel
        if same
        else np.concatenate([confidence[("default", pos)] for pos in range(len(keep))])
    )
    index = pl.concat([score_set.index[r] for r in used])
    dates = index.get_column("date").to_numpy().astype("datetime64[D]")
    boot = {"objective": objective, "n_boot": n_boot, "seed": seed}
    sel = skill_interval(dates, y, p_sel, rates, **boot)
    dfl = skill_interval(dates, y, p_def, rates, **boot)
    diff = paired_interval(dates, y, p_sel, p_def, rates, **boot)
    summary = {
        "windows": [plan[i].model_id for i in keep],
        "rows": int(y.shape[0]),
        "labelled": int((~np.isnan(y)).sum()),
        "dates": int(np.unique(dates).size),
        "start": str(dates.min()),
        "end": str(dates.max()),
        "selected_is_default": same,
        "selected": _interval(sel),
        "default": _interval(dfl),
        "difference": _interval(diff, "difference"),
    }
    patterns = score_set.pattern_names
    model_ids = np.concatenate(
        [np.full(r.size, plan[i].model_id) for r, i in zip(used, keep, strict=True)]
    )
    frame = index.with_columns(pl.Series("model_id", model_ids))
    frame = frame.with_columns(
        *(pl.Series(p, y[:, j]).fill_nan(None).cast(pl.Int8) for j, p in enumerate(patterns)),
        *(
            pl.Series(f"{p}{CONFIDENCE_SUFFIX}_selected", p_sel[:, j])
            for j, p in enumerate(patterns)
        ),
        *(
            pl.Series(f"{p}{CONFIDENCE_SUFFIX}_default", p_def[:, j])
            for j, p in enumerate(patterns)
        ),
    )
    return summary, frame


def _interval(triple: tuple[float, float, float], name: str = "skill") -> dict[str, Any]:
    point, low, high = triple
    finite = [v if np.isfinite(v) else None for v in (point, low, high)]
    return {name: finite[0], "ci_low": finite[1], "ci_high": finite[2], "level": 0.95}
