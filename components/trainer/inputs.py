"""Training input: transformed examples as `(features, labels, sample_weights)` batches keyed by head."""

import dataclasses
import math
from typing import Mapping

import numpy as np
import tensorflow as tf

from components.spec import HeadsSpec, label_name, transformed_name, weight_name
from components.trainer.model import LabelStats, label_stats


def split_features_labels_weights(batch: Mapping[str, tf.Tensor], spec: HeadsSpec) -> tuple[dict, dict, dict]:
    """Splits a dict of transformed tensors into Keras's (inputs, targets, sample weights), each keyed by name."""
    features = {transformed_name(f.name): batch[transformed_name(f.name)] for f in spec.features}
    labels = {h.name: batch[label_name(h.name)] for h in spec.heads}
    weights = {h.name: batch[weight_name(h.name)] for h in spec.heads}
    return features, labels, weights


def _rows_in(batch: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """A batch's row count: every transformed column holds one value per row."""
    return tf.shape(next(iter(batch.values())), out_type=tf.int64)[0]


@dataclasses.dataclass(frozen=True)
class SplitScan:
    """What one pass over a split of transformed examples tells the Trainer before it trains.

    Attributes:
      rows: examples in the split.
      label_stats: for each regression head, its label's statistics over the split's labelled rows.
    """

    rows: int
    label_stats: dict[str, LabelStats]


def scan_split(batches: tf.data.Dataset, spec: HeadsSpec) -> SplitScan:
    """Counts the rows of a (finite) dataset of transformed batches and takes its regression labels' statistics."""
    heads = [h for h in spec.heads if h.kind == "regression"]
    values = {h.name: [] for h in heads}
    weights = {h.name: [] for h in heads}
    rows = 0
    for batch in batches:
        rows += int(_rows_in(batch))
        for h in heads:
            values[h.name].append(batch[label_name(h.name)].numpy())
            weights[h.name].append(batch[weight_name(h.name)].numpy())
    stats = {}
    for h in heads:
        try:
            stats[h.name] = label_stats(np.concatenate(values[h.name]), np.concatenate(weights[h.name]))
        except ValueError:
            raise ValueError(f"head {h.name!r}: no training row has a value in label column {h.label!r}") from None
    return SplitScan(rows=rows, label_stats=stats)


def count_rows(batches: tf.data.Dataset) -> int:
    """Rows of a (finite) dataset of transformed batches; no label needs a value."""
    return int(batches.reduce(tf.constant(0, tf.int64), lambda rows, batch: rows + _rows_in(batch)))


def with_known_batch_count(batches: tf.data.Dataset, rows: int, batch_size: int) -> tf.data.Dataset:
    """The same batches, with their count declared (the last one may be short).

    Keras runs several steps per execution only over a dataset of known length, and TFXIO's datasets are of
    unknown length. The count is asserted: a wrong one fails the epoch that runs past or short of it.
    """
    return batches.apply(tf.data.experimental.assert_cardinality(math.ceil(rows / batch_size)))
