"""Shared fixtures and the ratio summary for the benchmark suite.

Fixtures are session-scoped and built once: the demo universe (34 securities
and VIX, about 5,000 days) and a deterministic 500-ticker panel derived from
its synthetic stocks (with 0.1 % null closes, as polars' own benchmark data
carries nulls).

Every benchmark tags itself through ``benchmark.extra_info``:

* ``role``: ``"ours"``, ``"variant"`` (another configuration of ours),
  ``"baseline"`` or ``"info"``;
* ``target``: the ratio a baseline is reported against (never asserted);
* ``label``: short name shown in the ratio table (``engine``, ``pandas``, ...);
* ``rows``: rows processed per call (for rows per second), or
* ``fits``: GARCH fits per call (for time per fit).

After a ``--benchmark-enable`` run, :func:`pytest_terminal_summary` prints one
table per group with the median time, the per-unit time, the ratio
``baseline / ours`` and the throughput of ours, plus the scaling of ours from
34 to 500 tickers. With benchmarks disabled (the default) it prints nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for ``tests.oracles`` when pytest runs without ``-m``
    sys.path.insert(0, str(ROOT))

from engine.data.demo import generate_demo_universe  # noqa: E402

N_WIDE = 500
NULL_RATIO = 0.001
WIDE_SEED = 20240607
BENCHMARK_TICKERS = ("SPY", "XLK", "VIX")


@pytest.fixture(scope="session")
def demo_bars() -> pl.DataFrame:
    """The embedded demo universe: 34 securities x ~5,031 days, plus VIX."""
    return generate_demo_universe(seed=7).bars


@pytest.fixture(scope="session")
def wide_bars(demo_bars: pl.DataFrame) -> pl.DataFrame:
    """500 tickers derived from the demo's synthetic stocks, plus SPY, XLK and VIX."""
    return make_wide_panel(demo_bars, N_WIDE, seed=WIDE_SEED, null_ratio=NULL_RATIO)


def make_wide_panel(
    demo: pl.DataFrame, n_tickers: int, *, seed: int, null_ratio: float
) -> pl.DataFrame:
    """Deterministic wide panel: perturbed copies of the demo's synthetic stocks.

    Ticker ``W000..`` is a copy of a demo stock (cycled) whose close-to-close
    log returns are scaled by ``U(0.8, 1.25)`` and get ``N(0, 0.4 %)`` noise
    added, from a random starting level. Open, high and low are multiplied by
    the same per-day factor as the close, so every OHLC relation is kept.
    Volume gets ``N(0, 0.25)`` log noise. A fraction ``null_ratio`` of closes
    is set to null. The benchmarks (SPY, XLK, VIX) are kept unchanged.
    """
    rng = np.random.default_rng(seed)
    bases = sorted(
        set(demo.get_column("ticker").unique().to_list()) - {"SPY", "QQQ", "XLK", "VIX", "VIX3M"}
    )
    frames = {t: g for (t,), g in demo.partition_by("ticker", as_dict=True).items()}
    parts = []
    for i in range(n_tickers):
        g = frames[bases[i % len(bases)]]
        close = g.get_column("close").to_numpy()
        n = close.shape[0]
        r = np.diff(np.log(close))
        r_new = r * rng.uniform(0.8, 1.25) + rng.normal(0.0, 0.004, n - 1)
        level = close[0] * np.exp(rng.normal(0.0, 0.5))
        new_close = level * np.exp(np.concatenate(([0.0], np.cumsum(r_new))))
        factor = new_close / close
        volume = np.round(g.get_column("volume").to_numpy() * np.exp(rng.normal(0, 0.25, n)))
        null = rng.random(n) < null_ratio
        parts.append(
            pl.DataFrame(
                {
                    "ticker": pl.Series([f"W{i:03d}"] * n, dtype=pl.String),
                    "date": g.get_column("date"),
                    "open": g.get_column("open").to_numpy() * factor,
                    "high": g.get_column("high").to_numpy() * factor,
                    "low": g.get_column("low").to_numpy() * factor,
                    "close": pl.Series(new_close).scatter(np.flatnonzero(null), None),
                    "volume": volume,
                }
            ).with_columns(adj_close=pl.col("close"))
        )
    keep = demo.filter(pl.col("ticker").is_in(BENCHMARK_TICKERS)).select(parts[0].columns)
    return pl.concat([*parts, keep]).sort("ticker", "date")


# ---------------------------------------------------------------------------
# summary table
# ---------------------------------------------------------------------------
def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:8.2f} {unit}"
    return f"{seconds / 1e-9:8.1f} ns"


def _per_unit(bench) -> float:
    """Median seconds per call, or per fit when the benchmark counts fits."""
    return bench.stats.median / bench.extra_info.get("fits", 1)


def summary_lines(benchmarks) -> list[str]:
    """Ratio tables per group, from pytest-benchmark's Metadata objects."""
    groups: dict[str, list] = {}
    for bench in benchmarks:
        if not bench or bench.has_error:
            continue
        groups.setdefault(bench.group or "(no group)", []).append(bench)
    order = {"ours": 0, "variant": 1, "baseline": 2}
    lines: list[str] = []
    throughput: dict[str, float] = {}
    for group in sorted(groups):
        lines.append(f"[{group}]")
        members = sorted(groups[group], key=lambda b: order.get(b.extra_info.get("role"), 3))
        for bench in members:
            info = bench.extra_info
            median = bench.stats.median
            row = f"  {info.get('label', bench.name):<12} median {_fmt_time(median)}"
            if "fits" in info:
                row += f"  ({info['fits']} fits, {_fmt_time(_per_unit(bench)).strip()} per fit)"
            if "rows" in info:
                rps = info["rows"] / median
                row += f"  {info['rows']:,} rows, {rps / 1e6:.3f} M rows/s"
                if info.get("role") == "ours":
                    throughput[group] = rps
            if "sequences" in info:
                row += f"  {info['sequences']:,} sequences, {info['sequences'] / median:,.0f} seq/s"
            if "compile_s" in info:
                row += f"  -> numba compile {info['compile_s']:.2f} s (cold cache, subprocess)"
            lines.append(row)
        ours = [b for b in members if b.extra_info.get("role") in ("ours", "variant")]
        for base in (b for b in members if b.extra_info.get("role") == "baseline"):
            for mine in ours:
                ratio = _per_unit(base) / _per_unit(mine)
                per = " per fit" if "fits" in base.extra_info else ""
                target = base.extra_info.get("target")
                is_ours = mine.extra_info["role"] == "ours"
                shown = f"  (target {target})" if target and is_ours else ""
                lines.append(
                    f"  {base.extra_info['label']} / {mine.extra_info['label']}"
                    f" = {ratio:.1f}x{per}{shown}"
                )
    small, big = throughput.get("features16|demo"), throughput.get("features16|500")
    if small and big:
        lines.append("[scaling of engine, features16]")
        lines.append(
            f"  34 tickers {small / 1e6:.3f} M rows/s, 500 tickers {big / 1e6:.3f} M rows/s"
            f"  (500 / 34 throughput = {big / small:.2f}; 1.00 = linear scaling)"
        )
    return lines


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    lines = summary_lines(session.benchmarks)
    if not lines:
        return
    terminalreporter.write_sep("=", "benchmark ratios (baseline / ours; medians)")
    for line in lines:
        terminalreporter.write_line(line)
