"""The hyperparameter search space: defaults, a TOML override file, Optuna suggestions.

A space maps a key to a :class:`FloatRange`, :class:`IntRange`,
:class:`Choice` or :class:`Fixed`. The keys are :class:`ModelConfig` fields
(``lstm2_units`` is not one: it is always half of ``lstm_units``) plus

* ``imbalance``: ``"none"``, ``"balanced"`` (class weights per head) or
  ``"focal"`` (focal loss);
* ``focal_gamma`` and ``focal_alpha`` (``"none"`` or a number in (0, 1)),
  sampled only when a trial picks ``imbalance = "focal"``.

The default space (:data:`DEFAULT_SPACE`) is the issue's: learning rate
1e-4 to 3e-3 (log), first LSTM 32, 64 or 96 units, dropout 0.2 to 0.6,
recurrent dropout 0 to 0.4, L2 1e-4 to 1e-2 (log), batch 32, 64 or 128, and
the three imbalance options with gamma 0.5 to 3.

A TOML file overrides keys of the default space one by one; the others keep
their defaults. Keys may sit at the top level or in a ``[space]`` table::

    learning_rate = { low = 1e-4, high = 1e-3, log = true }   # a range
    lstm_units = [32, 64]                                      # choices
    batch_size = 64                                            # fixed
    head_dropout = { low = 0.2, high = 0.5 }                   # a new key

Examples
--------
>>> space = default_space()
>>> sorted(space)[:3]
['batch_size', 'focal_alpha', 'focal_gamma']
>>> config = to_config({"lstm_units": 96, "imbalance": "focal", "focal_gamma": 1.5,
...                     "focal_alpha": "none"}, ModelConfig(epochs=3))
>>> config.lstm2_units, config.loss, config.focal_alpha, config.epochs
(48, 'focal', None, 3)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from engine.model.network import ModelConfig

__all__ = [
    "DEFAULT_SPACE",
    "IMBALANCE",
    "Choice",
    "Fixed",
    "FloatRange",
    "IntRange",
    "SearchSpace",
    "contains",
    "default_params",
    "default_space",
    "describe_space",
    "load_space",
    "suggest",
    "to_config",
    "trainable_parameters",
]

#: Values of the ``imbalance`` key.
IMBALANCE = ("none", "balanced", "focal")
_FOCAL_KEYS = ("focal_gamma", "focal_alpha")
# ModelConfig fields a space may not hold: set by options, derived, or replaced by `imbalance`
_NOT_SEARCHABLE = {
    "epochs": "--epochs sets it",
    "lstm2_units": "it is always half of lstm_units",
    "loss": "use the key 'imbalance'",
    "class_weights": "use the key 'imbalance'",
}


@dataclass(frozen=True)
class FloatRange:
    """A float between ``low`` and ``high``, uniform or log-uniform."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntRange:
    """An integer between ``low`` and ``high`` (both included)."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of ``choices``."""

    choices: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    """Always ``value``."""

    value: Any


Param = FloatRange | IntRange | Choice | Fixed
SearchSpace = dict[str, Param]

DEFAULT_SPACE: SearchSpace = {
    "learning_rate": FloatRange(1e-4, 3e-3, log=True),
    "lstm_units": Choice((32, 64, 96)),
    "lstm_dropout": FloatRange(0.2, 0.6),
    "lstm_recurrent_dropout": FloatRange(0.0, 0.4),
    "l2": FloatRange(1e-4, 1e-2, log=True),
    "batch_size": Choice((32, 64, 128)),
    "imbalance": Choice(IMBALANCE),
    "focal_gamma": FloatRange(0.5, 3.0),
    "focal_alpha": Choice(("none", 0.25, 0.5, 0.75)),
}


def default_space() -> SearchSpace:
    """A copy of :data:`DEFAULT_SPACE`."""
    return dict(DEFAULT_SPACE)


