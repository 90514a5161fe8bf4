"""CLI tests for `engine data import|demo|list` through typer's CliRunner."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.data.store import BarStore
from engine.data.universe import DEFAULT_UNIVERSE

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume"
GOOD_ROWS = [
    "2020-01-02,10,11,9,10.5,10.4,1000",
    "2020-01-03,10.5,11.5,10,11,10.9,1100",
    "2020-01-06,11,12,10.5,11.5,11.4,1200",
]

runner = CliRunner()


def write_csv(path: Path, rows: list[str], header: str = YAHOO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def test_no_args_shows_help():
    result = invoke()
    assert "data" in result.output and "Usage" in result.output


def test_import_then_list_json(tmp_path):
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    data = tmp_path / "data"
    result = invoke("data", "import", str(tmp_path / "src"), "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert "wrote 3 rows for 1 tickers" in result.stdout and "new: AAPL" in result.stdout

    result = invoke("data", "list", "--data-dir", str(data), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [
        {
            "ticker": "AAPL",
            "first_date": "2020-01-02",
            "last_date": "2020-01-06",
            "rows": 3,
            "synthetic": False,
            "role": "security",
            "source": str((tmp_path / "src" / "AAPL.csv").resolve()),
        }
    ]


def test_list_table_and_empty_store(tmp_path):
    result = invoke("data", "list", "--data-dir", str(tmp_path / "none"))
    assert result.exit_code == 0 and "no bars in" in result.stdout
    assert json.loads(invoke("data", "list", "--data-dir", str(tmp_path), "--json").stdout) == []
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    invoke("data", "import", str(tmp_path / "src"), "--data-dir", str(tmp_path / "d"))
    result = invoke("data", "list", "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 0
    expected = ("ticker", "first date", "synthetic", "AAPL", "2020-01-02", "2020-01-06", "security")
    for text in expected:
        assert text in result.stdout


def test_data_dir_comes_from_the_environment(tmp_path):
    write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    env = {"ENGINE_DATA_DIR": str(tmp_path / "envdata")}
    assert invoke("data", "import", str(tmp_path / "src"), env=env).exit_code == 0
    assert BarStore(tmp_path / "envdata").tickers() == ["AAPL"]


def test_bad_rows_exit_1_with_red_message_and_no_traceback(tmp_path):
    write_csv(tmp_path / "seed" / "MSFT.csv", GOOD_ROWS)
    data = tmp_path / "data"
    assert invoke("data", "import", str(tmp_path / "seed"), "--data-dir", str(data)).exit_code == 0
    bad_row = "2020-01-06,11,12,10.5,11.5,11.4,-7"
    src = write_csv(tmp_path / "src" / "AAPL.csv", [*GOOD_ROWS[:2], bad_row])
    before = snapshot(data)

    result = invoke("data", "import", str(src.parent), "--data-dir", str(data))
    assert result.exit_code == 1
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: invalid bars in") and "negative_volume: 1" in first
    assert f"{src.resolve()}: row 3, ticker AAPL, date 2020-01-06: negative_volume" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(data) == before

    args = ["--data-dir", str(data), "--on-bad-rows", "drop", "--json"]
    result = invoke("data", "import", str(src.parent), *args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dropped_by_rule"] == {"negative_volume": 1} and report["rows"] == {"AAPL": 2}
    assert Path(report["rejected_files"]["AAPL"]).is_file()


def test_existing_ticker_needs_overwrite(tmp_path):
    src = write_csv(tmp_path / "src" / "AAPL.csv", GOOD_ROWS)
    data = str(tmp_path / "data")
    assert invoke("data", "import", str(src.parent), "--data-dir", data).exit_code == 0
    result = invoke("data", "import", str(src.parent), "--data-dir", data)
    assert result.exit_code == 1
    assert "error: 1 ticker already in" in result.stderr and "--overwrite" in result.stderr
    result = invoke("data", "import", str(src.parent), "--data-dir", data, "--overwrite")
    assert result.exit_code == 0 and "replaced: AAPL (3 -> 3 rows)" in result.stdout


def test_missing_path_and_bad_option(tmp_path):
    result = invoke("data", "import", str(tmp_path / "nope"), "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "import path does not exist" in result.stderr
    result = invoke("data", "import", str(tmp_path), "--on-bad-rows", "skip")
    assert result.exit_code == 2  # click usage error


# ---------------------------------------------------------------- demo (engine/data/demo.py)

demo = pytest.importorskip("engine.data.demo", reason="engine/data/demo.py is not there yet")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    result = invoke("data", "demo", "--data-dir", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["seed"] == 7 and len(report["rows"]) == 35
    return data


def test_demo_then_list_shows_35_tickers_with_synthetic_flags(demo_dir):
    rows = json.loads(invoke("data", "list", "--data-dir", str(demo_dir), "--json").stdout)
    by_ticker = {r["ticker"]: r for r in rows}
    assert sorted(by_ticker) == sorted({*DEFAULT_UNIVERSE, "VIX"})
    assert len(rows) == 35
    real = {t for t, r in by_ticker.items() if not r["synthetic"]}
    assert real == {"SPY", "QQQ", "VIX"}
    assert by_ticker["VIX"]["role"] == "volatility_index"
    assert {r["role"] for t, r in by_ticker.items() if t != "VIX"} == {"security"}
    store = BarStore(demo_dir)
    assert store.metadata()["store"]["demo_seed"] == 7
    assert store.verify() == []


def test_demo_refuses_to_overwrite_and_is_byte_identical_for_the_same_seed(demo_dir, tmp_path):
    before = snapshot(demo_dir)
    result = invoke("data", "demo", "--data-dir", str(demo_dir))
    assert result.exit_code == 1 and "35 tickers already in" in result.stderr
    assert snapshot(demo_dir) == before
    result = invoke("data", "demo", "--data-dir", str(demo_dir), "--overwrite", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert snapshot(demo_dir) == before

    other = tmp_path / "seed8"
    assert invoke("data", "demo", "--data-dir", str(other), "--seed", "8").exit_code == 0
    a, b = snapshot(demo_dir), snapshot(other)
    assert a["bars/SPY.parquet"] == b["bars/SPY.parquet"]  # real series do not depend on the seed
    assert a["bars/AAPL.parquet"] != b["bars/AAPL.parquet"]
