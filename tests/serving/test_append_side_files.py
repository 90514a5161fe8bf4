"""``POST /v1/bars`` keeps the rows an import set aside: ``repaired/`` and ``rejected/`` files.

``BarStore.write`` removes a written ticker's side files unless they are
given again; the import that wrote them is the reference here, run for real.
"""

from __future__ import annotations

import polars as pl

from engine.data.importer import import_bars
from tests.serving.conftest import API_KEY, KEY_ENV, next_bars


def _import(store, tmp_path, ticker: str, broken: pl.DataFrame, on_bad_rows: str) -> None:
    path = tmp_path / f"{ticker}.csv"
    broken.write_csv(path)
    import_bars(path, store, on_bad_rows=on_bad_rows, overwrite=True)


def test_append_keeps_the_imports_repaired_and_rejected_files(make_client, store, tmp_path):
    bars = store.read_bars()
    aapl = bars.filter(pl.col("ticker") == "AAPL").drop("ticker")
    row = 100  # high below close: repaired (widened) by --on-bad-rows repair
    aapl = aapl.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.col("close") * 0.9)
        .otherwise(pl.col("high"))
        .alias("high")
    )
    _import(store, tmp_path, "AAPL", aapl, "repair")
    msft = bars.filter(pl.col("ticker") == "MSFT").drop("ticker")
    msft = pl.concat([msft, msft.slice(50, 1)]).sort("date")  # a duplicate date: dropped
    _import(store, tmp_path, "MSFT", msft, "drop")
    repaired, rejected = store.repaired_dir / "AAPL.csv", store.rejected_dir / "MSFT.csv"
    before = {path: path.read_bytes() for path in (repaired, rejected)}
    extra = {t: store.metadata()["tickers"][t]["extra"] for t in ("AAPL", "MSFT")}
    assert extra["AAPL"]["repaired_rows"] == 1 and extra["MSFT"]["rejected_rows"] == 1

    client = make_client(api_key_env=KEY_ENV)
    new = next_bars(store, ["AAPL", "MSFT"], days=1)
    done = client.post("/v1/bars", json={"bars": new}, headers={"X-API-Key": API_KEY})
    assert done.status_code == 200, done.text
    assert done.json()["appended"] == {"AAPL": 1, "MSFT": 1}
    for path, content in before.items():
        assert path.exists(), path
        assert path.read_bytes() == content, path
    after = store.metadata()["tickers"]
    assert after["AAPL"]["extra"]["repaired_rows"] == 1
    assert after["MSFT"]["extra"]["rejected_rows"] == 1
    assert store.verify() == []