def _known_keys() -> dict[str, type]:
    kinds: dict[str, type] = {}
    for f in fields(ModelConfig):
        if f.name in _NOT_SEARCHABLE:
            continue
        default = getattr(ModelConfig(), f.name)
        kinds[f.name] = type(default) if default is not None else float
    kinds["focal_alpha"] = float
    kinds["imbalance"] = str
    return kinds


def _config_value(key: str, value: Any) -> dict[str, Any]:
    """The ModelConfig fields one space value sets."""
    if key == "imbalance":
        if value not in IMBALANCE:
            raise ValueError(f"must be one of {', '.join(IMBALANCE)}, got {value!r}")
        return {
            "loss": "focal" if value == "focal" else "bce",
            "class_weights": "balanced" if value == "balanced" else "none",
        }
    if key == "focal_alpha":
        return {"focal_alpha": None if value == "none" else value}
    if key == "lstm_units":
        return {"lstm_units": value, "lstm2_units": max(1, int(value) // 2)}
    return {key: value}


def _check_value(source: str, key: str, value: Any) -> None:
    """Raise a ValueError naming ``source`` and ``key`` if ModelConfig refuses ``value``."""
    kind = _known_keys()[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{source}: {key} takes integers, got {value!r}")
    if kind is float and key != "focal_alpha" and isinstance(value, int | float):
        value = float(value)
    try:
        ModelConfig(**_config_value(key, value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {key} = {value!r} is refused: {exc}") from None


def _parse(source: str, key: str, raw: Any) -> Param:
    kind = _known_keys()[key]
    if isinstance(raw, dict):
        extra = sorted(set(raw) - {"low", "high", "log"})
        if extra or not {"low", "high"} <= set(raw):
            raise ValueError(
                f"{source}: {key} must be a range {{ low = ..., high = ..., log = false }}, "
                f"a list of choices or one value; got the keys {sorted(raw)}"
            )
        low, high, log = raw["low"], raw["high"], raw.get("log", False)
        if not isinstance(log, bool):
            raise ValueError(f"{source}: {key}.log must be true or false, got {log!r}")
        if kind is str:
            raise ValueError(f"{source}: {key} takes a list of choices, not a range")
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{source}: {key}.{name} must be a finite number, got {v!r}")
        if not low < high:
            raise ValueError(
                f"{source}: {key} has an empty range: low = {low} is not below high = {high} "
                "(give one value to fix it)"
            )
        if log and low <= 0:
            raise ValueError(f"{source}: {key} is log-scaled, so low must be > 0, got {low}")
        _check_value(source, key, low)
        _check_value(source, key, high)
        if kind is int:
            return IntRange(int(low), int(high), log)
        return FloatRange(float(low), float(high), log)
    if isinstance(raw, list):
        if not raw:
            raise ValueError(f"{source}: {key} has an empty list of choices")
        if len(set(map(repr, raw))) != len(raw):
            raise ValueError(f"{source}: {key} lists a choice twice: {raw}")
        for v in raw:
            _check_value(source, key, v)
        return Choice(tuple(raw))
    _check_value(source, key, raw)
    return Fixed(raw)


def load_space(path: str | Path | None) -> SearchSpace:
    """The default space with the keys of a TOML file replaced.

    Parameters
    ----------
    path : path or None
        A TOML file (see the module docstring); ``None`` gives the default space.

    Returns
    -------
    SearchSpace

    Raises
    ------
    ValueError
        Naming the file and the key: an unknown key (the message lists the
        known ones), an empty range, an empty or repeated list of choices, a
        value :class:`ModelConfig` refuses, or a file that is not TOML.
    FileNotFoundError
        When ``path`` does not exist.
    """
    space = default_space()
    if path is None:
        return space
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search space file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid TOML file ({exc})") from None
    if "space" in data and isinstance(data["space"], dict):
        data = {**{k: v for k, v in data.items() if k != "space"}, **data["space"]}
    known = _known_keys()
    for key, raw in data.items():
        if key in _NOT_SEARCHABLE:
            raise ValueError(f"{path}: the key {key!r} cannot be searched: {_NOT_SEARCHABLE[key]}")
        if key not in known:
            raise ValueError(
                f"{path}: unknown key {key!r}; the known keys are {', '.join(sorted(known))}"
            )
        space[key] = _parse(str(path), key, raw)
    return space


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Draw one configuration's values from ``trial`` (an ``optuna.Trial``).

    ``focal_gamma`` and ``focal_alpha`` are drawn only when the trial's
    ``imbalance`` is ``"focal"`` (conditional parameters). Fixed keys are
    returned without asking the trial.
    """
    params: dict[str, Any] = {}

    def draw(key: str) -> Any:
        p = space[key]
        if isinstance(p, Fixed):
            return p.value
        if isinstance(p, FloatRange):
            return trial.suggest_float(key, p.low, p.high, log=p.log)
        if isinstance(p, IntRange):
            return trial.suggest_int(key, p.low, p.high, log=p.log)
        return trial.suggest_categorical(key, list(p.choices))

    for key in space:
        if key not in _FOCAL_KEYS:
            params[key] = draw(key)
    if params.get("imbalance", "none") == "focal":
        for key in _FOCAL_KEYS:
            if key in space:
                params[key] = draw(key)
    return params


def to_config(params: dict[str, Any], base: ModelConfig) -> ModelConfig:
    """``base`` with the values of ``params`` (space keys) applied."""
    updates: dict[str, Any] = {}
    for key, value in params.items():
        if key in _FOCAL_KEYS and params.get("imbalance", "none") != "focal":
            continue
        updates.update(_config_value(key, value))
    return replace(base, **updates)


def default_params(space: SearchSpace, base: ModelConfig) -> dict[str, Any]:
    """``base`` (the SPEC configuration) expressed in the keys of ``space``.

    Focal keys are left out unless ``base`` uses the focal loss.
    """
    params: dict[str, Any] = {}
    for key in space:
        if key == "imbalance":
            params[key] = (
                "focal"
                if base.loss == "focal"
                else "balanced"
                if base.class_weights == "balanced"
                else "none"
            )
        elif key == "focal_alpha":
            params[key] = "none" if base.focal_alpha is None else base.focal_alpha
        else:
            params[key] = getattr(base, key)
    if params.get("imbalance") != "focal":
        for key in _FOCAL_KEYS:
            params.pop(key, None)
    return params


def contains(space: SearchSpace, params: dict[str, Any]) -> bool:
    """Whether every value of ``params`` lies in its key's domain."""
    for key, value in params.items():
        p = space.get(key)
        if p is None:
            return False
        if isinstance(p, Fixed):
            ok = value == p.value
        elif isinstance(p, FloatRange | IntRange):
            ok = isinstance(value, int | float) and p.low <= value <= p.high
        else:
            ok = value in p.choices
        if not ok:
            return False
    return True


def describe_space(space: SearchSpace) -> dict[str, Any]:
    """A JSON-ready description of ``space`` (for reports and the resume check)."""
    out: dict[str, Any] = {}
    for key, p in space.items():
        if isinstance(p, FloatRange | IntRange):
            out[key] = {"low": p.low, "high": p.high, "log": p.log}
        elif isinstance(p, Choice):
            out[key] = {"choices": list(p.choices)}
        else:
            out[key] = {"value": p.value}
    return out


def trainable_parameters(config: ModelConfig, n_features: int, n_patterns: int) -> int:
    """Trainable weights of :func:`engine.model.network.build_model` for ``config``, by formula.

    Examples
    --------
    >>> trainable_parameters(ModelConfig(), 17, 4)   # the SPEC model
    34196
    """

    def lstm(inputs: int, units: int) -> int:
        return 4 * (units * (inputs + units) + units)

    u1, u2, d = config.lstm_units, config.lstm2_units, config.dense_units
    return (
        lstm(n_features, u1)
        + 2 * u1
        + lstm(u1, u2)
        + 2 * u2
        + (u2 * d + d)
        + (d * n_patterns + n_patterns)
    )
