"""Per-head losses, built from the heads spec.

Every loss is a Keras `Loss` whose per-row values Keras multiplies by the head's sample weight, so a row whose
label is missing (weight 0) adds nothing to that head's loss or gradient.
"""

import math

import tensorflow as tf
import tf_keras as keras

from pipeline.config import HeadSpec

_PACKAGE = "multihead"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StandardizedRegressionLoss(keras.losses.Loss):
    """A regression loss on errors divided by the label's standard deviation.

    The model predicts in the label's own units (grams, say), so that serving and TFMA see real values; dividing
    the error by `scale` keeps this head's loss on the same order as the other heads' whatever the units.
    """

    def __init__(self, kind: str = "mse", scale: float = 1.0, delta: float = 1.0, name: str = "regression_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if kind not in ("mse", "mae", "huber", "log_cosh"):
            raise ValueError(f"unknown regression loss {kind!r}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.kind, self.scale, self.delta = kind, float(scale), float(delta)

    def call(self, y_true, y_pred):
        y_pred = tf.reshape(tf.cast(y_pred, tf.float32), [-1])
        y_true = tf.reshape(tf.cast(y_true, tf.float32), [-1])
        error = (y_pred - y_true) / self.scale
        if self.kind == "mse":
            return tf.square(error)
        if self.kind == "mae":
            return tf.abs(error)
        if self.kind == "huber":
            small = tf.abs(error) <= self.delta
            return tf.where(small, 0.5 * tf.square(error), self.delta * (tf.abs(error) - 0.5 * self.delta))
        # log(cosh(e)) written so that large errors do not overflow.
        return error + tf.nn.softplus(-2.0 * error) - math.log(2.0)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "scale": self.scale, "delta": self.delta}


def build_loss(head: HeadSpec, label_scale: float = 1.0) -> keras.losses.Loss:
    """The loss object for one head, as the spec names it; `label_scale` is a regression label's std."""
    name = f"{head.name}_loss"
    if head.kind == "regression":
        return StandardizedRegressionLoss(kind=head.loss.name, scale=label_scale, name=name, **head.loss.params)
    if head.kind == "binary":
        return keras.losses.BinaryCrossentropy(name=name)
    return keras.losses.SparseCategoricalCrossentropy(name=name)
