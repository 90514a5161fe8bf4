"""Model artifacts (engine/model/artifacts.py): round trip, checksums, refusals, atomicity.

The model is built, not trained (fitting costs seconds and adds nothing
here); its normalization statistics and batch-norm moving statistics are
set to non-trivial values so that a loader that dropped any of them would
change the predictions.
"""

from __future__ import annotations

import hashlib
import json
import os

import keras
import numpy as np
import polars as pl
import pytest
from keras import layers

from engine.features.build import FEATURE_NAMES
from engine.model.artifacts import (
    ArtifactError,
    check_feature_order,
    load_model_artifact,
    read_metadata,
    write_model_artifact,
)
from engine.model.network import ModelConfig, build_model
from engine.model.trainer import predict

PATTERNS = ["p_one", "p_two", "p_three"]


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(11)
    keras.utils.set_random_seed(11)
    m = build_model(
        ModelConfig(lstm_units=12, lstm2_units=6, dense_units=5),
        n_features=len(FEATURE_NAMES),
        n_patterns=len(PATTERNS),
        mean=rng.normal(size=len(FEATURE_NAMES)),
        variance=rng.uniform(0.2, 3.0, size=len(FEATURE_NAMES)),
    )
    for layer in m.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.3, 2.0, c).astype("float32"))
    return m


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(12)
    return rng.normal(size=(64, 20, len(FEATURE_NAMES))).astype("float32")


def _metadata(model_id="m00", **extra):
    return {
        "model_id": model_id,
        "feature_names": list(FEATURE_NAMES),
        "pattern_names": PATTERNS,
        "normalization": {"mean": [0.5], "variance": [2.0]},
        **extra,
    }


def _history():
    return pl.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.6], "val_loss": [0.71, 0.69]})


def _predictions():
    return pl.DataFrame({"ticker": ["A", "B"], "p_one_p": [0.25, 0.75], "p_one": [0, 1]})


@pytest.fixture
def artifact(tmp_path, model):
    return write_model_artifact(
        tmp_path / "models" / "m00",
        model=model,
        metadata=_metadata(),
        history=_history(),
        predictions=_predictions(),
    )


def _flip_byte(path, where=0.5):
    data = bytearray(path.read_bytes())
    k = int(len(data) * where)
    data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_metadata(directory, **changes):
    path = directory / "metadata.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


# ---------------------------------------------------------------------------
# round trip


