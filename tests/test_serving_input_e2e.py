"""The pushed model's `serving_default` on bad or unusual requests: an error or a defined default, never a crash."""

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from test_pipeline_e2e import example

from pipeline.read import results
from pipeline.runners import local as local_runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serving_fn(penguins_run, penguins_spec):
    workdir, result = penguins_run
    assert result.returncode == 0, result.stderr[-3000:]
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    return tf.saved_model.load(results.read_run_result(store, penguins_spec).pushed_path).signatures[
        "serving_default"]


@pytest.mark.parametrize("payload,error", [
    (b"this is not a serialized tf.Example", tf.errors.InvalidArgumentError),
    # TensorFlow's Python wrapper quotes the bad bytes in its message and fails to decode them as UTF-8.
    (b"\x08\x96\x01\xff binary garbage", (tf.errors.InvalidArgumentError, UnicodeDecodeError)),
])
def test_malformed_example_is_an_error_and_the_model_keeps_serving(serving_fn, payload, error):
    with pytest.raises(error):
        serving_fn(examples=tf.constant([payload]))
    out = serving_fn(examples=tf.constant([example(island="Dream", year=2008)]))
    assert out["species"].shape == (1, 3)


def test_wrong_type_for_a_feature_is_an_error(serving_fn):
    with pytest.raises(tf.errors.InvalidArgumentError):
        serving_fn(examples=tf.constant([example(island="Dream", flipper_length_mm=190.5)]))


def test_empty_batch_gives_empty_outputs(serving_fn):
    out = serving_fn(examples=tf.constant([], dtype=tf.string))
    assert out["species"].shape == (0, 3) and out["body_mass_g"].shape == (0, 1)
    assert out["species__class"].shape == (0,)


@pytest.mark.parametrize("missing", ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "island", "year"])
def test_each_optional_feature_may_be_left_out(serving_fn, missing):
    full = dict(island="Biscoe", bill_length_mm=46.1, bill_depth_mm=13.2, flipper_length_mm=211, year=2007)
    out = serving_fn(examples=tf.constant([example(**{k: v for k, v in full.items() if k != missing})]))
    for head in ("species", "sex", "body_mass_g"):
        assert np.all(np.isfinite(out[head].numpy())), (missing, head)
    assert list(out["missing_features"].numpy()) == [1]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_numeric_value_that_is_not_finite_counts_as_missing(serving_fn, value):
    full = dict(island="Biscoe", bill_depth_mm=13.2, flipper_length_mm=211, year=2007)
    missing = serving_fn(examples=tf.constant([example(**full)]))
    out = serving_fn(examples=tf.constant([example(**full, bill_length_mm=value)]))
    for head in ("species", "sex", "body_mass_g"):
        np.testing.assert_allclose(out[head].numpy(), missing[head].numpy(), rtol=1e-6, err_msg=head)
    assert list(out["missing_features"].numpy()) == list(missing["missing_features"].numpy()) == [1]


def test_unseen_category_goes_to_the_out_of_vocabulary_bucket(serving_fn):
    seen = serving_fn(examples=tf.constant([example(island="Biscoe", year=2008)]))
    unseen = serving_fn(examples=tf.constant([example(island="Atlantis", year=2008)]))
    missing = serving_fn(examples=tf.constant([example(year=2008)]))
    np.testing.assert_allclose(unseen["species"].numpy(), missing["species"].numpy(), rtol=1e-6)
    assert not np.allclose(unseen["species"].numpy(), seen["species"].numpy())
