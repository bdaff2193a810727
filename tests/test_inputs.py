"""The Trainer's input helpers, on tiny in-memory batches."""

import numpy as np
import pytest
import tensorflow as tf

from components.spec import label_name, weight_name
from components.trainer.inputs import count_rows, scan_split, with_known_batch_count


def transformed_batches(masses, weights, batch_size):
    columns = {label_name("body_mass_g"): np.array(masses, np.float32),
               weight_name("body_mass_g"): np.array(weights, np.float32),
               label_name("species"): np.zeros(len(masses), np.int64)}
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)


def test_scan_counts_every_row_and_takes_regression_stats_from_labelled_rows_only(penguins_spec):
    scan = scan_split(transformed_batches([3000, 5000, 999999, 4000, 4000], [1, 1, 0, 1, 1], batch_size=2),
                      penguins_spec)
    assert scan.rows == 5
    assert set(scan.label_stats) == {"body_mass_g"}   # the regression head only
    assert scan.label_stats["body_mass_g"].mean == pytest.approx(4000.0)
    assert scan.label_stats["body_mass_g"].std == pytest.approx(np.std([3000, 5000, 4000, 4000]))


def test_scan_names_a_regression_head_without_any_label(penguins_spec):
    with pytest.raises(ValueError, match="head 'body_mass_g': no training row has a value in label column"):
        scan_split(transformed_batches([1.0, 2.0], [0, 0], batch_size=2), penguins_spec)


def test_count_rows_needs_no_label_values(penguins_spec):
    # An eval split may hold no labelled row of a head; counting its rows (for early stopping) must still work.
    assert count_rows(transformed_batches([1.0, 2.0, 3.0], [0, 0, 0], batch_size=2)) == 3


def test_known_batch_count_counts_the_short_last_batch():
    unknown = tf.data.Dataset.range(10).batch(4).filter(lambda _: True)
    assert unknown.cardinality() == tf.data.UNKNOWN_CARDINALITY
    assert with_known_batch_count(unknown, rows=10, batch_size=4).cardinality() == 3


def test_a_wrong_row_count_fails_loudly():
    wrong = with_known_batch_count(tf.data.Dataset.range(10).batch(4).filter(lambda _: True), rows=20, batch_size=4)
    with pytest.raises(tf.errors.FailedPreconditionError, match="expected to contain 5 elements but contained only 3"):
        list(wrong)
