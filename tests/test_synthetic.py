"""The synthetic example: the generator, its spec and schema, the angle head's quality, and export with every
loss and every loss weighting (the project's preprocessing_fn through TF Transform in memory, then the builders
run_fn uses)."""

import copy
import csv
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from benchmarks.quality_report import (
    angular_error_deg,
    circular_mean,
    multihead_scores,
    predict_served,
    raw_rows,
    read_schema,
    train_model,
    transform_in_memory,
)
from components.spec import check_columns, load_spec, spec_from_dict
from components.trainer.serving import export_serving_model
from data.synthetic import generate

from conftest import ROOT

SPEC_PATH = ROOT / "schemas" / "synthetic" / "heads.yaml"
SCHEMA_PATH = ROOT / "schemas" / "synthetic" / "schema.pbtxt"


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    import pandas as pd

    out = tmp_path_factory.mktemp("synthetic")
    paths = generate.write_shards(out, rows=3000, shards=2, seed=7)
    return pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in paths], ignore_index=True)


def test_generator_is_deterministic_and_writes_the_asked_shards(tmp_path):
    first = generate.write_shards(tmp_path / "a", rows=101, shards=3, seed=5)
    again = generate.write_shards(tmp_path / "b", rows=101, shards=3, seed=5)
    other = generate.write_shards(tmp_path / "c", rows=101, shards=3, seed=6)
    assert [p.name for p in first] == ["part-00000-of-00003.csv", "part-00001-of-00003.csv",
                                       "part-00002-of-00003.csv"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert first[0].read_bytes() != other[0].read_bytes()
    rows = [list(csv.reader(open(p))) for p in first]
    assert all(r[0] == list(generate.COLUMNS) for r in rows)
    assert [len(r) - 1 for r in rows] == [34, 34, 33]
    with pytest.raises(ValueError, match="shards"):
        generate.write_shards(tmp_path / "d", rows=2, shards=3)


def test_generated_data_has_every_head_kind_and_documented_missing_rates(frame, spec):
    assert {h.kind for h in spec.heads} == {"regression", "binary", "multiclass", "angle"}
    for column in generate.LABELS:
        assert frame[column].isna().mean() == pytest.approx(generate.LABEL_MISSING, abs=0.02), column
    for column in generate.FEATURES:
        assert frame[column].isna().mean() == pytest.approx(generate.FEATURE_MISSING, abs=0.01), column
    heading = frame["heading"].dropna()
    assert heading.min() >= 0 and heading.max() < 2 * math.pi
    assert set(frame["segment"].dropna()) == set(spec.head("segment").classes)
    assert set(frame["churn"].dropna()) == set(spec.head("churn").classes)


def test_spec_columns_match_the_generated_header_and_the_schema(spec):
    check_columns(spec, generate.COLUMNS, "generated CSV")
    check_columns(spec, [f.name for f in read_schema(SCHEMA_PATH).feature], str(SCHEMA_PATH))


@pytest.fixture(scope="module")
def transformed(spec, frame, tmp_path_factory):
    schema = read_schema(SCHEMA_PATH)
    train, test = frame.iloc[:2400], frame.iloc[2400:]
    train_rows, test_rows, tft_output = transform_in_memory(
        spec, schema, raw_rows(train, schema), raw_rows(test, schema), str(tmp_path_factory.mktemp("tft")))
    return train, test, train_rows, test_rows, tft_output


def test_angle_head_halves_the_error_of_predicting_the_circular_mean(spec, transformed):
    train, test, train_rows, test_rows, tft_output = transformed
    model = train_model(spec, train_rows, tft_output)
    error = multihead_scores(spec, model, test_rows)["heading"]
    truth = test["heading"].dropna().to_numpy()
    baseline = float(np.mean(angular_error_deg(truth, circular_mean(train["heading"].dropna().to_numpy()))))
    assert baseline > 60
    assert error <= baseline / 2, (error, baseline)


# Every loss of the library and every weighting mode, over three models on the synthetic heads.
VARIANTS = {
    "fixed": {"demand": {"name": "mse", "pull_weight": 0.1, "pull_target": 60.0}, "lead_time": "mae",
              "churn": {"name": "binary_crossentropy", "pos_weight": 2.0},
              "segment": {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1,
                          "class_weights": {"D": 2.0}}},
    "uncertainty": {"demand": {"name": "huber", "delta": 1.5}, "lead_time": "log_cosh",
                    "churn": {"name": "focal", "gamma": 2.0, "alpha": 0.4},
                    "segment": {"name": "subset_crossentropy", "subset_weight": 3.0}},
    "dwa": {"demand": "log_cosh", "lead_time": "mse", "churn": "binary_crossentropy",
            "segment": "sparse_categorical_crossentropy"},
}


# Heads conditioned on another head's predicted class: every head kind, on a multiclass and on a binary head.
CONDITIONS = {
    "fixed": {"lead_time": "segment"},
    "uncertainty": {"churn": "segment", "heading": "segment"},
    "dwa": {"demand": "churn", "segment": "churn"},
}


def variant(spec, weighting):
    data = copy.deepcopy(spec.to_dict())
    data["training"].update(loss_weighting=weighting, epochs=3)
    for head in data["heads"]:
        head["loss"] = VARIANTS[weighting].get(head["name"], head["loss"])
        if head["name"] in CONDITIONS[weighting]:
            head["conditioned_on"] = CONDITIONS[weighting][head["name"]]
    return spec_from_dict(data)


def serialized_examples(rows: list[dict], spec) -> list[bytes]:
    examples = []
    for row in rows:
        features = {}
        for name, values in row.items():
            if name in spec.label_columns:
                continue
            if values and isinstance(values[0], bytes):
                features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
            else:
                features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        examples.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return examples


@pytest.mark.parametrize("weighting", list(VARIANTS))
def test_model_with_each_loss_and_weighting_saves_reloads_and_serves_raw_examples(spec, transformed, weighting,
                                                                                   tmp_path):
    _, test, train_rows, test_rows, tft_output = transformed
    model_spec = variant(spec, weighting)
    model = train_model(model_spec, train_rows[:600], tft_output)
    export_serving_model(model, tft_output, model_spec, str(tmp_path / "model"))

    schema = read_schema(SCHEMA_PATH)
    raw = raw_rows(test.iloc[:20], schema)
    raw[0] = {}   # a row with nothing at all
    served = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"](
        examples=tf.constant(serialized_examples(raw, model_spec)))
    expected = {"demand", "lead_time", "churn", "churn__class", "segment", "segment__class", "heading",
                "missing_features"}
    assert set(served) == expected
    # Row 0 has nothing at all: every feature of the spec counted as missing; the others come whole.
    assert list(served["missing_features"].numpy()) == [len(model_spec.features)] + [0] * 19
    for key in ("demand", "lead_time", "churn", "segment", "heading"):
        assert np.all(np.isfinite(served[key].numpy())), key
    np.testing.assert_allclose(served["segment"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((served["heading"].numpy() >= 0) & (served["heading"].numpy() < 2 * math.pi))
    assert set(served["segment__class"].numpy()) <= {b"A", b"B", b"C", b"D"}
    # The served heading is what the trained model predicts for the same rows (transformed in memory).
    in_memory = multihead_predictions(model, model_spec, test_rows[1:20])
    np.testing.assert_allclose(served["heading"].numpy()[1:, 0], in_memory, atol=1e-4)

    # The Keras loader rebuilds the model, its losses and its weighting from the registered classes.
    reloaded = tf_keras.models.load_model(str(tmp_path / "model"))
    assert type(reloaded.loss_weighting).__name__ == "LossWeighting"
    assert reloaded.loss_weighting.mode == weighting
    np.testing.assert_allclose(reloaded.loss_weighting.effective_weights(),
                               model.loss_weighting.effective_weights(), rtol=1e-6)
    assert {h: type(loss).__name__ for h, loss in reloaded.loss.items()} == {
        h: type(loss).__name__ for h, loss in model.loss.items()}
    # Rebuilt from its config (the export saves no Keras traces), with the trained weights; conditioned heads
    # keep one set of weights per class of the head they are conditioned on.
    conditioned = {h.name for h in model_spec.heads if h.conditioned_on}
    assert conditioned == set(CONDITIONS[weighting])
    conditional_layers = {layer.name for layer in model.layers if type(layer).__name__ == "ClassConditionalDense"}
    assert len(conditional_layers) == len(conditioned)
    assert {layer.name for layer in reloaded.layers
            if type(layer).__name__ == "ClassConditionalDense"} == conditional_layers
    before, after = predict_served(model, model_spec, test_rows[1:20]), predict_served(reloaded, model_spec,
                                                                                        test_rows[1:20])
    for head in model_spec.heads:
        np.testing.assert_allclose(after[head.name], before[head.name], rtol=1e-5, atol=1e-5, err_msg=head.name)


def test_export_traces_the_signatures_without_autograph(spec, transformed, tmp_path, autograph_conversions):
    # Autograph would convert every Keras layer and the Transform layer the signatures reach, and Keras's own
    # per-layer traces would be converted too: most of a small Trainer's export time.
    _, _, train_rows, _, tft_output = transformed
    model_spec = variant(spec, "fixed")
    model = train_model(model_spec, train_rows[:64], tft_output)
    autograph_conversions.clear()  # the export's only
    export_serving_model(model, tft_output, model_spec, str(tmp_path / "model"))
    assert set(tf.saved_model.load(str(tmp_path / "model")).signatures) == {"serving_default", "transform_features"}
    # Only tf.saved_model's thin wrapper around each signature is converted.
    assert [name for name in autograph_conversions if not name.startswith("canonicalize_signatures.")] == []


def multihead_predictions(model, spec, rows):
    return predict_served(model, spec, rows)["heading"][:, 0]
