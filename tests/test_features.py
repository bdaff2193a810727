"""`preprocessing_fn` on a tiny in-memory dataset, through TF Transform's own Beam implementation."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata

from components.spec import label_name, transformed_name, weight_name
from components.transform.module import preprocessing_fn

# Every column as a VarLenFeature, as the curated schema (no fixed shapes) makes them in the pipeline.
RAW_SPEC = {
    "island": tf.io.VarLenFeature(tf.string),
    "bill_length_mm": tf.io.VarLenFeature(tf.float32),
    "bill_depth_mm": tf.io.VarLenFeature(tf.float32),
    "flipper_length_mm": tf.io.VarLenFeature(tf.int64),
    "year": tf.io.VarLenFeature(tf.int64),
    "species": tf.io.VarLenFeature(tf.string),
    "sex": tf.io.VarLenFeature(tf.string),
    "body_mass_g": tf.io.VarLenFeature(tf.int64),
}


def row(island, bill, species, sex, mass):
    return {"island": [island] if island else [], "bill_length_mm": [bill] if bill is not None else [],
            "bill_depth_mm": [18.0], "flipper_length_mm": [190], "year": [2008],
            "species": [species] if species else [], "sex": [sex] if sex else [],
            "body_mass_g": [mass] if mass is not None else []}


ROWS = [
    row(b"Biscoe", 40.0, b"Adelie", b"male", 4000),
    row(b"Biscoe", 50.0, b"Gentoo", b"female", 5000),
    row(b"Dream", None, b"Chinstrap", None, None),     # missing bill, sex and mass
    row(b"Dream", 45.0, b"Penguin?", b"male", 4500),   # a species outside the declared classes
]


@pytest.fixture(scope="module")
def transformed(penguins_spec, tmp_path_factory):
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft")), force_tf_compat_v1=False):
        (data, _), _ = ((ROWS, dataset_metadata.DatasetMetadata.from_feature_spec(RAW_SPEC))
                        | tft_beam.AnalyzeAndTransformDataset(
                            lambda inputs: preprocessing_fn(inputs, {"heads_spec": penguins_spec.to_dict()})))
    return data


def column(data, name):
    return np.array([r[name] for r in data])


def test_every_output_is_one_value_per_row(transformed, penguins_spec):
    expected = {transformed_name(f.name) for f in penguins_spec.features}
    expected |= {label_name(h.name) for h in penguins_spec.heads} | {weight_name(h.name) for h in penguins_spec.heads}
    assert set(transformed[0]) == expected
    assert len(transformed) == len(ROWS)


def test_missing_numeric_value_gets_the_mean_then_z_score(transformed):
    # Mean of present values is 45; filling the gap with it and z-scoring puts that row at exactly 0.
    bill = column(transformed, transformed_name("bill_length_mm"))
    assert bill[2] == pytest.approx(0.0, abs=1e-6)
    filled = np.array([40.0, 50.0, 45.0, 45.0])
    np.testing.assert_allclose(bill, (filled - filled.mean()) / filled.std(), rtol=1e-5)


def test_numeric_values_that_are_not_finite_count_as_missing(tmp_path):
    from components.transform.features import numeric_feature

    rows = [{"x": [1.0]}, {"x": [3.0]}, {"x": [math.nan]}, {"x": [math.inf]}, {"x": []}]
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec({"x": tf.io.VarLenFeature(tf.float32)})
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=False):
        (data, _), _ = ((rows, metadata)
                        | tft_beam.AnalyzeAndTransformDataset(lambda inputs: {"x": numeric_feature(inputs["x"])}))
    filled = np.array([1.0, 3.0, 2.0, 2.0, 2.0])     # the mean of the finite values, 2, in the other three rows
    np.testing.assert_allclose(column(data, "x"), (filled - 2.0) / filled.std(), rtol=1e-5)


def test_categorical_values_index_a_vocabulary(transformed):
    island = column(transformed, transformed_name("island"))
    assert island[0] == island[1] != island[2] == island[3]
    assert set(island) <= {0, 1}


def test_integer_categories_index_a_vocabulary_and_missing_ones_the_oov_bucket(tmp_path):
    from components.spec import OOV_BUCKETS
    from components.transform.features import categorical_feature

    rows = [{"zip": [10115]}, {"zip": [10115]}, {"zip": [0]}, {"zip": []}]
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec({"zip": tf.io.VarLenFeature(tf.int64)})
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=False):
        (data, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: {"zip": categorical_feature(inputs["zip"], "zip")}))
    index = column(data, "zip")
    assert index[0] == index[1] == 0 and index[2] == 1       # by frequency: 10115 twice, 0 once
    assert index[3] == 2 and OOV_BUCKETS == 1                 # missing, not the category 0: the bucket after


def test_classification_labels_and_weights(transformed):
    np.testing.assert_array_equal(column(transformed, label_name("species"))[:3], [0, 2, 1])
    # A species outside the declared classes is masked, not guessed.
    np.testing.assert_array_equal(column(transformed, weight_name("species")), [1, 1, 1, 0])
    np.testing.assert_array_equal(column(transformed, label_name("sex")), [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(column(transformed, weight_name("sex")), [1, 1, 0, 1])


def test_regression_label_stays_in_its_units_and_missing_is_masked(transformed):
    mass = column(transformed, label_name("body_mass_g"))
    np.testing.assert_array_equal(mass, [4000.0, 5000.0, 0.0, 4500.0])
    np.testing.assert_array_equal(column(transformed, weight_name("body_mass_g")), [1, 1, 0, 1])
    assert all(math.isfinite(v) for v in mass)


def test_angle_labels_wrap_into_one_turn_and_missing_ones_are_masked():
    from components.spec import HeadSpec
    from components.transform.features import head_label_and_weight

    head = HeadSpec(name="heading", label="heading", kind="angle", loss=None, threshold=None)
    column = tf.SparseTensor(indices=[[0, 0], [1, 0], [3, 0]], values=[0.5, 2 * math.pi + 0.25, -0.5],
                             dense_shape=[4, 1])
    label, weight = head_label_and_weight(column, head)
    np.testing.assert_allclose(label.numpy(), [0.5, 0.25, 0.0, 2 * math.pi - 0.5], rtol=1e-5)
    np.testing.assert_array_equal(weight.numpy(), [1, 1, 0, 1])
