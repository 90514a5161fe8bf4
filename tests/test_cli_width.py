"""Human output fits 80 columns (COLUMNS=80 through typer's CliRunner); numbers stay whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from engine.cli.app import app
from engine.cli.export import _parity_table
from tests.test_backtest_job import make_bars, make_predictions

COLUMNS = {"COLUMNS": "80"}
runner = CliRunner()


def _fits(text: str) -> list[str]:
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, f"{len(too_wide)} lines over 80 columns, e.g. {too_wide[0]!r}"
    return lines


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env=COLUMNS)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Three tickers imported from a deep folder: the source is a path over 80 characters."""
    root = tmp_path_factory.mktemp("width")
    source = root / ("a-long-folder-name-of-vendor-files-" * 3) / "daily"
    source.mkdir(parents=True)
    for i, ticker in enumerate(("AAA", "BBB", "CCC")):
        rows = [f"2020-01-{d:02d},{10 + i},{11 + i},{9 + i},{10.5 + i},{1000 * (d + i)}"
                for d in (2, 3, 6, 7)]  # fmt: skip
        (source / f"{ticker}.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(rows))
    _ok("data", "import", str(source), "--data-dir", str(root / "data"))
    return root / "data"


def test_data_list_fits_and_writes_each_source_once(data_dir: Path) -> None:
    listing = json.loads(_ok("data", "list", "--data-dir", str(data_dir), "--json"))
    lines = _fits(_ok("data", "list", "--data-dir", str(data_dir)))
    sources = {r["source"] for r in listing}
    assert max(map(len, sources)) > 80  # the case that wrapped one row over many lines
    for r in listing:
        row = next(line for line in lines if line.split()[:1] == [r["ticker"]])
        assert str(r["rows"]) in row.split() and str(r["first_date"]) in row.split()
    # a line per ticker, title, header, rule, blank line, then each source once (wrapped)
    legend = sum(-(-(len(s) + 4) // 80) for s in sources)
    assert len(lines) <= len(listing) + 5 + legend
    assert all(s in "".join(lines) for s in sources)
    wide = _ok("data", "list", "--data-dir", str(data_dir), "--wide")
    assert all(s in wide for s in sources)


def test_validate_fits_with_every_number_whole(tmp_path: Path) -> None:
    predictions = make_predictions(make_bars(tickers=("AAA", "BBB", "CCC", "SPY")),
                                   tickers=("AAA", "BBB", "CCC"))  # fmt: skip
    path = tmp_path / "predictions.parquet"
    predictions.write_parquet(path)
    args = ["validate", "--predictions", str(path), "--n-boot", "50", "--by-ticker", "--no-track"]
    summary = json.loads(_ok(*args, "--json"))
    text = _ok(*args)
    _fits(text)
    words = text.split()
    for row in summary["metrics"] + summary["by_ticker"]:
        assert str(row["n"]) in words
        for key in ("auc", "auc_ci_low", "auc_ci_high", "brier", "brier_reference"):
            digits = 4 if key.startswith("brier") else 3
            assert f"{row[key]:.{digits}f}" in text, (key, row[key])
    assert "…" not in text


def test_export_parity_table_fits_without_cutting_a_cell() -> None:
    parity = [
        {"inputs": name, "n": 123_456, "max_abs_diff": 1.1920929e-07, "p99_abs_diff": 5.96e-08,
         "mean_abs_diff": 1.8765e-08, "tolerance": 1e-05, "ok": True}
        for name in ("held-out", "random")
    ]  # fmt: skip
    quantized = {"parity": [{**p, "max_abs_diff": 0.004843, "tolerance": 0.1} for p in parity]}
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(_parity_table({"parity": parity, "quantized": quantized}))
    text = console.export_text()
    _fits(text)
    assert "…" not in text
    for figure in ("123,456", "1.19e-07", "5.96e-08", "1.88e-08", "0.00484", "1e-05", "yes"):
        assert figure in text.split(), figure
