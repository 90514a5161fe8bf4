"""What ``engine tune`` found: the report object, its files and ``best.toml``.

Files in the run directory (every write atomic, :mod:`engine.io`):

* ``tune.json``: :meth:`TuneReport.to_dict`;
* ``trials.parquet``: one row per trial (state, value, window values,
  parameters as JSON, seconds);
* ``test_predictions.parquet``: the clean test rows scored by the selected
  and the default configuration;
* ``best.toml``: only when the gate promotes the selected configuration;
  ``engine train --config best.toml`` trains with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import polars as pl

from engine.io import atomic_write_bytes, atomic_write_json, write_parquet_atomic
from engine.model.network import ModelConfig

__all__ = ["TuneReport", "toml_string", "trial_table", "write_files"]

TUNE_FILE = "tune.json"
TRIALS_FILE = "trials.parquet"
TEST_PREDICTIONS_FILE = "test_predictions.parquet"
BEST_FILE = "best.toml"


@dataclass
class TuneReport:
    """Everything one ``engine tune`` measured; :meth:`to_dict` is its JSON."""

    out: Path
    study: str
    storage: str
    resumed: bool
    settings: dict[str, Any]
    space: dict[str, Any]
    windows: list[dict[str, Any]]
    trials: list[dict[str, Any]]
    search: dict[str, Any]
    selection: dict[str, Any]
    test: dict[str, Any] | None
    gate: dict[str, Any]
    seconds: float
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "out": str(self.out),
            "study": self.study,
            "storage": self.storage,
            "resumed": self.resumed,
            "settings": self.settings,
            "space": self.space,
            "windows": self.windows,
            "trials": self.trials,
            "search": self.search,
            "selected": self.selection,
            "test": self.test,
            "gate": self.gate,
            "seconds": round(self.seconds, 3),
            "files": self.files,
            "notes": self.notes,
        }

    def summary_lines(self) -> list[str]:
        """The conclusions, one short line each (under 80 columns where possible)."""
        sel = self.selection
        counts = sel["trials"]
        lines = [
            f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} "
            f"failed trial(s) in {self.search['seconds']:.0f} s "
            f"({self.search['backend']}, {self.search['workers']} worker(s))",
            f"selected trial {sel['trial']}: validation {self.settings['objective']} "
            f"{sel['value']:+.4f}",
        ]
        dsr = sel["dsr"]
        if dsr["value"] is not None:
            lines.append(
                f"DSR {dsr['value']:.3f}: validation Sharpe {dsr['sharpe']:.2f} vs "
                f"{dsr['expected_max']:.2f} expected of the best of {dsr['n_trials']} "
                f"({dsr['days']} days)"
            )
        else:
            lines.append("DSR undefined: the filtered strategy never traded on validation")
        pbo = sel["pbo"]
        if pbo is not None:
            slope = pbo["degradation_slope"]
            lines.append(
                f"PBO {pbo['pbo']:.2f} (S = {pbo['n_blocks']}), P(OOS loss) "
                f"{pbo['prob_oos_loss']:.2f}, degradation slope "
                + ("undefined" if slope is None else f"{slope:+.2f}")
            )
        if self.test is not None:
            s, d, diff = self.test["selected"], self.test["default"], self.test["difference"]
            lines.append(
                f"test {self.test['start']}..{self.test['end']} ({self.test['dates']} days): "
                f"selected {_ci(s, 'skill')}"
            )
            if self.test["selected_is_default"]:
                lines.append("  the selected configuration is the default one")
            else:
                lines.append(f"  default {_ci(d, 'skill')}")
                lines.append(f"  selected - default {_ci(diff, 'difference')}")
        if self.gate["promoted"]:
            lines.append("PROMOTED: " + "; ".join(self.gate["reasons"]))
        else:
            lines.append("not promoted: no configuration beats chance after correction")
            lines += [f"  {r}" for r in self.gate["reasons"]]
        rec = sel.get("recommendation")
        if rec is not None:
            lines.append(
                f"warning: PBO >= 0.5, the ranking of configurations is unreliable; prefer "
                f"trial {rec['trial']}: {rec['why']}"
            )
        lines += [f"note: {n}" for n in self.notes + sel.get("notes", [])]
        return lines


def _ci(d: dict[str, Any], key: str) -> str:
    if d.get(key) is None:
        return "undefined"
    if d.get("ci_low") is None:
        return f"{d[key]:+.4f}"
    return f"{d[key]:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"


def trial_table(study: optuna.Study) -> list[dict[str, Any]]:
    """One JSON-ready row per trial of the study, in trial order."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "window_values": attrs.get("window_values"),
                "params": dict(t.params),
                "default": bool(attrs.get("default", False)),
                "pruned_after": attrs.get("pruned_after"),
                "pooled_skill": attrs.get("pooled_skill"),
                "skill_ci": attrs.get("skill_ci"),
                "strategy_sharpe": attrs.get("strategy_sharpe"),
                "seconds": attrs.get("seconds"),
                "error": attrs.get("error"),
            }
        )
    return rows


