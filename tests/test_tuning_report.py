"""best.toml is valid TOML whatever the study is called (tomllib round trips)."""

from __future__ import annotations

import math
import tomllib

from hypothesis import given
from hypothesis import strategies as st

from engine.model.network import ModelConfig
from engine.tuning.report import TuneReport, toml_string, write_files


@given(st.text())
def test_any_text_round_trips_as_a_toml_string(text):
    assert tomllib.loads(f"s = {toml_string(text)}")["s"] == text


def _promoted(tmp_path, study, pbo):
    config = ModelConfig(lstm_units=8, lstm2_units=4, epochs=1, loss="focal", focal_gamma=2.0)
    selection = {
        "trial": 7,
        "config": config.to_dict(),
        "trials": {"complete": 5, "pruned": 2, "failed": 1},
        "dsr": {"value": 0.987654321},
        "pbo": {"pbo": pbo},
        "recommendation": {"trial": 0, "why": 'the "default"\nconfiguration'},
    }
    gate = {"promoted": True, "reasons": ["DSR 0.99 >= 0.95", "test skill\n> 0"]}
    row = {"number": 7, "state": "complete", "value": 0.01, "window_values": [0.01],
           "params": {"lstm_units": 8}, "default": False, "pruned_after": None,
           "pooled_skill": 0.01, "skill_ci": [0.0, 0.02], "strategy_sharpe": 0.1,
           "seconds": 1.0, "error": None}  # fmt: skip
    report = TuneReport(out=tmp_path, study=study, storage="x", resumed=False, settings={},
                        space={}, windows=[], trials=[row], search={}, selection=selection,
                        test=None, gate=gate, seconds=1.0)  # fmt: skip
    return report, config


def test_best_toml_survives_quotes_backslashes_and_line_breaks(tmp_path):
    study = 'q"uoted \\ back\\slash\nnew line\ttab \x7f é'
    report, config = _promoted(tmp_path, study, pbo=float("nan"))
    write_files(report, None)
    text = (tmp_path / "best.toml").read_text(encoding="utf-8")
    parsed = tomllib.loads(text)
    assert parsed["study"] == study and parsed["recommended"] is True
    assert parsed["trial"] == 7 and parsed["dsr"] == 0.987654321 and math.isnan(parsed["pbo"])
    expected = {k: v for k, v in config.to_dict().items() if v is not None}
    assert parsed["model"] == expected
    assert ModelConfig.from_toml(tmp_path / "best.toml") == config
