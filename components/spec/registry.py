"""The registry: every head kind, loss, metric and loss weighting the heads spec accepts, each declared once.

A loss or a metric is one record here. The spec parser takes its choices, parameters and ranges from these
records; the Trainer's loss and metric builders and the Evaluator's config take their implementations from them
(`keras_class`); the run's table and report take TFMA's names back through them. `tests/test_registry.py`
fails when a record has no implementation or an implementation no record.

Nothing here imports TensorFlow: the command line validates a spec in milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any, Mapping, Optional

FEATURE_KINDS = ("numeric", "categorical")
HEAD_KINDS = ("regression", "binary", "multiclass", "angle")
CLASSIFICATION_KINDS = ("binary", "multiclass")

# How the heads' losses add up to the training loss (see `LossWeighting` in components/trainer/model.py).
LOSS_WEIGHTINGS = ("fixed", "uncertainty", "dwa")


@dataclasses.dataclass(frozen=True)
class Param:
    """A loss parameter: its default and the range it accepts (`low` itself only when `low_allowed`).

    `per_class` parameters map class names to positive weights (unnamed classes weigh 1) instead.
    """

    default: Any
    low: float = -math.inf
    high: float = math.inf
    low_allowed: bool = True
    per_class: bool = False


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss a head of `kind` may name, its parameters, and the Keras loss class that computes it
    (components/trainer/losses.py)."""

    name: str
    kind: str
    params: Mapping[str, Param]
    keras_class: str
    needs_class_subset: bool = False

    def defaults(self) -> dict[str, Any]:
        return {key: (dict(p.default) if p.per_class else p.default) for key, p in self.params.items()}


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric a head of `kind` may name.

    Attributes:
      name: the spec's name, also the name of the Keras metric in the training logs.
      kind: the head kind.
      higher_is_better: which bound a threshold on it needs (lower for True, upper for False).
      keras_class: its class in `tf_keras.metrics`, or in components/trainer/metrics.py when `custom`; TFMA
        scores the serving outputs with the same class.
      reported_as: the name TFMA reports it under.
      custom: defined in components/trainer/metrics.py (TFMA imports it by module).
      logits_config: what the Keras metric needs to read the training model's logits (the serving outputs, which
        TFMA reads, are probabilities).
      needs_class_subset: reads the head's `class_subset`.
    """

    name: str
    kind: str
    higher_is_better: bool
    keras_class: str
    reported_as: str
    custom: bool = False
    logits_config: Mapping[str, Any] = MappingProxyType({})
    needs_class_subset: bool = False


# Every regression loss can add an L1 pull toward a target value (in the label's units); weight 0 turns it off.
_PULL = {"pull_weight": Param(0.0, low=0.0), "pull_target": Param(0.0)}
_SMOOTHING = Param(0.0, low=0.0, high=1.0)

_LOSSES = (
    Loss("mse", "regression", dict(_PULL), "StandardizedRegressionLoss"),
    Loss("mae", "regression", dict(_PULL), "StandardizedRegressionLoss"),
    Loss("huber", "regression", {"delta": Param(1.0, low=0.0, low_allowed=False), **_PULL},
         "StandardizedRegressionLoss"),
    Loss("log_cosh", "regression", dict(_PULL), "StandardizedRegressionLoss"),
    Loss("binary_crossentropy", "binary", {"pos_weight": Param(1.0, low=0.0, low_allowed=False)},
         "BinaryCrossentropyFromLogits"),
    Loss("focal", "binary", {"gamma": Param(2.0, low=0.0), "alpha": Param(0.25, low=0.0, high=1.0,
                                                                           low_allowed=False)},
         "BinaryFocalLossFromLogits"),
    # `class_weights` maps class names to weights (unnamed classes weigh 1).
    Loss("sparse_categorical_crossentropy", "multiclass",
         {"label_smoothing": _SMOOTHING, "class_weights": Param({}, per_class=True)},
         "SparseCategoricalCrossentropyFromLogits"),
    # Weighs the head's `class_subset` `subset_weight` times more than the other classes.
    Loss("subset_crossentropy", "multiclass",
         {"label_smoothing": _SMOOTHING, "subset_weight": Param(2.0, low=0.0, low_allowed=False)},
         "SparseCategoricalCrossentropyFromLogits", needs_class_subset=True),
    # Angles in radians: 1 - cos(y - y_pred), so angles 2*pi apart are equal.
    Loss("cosine", "angle", {}, "AngularLoss"),
)

_METRICS = (
    Metric("mae", "regression", False, "MeanAbsoluteError", "mean_absolute_error"),
    Metric("mse", "regression", False, "MeanSquaredError", "mean_squared_error"),
    Metric("rmse", "regression", False, "RootMeanSquaredError", "root_mean_squared_error"),
    Metric("accuracy", "binary", True, "BinaryAccuracy", "binary_accuracy",
           logits_config=MappingProxyType({"threshold": 0.0})),
    Metric("auc", "binary", True, "AUC", "auc", logits_config=MappingProxyType({"from_logits": True})),
    Metric("precision", "binary", True, "Precision", "precision",
           logits_config=MappingProxyType({"thresholds": 0.0})),
    Metric("recall", "binary", True, "Recall", "recall", logits_config=MappingProxyType({"thresholds": 0.0})),
    Metric("accuracy", "multiclass", True, "SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
    # Accuracy over the rows whose true class is in the head's `class_subset`.
    Metric("subset_accuracy", "multiclass", True, "SubsetAccuracy", "subset_accuracy", custom=True,
           needs_class_subset=True),
    # Mean absolute angular error in degrees, the shorter way round the circle.
    Metric("angular_error_deg", "angle", False, "MeanAngularErrorDegrees", "angular_error_deg", custom=True),
)


def _by_kind(records) -> Mapping[str, Mapping[str, Any]]:
    table: dict[str, dict[str, Any]] = {kind: {} for kind in HEAD_KINDS}
    for record in records:
        table[record.kind][record.name] = record
    return MappingProxyType({kind: MappingProxyType(names) for kind, names in table.items()})


# `LOSSES[kind][name]` and `METRICS[kind][name]`: the records, by head kind, in declaration order (the first of a
# kind is its default in examples and tests).
LOSSES: Mapping[str, Mapping[str, Loss]] = _by_kind(_LOSSES)
METRICS: Mapping[str, Mapping[str, Metric]] = _by_kind(_METRICS)


def reported_metric(tfma_name: str) -> Optional[Metric]:
    """The record of the metric TFMA reports as `tfma_name`, None for one the spec does not declare (TFMA's own
    example count, say)."""
    return next((m for m in _METRICS if m.reported_as == tfma_name), None)


def reported_name_of_class(keras_class: str) -> str:
    """The name TFMA reports a metric under, given the class an EvalConfig names it by (a class the spec does not
    declare keeps its name)."""
    return next((m.reported_as for m in _METRICS if m.keras_class == keras_class), keras_class)


def spec_metric_name(tfma_name: str) -> str:
    """The heads spec's name of a metric TFMA reports as `tfma_name` (`sparse_categorical_accuracy`: accuracy),
    as the run's table, the failure lines and the report print it; a name the spec does not know stays."""
    record = reported_metric(tfma_name)
    return record.name if record else tfma_name
