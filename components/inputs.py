"""Training input: transformed examples as `(features, labels, sample_weights)` batches keyed by head."""

from typing import Mapping

import numpy as np
import tensorflow as tf

from components.model import LabelStats, label_stats
from pipeline.config import HeadsSpec, label_name, transformed_name, weight_name


def split_features_labels_weights(batch: Mapping[str, tf.Tensor], spec: HeadsSpec) -> tuple[dict, dict, dict]:
    """Splits a dict of transformed tensors into Keras's (inputs, targets, sample weights), each keyed by name."""
    features = {transformed_name(f.name): batch[transformed_name(f.name)] for f in spec.features}
    labels = {h.name: batch[label_name(h.name)] for h in spec.heads}
    weights = {h.name: batch[weight_name(h.name)] for h in spec.heads}
    return features, labels, weights


def regression_label_stats(batches: tf.data.Dataset, spec: HeadsSpec) -> dict[str, LabelStats]:
    """Label statistics of every regression head over a (finite) dataset of transformed batches."""
    heads = [h for h in spec.heads if h.kind == "regression"]
    if not heads:
        return {}
    values = {h.name: [] for h in heads}
    weights = {h.name: [] for h in heads}
    for batch in batches:
        for h in heads:
            values[h.name].append(batch[label_name(h.name)].numpy())
            weights[h.name].append(batch[weight_name(h.name)].numpy())
    stats = {}
    for h in heads:
        try:
            stats[h.name] = label_stats(np.concatenate(values[h.name]), np.concatenate(weights[h.name]))
        except ValueError:
            raise ValueError(f"head {h.name!r}: no training row has a value in label column {h.label!r}") from None
    return stats
