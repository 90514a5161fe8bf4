"""Training throughput (sequences per second) at batch 64 on CPU, and a full demo run.

Group ``train|epoch`` times one training epoch over 6,400 real demo sequences
(twelve demo stocks at stride 5, the SPEC model, batch 64):

* ``engine``: one epoch of :func:`engine.model.trainer.fit_model`'s work, i.e.
  ``model.fit`` with the masked loss plus the per-epoch monitor (masked loss
  of the whole training and validation folds in inference mode);
* ``fit-only`` (variant): the same ``model.fit`` epoch without the monitor;
* ``keras``: what a Keras user writes without the engine, the same network
  compiled with Keras's own ``binary_crossentropy`` (labels with NaN set to
  0, so no masking) and ``model.fit`` for one epoch.

``keras / engine`` is therefore the cost of masking and of the honest
train/validation monitor (below 1: the engine does more work per epoch).

``train|demo-walk-forward`` runs the whole ``engine train --split
walk-forward`` job on the 34-ticker demo (14 windows, up to 25 epochs each).
It takes several minutes on 2 cores, so it runs only with ``BENCH_FULL=1``.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from engine.data.universe import STOCKS  # noqa: E402
from engine.model.network import ModelConfig, build_model, compile_model  # noqa: E402
from engine.model.runs import RunSettings, prepare_dataset, train_windows  # noqa: E402
from engine.model.trainer import _EpochRecorder, normalization_stats  # noqa: E402

N_TRAIN = 6400
N_VAL = 1600


@pytest.fixture(scope="module")
def demo_sequences(demo_bars):
    tickers = list(STOCKS[:12])
    settings = RunSettings(split="holdout")
    data = prepare_dataset(demo_bars, tickers, settings)
    X, y = data.train_set.X, data.train_set.y
    assert X.shape[0] >= N_TRAIN + N_VAL
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN : N_TRAIN + N_VAL], y[N_TRAIN : N_TRAIN + N_VAL]


def _model(X, n_patterns):
    mean, var = normalization_stats(X)
    keras.utils.set_random_seed(0)
    return build_model(ModelConfig(), n_features=X.shape[2], n_patterns=n_patterns,
                       mean=mean, variance=var)  # fmt: skip


def _epoch(model, X, y, callbacks=()):
    model.fit(X, y, batch_size=64, epochs=1, shuffle=True, verbose=0, callbacks=list(callbacks))


@pytest.mark.parametrize("monitor", [True, False], ids=["engine", "fit-only"])
def test_train_epoch_engine(benchmark, demo_sequences, monitor):
    X, y, Xv, yv = demo_sequences
    model = compile_model(_model(X, y.shape[1]), ModelConfig())
    callbacks = [_EpochRecorder((X, y), (Xv, yv), None)] if monitor else []
    _epoch(model, X, y, callbacks)  # trace the graphs before timing
    benchmark.group = "train|epoch"
    benchmark.pedantic(_epoch, args=(model, X, y, callbacks), rounds=5, iterations=1)
    label = "engine" if monitor else "fit-only"
    benchmark.extra_info.update(role="ours" if monitor else "variant", label=label,
                                sequences=N_TRAIN)  # fmt: skip
    assert np.isfinite(model.get_weights()[0]).all()


def test_train_epoch_keras(benchmark, demo_sequences):
    X, y, _, _ = demo_sequences
    model = _model(X, y.shape[1])
    model.compile(keras.optimizers.Adam(8e-4, clipnorm=1.0), loss="binary_crossentropy")
    y0 = np.nan_to_num(y, nan=0.0)
    _epoch(model, X, y0)
    benchmark.group = "train|epoch"
    benchmark.pedantic(_epoch, args=(model, X, y0), rounds=5, iterations=1)
    benchmark.extra_info.update(role="baseline", label="keras", sequences=N_TRAIN)


@pytest.mark.skipif(os.environ.get("BENCH_FULL") != "1", reason="several minutes: BENCH_FULL=1")
def test_demo_walk_forward(benchmark, demo_bars):
    settings = RunSettings(split="walk-forward")
    tickers = sorted(t for t in demo_bars["ticker"].unique() if t not in ("VIX", "VIX3M"))

    def run():
        data = prepare_dataset(demo_bars, tickers, settings)
        with tempfile.TemporaryDirectory() as tmp:
            return train_windows(data, f"{tmp}/run", settings=settings)

    benchmark.group = "train|demo-walk-forward"
    report = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(role="info", label="engine",
                                sequences=sum(w.n_train for w in report.windows))  # fmt: skip
    assert report.status == "complete" and len(report.windows) == report.planned_windows
