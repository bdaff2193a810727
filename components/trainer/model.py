"""The multi-head Keras model: pure builders from the heads spec (and data facts) to a compiled model.

`run_fn` calls these with the vocabulary sizes and label statistics read from the Transform output; the tests
and the quality report call them too. The model takes transformed features and returns one output per head,
keyed and named by the head's name: logits for classification heads (the serving signature turns them into
probabilities), a value in the label's own units for regression heads, an angle in [0, 2*pi) for angle heads.

The heads' losses add up through `LossWeighting`, the one code path for the three weightings the spec offers
(fixed, learned uncertainty, dynamic weight average); `MultiHeadModel`'s train and test steps call it, and log
every head's loss and effective weight (`<head>_loss`, `<head>_weight`) with the other metrics each epoch.
"""

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.spec import LOSS_WEIGHTINGS, METRICS, HeadSpec, HeadsSpec, transformed_name
from components.trainer import metrics as custom_metrics
from components.trainer.losses import build_loss

_PACKAGE = "multihead"


@dataclasses.dataclass(frozen=True)
class LabelStats:
    """Mean and standard deviation of a regression label over the labelled training rows."""

    mean: float
    std: float


def label_stats(values: np.ndarray, weights: np.ndarray) -> LabelStats:
    """Weighted mean and std of a label; rows of weight 0 (missing labels) are ignored.

    Raises:
      ValueError: if no row has a label.
    """
    values, weights = np.asarray(values, np.float64), np.asarray(weights, np.float64)
    total = weights.sum()
    if total <= 0:
        raise ValueError("no training row has this label")
    mean = float((values * weights).sum() / total)
    std = float(np.sqrt((weights * (values - mean) ** 2).sum() / total))
    return LabelStats(mean=mean, std=std if std > 0 else 1.0)


def build_inputs(spec: HeadsSpec, vocab_sizes: Mapping[str, int]) -> tuple[dict, tf.Tensor]:
    """Model inputs keyed by transformed feature name, and their concatenated encoding."""
    inputs, encoded = {}, []
    for feature in spec.features:
        name = transformed_name(feature.name)
        if feature.kind == "numeric":
            inputs[name] = keras.Input(shape=(), name=name, dtype=tf.float32)
            encoded.append(keras.layers.Reshape((1,), name=f"{feature.name}_column")(inputs[name]))
        else:
            inputs[name] = keras.Input(shape=(), name=name, dtype=tf.int64)
            encoded.append(keras.layers.CategoryEncoding(num_tokens=vocab_sizes[feature.name], output_mode="one_hot",
                                                         name=f"{feature.name}_one_hot")(inputs[name]))
    return inputs, keras.layers.Concatenate(name="features")(encoded)


def build_trunk(x: tf.Tensor, widths: tuple[int, ...], dropout: float = 0.0, l2: float = 0.0) -> tf.Tensor:
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation="relu", name=f"trunk_{i}", kernel_regularizer=_l2(l2))(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"trunk_{i}_dropout")(x)
    return x


