"""Per-head metrics beyond Keras's own, as registered Keras metrics.

The same classes serve the training logs (compiled into the model) and the Evaluator: TFMA imports them by
module and class name (`pipeline/definition/eval_config.py`) and feeds them `serving_default`'s outputs, with each
head's label and weight. Both take either logits or probabilities for classification (argmax is the same), so the
training model (logits) and the serving signature (probabilities) score alike.
"""

import math

import tensorflow as tf
import tf_keras as keras

_PACKAGE = "multihead"


def wrapped_angle_difference(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """`|a - b|` in radians the shorter way round the circle, in [0, pi]."""
    difference = tf.math.floormod(a - b, 2.0 * math.pi)
    return tf.minimum(difference, 2.0 * math.pi - difference)


class _MeanOfCountedRows(keras.metrics.Mean):
    """A weighted mean that is NaN over no rows (Keras's Mean gives 0), as TFMA's own metrics are: a slice where
    no row has the head's label then reads as unjudged, never as a perfect angle or a zero accuracy."""

    def result(self):
        return tf.where(self.count > 0, tf.math.divide_no_nan(self.total, self.count), float("nan"))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SubsetAccuracy(_MeanOfCountedRows):
    """Accuracy over the rows whose true class is one of `class_indices` (other rows are not counted).

    A prediction counts as right only when it names the true class, so predicting a subset class for a row
    outside the subset is not rewarded here (it shows up in the overall accuracy).
    """

    def __init__(self, class_indices=(), name: str = "subset_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not class_indices:
            raise ValueError("SubsetAccuracy needs at least one class index")
        self.class_indices = [int(i) for i in class_indices]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int64)
        predicted = tf.argmax(tf.reshape(y_pred, [tf.shape(y_true)[0], -1]), axis=-1)
        in_subset = tf.reduce_any(tf.equal(y_true[:, None], tf.constant(self.class_indices, tf.int64)[None, :]),
                                  axis=-1)
        weight = tf.cast(in_subset, tf.float32)
        if sample_weight is not None:
            weight *= tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        return super().update_state(tf.cast(tf.equal(predicted, y_true), tf.float32), sample_weight=weight)

    def get_config(self):
        return {**super().get_config(), "class_indices": self.class_indices}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MeanAngularErrorDegrees(_MeanOfCountedRows):
    """Mean absolute angular error in degrees, the shorter way round (0 to 180), of angles given in radians."""

    def __init__(self, name: str = "angular_error_deg", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.reshape(tf.cast(y_true, tf.float32), [-1])
        y_pred = tf.reshape(tf.cast(y_pred, tf.float32), [-1])
        degrees = wrapped_angle_difference(y_true, y_pred) * (180.0 / math.pi)
        if sample_weight is not None:
            sample_weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        return super().update_state(degrees, sample_weight=sample_weight)
