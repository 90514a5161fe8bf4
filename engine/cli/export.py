"""``engine export-onnx`` and ``engine predict``: a trained model as ONNX, and scores from it.

TensorFlow, tf2onnx and onnxruntime are imported inside the commands only,
so the rest of the command line starts fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from engine.cli.options import (
    DataDirOption,
    JsonOption,
    MarketOption,
    NoTrackOption,
    PricesOption,
    SectorMapOption,
    TickersOption,
    TrackingUriOption,
    as_date,
    bar_store,
    date_option,
    out_option,
    overwrite_option,
    tracking_from,
    training_data_dir_option,
)
from engine.cli.output import (
    add_columns,
    call_or_exit,
    format_or_dash,
    print_json,
    stdout_console,
)

__all__ = ["QuantizeChoice", "export_onnx_command", "predict_command"]

ExportOutOption = out_option(
    "ONNX file (default <model>/model.onnx); --quantize int8 also writes "
    "<name>.int8.onnx beside it."
)
ExportOverwriteOption = overwrite_option("Replace existing ONNX files.")
ExportDataDirOption = training_data_dir_option(
    "Data directory with the bars the model was trained on, for the held-out parity windows"
)
PredictAsOfOption = date_option(
    "--as-of", "Score with bars up to this date (default: all stored bars)."
)
PredictOutOption = out_option("Write the scores to this .parquet or .csv file (atomically).")


class QuantizeChoice(StrEnum):
    """Quantizations ``engine export-onnx`` offers."""

    int8 = "int8"


def export_onnx_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            show_default=False,
            help="Model artifact directory (<run>/models/<model_id>; a run directory lists "
            "its models).",
        ),
    ],
    out: ExportOutOption = None,
    opset: Annotated[
        int | None,
        typer.Option(
            "--opset", min=13, max=18, show_default=False, help="ONNX opset, 13 to 18 (default 17)."
        ),
    ] = None,
    quantize: Annotated[
        QuantizeChoice | None,
        typer.Option(
            "--quantize",
            show_default=False,
            help="Also write an onnxruntime dynamically quantized int8 model, with its "
            "own parity, AUC change and size report.",
        ),
    ] = None,
    overwrite: ExportOverwriteOption = False,
    registered_model: Annotated[
        str | None,
        typer.Option(
            "--registered-model",
            show_default=False,
            help="Registry name of the new version (default pattern-lstm; pattern-<kind> "
            "for other model kinds).",
        ),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    no_track: NoTrackOption = False,
    data_dir: ExportDataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a trained model to ONNX (tf2onnx) and check parity with Keras."""
    from export.onnx_export import export_onnx

    report = call_or_exit(export_onnx, model, out, data_dir=data_dir, opset=opset,
                          quantize=quantize.value if quantize else None,
                          overwrite=overwrite, registered_model=registered_model,
                          tracking=tracking_from(data_dir, tracking_uri, no_track))  # fmt: skip
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    ops = summary["op_counts"]
    console.print(
        f"{summary['model_id']} -> {summary['path']} ({summary['bytes']:,} bytes, opset "
        f"{summary['opset']}, {ops.get('LSTM', 0)} native LSTM nodes, no Loop/Scan) "
        f"in {summary['seconds']:.1f} s",
        markup=False,
    )
    if summary.get("registered"):
        r = summary["registered"]
        champion = f"v{r['champion']}" if r["champion"] else "none yet (engine models promote)"
        console.print(f"registered {r['uri']}; champion: {champion}", markup=False)
    held = summary["held_out"]
    stored = held.get("stored_predictions")
    console.print(
        f"held-out: {held['rows']:,} windows of {', '.join(held['tickers'])} in the test period "
        f"{held['test_period'][0]} to {held['test_period'][1]} rebuilt from the training bars "
        f"(fingerprint match: {'yes' if held['fingerprint_match'] else 'no'}"
        + (f"; Keras vs stored test predictions max abs diff {stored['max_abs_diff']:.3g})"
           if stored else ")"),
        markup=False,
    )  # fmt: skip
    quantized = summary["quantized"]
    console.print(_parity_table(summary))
    if quantized:
        console.print(
            f"int8 -> {quantized['path']}: {quantized['bytes']:,} bytes vs "
            f"{quantized['fp32_bytes']:,} fp32 ({quantized['size_ratio']:.2f}x)",
            markup=False,
        )
        auc = Table(title="held-out AUC, fp32 vs int8", box=box.SIMPLE_HEAD, pad_edge=False)
        for name in ("pattern", "labelled", "fp32", "int8", "change"):
            auc.add_column(name, justify="left" if name == "pattern" else "right")
        for pattern, row in quantized["auc"].items():
            auc.add_row(
                pattern,
                f"{row['n']:,}",
                format_or_dash(row["fp32"], ".4f"),
                format_or_dash(row["int8"], ".4f"),
                format_or_dash(row["change"], "+.4f"),
            )
        console.print(auc)


