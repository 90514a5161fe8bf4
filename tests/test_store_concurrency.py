"""Two processes writing one bar store at once lose nothing.

``BarStore.write`` reads ``metadata.json``, adds its tickers and renames a
new one into place. Without the store's lock, two writers interleave and
the later rename drops the other's tickers: two processes writing 15
tickers each left 15 and 22 of the 30 in the metadata, in two runs before
the lock. The lock is also re-entrant within a thread, so a read-modify-write
(the service's daily append) can hold it around ``write``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing as mp
import threading

import polars as pl

from engine.data.store import BarStore

WRITES = 15


def _bars(ticker: str, n: int = 300) -> pl.DataFrame:
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    prices = [100.0 + i for i in range(n)]
    return pl.DataFrame({"ticker": ticker, "date": days, "open": prices, "high": prices,
                         "low": prices, "close": prices, "volume": 1e6})  # fmt: skip


def _writer(data_dir: str, prefix: str) -> None:
    store = BarStore(data_dir)
    for i in range(WRITES):
        store.write(_bars(f"{prefix}{i}"), overwrite=True)


def test_two_processes_writing_at_once_keep_every_ticker(tmp_path):
    context = mp.get_context("spawn")
    writers = [context.Process(target=_writer, args=(str(tmp_path), p)) for p in ("A", "B")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
        assert w.exitcode == 0
    store = BarStore(tmp_path)
    want = sorted(f"{p}{i}" for p in ("A", "B") for i in range(WRITES))
    assert store.tickers() == want
    for ticker, entry in store.metadata()["tickers"].items():  # files and index agree
        assert hashlib.sha256(store.bars_path(ticker).read_bytes()).hexdigest() == entry["sha256"]
    assert store.verify() == []


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path):
    store = BarStore(tmp_path)
    order = []

    def other() -> None:
        with BarStore(tmp_path).lock():
            order.append("other")

    with store.lock():
        with store.lock():  # the append's read-modify-write around write()
            store.write(_bars("AAA"))
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # waits for this thread's lock
        order.append("held")
    thread.join(timeout=30)
    assert order == ["held", "other"]
    assert store.tickers() == ["AAA"]
