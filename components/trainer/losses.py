"""The loss library: every head's loss, built by name from the heads spec.

Every loss is a registered, serializable Keras `Loss` that returns one value per row; Keras multiplies those by
the head's sample weight, so a row whose label is missing (weight 0) adds nothing to the loss or its gradient.
Classification losses take logits (the model's outputs; the serving signature applies sigmoid or softmax), so
they stay finite and exact where probabilities would round to 0 or 1.
"""

import math

import tensorflow as tf
import tf_keras as keras

from components.spec import LOSSES, HeadSpec

_PACKAGE = "multihead"


def _rows(x) -> tf.Tensor:
    """One float per row, whether Keras passes `[batch]` or `[batch, 1]`."""
    return tf.reshape(tf.cast(x, tf.float32), [-1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StandardizedRegressionLoss(keras.losses.Loss):
    """A regression loss on errors divided by the label's standard deviation, plus an optional L1 pull.

    The model predicts in the label's own units (grams, say), so that serving and TFMA see real values; dividing
    the error by `scale` keeps this head's loss on the same order as the other heads' whatever the units.
    `pull_weight * |y_pred - pull_target| / scale` is added to the base loss: a prior that draws predictions
    toward a known value (0 for a sparse target, a physical set point...).
    """

    def __init__(self, kind: str = "mse", scale: float = 1.0, delta: float = 1.0, pull_weight: float = 0.0,
                 pull_target: float = 0.0, name: str = "regression_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if kind not in LOSSES["regression"]:
            raise ValueError(f"unknown regression loss {kind!r}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.kind, self.scale, self.delta = kind, float(scale), float(delta)
        self.pull_weight, self.pull_target = float(pull_weight), float(pull_target)

    def call(self, y_true, y_pred):
        y_pred = _rows(y_pred)
        error = (y_pred - _rows(y_true)) / self.scale
        if self.kind == "mse":
            loss = tf.square(error)
        elif self.kind == "mae":
            loss = tf.abs(error)
        elif self.kind == "huber":
            small = tf.abs(error) <= self.delta
            loss = tf.where(small, 0.5 * tf.square(error), self.delta * (tf.abs(error) - 0.5 * self.delta))
        elif self.kind == "log_cosh":
            # log(cosh(e)) written so that large errors do not overflow.
            loss = error + tf.nn.softplus(-2.0 * error) - math.log(2.0)
        else:   # a loss the spec accepts (LOSSES) with no formula here must not train as another
            raise NotImplementedError(f"regression loss {self.kind!r} has no formula in StandardizedRegressionLoss")
        if self.pull_weight:
            loss += self.pull_weight * tf.abs(y_pred - self.pull_target) / self.scale
        return loss

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "scale": self.scale, "delta": self.delta,
                "pull_weight": self.pull_weight, "pull_target": self.pull_target}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AngularLoss(keras.losses.Loss):
    """`1 - cos(y_true - y_pred)` for angles in radians: 0 when equal, 2 when opposite, blind to full turns."""

    def __init__(self, name: str = "angular_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return 1.0 - tf.cos(_rows(y_true) - _rows(y_pred))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BinaryCrossentropyFromLogits(keras.losses.Loss):
    """Binary cross-entropy from a logit; positive rows weigh `pos_weight` times more (for rare positives)."""

    def __init__(self, pos_weight: float = 1.0, name: str = "binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if pos_weight <= 0:
            raise ValueError(f"pos_weight must be > 0, got {pos_weight}")
        self.pos_weight = float(pos_weight)

    def call(self, y_true, y_pred):
        return tf.nn.weighted_cross_entropy_with_logits(labels=_rows(y_true), logits=_rows(y_pred),
                                                        pos_weight=self.pos_weight)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BinaryFocalLossFromLogits(keras.losses.Loss):
    """Focal loss (Lin et al., 2017) from a logit: `alpha_t * (1 - p_t) ** gamma * cross-entropy`.

    `alpha` weighs the positive class and `1 - alpha` the negative; `gamma` > 0 shrinks the loss of rows the
    model already gets right, so training dwells on the hard ones. `gamma = 0, alpha = 0.5` is half the
    cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, name: str = "focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if gamma < 0 or not 0 < alpha < 1:
            raise ValueError(f"need gamma >= 0 and 0 < alpha < 1, got gamma={gamma}, alpha={alpha}")
        self.gamma, self.alpha = float(gamma), float(alpha)

    def call(self, y_true, y_pred):
        y, logits = _rows(y_true), _rows(y_pred)
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
        p = tf.sigmoid(logits)
        p_true = y * p + (1.0 - y) * (1.0 - p)
        alpha_true = y * self.alpha + (1.0 - y) * (1.0 - self.alpha)
        return alpha_true * tf.pow(1.0 - p_true, self.gamma) * cross_entropy

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SparseCategoricalCrossentropyFromLogits(keras.losses.Loss):
    """Categorical cross-entropy from logits and class indices, with label smoothing and per-class weights.

    Label smoothing moves `label_smoothing` of the target's mass evenly onto all classes. `class_weights`
    (one per class, in class order; empty means all 1) multiplies each row's loss by its true class's weight:
    plain class weighting and "this subset of classes matters more" are both that.
    """

    def __init__(self, label_smoothing: float = 0.0, class_weights=(), name: str = "sparse_categorical_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if any(w <= 0 for w in class_weights):
            raise ValueError(f"class weights must be > 0, got {list(class_weights)}")
        self.label_smoothing = float(label_smoothing)
        self.class_weights = [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        logits = tf.cast(y_pred, tf.float32)
        classes = tf.shape(logits)[-1]
        index = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        target = tf.one_hot(index, classes) * (1.0 - self.label_smoothing)
        target += self.label_smoothing / tf.cast(classes, tf.float32)
        loss = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=-1), axis=-1)
        if self.class_weights:
            loss *= tf.gather(tf.constant(self.class_weights, tf.float32), index)
        return loss

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "class_weights": self.class_weights}


def class_weight_vector(head: HeadSpec) -> list[float]:
    """A multiclass head's per-class loss weights, in class order, from its loss parameters."""
    params = head.loss.params
    if head.loss.name == "subset_crossentropy":
        return [params["subset_weight"] if c in head.class_subset else 1.0 for c in head.classes]
    named = params.get("class_weights") or {}
    return [named.get(c, 1.0) for c in head.classes] if named else []


def _regression(head: HeadSpec, label_scale: float) -> keras.losses.Loss:
    return StandardizedRegressionLoss(kind=head.loss.name, scale=label_scale, name=f"{head.name}_loss",
                                      **head.loss.params)


def _multiclass(head: HeadSpec, label_scale: float) -> keras.losses.Loss:
    # The subset's extra weight is a class weight (class_weight_vector).
    return SparseCategoricalCrossentropyFromLogits(label_smoothing=head.loss.params["label_smoothing"],
                                                   class_weights=class_weight_vector(head), name=f"{head.name}_loss")


# The registry's `keras_class` of each loss -> how to build it for a head (`label_scale`: a regression label's std).
LOSS_BUILDERS = {
    "StandardizedRegressionLoss": _regression,
    "AngularLoss": lambda head, label_scale: AngularLoss(name=f"{head.name}_loss"),
    "BinaryCrossentropyFromLogits": lambda head, label_scale: BinaryCrossentropyFromLogits(
        pos_weight=head.loss.params["pos_weight"], name=f"{head.name}_loss"),
    "BinaryFocalLossFromLogits": lambda head, label_scale: BinaryFocalLossFromLogits(
        gamma=head.loss.params["gamma"], alpha=head.loss.params["alpha"], name=f"{head.name}_loss"),
    "SparseCategoricalCrossentropyFromLogits": _multiclass,
}


def build_loss(head: HeadSpec, label_scale: float = 1.0) -> keras.losses.Loss:
    """The loss object for one head, as the spec names it; `label_scale` is a regression label's std."""
    return LOSS_BUILDERS[LOSSES[head.kind][head.loss.name].keras_class](head, label_scale)
