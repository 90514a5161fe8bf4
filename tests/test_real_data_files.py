"""Files on disk (issue 17, item 8): permissions follow the umask, bad places are named.

* every file the engine writes gets ``0o666 & ~umask`` and every directory
  ``0o777 & ~umask`` (what ``open`` and ``mkdir`` give), not the 600/700 of
  :mod:`tempfile`; checked under two umasks against that formula;
* a truncated stored Parquet file is reported with its path and the
  command that rewrites it, through the library and the CLI;
* a data directory or output path that cannot be written is named.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from engine.data.store import BarStore
from engine.io import atomic_write_bytes, current_umask, staging_dir, write_parquet_atomic

BARS = pl.DataFrame(
    {
        "ticker": ["AAA"] * 3,
        "date": [dt.date(2020, 1, d) for d in (2, 3, 6)],
        "open": [10.0, 10.5, 11.0],
        "high": [11.0, 11.5, 12.0],
        "low": [9.0, 10.0, 10.5],
        "close": [10.5, 11.0, 11.5],
        "volume": [1e3, 1.1e3, 1.2e3],
    }
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o027], ids=["umask 022", "umask 027"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_written_files_and_directories_follow_the_umask(umask, tmp_path):
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    target = tmp_path / "out" / "nested" / "x.bin"
    atomic_write_bytes(target, b"x")
    assert _mode(target) == file_mode
    assert _mode(target.parent) == dir_mode
    write_parquet_atomic(BARS, tmp_path / "f.parquet")
    assert _mode(tmp_path / "f.parquet") == file_mode
    assert _mode(staging_dir(tmp_path, prefix=".stage.")) == dir_mode

    store = BarStore(tmp_path / "data")
    store.write(BARS)
    written = [p for p in (tmp_path / "data").rglob("*")]
    assert written  # bars/, bars/AAA.parquet, metadata.json
    for path in written:
        assert _mode(path) == (dir_mode if path.is_dir() else file_mode), path


def test_a_model_artifact_directory_follows_the_umask(umask, tmp_path):
    import keras

    from engine.model.artifacts import write_model_artifact

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    history = pl.DataFrame({"epoch": [0], "loss": [1.0]})
    out = write_model_artifact(
        tmp_path / "run" / "models" / "wf00",
        model=model,
        metadata={"model_id": "wf00", "feature_names": ["a", "b"]},
        history=history,
    )
    assert _mode(out) == 0o777 & ~umask
    for path in out.iterdir():
        assert _mode(path) == 0o666 & ~umask, path


# ------------------------------------------------------------------ corrupt files


@pytest.fixture
def stored(tmp_path):
    store = BarStore(tmp_path / "data")
    store.write(BARS)
    return store


def test_truncated_parquet_names_the_file_and_the_fix(stored):
    path = stored.bars_path("AAA")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError) as caught:
        stored.read_bars(["AAA"])
    message = str(caught.value)
    assert f"{path} is truncated or corrupt" in message
    assert "re-import AAA with `engine data import PATH --overwrite`" in message


def test_missing_parquet_names_the_file(stored):
    stored.bars_path("AAA").unlink()
    with pytest.raises(ValueError, match=r"stored bars of AAA are missing: .*AAA\.parquet"):
        stored.read_bars()


def test_cli_reports_a_corrupt_file_without_a_traceback(stored):
    from engine.cli import app

    stored.bars_path("AAA").write_bytes(b"PAR1 not really")
    result = CliRunner().invoke(
        app, ["features", "--tickers", "AAA", "--features", "price_level", "--data-dir",
              str(stored.data_dir)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "AAA.parquet is truncated or corrupt" in result.output


# ------------------------------------------------------------------ unwritable places


def _read_only(directory: Path) -> None:
    """Make ``directory`` unwritable for this process, or skip where that is impossible."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o555)
    if os.geteuid() == 0 and shutil.which("chattr"):  # root ignores modes: make it immutable
        subprocess.run(["chattr", "+i", str(directory)], check=False, capture_output=True)
    probe = directory / ".probe"
    try:
        probe.touch()
    except OSError:
        return
    probe.unlink()
    pytest.skip("this process can write to any directory (root without chattr)")


def _writable_again(directory: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(directory)], check=False, capture_output=True)
    directory.chmod(0o755)


@pytest.fixture
def read_only_dir(tmp_path):
    directory = tmp_path / "locked"
    _read_only(directory)
    yield directory
    _writable_again(directory)


def test_an_unwritable_data_directory_is_named(read_only_dir):
    with pytest.raises(PermissionError, match=rf"cannot write to {read_only_dir}"):
        BarStore(read_only_dir).write(BARS)
    with pytest.raises(PermissionError, match=rf"cannot write to {read_only_dir / 'sub'}"):
        atomic_write_bytes(read_only_dir / "sub" / "x.json", b"{}")
    assert list(read_only_dir.iterdir()) == []


def test_cli_names_an_unwritable_data_directory_and_output_path(read_only_dir, tmp_path):
    from engine.cli import app

    source = tmp_path / "src" / "AAA.csv"
    source.parent.mkdir()
    BARS.drop("ticker").write_csv(source)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "import", str(source), "--data-dir", str(read_only_dir)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"cannot write to {read_only_dir}" in result.output

    data_dir = tmp_path / "data"
    imported = runner.invoke(app, ["data", "import", str(source), "--data-dir", str(data_dir)])
    assert imported.exit_code == 0, imported.output
    out = read_only_dir / "features.parquet"
    result = runner.invoke(
        app, ["features", "--tickers", "AAA", "--features", "price_level", "--out", str(out),
              "--data-dir", str(data_dir)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"cannot write to {read_only_dir}" in result.output