def toml_string(text: str) -> str:
    r"""``text`` as a TOML basic string: quotes, backslashes and control characters escaped.

    Examples
    --------
    >>> import tomllib
    >>> name = 'my "study" \\ v2\n'
    >>> print(toml_string(name))
    "my \"study\" \\ v2\n"
    >>> tomllib.loads(f"study = {toml_string(name)}")["study"] == name
    True
    """
    # JSON's escapes (\" \\ \n \u0001 ...) are TOML's too, and TOML refuses a raw DEL;
    # other characters stay as they are (JSON's \uXXXX surrogate pairs are not TOML)
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_float(value: float) -> str:
    """A float as TOML writes it (``nan``, ``inf`` and ``-inf`` included)."""
    return repr(float(value))


def _comment(text: str) -> str:
    """One TOML comment line: a line break in ``text`` would end the comment."""
    return "# " + " ".join(str(text).splitlines())


def _best_toml(report: TuneReport) -> str:
    sel = report.selection
    config = ModelConfig.from_dict(sel["config"])
    reasons = "; ".join(report.gate["reasons"])
    header = [
        _comment(
            f"engine tune: study {report.study!r}, trial {sel['trial']}, selected from "
            f"{sel['trials']['complete'] + sel['trials']['pruned']} trials"
        ),
        _comment(f"promoted: {reasons}"),
        "# train with it: engine train --config best.toml",
        "recommended = true",
        f"study = {toml_string(report.study)}",
        f"trial = {int(sel['trial'])}",
    ]
    if sel["dsr"]["value"] is not None:
        header.append(f"dsr = {_toml_float(sel['dsr']['value'])}")
    if sel["pbo"] is not None:
        header.append(f"pbo = {_toml_float(sel['pbo']['pbo'])}")
    if sel.get("recommendation") is not None:
        rec = sel["recommendation"]
        header.append(
            _comment(
                f"warning: PBO >= 0.5: the ranking is unreliable; trial {rec['trial']} "
                f"({rec['why']}) is the safer choice"
            )
        )
    return "\n".join(header) + "\n\n" + config.to_toml()


def write_files(report: TuneReport, predictions: pl.DataFrame | None) -> None:
    """Write ``tune.json``, ``trials.parquet``, the test predictions and, if promoted, best.toml."""
    out = report.out
    trials = pl.DataFrame(
        [
            {
                **{k: v for k, v in row.items() if k not in ("params", "window_values")},
                "params": json.dumps(row["params"], sort_keys=True),
                "window_values": row["window_values"],
            }
            for row in report.trials
        ],
        schema_overrides={"value": pl.Float64, "window_values": pl.List(pl.Float64)},
        infer_schema_length=None,
    ).drop("skill_ci")
    report.files["trials"] = str(write_parquet_atomic(trials, out / TRIALS_FILE))
    if predictions is not None:
        path = write_parquet_atomic(predictions, out / TEST_PREDICTIONS_FILE)
        report.files["test_predictions"] = str(path)
    best = out / BEST_FILE
    if report.gate["promoted"]:
        atomic_write_bytes(best, _best_toml(report).encode())
        report.files["best"] = str(best)
    elif best.exists():
        # a best.toml from an earlier session of this study is no longer what the evidence says
        best.unlink()
        report.notes.append(f"removed the earlier {best.name}: this session did not promote")
    report.files["report"] = str(out / TUNE_FILE)
    atomic_write_json(out / TUNE_FILE, report.to_dict())