def _l2(l2: float):
    return keras.regularizers.L2(l2) if l2 else None


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VectorToAngle(keras.layers.Layer):
    """Maps a 2-vector `(cos-like, sin-like)` to its angle in [0, 2*pi).

    Predicting a point on the plane and reading its angle has no seam at 0 = 2*pi, unlike regressing the
    angle itself.
    """

    def call(self, vector):
        angle = tf.math.atan2(vector[:, 1], vector[:, 0])
        return tf.math.floormod(angle, 2.0 * math.pi)[:, None]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassConditionalDense(keras.layers.Layer):
    """A dense layer with one kernel and bias per class of another head, whose predicted class picks them.

    Called on `[x, gate_logits]`: `gate_logits` are the other head's logits, `[batch, classes]`, or `[batch, 1]`
    for a binary head (class 1 where the logit is positive). The prediction is taken as given: no gradient
    flows into the gating head, whose own loss alone trains it.
    """

    def __init__(self, units: int, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        x_shape, gate_shape = input_shape
        classes = max(int(gate_shape[-1]), 2)
        self.kernel = self.add_weight(name="kernel", shape=(classes, int(x_shape[-1]), self.units),
                                      initializer="glorot_uniform", regularizer=self.kernel_regularizer)
        self.bias = self.add_weight(name="bias", shape=(classes, self.units), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        x, gate_logits = inputs
        # An integer class: nothing differentiable reaches the gating head.
        if gate_logits.shape[-1] == 1:
            predicted = tf.cast(gate_logits[:, 0] > 0, tf.int64)
        else:
            predicted = tf.argmax(gate_logits, axis=-1)
        # Every class's output, then each row's own: classes are few, and this keeps one matmul per batch.
        per_class = tf.einsum("bd,kdu->bku", x, self.kernel) + self.bias
        return tf.gather(per_class, predicted, axis=1, batch_dims=1)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


def build_head(head: HeadSpec, trunk: tf.Tensor, stats: LabelStats | None, l2: float = 0.0,
               gate: tf.Tensor | None = None) -> tf.Tensor:
    """One head's output layer, named after the head: logits, a value in the label's units, or an angle.

    With `gate` (the logits of the head this one is `conditioned_on`), the output layer has one set of weights per
    class of that head, picked by its predicted class.
    """
    # float32 whatever the global precision policy: under mixed precision the trunk computes in float16, but
    # logits, losses and values in a label's units (grams, say) need float32's range and precision.
    if gate is None:
        def dense(units, name):
            return keras.layers.Dense(units, kernel_regularizer=_l2(l2), dtype="float32", name=name)(trunk)
    else:
        def dense(units, name):
            return ClassConditionalDense(units, kernel_regularizer=_l2(l2), dtype="float32", name=name)([trunk, gate])
    if head.kind == "multiclass":
        return dense(len(head.classes), name=head.name)
    if head.kind == "binary":
        return dense(1, name=head.name)
    if head.kind == "angle":
        return VectorToAngle(name=head.name, dtype="float32")(dense(2, name=f"{head.name}_vector"))
    standardized = dense(1, name=f"{head.name}_standardized")
    # Predict in the label's units: the output layer undoes the standardization the head learns in.
    return keras.layers.Rescaling(scale=stats.std, offset=stats.mean, name=head.name, dtype="float32")(standardized)


def build_metrics(head: HeadSpec) -> list[keras.metrics.Metric]:
    """Keras metrics for training logs, one per metric the spec names for the head, as the registry declares them
    (its `logits_config`: the training model outputs logits)."""
    metrics = []
    for name in head.metrics:
        record = METRICS[head.kind][name]
        metric_class = getattr(custom_metrics if record.custom else keras.metrics, record.keras_class)
        config = dict(record.logits_config)
        if record.needs_class_subset:
            config["class_indices"] = [head.classes.index(c) for c in head.class_subset]
        metrics.append(metric_class(name=record.name, **config))
    return metrics


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LossWeighting(keras.layers.Layer):
    """Adds the heads' losses into the training loss, with fixed, learned or dynamic weights.

    Every mode multiplies each head's loss by its spec `loss_weight` times a mode factor, the head's
    *effective weight*:

    - `fixed`: factor 1.
    - `uncertainty` (Kendall, Gal and Cipolla, CVPR 2018): a trainable log-variance `s` per head; the head
      adds `exp(-s) * loss + s`, so a noisy head (large loss) learns a small weight, and `s` keeps weights
      from collapsing to 0. `s` is scaled by the fraction of the batch that has the head's label, so a
      batch without a head's labels leaves its `s` alone (the per-row objective, masked like the loss).
    - `dwa` (dynamic weight average, Liu, Johns and Davison, CVPR 2019): factor
      `K * softmax(r / T)` over heads, with `r` the ratio of the head's mean loss in the last two epochs
      (heads whose loss falls slowest weigh more); 1 for the first two epochs. `end_epoch` updates it.
    """

    def __init__(self, heads: Sequence[str] = (), mode: str = "fixed", loss_weights: Sequence[float] = (),
                 temperature: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {mode!r} (expected one of {', '.join(LOSS_WEIGHTINGS)})")
        if len(loss_weights) != len(heads):
            raise ValueError(f"{len(heads)} heads but {len(loss_weights)} loss weights")
        self.heads, self.mode, self.temperature = list(heads), mode, float(temperature)
        self.loss_weights = [float(w) for w in loss_weights]
        count = len(self.heads)
        self.log_variances = self.add_weight(name="log_variances", shape=(count,), initializer="zeros",
                                             trainable=mode == "uncertainty")
        frozen = dict(trainable=False, initializer="zeros")
        self.dwa_factors = self.add_weight(name="dwa_factors", shape=(count,), trainable=False, initializer="ones")
        self.epoch_loss_sums = self.add_weight(name="epoch_loss_sums", shape=(count,), **frozen)
        self.epoch_batches = self.add_weight(name="epoch_batches", shape=(), **frozen)
        # Mean loss of each head over the last two finished epochs: row 0 the latest, row 1 the one before.
        self.epoch_means = self.add_weight(name="epoch_means", shape=(2, count), **frozen)
        self.epochs_done = self.add_weight(name="epochs_done", shape=(), **frozen)

    def effective_weights(self) -> tf.Tensor:
        weights = tf.constant(self.loss_weights, tf.float32)
        if self.mode == "uncertainty":
            return weights * tf.exp(-self.log_variances)
        if self.mode == "dwa":
            return weights * self.dwa_factors
        return weights

    def call(self, losses, labelled_fractions, training=False):
        """Returns the total loss and the effective weights, given each head's loss and labelled fraction."""
        weights = self.effective_weights()
        total = tf.reduce_sum(weights * losses)
        if self.mode == "uncertainty":
            total += tf.reduce_sum(self.log_variances * labelled_fractions)
        if training and self.mode == "dwa":
            self.epoch_loss_sums.assign_add(tf.stop_gradient(losses))
            self.epoch_batches.assign_add(1.0)
        return total, weights

    def end_epoch(self) -> None:
        """Called after every training epoch: `dwa` moves its factors on; the other modes keep nothing."""
        if self.mode != "dwa" or float(self.epoch_batches) == 0:
            return
        means = self.epoch_loss_sums / self.epoch_batches
        self.epoch_means.assign(tf.stack([means, self.epoch_means[0]]))
        self.epochs_done.assign_add(1.0)
        self.epoch_loss_sums.assign(tf.zeros_like(self.epoch_loss_sums))
        self.epoch_batches.assign(0.0)
        if float(self.epochs_done) >= 2:
            self.dwa_factors.assign(dwa_factors(self.epoch_means[0].numpy(), self.epoch_means[1].numpy(),
                                                self.temperature))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "mode": self.mode, "loss_weights": self.loss_weights,
                "temperature": self.temperature}


def dwa_factors(last: np.ndarray, before_last: np.ndarray, temperature: float) -> np.ndarray:
    """Dynamic weight average: `K * softmax((last / before_last) / T)` over the K heads.

    A head with no loss in an epoch (no labelled row) has ratio 1.
    """
    last, before_last = np.asarray(last, np.float64), np.asarray(before_last, np.float64)
    ratios = np.where(before_last > 0, last / np.where(before_last > 0, before_last, 1.0), 1.0)
    scaled = np.exp((ratios - ratios.max()) / temperature)
    return (len(ratios) * scaled / scaled.sum()).astype(np.float32)


class _EndEpoch(keras.callbacks.Callback):
    """Tells the loss weighting an epoch ended. Runs after the caller's callbacks, so that TensorBoard logs the
    weights the epoch trained with."""

    def __init__(self, weighting: LossWeighting):
        super().__init__()
        self.weighting = weighting

    def on_epoch_end(self, epoch, logs=None):
        self.weighting.end_epoch()


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MultiHeadModel(keras.Model):
    """A functional model with one output per head whose losses add up through a `LossWeighting`.

    Compile it with one loss per head (`loss={head: Loss}`) and any `weighted_metrics`; the per-head sample
    weights mask missing labels in both. `fit` logs `loss`, `<head>_loss` (the unweighted head loss) and
    `<head>_weight` (its effective weight) besides the metrics.
    """

    # The positional arguments are exactly Functional's, so that Keras serializes the graph in `get_config`
    # (it does only for constructors like Functional's); the weighting is keyword-only.
    def __init__(self, inputs, outputs, name=None, trainable=True, *, loss_weighting: LossWeighting, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, trainable=trainable, **kwargs)
        self.loss_weighting = loss_weighting
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.head_loss_trackers = [keras.metrics.Mean(name=f"{h}_loss") for h in loss_weighting.heads]
        self.head_weight_trackers = [keras.metrics.Mean(name=f"{h}_weight") for h in loss_weighting.heads]

    def weighted_loss(self, y, y_pred, sample_weight, training: bool) -> tf.Tensor:
        """The training loss: each head's masked loss, weighted; also updates the loss and weight trackers."""
        losses, labelled = [], []
        for head in self.loss_weighting.heads:
            weight = None if sample_weight is None else sample_weight.get(head)
            losses.append(self.loss[head](y[head], y_pred[head], sample_weight=weight))
            labelled.append(tf.constant(1.0) if weight is None else tf.reduce_mean(tf.cast(weight, tf.float32)))
        losses = tf.stack(losses)
        total, weights = self.loss_weighting(losses, tf.stack(labelled), training=training)
        if self.losses:
            total += tf.add_n(self.losses)
        self.total_loss_tracker.update_state(total)
        for i in range(len(self.loss_weighting.heads)):
            self.head_loss_trackers[i].update_state(losses[i])
            self.head_weight_trackers[i].update_state(weights[i])
        return total

    # Not converted by autograph: the steps hold no Python control flow on tensors, and converting them
    # converts, line by line, all the Keras code they call (layers, losses, metrics, optimizer): about 15 s of
    # the first epoch on penguins, the Trainer's largest fixed cost. The graph traced is the same.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            total = self.weighted_loss(y, y_pred, sample_weight, training=True)
        self.optimizer.minimize(total, self.trainable_variables, tape=tape)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        self.weighted_loss(y, y_pred, sample_weight, training=False)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def fit(self, *args, callbacks=None, **kwargs):
        return super().fit(*args, callbacks=list(callbacks or []) + [_EndEpoch(self.loss_weighting)], **kwargs)

    def get_config(self):
        config = super().get_config()
        # Keras lists every layer assigned to an attribute, not only the graph's: the loss weighting (kept under
        # its own key) and the export's Transform layer (not rebuildable from a config; the SavedModel's
        # signatures carry it). Keep the graph's layers only, so the Keras loader can rebuild the model.
        in_graph = {layer.name for layer in self.layers if layer.inbound_nodes}
        config["layers"] = [layer for layer in config["layers"] if layer["name"] in in_graph]
        return {**config, "loss_weighting": keras.saving.serialize_keras_object(self.loss_weighting)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        weighting = keras.saving.deserialize_keras_object(config.pop("loss_weighting"),
                                                          custom_objects=custom_objects)
        graph = keras.Model.from_config(config, custom_objects=custom_objects)
        # Keyed by head again: each head's output layer is named after the head.
        outputs = dict(zip(graph.output_names, graph.outputs))
        return cls(inputs=graph.inputs, outputs=outputs, loss_weighting=weighting, name=graph.name)


def build_model(spec: HeadsSpec, vocab_sizes: Mapping[str, int], stats: Mapping[str, LabelStats]) -> MultiHeadModel:
    """The compiled multi-head model.

    Args:
      spec: the heads spec.
      vocab_sizes: for each categorical feature, its number of buckets (vocabulary plus out-of-vocabulary).
      stats: for each regression head, its label's statistics over the training split.

    Returns:
      A tf_keras functional model with a shared trunk and one output per head, compiled with each head's loss;
      the heads' losses add up as `spec.training.loss_weighting` says; per-row sample weights (one per head) mask
      missing labels in losses and metrics.
    """
    keras.utils.set_random_seed(spec.training.seed)
    inputs, encoded = build_inputs(spec, vocab_sizes)
    training = spec.training
    trunk = build_trunk(encoded, training.trunk, training.dropout, training.l2)
    outputs = {}
    # The heads others are conditioned on first (they are never conditioned themselves); then spec order again.
    for h in sorted(spec.heads, key=lambda h: h.conditioned_on is not None):
        gate = outputs[h.conditioned_on] if h.conditioned_on else None
        outputs[h.name] = build_head(h, trunk, stats.get(h.name), training.l2, gate=gate)
    outputs = {h.name: outputs[h.name] for h in spec.heads}
    weighting = LossWeighting(heads=[h.name for h in spec.heads], mode=spec.training.loss_weighting,
                              loss_weights=[h.loss_weight for h in spec.heads],
                              temperature=spec.training.dwa_temperature, name="loss_weighting", dtype="float32")
    model = MultiHeadModel(inputs=inputs, outputs=outputs, loss_weighting=weighting, name=f"{spec.name}_multihead")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.training.learning_rate),
        loss={h.name: build_loss(h, stats[h.name].std if h.kind == "regression" else 1.0) for h in spec.heads},
        weighted_metrics={h.name: build_metrics(h) for h in spec.heads},
        steps_per_execution=spec.training.steps_per_execution,
    )
    # Created here, the optimizer's slots are not created inside the first call of the train function, which
    # tf.function would then trace a second time (about 1.5 s of the penguins Trainer, measured in-memory).
    model.optimizer.build(model.trainable_variables)
    return model
