"""Optuna storage and study: a journal file by default, seeded TPE, the median pruner.

Storage. By default the study lives in an Optuna journal file in the run
directory (``study.journal``): an append-only log that several processes can
share (Optuna advises against SQLite for parallel workers). ``--storage``
takes another journal path, or an RDB URL (``postgresql://...``,
``mysql://...``, ``sqlite:///...``) for studies spread over machines.

Names. A study name that already exists in the storage is refused unless
``resume`` is set; ``resume`` on a name that does not exist is refused too.
A resumed study must measure the same thing (data, windows, epochs,
objective, strategy, space): the settings are stored with the study and
compared.

Sampler and pruner. TPE seeded with ``--seed``. Pruning uses
:class:`optuna.pruners.MedianPruner`: after window ``k`` a trial reports
the mean of its first ``k + 1`` window scores, and stops when that is below
the median of the completed trials' means over the same windows. The median
pruner fits that report: each step compares trials on the identical set of
windows, which is what a cumulative mean needs. ``WilcoxonPruner`` tests
paired per-window values instead (it would need the per-window scores, not
their running mean), and with the 3 to 5 windows of a tuning run its
signed-rank test cannot reach a small p-value (4 pairs: at best p = 1/16
one-sided). The pruner waits for ``startup`` completed trials and never
prunes after the first window alone (``n_warmup_steps=1``): one year of one
window is too noisy to stop on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

__all__ = [
    "StudyHandle",
    "check_study_name",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
]

STUDY_FILE = "study.journal"


class StudyHandle:
    """An open study with a description of where it lives.

    Attributes
    ----------
    study : optuna.Study
    storage : str
        The journal path or the RDB URL (password masked).
    resumed : bool
    """

    def __init__(self, study: optuna.Study, storage: str, resumed: bool) -> None:
        self.study = study
        self.storage = storage
        self.resumed = resumed


def _mask(url: str) -> str:
    """The URL without its password."""
    head, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        return f"{head}{sep}{user}:***@{rest.split('@', 1)[1]}"
    return url


def open_storage(storage: str | None, out: Path) -> tuple[Any, str]:
    """The Optuna storage for ``--storage`` (default: a journal file in ``out``).

    Returns
    -------
    storage : optuna storage
    description : str
        Path or masked URL, for messages.

    Raises
    ------
    PermissionError
        A journal path that cannot be created or appended to (the message
        names the path and the reason).
    ValueError
        An RDB URL that cannot be opened.
    """
    if storage is not None and "://" in storage:
        try:
            return optuna.storages.RDBStorage(storage), _mask(storage)
        except Exception as exc:  # sqlalchemy's errors differ by driver
            raise ValueError(f"cannot open the storage {_mask(storage)}: {exc}") from None
    path = Path(storage) if storage is not None else out / STUDY_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise PermissionError(
            f"the storage path {path} is not writable ({exc.strerror or exc}); "
            "choose another --storage or --out"
        ) from None
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend), str(path)


def make_sampler(seed: int, random_trials: int = 10) -> optuna.samplers.BaseSampler:
    """TPE seeded with ``seed``, after ``random_trials`` random trials (at least 1)."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, random_trials))


def make_pruner(startup: int = 5) -> optuna.pruners.BasePruner:
    """The median pruner described in the module docstring."""
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=1)


def _differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(current))
    return [
        f"{k}: study has {stored.get(k)!r}, this run {current.get(k)!r}"
        for k in keys
        if stored.get(k) != current.get(k)
    ]


def check_study_name(storage: Any, description: str, name: str, resume: bool) -> None:
    """Refuse a name clash without ``resume``, and ``resume`` of a study that does not exist.

    Raises
    ------
    FileExistsError
        ``name`` exists in the storage and ``resume`` is not set.
    ValueError
        ``resume`` is set and the storage holds no study ``name``.
    """
    names = optuna.study.get_all_study_names(storage)
    if name in names and not resume:
        raise FileExistsError(
            f"a study named {name!r} already exists in {description}; pass --resume to "
            "continue it, or choose another --study"
        )
    if resume and name not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise ValueError(f"no study named {name!r} to resume in {description} (studies: {known})")


def open_study(
    storage: Any,
    description: str,
    name: str,
    *,
    resume: bool,
    seed: int,
    settings: dict[str, Any],
    startup: int = 5,
    random_trials: int = 10,
) -> StudyHandle:
    """Create the study ``name``, or load it with ``resume``.

    Parameters
    ----------
    storage : optuna storage
    description : str
        Where it lives (for messages).
    name : str
    resume : bool
    seed : int
        Sampler seed.
    settings : dict
        What the study measures (JSON-ready); stored on creation, compared on resume.
    startup : int
        Completed trials before the pruner may prune.
    random_trials : int
        Trials TPE draws at random before it models the history. Stored with
        a new study; a resumed study keeps its stored number (a later
        session's ``--trials`` does not change it).

    Raises
    ------
    FileExistsError
        ``name`` exists and ``resume`` is not set.
    ValueError
        ``resume`` without such a study, or a study that measures something
        else (the message lists the differences).
    """
    check_study_name(storage, description, name, resume)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the engine prints its own progress
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=make_sampler(seed, random_trials),
        pruner=make_pruner(startup),
        load_if_exists=resume,
    )
    if resume:
        random_trials = int(study.user_attrs.get("random_trials", random_trials))
        # a fresh generator with the first session's seed would repeat its random trials
        study.sampler = make_sampler(seed + len(study.trials), random_trials)
        stored = study.user_attrs.get("engine", {})
        diff = _differences(stored, settings)
        if diff:
            raise ValueError(
                f"study {name!r} in {description} measured something else; start a new "
                "--study instead:\n  " + "\n  ".join(diff)
            )
    else:
        study.set_user_attr("engine", settings)
        study.set_user_attr("random_trials", int(random_trials))
    return StudyHandle(study, description, resume)