def predict_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            show_default=False,
            help="ONNX file written by `engine export-onnx` (fp32 or int8), a directory "
            "holding one (the model artifact), or models:/NAME@ALIAS or models:/NAME/VERSION.",
        ),
    ],
    tickers: TickersOption = "all",
    as_of: PredictAsOfOption = None,
    out: PredictOutOption = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            show_default=False,
            help="onnxruntime intra-op threads (default: its own choice).",
        ),
    ] = None,
    prices: PricesOption = None,
    market: MarketOption = None,
    sector_map: SectorMapOption = None,
    tracking_uri: TrackingUriOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score each ticker's latest 20-day window with an exported ONNX model."""
    from engine.data.sector_map import read_sector_map
    from engine.jobs.predict import run_predict_job

    sectors = call_or_exit(read_sector_map, sector_map) if sector_map is not None else None
    report = call_or_exit(run_predict_job, bar_store(data_dir), model, tickers,
                          as_of=as_date(as_of), out=out, intra_op_threads=threads,
                          prices=prices.value if prices else None, market=market,
                          sector_map=sectors, registry_uri=tracking_uri)  # fmt: skip
    summary = report.to_dict()
    if as_json:
        print_json(summary)
        return
    console = stdout_console()
    console.print(
        f"{summary['model_id']} ({summary['quantization']}, {', '.join(summary['providers'])}): "
        f"{len(summary['tickers'])} tickers in {summary['seconds']:.2f} s",
        markup=False,
    )
    table = Table(title="latest pattern confidence", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = [c for c in report.scores.columns if c not in ("ticker", "date")]
    table.add_column("ticker", no_wrap=True)
    table.add_column("date", no_wrap=True)
    for name in columns:
        table.add_column(name.removesuffix("_p").replace("_", "\n"), justify="right")
    for row in report.scores.iter_rows(named=True):
        table.add_row(row["ticker"], str(row["date"]), *(f"{row[c]:.3f}" for c in columns))
    console.print(table)
    if summary["in_sample"]:
        console.print(
            f"in-sample: {', '.join(summary['in_sample'])} (dated on or before the model's "
            f"embargo end {summary['embargo_end']})",
            style="yellow",
            markup=False,
        )
    if summary["synthetic_tickers"]:
        console.print(f"synthetic tickers: {', '.join(summary['synthetic_tickers'])}")
    if report.out:
        console.print(f"wrote {report.out}", markup=False)


def _parity_table(summary: dict[str, Any]) -> Table:
    """The fp32 (and int8) parity rows of an export summary, for 80 columns."""
    table = Table(title="parity with the Keras model (confidences: max abs diff, p99, mean)",
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    add_columns(
        table,
        [("model", "left"), ("inputs", "left"), ("n", "right"), ("max", "right"),
         ("p99", "right"), ("mean", "right"), ("tolerance", "right"), ("ok", "left")],
        overflow="fold",
    )  # fmt: skip
    _parity_rows(table, "fp32", summary["parity"])
    if summary["quantized"]:
        _parity_rows(table, "int8", summary["quantized"]["parity"])
    return table


def _parity_rows(table: Table, model: str, rows: list[dict[str, Any]]) -> None:
    """Add one parity row per input set of ``model`` (fp32 or int8) to ``table``."""
    for p in rows:
        figures = (f"{p[k]:.3g}" for k in ("max_abs_diff", "p99_abs_diff", "mean_abs_diff"))
        table.add_row(model, p["inputs"], f"{p['n']:,}", *figures, f"{p['tolerance']:g}",
                      "yes" if p["ok"] else "NO")  # fmt: skip
