"""The multi-head Keras model: pure builders from the heads spec (and data facts) to a compiled model.

`run_fn` calls these with the vocabulary sizes and label statistics read from the Transform output; the tests
call them with hand-made numbers. The model takes transformed features and returns one output per head,
keyed and named by the head's name: class probabilities, or a regression value in the label's own units.
"""

import dataclasses
from typing import Mapping

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.losses import build_loss
from pipeline.config import HeadSpec, HeadsSpec, transformed_name


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


def build_trunk(x: tf.Tensor, widths: tuple[int, ...]) -> tf.Tensor:
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation="relu", name=f"trunk_{i}")(x)
    return x


def build_head(head: HeadSpec, trunk: tf.Tensor, stats: LabelStats | None) -> tf.Tensor:
    """One head's output layer, named after the head."""
    if head.kind == "multiclass":
        return keras.layers.Dense(len(head.classes), activation="softmax", name=head.name)(trunk)
    if head.kind == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name=head.name)(trunk)
    standardized = keras.layers.Dense(1, name=f"{head.name}_standardized")(trunk)
    # Predict in the label's units: the output layer undoes the standardization the head learns in.
    return keras.layers.Rescaling(scale=stats.std, offset=stats.mean, name=head.name)(standardized)


def build_metrics(head: HeadSpec) -> list[keras.metrics.Metric]:
    """Keras metrics for training logs, one per metric the spec names for the head."""
    makers = {
        ("multiclass", "accuracy"): lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        ("binary", "accuracy"): lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
        ("binary", "auc"): lambda: keras.metrics.AUC(name="auc"),
        ("binary", "precision"): lambda: keras.metrics.Precision(name="precision"),
        ("binary", "recall"): lambda: keras.metrics.Recall(name="recall"),
        ("regression", "mae"): lambda: keras.metrics.MeanAbsoluteError(name="mae"),
        ("regression", "mse"): lambda: keras.metrics.MeanSquaredError(name="mse"),
        ("regression", "rmse"): lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
    }
    return [makers[(head.kind, m)]() for m in head.metrics]


def build_model(spec: HeadsSpec, vocab_sizes: Mapping[str, int], stats: Mapping[str, LabelStats]) -> keras.Model:
    """The compiled multi-head model.

    Args:
      spec: the heads spec.
      vocab_sizes: for each categorical feature, its number of buckets (vocabulary plus out-of-vocabulary).
      stats: for each regression head, its label's statistics over the training split.

    Returns:
      A tf_keras functional model with a shared trunk and one output per head, compiled with each head's loss
      and loss weight; per-row sample weights (one per head) mask missing labels in losses and metrics.
    """
    keras.utils.set_random_seed(spec.training.seed)
    inputs, encoded = build_inputs(spec, vocab_sizes)
    trunk = build_trunk(encoded, spec.training.trunk)
    outputs = {h.name: build_head(h, trunk, stats.get(h.name)) for h in spec.heads}
    model = keras.Model(inputs=inputs, outputs=outputs, name=f"{spec.name}_multihead")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.training.learning_rate),
        loss={h.name: build_loss(h, stats[h.name].std if h.kind == "regression" else 1.0) for h in spec.heads},
        loss_weights={h.name: h.loss_weight for h in spec.heads},
        weighted_metrics={h.name: build_metrics(h) for h in spec.heads},
    )
    return model
