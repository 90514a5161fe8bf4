"""The ``engine`` typer app: every command and where it lives.

The CLI is thin: each command parses its options, calls one engine function
and prints the result (see `engine.cli.output` for how expected errors
become a red line and exit code 1). Shared options are declared once in
`engine.cli.options`. Commands that need TensorFlow or onnxruntime import
them when they run, so ``engine --help`` and ``engine data list`` start fast.
"""

from __future__ import annotations

import typer

from engine.cli import (
    backtest,
    compare,
    data,
    explain,
    export,
    features,
    lifecycle,
    models,
    pipeline,
    runtime,
    serve,
    train,
    tune,
)

__all__ = ["app", "data_app", "main"]

app = typer.Typer(
    name="engine",
    no_args_is_help=True,
    help="Causal pattern features, leakage-free validation and ONNX serving for daily OHLCV bars.",
)
data_app = typer.Typer(
    name="data",
    no_args_is_help=True,
    help="Import, generate and list the OHLCV bars in the data directory.",
)
app.callback()(runtime.main_options)
app.add_typer(data_app, name="data")

# The order here is the order of ``engine --help`` (commands first, then ``data``).
data_app.command("import")(data.import_command)
data_app.command("demo")(data.demo_command)
data_app.command("list")(data.list_command)
app.command("features")(features.features_command)
app.command("targets")(features.targets_command)
app.command("train")(train.train_command)
app.command("validate")(train.validate_command)
app.command("tune")(tune.tune_command)
app.command("compare")(compare.compare_command)
app.command("ensemble")(compare.ensemble_command)
app.command("explain")(explain.explain_command)
app.command("export-onnx")(export.export_onnx_command)
app.command("predict")(export.predict_command)
app.command("backtest")(backtest.backtest_command)
app.command("pipeline")(pipeline.pipeline_command)
app.command("serve")(serve.serve_command)
app.command("drift")(lifecycle.drift_command)
app.command("retrain")(lifecycle.retrain_command)
app.add_typer(models.models_app, name="models")


def main() -> None:  # pragma: no cover - console entry point convenience
    """Run the CLI."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
