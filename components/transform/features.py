"""Building blocks of `preprocessing_fn`: raw columns in, transformed features, labels and weights out.

Raw columns reach `preprocessing_fn` as SparseTensors (the curated schema gives them no fixed shape, so a
row may leave any of them empty) or as dense `[batch, 1]` tensors; the schema allows at most one value per row.
Every output is a dense rank-1 tensor of `batch` elements.
"""

import math
from typing import Mapping, Union

import tensorflow as tf
import tensorflow_transform as tft

from components.spec import (
    OOV_BUCKETS,
    FeatureSpec,
    HeadSpec,
    HeadsSpec,
    label_name,
    transformed_name,
    vocabulary_name,
    weight_name,
)

RawColumn = Union[tf.Tensor, tf.SparseTensor]


def one_value_per_row(column: tf.SparseTensor, values: tf.Tensor, default) -> tf.Tensor:
    """`values` (one per entry of `column`) placed in their rows, `default` in the rows without an entry."""
    shape = tf.stack([column.dense_shape[0], tf.constant(1, tf.int64)])
    return tf.sparse.to_dense(tf.SparseTensor(column.indices, values, shape), default_value=default)[:, 0]


def values_and_presence(column: RawColumn, default) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns a column's single value per row (`default` where the row has none) and a boolean presence mask."""
    if isinstance(column, tf.SparseTensor):
        values = one_value_per_row(column, column.values, tf.cast(default, column.dtype))
        present = one_value_per_row(column, tf.ones_like(column.values, tf.int8), tf.constant(0, tf.int8)) > 0
        return values, present
    values = tf.reshape(column, [-1])
    return values, tf.ones_like(values, tf.bool)


def numeric_feature(column: RawColumn) -> tf.Tensor:
    """Fills missing values with the training mean, then scales to z-scores (two analyzer passes).

    NaN and infinities count as missing. The curated schemas keep them out of training data, but a request to
    the serving signature is not validated, and the model would turn them into an arbitrary prediction.
    """
    if isinstance(column, tf.SparseTensor):
        # Missing values become NaN, so one finiteness test finds them and the bad values alike.
        values = one_value_per_row(column, tf.cast(column.values, tf.float32), tf.constant(math.nan))
    else:
        values = tf.cast(tf.reshape(column, [-1]), tf.float32)
    present = tf.math.is_finite(values)
    mean = tft.mean(tf.boolean_mask(values, present))
    return tft.scale_to_z_score(tf.where(present, values, mean))


def categorical_feature(column: RawColumn, feature: str) -> tf.Tensor:
    """Maps values to vocabulary indices; unseen and missing values go to the out-of-vocabulary bucket.

    Integer columns (codes, IDs) are categories too: their values become text before the vocabulary.
    """
    values, present = values_and_presence(column, "" if column.dtype == tf.string else 0)
    if values.dtype != tf.string:
        # No number reads as "", so a missing value never meets the category 0 in the vocabulary.
        values = tf.where(present, tf.strings.as_string(values), "")
    # The vocabulary sees present values only, so "missing" never becomes a category of its own.
    vocabulary = tft.vocabulary(tf.boolean_mask(values, present), vocab_filename=vocabulary_name(feature))
    return tft.apply_vocabulary(values, vocabulary, num_oov_buckets=OOV_BUCKETS)


def class_index(values: tf.Tensor, classes: tuple[str, ...]) -> tf.Tensor:
    """Index of each value in `classes`, or -1 for any other value."""
    values = tf.strings.as_string(values) if values.dtype != tf.string else values
    index = tf.fill(tf.shape(values), tf.constant(-1, tf.int64))
    for i, name in enumerate(classes):
        index = tf.where(tf.equal(values, name), tf.constant(i, tf.int64), index)
    return index


def head_label_and_weight(column: RawColumn, head: HeadSpec) -> tuple[tf.Tensor, tf.Tensor]:
    """A head's label and its weight: 1 where the label is present (and a known class), 0 where it is not.

    Masked rows get a finite placeholder label (class 0, or 0.0), so that `0 * loss` stays 0 rather than NaN.
    Angle labels (radians) are wrapped into [0, 2*pi), so every full turn of an angle gets the same label.
    """
    if head.kind in ("regression", "angle"):
        values, present = values_and_presence(column, 0)
        values = tf.cast(values, tf.float32)
        if head.kind == "angle":
            values = tf.math.floormod(values, 2.0 * math.pi)
        return tf.where(present, values, 0.0), tf.cast(present, tf.float32)
    values, present = values_and_presence(column, "" if column.dtype == tf.string else 0)
    index = class_index(values, head.classes)
    known = tf.logical_and(present, index >= 0)
    label = tf.maximum(index, 0)
    if head.kind == "binary":
        label = tf.cast(label, tf.float32)
    return label, tf.cast(known, tf.float32)


def transform_feature(column: RawColumn, feature: FeatureSpec) -> tf.Tensor:
    if feature.kind == "numeric":
        return numeric_feature(column)
    return categorical_feature(column, feature.name)


def build_transformed_features(inputs: Mapping[str, RawColumn], spec: HeadsSpec) -> dict[str, tf.Tensor]:
    """The whole transformation: every feature, and every head's label and weight, under their helper names."""
    outputs = {transformed_name(f.name): transform_feature(inputs[f.name], f) for f in spec.features}
    for head in spec.heads:
        outputs[label_name(head.name)], outputs[weight_name(head.name)] = head_label_and_weight(
            inputs[head.label], head)
    return outputs
