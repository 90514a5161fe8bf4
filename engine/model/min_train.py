"""Walk-forward windows too small to train: skipped and listed, never trained in silence.

On real history the first walk-forward windows can hold very few sequences
(in one trial 136: only SPY, QQQ and XLK existed before 2000). A model fitted
on them is noise that still enters the pooled out-of-sample figures.
:func:`windows_below_minimum` picks the windows whose training fold holds
fewer than ``--min-train-sequences`` (default :data:`DEFAULT_MIN_TRAIN_SEQUENCES`)
so that :func:`engine.model.runs.train_windows` skips them and lists them in
``run.json`` under ``skipped_windows``.
"""

from __future__ import annotations

from typing import Any

from engine.splits import Holdout

__all__ = ["DEFAULT_MIN_TRAIN_SEQUENCES", "windows_below_minimum"]

#: ``--min-train-sequences`` of ``engine train`` and ``engine pipeline``.
DEFAULT_MIN_TRAIN_SEQUENCES = 2000


def windows_below_minimum(
    splitter: Any, infos: list[Any], windows: list[Any], minimum: int, prefix: str = "wf"
) -> dict[int, dict[str, Any]]:
    """Walk-forward windows with fewer than ``minimum`` training sequences, by index.

    Parameters
    ----------
    splitter : WalkForward or Holdout
        A holdout split has one window and is never skipped.
    infos, windows : list
        ``splitter.split_info(...)`` and ``splitter.windows(...)`` of the run.
    minimum : int
        Fewest training sequences a window may hold (0: keep every window).
    prefix : str
        Model id prefix (``wf``): window ``k`` is ``<prefix><k:02d>``.

    Returns
    -------
    dict of int to dict
        Window index -> ``model_id``, dates, ``n_train`` and ``reason``.

    Raises
    ------
    ValueError
        Every window is below ``minimum``: nothing would be trained.
    """
    if isinstance(splitter, Holdout) or minimum <= 0:
        return {}
    skip = {}
    for k, (info, (train_start, _, test_start, test_end)) in enumerate(
        zip(infos, windows, strict=True)
    ):
        if info.train.size < minimum:
            skip[k] = {
                "model_id": f"{prefix}{k:02d}",
                "train_start": str(train_start),
                "test_start": str(test_start),
                "test_end": str(test_end),
                "n_train": int(info.train.size),
                "reason": f"{info.train.size} training sequences < --min-train-sequences {minimum}",
            }
    if windows and len(skip) == len(windows):
        largest = max(int(info.train.size) for info in infos)
        raise ValueError(
            f"every walk-forward window has fewer than {minimum} training sequences (the "
            f"largest has {largest}); lower --min-train-sequences, add tickers or history, "
            "or use --split holdout"
        )
    return skip
