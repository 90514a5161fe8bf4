"""The options several commands share, each declared once.

An option whose help text is the same everywhere is a type alias to annotate
a command parameter with (``data_dir: DataDirOption = None``). An option whose
help text depends on the command (what ``--out`` writes, what ``--seed``
seeds) is made by a function that takes that text; the command module keeps
the result as a module-level alias, because typer reads the annotations by
name.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.data.loading import BarInputs
from engine.data.paths import DATA_DIR_ENV, resolve_data_dir
from engine.data.prices import DEFAULT_PRICES
from engine.data.sector_map import read_sector_map
from engine.data.store import BarStore
from engine.tracking.settings import Tracking

__all__ = [
    "DATE_FORMATS",
    "DataDirOption",
    "DeterministicOption",
    "JsonOption",
    "MarketOption",
    "MinTrainSequencesOption",
    "NoTrackOption",
    "PriceChoice",
    "PricesOption",
    "SectorMapOption",
    "TickersOption",
    "TrackingUriOption",
    "WideOption",
    "as_date",
    "bar_inputs",
    "bar_store",
    "date_option",
    "end_option",
    "n_boot_option",
    "out_option",
    "overwrite_option",
    "report_option",
    "resume_option",
    "seed_option",
    "start_option",
    "tracking_from",
    "training_data_dir_option",
]


class PriceChoice(StrEnum):
    """``--prices``: the price basis features and targets are computed on."""

    adjusted = "adjusted"
    raw = "raw"


#: The one date format the command line accepts.
DATE_FORMATS = ["%Y-%m-%d"]

TickersOption = Annotated[
    str,
    typer.Option(
        "--tickers",
        help="'all' (every stored security), a named list (default, stocks, etfs) "
        "or a comma list such as AAPL,MSFT.",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help=f"Data directory (default: ${DATA_DIR_ENV}, else ~/.local/share/engine).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Print every column in full, wider than 80 columns if needed."),
]
PricesOption = Annotated[
    PriceChoice | None,
    typer.Option(
        "--prices",
        show_default=False,
        help="adjusted: open, high, low and close times adj_close / close (total return; "
        "tickers without adj_close stay raw); raw: as stored. Default: adjusted (predict "
        "and serve: the model's).",
    ),
]
MarketOption = Annotated[
    str | None,
    typer.Option(
        "--market",
        show_default=False,
        help="Market benchmark ticker (default SPY; predict and serve: the model's).",
    ),
]
SectorMapOption = Annotated[
    Path | None,
    typer.Option(
        "--sector-map",
        show_default=False,
        help="TOML or CSV file mapping tickers to sector ETFs (ticker,sector); unlisted "
        "stocks use XLK and ETFs the market (predict and serve: added to the model's map).",
    ),
]
MinTrainSequencesOption = Annotated[
    int | None,
    typer.Option(
        "--min-train-sequences",
        min=0,
        show_default=False,
        help="Skip (and list) walk-forward windows with fewer training sequences "
        "(default 2000; pipeline --quick: 0, every window).",
    ),
]
DeterministicOption = Annotated[
    bool, typer.Option("--deterministic", help="Deterministic TensorFlow ops (slower).")
]
TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        show_default=False,
        help="MLflow tracking and registry URI, e.g. a shared server "
        "(default: sqlite:///<data-dir>/mlflow.db).",
    ),
]
NoTrackOption = Annotated[
    bool,
    typer.Option(
        "--no-track",
        envvar="ENGINE_NO_TRACK",
        help="Log nothing to MLflow (tracking failures only ever warn).",
    ),
]


def training_data_dir_option(
    what: str,
    default: str = f"the training run's, else ${DATA_DIR_ENV} or ~/.local/share/engine",
) -> Any:
    """``--data-dir`` of a command that reads a training run: the run's data directory first.

    It reads no environment variable itself: the job falls back to the
    training run's directory (then, by default, to ``$ENGINE_DATA_DIR``).

    Parameters
    ----------
    what
        Help text before the stated default, e.g. ``"Data directory with the bars"``.
    default
        What the job uses without the option, as the help states it.

    Examples
    --------
    >>> option = training_data_dir_option("Data directory with the bars").__metadata__[0]
    >>> option.envvar is None, option.help.endswith("or ~/.local/share/engine).")
    (True, True)
    """
    return Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            show_default=False,
            help=f"{what} (default: {default}).",
        ),
    ]


def date_option(flag: str, help: str) -> Any:
    """A ``YYYY-MM-DD`` date option named ``flag``; absent by default.

    Examples
    --------
    >>> date_option("--as-of", "Score with bars up to this date.").__metadata__[0].formats
    ['%Y-%m-%d']
    """
    return Annotated[
        datetime | None,
        typer.Option(flag, formats=DATE_FORMATS, show_default=False, help=help),
    ]


def start_option(help: str) -> Any:
    """``--start``: the first date a command keeps."""
    return date_option("--start", help)


def end_option(help: str) -> Any:
    """``--end``: the last date a command keeps."""
    return date_option("--end", help)


def out_option(help: str) -> Any:
    """``--out``: where a command writes; absent by default, each command has its own."""
    return Annotated[Path | None, typer.Option("--out", show_default=False, help=help)]


def overwrite_option(help: str) -> Any:
    """``--overwrite``: replace what an earlier run wrote (``help`` says what)."""
    return Annotated[bool, typer.Option("--overwrite", help=help)]


def resume_option(help: str) -> Any:
    """``--resume``: continue what an interrupted run left in ``--out`` (``help`` says how)."""
    return Annotated[bool, typer.Option("--resume", help=help)]


def seed_option(help: str) -> Any:
    """``--seed``: a non-negative seed (``help`` says of what)."""
    return Annotated[int, typer.Option("--seed", min=0, help=help)]


def n_boot_option(help: str) -> Any:
    """``--n-boot``: bootstrap replicates, at least 10."""
    return Annotated[int, typer.Option("--n-boot", min=10, help=help)]


def report_option(help: str) -> Any:
    """``--report``: a directory for the HTML report and its files; none by default."""
    return Annotated[Path | None, typer.Option("--report", show_default=False, help=help)]


def bar_store(data_dir: Path | None) -> BarStore:
    """The bar store of ``--data-dir`` (else ``$ENGINE_DATA_DIR``, else the default)."""
    return BarStore(resolve_data_dir(data_dir))


def bar_inputs(
    prices: PriceChoice | str | None = None,
    market: str | None = None,
    sector_map: Path | None = None,
) -> BarInputs:
    """The bar choices of ``--prices``, ``--market`` and ``--sector-map`` (file read here).

    Examples
    --------
    >>> bar_inputs(None, "qqq").to_dict()
    {'prices': 'adjusted', 'market': 'QQQ', 'sector_map': {}}
    """
    return BarInputs(
        prices=str(prices.value if isinstance(prices, PriceChoice) else prices or DEFAULT_PRICES),
        market=market.strip().upper() if market else BarInputs().market,
        sector_map=read_sector_map(sector_map) if sector_map is not None else {},
    )


def tracking_from(
    data_dir: Path | None, tracking_uri: str | None = None, no_track: bool = False
) -> Tracking:
    """The MLflow tracking of a command: ``--data-dir``, ``--tracking-uri``, ``--no-track``.

    Examples
    --------
    >>> tracking_from(Path("/d"), None, True).enabled
    False
    >>> tracking_from(Path("/d"), "sqlite:////x.db").resolve().uri
    'sqlite:////x.db'
    """
    return Tracking.from_options(data_dir, tracking_uri, no_track, environ={})


def as_date(value: datetime | None) -> date | None:
    """The date of a parsed date option (click parses them as datetimes).

    Examples
    --------
    >>> as_date(datetime(2020, 1, 31)), as_date(None)
    (datetime.date(2020, 1, 31), None)
    """
    return value.date() if value else None
