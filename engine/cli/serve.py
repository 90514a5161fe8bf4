"""``engine serve``: the HTTP scoring service (FastAPI under uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    MarketOption,
    PricesOption,
    SectorMapOption,
)
from engine.cli.output import call_or_exit, error_console, print_json

__all__ = ["serve_command"]


def serve_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            show_default=False,
            help="ONNX file from `engine export-onnx`, or models:/NAME@ALIAS (or /VERSION).",
        ),
    ],
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes, one session each.")
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            show_default=False,
            help="onnxruntime intra-op threads per worker (default: CPUs / workers).",
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            show_default=False,
            help="Environment variable holding the API key that POST /v1/bars and "
            "/admin/reload require (default: no key; admin endpoints off).",
        ),
    ] = None,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest request body, in MB.")
    ] = 8.0,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency",
            min=1,
            show_default=False,
            help="Requests in flight per worker above which new ones get 503 (default: none).",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            envvar="MLFLOW_TRACKING_URI",
            show_default=False,
            help="MLflow registry of a models:/ reference (default: the data directory's).",
        ),
    ] = None,
    prices: PricesOption = None,
    market: MarketOption = None,
    sector_map: SectorMapOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve pattern confidence over HTTP until interrupted (loopback by default)."""
    from engine.data.sector_map import read_sector_map
    from engine.jobs.serve import run_serve_job
    from engine.serving.settings import ServeSettings

    sectors = call_or_exit(read_sector_map, sector_map) if sector_map is not None else {}

    settings = call_or_exit(
        ServeSettings,
        model=model,
        data_dir=str(data_dir) if data_dir else None,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        api_key_env=api_key_env,
        max_body_mb=max_body_mb,
        max_concurrency=max_concurrency,
        tracking_uri=tracking_uri,
        prices=prices.value if prices else None,
        market=market,
        sector_map=sectors,
    )

    def announce(plan) -> None:
        info = plan.to_dict()
        if as_json:
            print_json(info)
            return
        err = error_console()
        m = info["model"]
        err.print(
            f"serving {m['model_id']} ({m['version']}) at {info['url']}: "
            f"{info['workers']} worker(s) x {info['threads_per_worker']} thread(s); "
            f"store {info['data_dir']} ({info['store_tickers']} tickers, last "
            f"{info['store_last_date'] or 'none'}); "
            f"API key {'required for writes' if info['api_key'] else 'off'}",
            markup=False,
        )

    seconds = call_or_exit(run_serve_job, settings, announce=announce)
    error_console().print(f"stopped after {seconds:.0f} s", markup=False)
