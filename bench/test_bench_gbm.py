"""Training time per walk-forward window: the LightGBM baseline against the LSTM.

Group ``train|window`` fits one real walk-forward window (window 5 of the
36/12/12-month splitter, twelve demo stocks, training grid stride 5, purged
and embargoed as ``engine train`` does):

* ``lightgbm`` (ours): :func:`engine.model.gbm.fit_gbm` with the default
  :class:`~engine.model.gbm.GBMConfig`: four heads, up to 500 rounds each,
  early stopping, one thread (the deterministic recipe);
* ``lightgbm-2t`` (variant): the same with two threads;
* ``lstm`` (baseline): :func:`engine.model.trainer.fit_model` with the SPEC
  ``ModelConfig()`` (up to 25 epochs, early stopping), TensorFlow's own
  thread pools.

``lstm / lightgbm`` is how many LightGBM windows fit in the time of one LSTM
window. With timing off (the smoke run) the LSTM fits one epoch only, so the
suite stays quick; the ratio is meaningful only with ``--benchmark-enable``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lightgbm")

from engine.data.universe import STOCKS  # noqa: E402
from engine.model.gbm import GBMConfig, fit_gbm  # noqa: E402
from engine.model.runs import RunSettings, prepare_dataset  # noqa: E402

WINDOW = 5


@pytest.fixture(scope="module")
def window(demo_bars):
    settings = RunSettings(split="walk-forward")
    data = prepare_dataset(demo_bars, list(STOCKS[:12]), settings)
    info = settings.splitter().split_info(data.train_set.index, calendar=data.calendar)[WINDOW]
    X, y = data.train_set.X, data.train_set.y
    assert info.validation is not None
    return X[info.train], y[info.train], X[info.validation], y[info.validation]


@pytest.mark.parametrize("threads", [1, 2], ids=["lightgbm", "lightgbm-2t"])
def test_window_lightgbm(benchmark, window, threads):
    X, y, Xv, yv = window
    config = GBMConfig(num_threads=threads)
    benchmark.group = "train|window"
    fit = benchmark.pedantic(fit_gbm, args=(X, y, Xv, yv, config), kwargs={"seed": 0},
                             rounds=3, iterations=1)  # fmt: skip
    label = "lightgbm" if threads == 1 else "lightgbm-2t"
    benchmark.extra_info.update(role="ours" if threads == 1 else "variant", label=label,
                                sequences=int(X.shape[0]))  # fmt: skip
    assert np.isfinite(fit.model.predict(Xv[:10])).all()


def test_window_lstm(benchmark, window):
    pytest.importorskip("keras")
    from engine.model.network import ModelConfig
    from engine.model.trainer import fit_model

    X, y, Xv, yv = window
    config = ModelConfig(epochs=1) if benchmark.disabled else ModelConfig()
    benchmark.group = "train|window"
    fit = benchmark.pedantic(fit_model, args=(X, y, Xv, yv, config), kwargs={"seed": 0},
                             rounds=1, iterations=1)  # fmt: skip
    benchmark.extra_info.update(role="baseline", label="lstm", sequences=int(X.shape[0]),
                                epochs=int(fit.history.height))  # fmt: skip
    assert fit.history.height >= 1