def test_save_load_gives_identical_predictions(artifact, model, X):
    loaded = load_model_artifact(artifact)
    assert loaded.model is not model
    np.testing.assert_array_equal(predict(loaded.model, X), predict(model, X))
    for a, b in zip(loaded.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the normalization statistics live in the saved model, not only in the metadata
    np.testing.assert_array_equal(
        np.asarray(loaded.model.get_layer("normalization").mean),
        np.asarray(model.get_layer("normalization").mean),
    )
    assert loaded.model_id == "m00"
    assert loaded.history.equals(_history())


def test_artifact_files_and_checksums(artifact):
    names = sorted(os.listdir(artifact))
    assert names == ["history.csv", "metadata.json", "model.keras", "test_predictions.parquet"]
    meta = read_metadata(artifact)
    for key, value in _metadata().items():
        assert meta[key] == value
    assert set(meta["files"]) == set(names) - {"metadata.json"}
    for name, digest in meta["files"].items():
        assert digest == hashlib.sha256((artifact / name).read_bytes()).hexdigest()
    assert pl.read_parquet(artifact / "test_predictions.parquet").equals(_predictions())
    # nothing else was left beside the artifact (no staging directory)
    assert os.listdir(artifact.parent) == ["m00"]


def test_predictions_are_optional(tmp_path, model):
    out = write_model_artifact(
        tmp_path / "a", model=model, metadata=_metadata(), history=_history()
    )
    assert not (out / "test_predictions.parquet").exists()
    assert "test_predictions.parquet" not in read_metadata(out)["files"]


@pytest.mark.parametrize("key", ["model_id", "feature_names"])
def test_metadata_must_name_model_and_features(tmp_path, model, key):
    meta = _metadata()
    del meta[key]
    with pytest.raises(ValueError, match=key):
        write_model_artifact(tmp_path / "a", model=model, metadata=meta, history=_history())
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("name", ["model.keras", "history.csv", "test_predictions.parquet"])
def test_corrupted_file_is_refused_naming_it(artifact, name):
    _flip_byte(artifact / name)
    with pytest.raises(ArtifactError, match=rf"{name} is corrupted"):
        load_model_artifact(artifact)
    with pytest.raises(ArtifactError, match=name):
        read_metadata(artifact)
    read_metadata(artifact, verify=False)  # the metadata itself is still readable


def test_missing_listed_file_is_refused(artifact):
    (artifact / "history.csv").unlink()
    with pytest.raises(ArtifactError, match=r"history\.csv is missing"):
        load_model_artifact(artifact)


def test_reordered_features_are_refused_with_the_position(artifact):
    names = list(FEATURE_NAMES)
    names[3], names[7] = names[7], names[3]
    _edit_metadata(artifact, feature_names=names)
    with pytest.raises(ArtifactError, match="different order") as err:
        load_model_artifact(artifact)
    message = str(err.value)
    assert "position 3" in message
    assert repr(FEATURE_NAMES[7]) in message and repr(FEATURE_NAMES[3]) in message
    assert str(artifact) in message


def test_different_feature_set_is_refused(artifact):
    names = list(FEATURE_NAMES[:-1]) + ["made_up_feature"]
    _edit_metadata(artifact, feature_names=names)
    with pytest.raises(ArtifactError, match="made_up_feature") as err:
        load_model_artifact(artifact)
    assert FEATURE_NAMES[-1] in str(err.value)


def test_check_feature_order_against_caller_names():
    meta = {"feature_names": ["a", "b", "c"]}
    check_feature_order(meta, ["a", "b", "c"])
    with pytest.raises(ArtifactError, match="position 1 is 'b' in the model but 'c'"):
        check_feature_order(meta, ["a", "c", "b"])
    with pytest.raises(ArtifactError, match=r"missing \['d'\]"):
        check_feature_order(meta, ["a", "b", "c", "d"])


def test_missing_metadata_is_a_clear_error(artifact, tmp_path):
    (artifact / "metadata.json").unlink()
    with pytest.raises(ArtifactError, match="metadata.json is missing"):
        load_model_artifact(artifact)
    with pytest.raises(ArtifactError, match="not a model artifact"):
        read_metadata(tmp_path / "nowhere")


def test_unreadable_or_foreign_metadata_is_refused(artifact):
    path = artifact / "metadata.json"
    path.write_text('{"model_id": ')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_metadata(artifact)
    path.write_text(json.dumps({**_metadata(), "format": "something-else/9"}))
    with pytest.raises(ArtifactError, match="format"):
        read_metadata(artifact)


# ---------------------------------------------------------------------------
# overwrite and atomicity


def test_existing_artifact_is_not_overwritten_silently(artifact, model):
    before = {p.name: p.read_bytes() for p in artifact.iterdir()}
    with pytest.raises(FileExistsError, match="overwrite"):
        write_model_artifact(artifact, model=model, metadata=_metadata("m01"), history=_history())
    assert {p.name: p.read_bytes() for p in artifact.iterdir()} == before
    write_model_artifact(
        artifact, model=model, metadata=_metadata("m01"), history=_history(), overwrite=True
    )
    assert read_metadata(artifact)["model_id"] == "m01"
    assert not (artifact / "test_predictions.parquet").exists()  # replaced, not merged
    assert os.listdir(artifact.parent) == ["m00"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_nothing_under_the_final_name(tmp_path, model, monkeypatch, error):
    def broken_save(self, path, *args, **kwargs):
        with open(path, "wb") as fh:  # a partial file, then the crash
            fh.write(b"PK\x03\x04 half a zip")
        raise error("disk on fire")

    monkeypatch.setattr(type(model), "save", broken_save)
    final = tmp_path / "models" / "m00"
    with pytest.raises(error, match="disk on fire"):
        write_model_artifact(final, model=model, metadata=_metadata(), history=_history())
    assert not final.exists()
    assert os.listdir(final.parent) == []  # the staging directory is gone too


def test_failed_overwrite_keeps_the_old_artifact(artifact, model, monkeypatch, X):
    def broken_save(self, path, *args, **kwargs):
        raise OSError("no space left on device")

    before = {p.name: p.read_bytes() for p in artifact.iterdir()}
    monkeypatch.setattr(type(model), "save", broken_save)
    with pytest.raises(OSError, match="no space"):
        write_model_artifact(
            artifact, model=model, metadata=_metadata("m01"), history=_history(), overwrite=True
        )
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in artifact.iterdir()} == before
    assert os.listdir(artifact.parent) == ["m00"]
    np.testing.assert_array_equal(
        predict(load_model_artifact(artifact).model, X), predict(model, X)
    )


def test_metadata_that_is_not_utf8_or_not_an_object_is_refused(artifact):
    path = artifact / "metadata.json"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] = 0xFF  # a flipped byte that breaks the encoding
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="metadata.json is not valid JSON"):
        load_model_artifact(artifact)
    path.write_text("[1, 2, 3]")
    with pytest.raises(ArtifactError, match="not a JSON object"):
        read_metadata(artifact)


@pytest.mark.parametrize("drop", ["model.keras", "history.csv", None])
def test_metadata_without_model_checksums_is_refused(artifact, drop):
    meta = json.loads((artifact / "metadata.json").read_text())
    if drop is None:
        del meta["files"]
    else:
        del meta["files"][drop]
    (artifact / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=f"no checksum.*{drop or ''}.*cannot be verified"):
        load_model_artifact(artifact)
    assert read_metadata(artifact, verify=False)["model_id"] == "m00"
