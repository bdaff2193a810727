"""The heads spec: one typed, validated config object read by Transform, Trainer and Evaluator.

A heads spec is a YAML file (see `schemas/penguins/heads.yaml`). `load_spec` reads and validates it once;
the pipeline hands the validated spec to the components as a plain dict (`HeadsSpec.to_dict`) through their
`custom_config`, and the module files rebuild the same object with `HeadsSpec.from_dict`, which validates again.

This module imports neither TensorFlow nor TFX, so the command line can validate a spec in milliseconds.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

FEATURE_KINDS = ("numeric", "categorical")
HEAD_KINDS = ("regression", "binary", "multiclass", "angle")

# Every regression loss can add an L1 pull toward a target value (in the label's units); weight 0 turns it off.
_PULL = {"pull_weight": 0.0, "pull_target": 0.0}

# Losses each head kind accepts, with the parameters each loss takes (and their defaults).
LOSSES: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "regression": {"mse": dict(_PULL), "mae": dict(_PULL), "huber": {"delta": 1.0, **_PULL},
                   "log_cosh": dict(_PULL)},
    "binary": {"binary_crossentropy": {"pos_weight": 1.0}, "focal": {"gamma": 2.0, "alpha": 0.25}},
    # `class_weights` maps class names to weights (unnamed classes weigh 1); `subset_crossentropy` weighs the
    # head's `class_subset` `subset_weight` times more than the other classes.
    "multiclass": {"sparse_categorical_crossentropy": {"label_smoothing": 0.0, "class_weights": {}},
                   "subset_crossentropy": {"label_smoothing": 0.0, "subset_weight": 2.0}},
    # Angles in radians: 1 - cos(y - y_pred), so angles 2*pi apart are equal.
    "angle": {"cosine": {}},
}

# What each loss parameter accepts: (smallest, largest, whether the smallest itself is allowed).
_PARAM_RANGES: Mapping[str, tuple[float, float, bool]] = {
    "delta": (0.0, math.inf, False), "pull_weight": (0.0, math.inf, True),
    "pull_target": (-math.inf, math.inf, True), "pos_weight": (0.0, math.inf, False),
    "gamma": (0.0, math.inf, True), "alpha": (0.0, 1.0, False), "label_smoothing": (0.0, 1.0, True),
    "subset_weight": (0.0, math.inf, False),
}

# Metrics each head kind accepts, and whether a larger value is better (which bound a threshold needs).
METRICS: Mapping[str, Mapping[str, bool]] = {
    "regression": {"mae": False, "mse": False, "rmse": False},
    "binary": {"accuracy": True, "auc": True, "precision": True, "recall": True},
    # subset_accuracy: accuracy over the rows whose true class is in the head's `class_subset`.
    "multiclass": {"accuracy": True, "subset_accuracy": True},
    # Mean absolute angular error in degrees, the shorter way round the circle.
    "angle": {"angular_error_deg": False},
}

# Spec metric -> (TFMA/Keras metric class, the name TFMA reports it under). Here, not in eval_config, so that
# what reads TFMA's names back (the runs list) needs no TFMA import.
METRIC_CLASSES = {
    ("multiclass", "accuracy"): ("SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
    ("binary", "accuracy"): ("BinaryAccuracy", "binary_accuracy"),
    ("binary", "auc"): ("AUC", "auc"),
    ("binary", "precision"): ("Precision", "precision"),
    ("binary", "recall"): ("Recall", "recall"),
    ("regression", "mae"): ("MeanAbsoluteError", "mean_absolute_error"),
    ("regression", "mse"): ("MeanSquaredError", "mean_squared_error"),
    ("regression", "rmse"): ("RootMeanSquaredError", "root_mean_squared_error"),
    ("multiclass", "subset_accuracy"): ("SubsetAccuracy", "subset_accuracy"),
    ("angle", "angular_error_deg"): ("MeanAngularErrorDegrees", "angular_error_deg"),
}
# Metric class (as an EvalConfig names it) -> the name TFMA reports it under.
REPORTED_METRIC_NAMES = {class_name: reported for class_name, reported in METRIC_CLASSES.values()}


def spec_metric_name(tfma_name: str) -> str:
    """The heads spec's name of a metric TFMA reports as `tfma_name` (`sparse_categorical_accuracy`: accuracy),
    as the run's table, the failure lines and the report print it; a name the spec does not know stays."""
    return {reported: metric for (_, metric), (_, reported) in METRIC_CLASSES.items()}.get(tfma_name, tfma_name)

# How the heads' losses add up to the training loss (see `LossWeighting` in components/model.py).
LOSS_WEIGHTINGS = ("fixed", "uncertainty", "dwa")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpecError(ValueError):
    """A heads spec or a setting is wrong; the message names the file or flag, and the field."""


# ---------------------------------------------------------------------------------------------------------
# Naming helpers: every transformed name in the pipeline comes from here.


def transformed_name(feature: str) -> str:
    """Name of a transformed model input feature."""
    return f"{feature}_xf"


def label_name(head: str) -> str:
    """Name of a head's transformed label. Never equal to a raw column, so TFMA cannot confuse the two."""
    return f"{head}__label"


def weight_name(head: str) -> str:
    """Name of a head's per-row weight: 0 where the head's label is missing, 1 otherwise."""
    return f"{head}__weight"


def predicted_class_name(head: str) -> str:
    """Name of the serving output that holds a classification head's predicted class as a string."""
    return f"{head}__class"


def vocabulary_name(feature: str) -> str:
    """Name of the TF Transform vocabulary file of a categorical feature."""
    return f"{feature}_vocab"


# ---------------------------------------------------------------------------------------------------------
# The spec.


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """A model input column.

    Attributes:
      name: column name in the data.
      kind: `numeric` (missing values are filled with the training mean, then z-scored) or `categorical`
        (a vocabulary from the training split plus one out-of-vocabulary bucket, which also takes missing values).
    """

    name: str
    kind: str


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A head's loss: a name from `LOSSES` and its parameters."""

    name: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SliceBound:
    """A bound on a head's threshold metric in every slice of one of the spec's slices (e.g. every island).

    Attributes:
      slice: the categorical features of the slice, one of the spec's `slices`.
      lower / upper: as in `ThresholdSpec`, the same direction as the head's overall bound.
    """

    slice: tuple[str, ...]
    lower: Optional[float] = None
    upper: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class ThresholdSpec:
    """The bounds a head's metric must meet on the eval split for the model to be blessed.

    Attributes:
      metric: one of the head's metrics.
      lower: the metric must be at least this over the whole eval split (metrics where larger is better).
      upper: the metric must be at most this over the whole eval split (metrics where smaller is better).
      tolerance: how much worse than the baseline (the latest blessed model) the metric may be, in its own units;
        None: not compared. A head the baseline lacks is judged on its absolute bounds alone.
      per_slice: bounds on every slice of some of the spec's slices.
    """

    metric: str
    lower: Optional[float] = None
    upper: Optional[float] = None
    tolerance: Optional[float] = None
    per_slice: tuple[SliceBound, ...] = ()


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One prediction target: one Keras output, one loss, one label and one weight in the transformed data.

    Attributes:
      name: the head's name; it names the Keras output, the serving output and TFMA's output_name.
      label: the label column in the data.
      kind: `regression`, `binary`, `multiclass` or `angle` (radians; 0 and 2*pi are the same angle).
      classes: for classification heads, the label values; for `binary` the second is the positive class.
      class_subset: (multiclass) classes that `subset_crossentropy` weighs more and `subset_accuracy` scores.
      loss: the head's loss.
      loss_weight: the head's weight in the total loss.
      metrics: metrics computed for the head (in training logs and by the Evaluator).
      threshold: the bound the Evaluator checks before blessing the model.
      conditioned_on: another classification head; this head's output layer then holds one set of weights per
        class of that head, and the class that head predicts picks the set, in training and serving alike (for
        targets that behave differently by class: a penguin's sex reads differently from the bill of each
        species). The predicted class passes no gradient back: the other head learns from its own loss only.
    """

    name: str
    label: str
    kind: str
    loss: Optional[LossSpec]            # None only in a component view that does not train
    threshold: Optional[ThresholdSpec]  # None only in a component view that does not evaluate
    classes: tuple[str, ...] = ()
    loss_weight: float = 1.0
    metrics: tuple[str, ...] = ()
    class_subset: tuple[str, ...] = ()
    conditioned_on: Optional[str] = None

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """Trainer settings.

    Attributes:
      trunk: widths of the shared dense layers.
      batch_size: examples per training step.
      epochs: passes over the training split.
      learning_rate: Adam's learning rate.
      early_stopping_patience: stop after this many epochs without improvement of the loss on the eval split,
        keeping the best weights; `None` trains all epochs (the eval split then stays unseen by training).
      seed: seed for weight initialisation and shuffling.
      loss_weighting: how the heads' losses add up: `fixed` (each head's `loss_weight`), `uncertainty`
        (Kendall, Gal and Cipolla 2018: a learned log-variance per head), or `dwa` (dynamic weight average,
        Liu, Johns and Davison 2019: weights from the ratio of each head's last two epoch losses).
      dwa_temperature: the temperature of `dwa`'s softmax; larger spreads the weights less.
      dropout: dropout rate after each trunk layer while training (0: none).
      l2: L2 penalty on the trunk's and heads' kernels, added to the training loss (0: none).
      mixed_precision: compute in float16 with float32 variables (Keras `mixed_float16`), for GPUs with
        tensor cores; each head's output stays float32.
      steps_per_execution: training steps run per call from Python into TensorFlow (Keras's setting of that
        name). The same steps in the same order, so the same weights; on small models most of a step's time is
        the call itself (the benchmark's model trains 2.8 x faster at 64 than at 1).
    """

    trunk: tuple[int, ...] = (32, 16)
    batch_size: int = 32
    epochs: int = 50
    learning_rate: float = 0.01
    early_stopping_patience: Optional[int] = None
    seed: int = 42
    loss_weighting: str = "fixed"
    dwa_temperature: float = 2.0
    dropout: float = 0.0
    l2: float = 0.0
    mixed_precision: bool = False
    steps_per_execution: int = 100


@dataclasses.dataclass(frozen=True)
class DistributionBound:
    """How far one column's distribution may move between two datasets before the run stops (TFDV comparators).

    Attributes:
      column: a feature or label column.
      threshold: for a string column the L-infinity distance between the two value-frequency vectors (the
        largest change in any value's share), for a numeric column the approximate Jensen-Shannon divergence of
        the two histograms; both are between 0 and 1.
    """

    column: str
    threshold: float


@dataclasses.dataclass(frozen=True)
class HeadsSpec:
    """Everything the pipeline needs to know about a dataset's features, heads, slices and training."""

    name: str
    features: tuple[FeatureSpec, ...]
    heads: tuple[HeadSpec, ...]
    slices: tuple[tuple[str, ...], ...] = ()
    training: TrainingSpec = TrainingSpec()
    min_slice_size: int = 1                # smaller slices are suppressed by TFMA (the report says so)
    removed_heads: tuple[str, ...] = ()    # heads of the serving model this spec drops on purpose
    drift: tuple[DistributionBound, ...] = ()   # a new span against the previous span
    skew: tuple[DistributionBound, ...] = ()    # the training data against the serving data's statistics

    @property
    def label_columns(self) -> tuple[str, ...]:
        return tuple(h.label for h in self.heads)

    @property
    def raw_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features) + self.label_columns

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """The columns read as numbers: numeric features, and the labels of regression and angle heads."""
        return (tuple(f.name for f in self.features if f.kind == "numeric")
                + tuple(h.label for h in self.heads if h.kind in ("regression", "angle")))

    @property
    def label_classes(self) -> dict[str, tuple[str, ...]]:
        """Each classification head's label column and its classes."""
        return {h.label: h.classes for h in self.heads if h.is_classification}

    def head(self, name: str) -> HeadSpec:
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-compatible data, in the YAML file's own layout."""
        return {
            "name": self.name,
            "features": [dataclasses.asdict(f) for f in self.features],
            "heads": [_head_to_dict(h) for h in self.heads],
            "slices": [list(s) for s in self.slices],
            "training": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dataclasses.asdict(self.training).items()
                         if k != "dwa_temperature" or self.training.loss_weighting == "dwa"},
            "min_slice_size": self.min_slice_size,
            "removed_heads": list(self.removed_heads),
            "drift": {b.column: b.threshold for b in self.drift},
            "skew": {b.column: b.threshold for b in self.skew},
        }

    def fingerprint(self) -> str:
        """A short hash of the spec's content; equal specs hash equal whatever their YAML formatting."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def component_view(self, component: str) -> dict[str, Any]:
        """The part of the spec one component reads, as plain data for its `custom_config`.

        TFX re-executes a component when its properties change: handing each component only what it reads means
        that, say, a new threshold re-runs the Evaluator but leaves Transform and Trainer cached.

        Args:
          component: `transform` (features and each head's label: name, label, kind, classes) or `trainer`
            (all but slices and thresholds).
        """
        data = self.to_dict()
        for key in ("slices", "min_slice_size", "removed_heads", "drift", "skew"):
            del data[key]
        for head in data["heads"]:
            del head["threshold"]
            if component == "transform":
                for key in ("loss", "loss_weight", "metrics", "conditioned_on"):
                    head.pop(key, None)
        if component == "transform":
            del data["training"]
        elif component != "trainer":
            raise ValueError(f"no view of the spec for component {component!r}")
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "heads spec", partial: bool = False) -> "HeadsSpec":
        """Builds and validates a spec from parsed YAML.

        Args:
          data: the parsed YAML (or `to_dict`'s output).
          source: what to name in error messages (the file).
          partial: accept a `component_view` (heads without loss or threshold; those fields are then None).

        Raises:
          SpecError: naming `source` and the offending field.
        """
        return _Parser(source, partial).spec(data)


def _head_to_dict(head: HeadSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": head.name, "label": head.label, "kind": head.kind}
    if head.classes:
        out["classes"] = list(head.classes)
    if head.class_subset:
        out["class_subset"] = list(head.class_subset)
    if head.loss is not None:
        out["loss"] = {"name": head.loss.name, **head.loss.params}
    out["loss_weight"] = head.loss_weight
    out["metrics"] = list(head.metrics)
    if head.conditioned_on is not None:
        out["conditioned_on"] = head.conditioned_on
    if head.threshold is not None:
        threshold = dataclasses.asdict(head.threshold)
        threshold["per_slice"] = [{k: (list(v) if k == "slice" else v) for k, v in b.items() if v is not None}
                                  for b in threshold["per_slice"]]
        out["threshold"] = {k: v for k, v in threshold.items() if v is not None and v != []}
    return out


def load_spec(path: str | Path) -> HeadsSpec:
    """Reads and validates a heads spec YAML file.

    Raises:
      SpecError: if the file is missing, not YAML, or any field is wrong; the message names the file and field.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read heads spec: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    return HeadsSpec.from_dict(data, source=str(path))


def check_columns(spec: HeadsSpec, columns: Sequence[str], source: str) -> None:
    """Checks that every feature and label column of the spec is among `columns` (a schema's or a CSV's).

    Raises:
      SpecError: naming the spec field whose column is absent from `source`.
    """
    known = sorted(set(columns))
    needed = ([(f"features[{i}].name", f.name) for i, f in enumerate(spec.features)]
              + [(f"heads[{i}].label", h.label) for i, h in enumerate(spec.heads)])
    for field, column in needed:
        if column not in known:
            close = difflib.get_close_matches(column, known, n=1)
            raise SpecError(f"{field}: column {column!r} is not in {source}"
                            + (f"; did you mean {close[0]!r}?" if close else "") + f" (columns: {known})")


def check_classes(spec: HeadsSpec, schema, source: str) -> None:
    """Checks that each class of a classification head is in its label column's string domain in `schema` (a TFDV
    Schema proto), when the schema gives it one: a class spelt unlike the data's would mask every row of its
    class, silently, and the head would never predict it.

    Raises:
      SpecError: naming the spec field, the class, the domain and the closest value of it.
    """
    domains = {d.name: list(d.value) for d in schema.string_domain}
    for i, head in enumerate(spec.heads):
        feature = next((f for f in schema.feature if f.name == head.label), None)
        if not head.is_classification or feature is None:
            continue
        domain = (list(feature.string_domain.value) if feature.HasField("string_domain")
                  else domains.get(feature.domain) if feature.HasField("domain") else None)
        for j, cls in enumerate(head.classes):
            if domain and cls not in domain:
                close = difflib.get_close_matches(cls, domain, n=1)
                raise SpecError(f"heads[{i}].classes[{j}]: class {cls!r} is not in the domain of column "
                                f"{head.label!r} in {source} {domain}" + (f"; did you mean {close[0]!r}?" if close
                                                                          else ""))


class _Parser:
    """Validating conversion from parsed YAML to `HeadsSpec`; every error names the field's path."""

    def __init__(self, source: str, partial: bool = False):
        self.source = source
        self.partial = partial

    def fail(self, field: str, problem: str) -> SpecError:
        return SpecError(f"{self.source}: {field}: {problem}")

    def mapping(self, data: Any, field: str, allowed: Optional[Sequence[str]],
                required: Sequence[str] = ()) -> dict:
        """`data` as a mapping with the `required` keys and no key outside `allowed` (None: the caller checks)."""
        if not isinstance(data, dict):
            raise self.fail(field or "(top level)", f"expected a mapping, got {type(data).__name__}")
        for key in data:
            if allowed is not None and key not in allowed:
                raise self.fail(f"{field}.{key}" if field else str(key),
                                f"unknown field (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in data:
                raise self.fail(f"{field}.{key}" if field else key, "required field is missing")
        return data

    def name(self, value: Any, field: str, column: bool = False) -> str:
        """`value` if it is a name; `column`: it names a data column, which the error then says to rename."""
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(field, f"{value!r} is not a valid name (letters, digits and _, not starting with a digit)"
                            + ("; the spec reads columns by name: rename the column in the data (the CSV header "
                               "or the tf.Example key)" if column else ""))
        return value

    def choice(self, value: Any, field: str, choices: Sequence[str]) -> str:
        if value not in choices:
            raise self.fail(field, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def number(self, value: Any, field: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(field, f"expected a number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(field, f"must be > 0, got {value!r}")
        return float(value)

    def fraction(self, value: Any, field: str) -> float:
        number = self.number(value, field)
        if not 0 <= number < 1:
            raise self.fail(field, f"must be >= 0 and < 1, got {value!r}")
        return number

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, f"expected true or false, got {value!r}")
        return value

    def integer(self, value: Any, field: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(field, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def sequence(self, value: Any, field: str, non_empty: bool = True) -> list:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {type(value).__name__}")
        if non_empty and not value:
            raise self.fail(field, "must not be empty")
        return value

    def spec(self, data: Any) -> HeadsSpec:
        data = self.mapping(data, "", ("name", "features", "heads", "slices", "training", "min_slice_size",
                                       "removed_heads", "drift", "skew"),
                            required=("name", "features", "heads"))
        name = self.name(data["name"], "name")
        features = tuple(self.feature(f, f"features[{i}]")
                         for i, f in enumerate(self.sequence(data["features"], "features")))
        heads = tuple(self.head(h, f"heads[{i}]") for i, h in enumerate(self.sequence(data["heads"], "heads")))
        self.unique([f.name for f in features], "features", "name")
        self.unique([h.name for h in heads], "heads", "name")
        self.unique([h.label for h in heads], "heads", "label")
        feature_names = {f.name for f in features}
        for i, h in enumerate(heads):
            if h.label in feature_names:
                raise self.fail(f"heads[{i}].label", f"column {h.label!r} is also a feature; a label cannot be an input")
        self.conditions(heads)
        slices = tuple(self.slice(s, f"slices[{i}]", features)
                       for i, s in enumerate(self.sequence(data.get("slices", []), "slices", non_empty=False)))
        for i, h in enumerate(heads):
            for j, bound in enumerate(h.threshold.per_slice if h.threshold else ()):
                if bound.slice not in slices:
                    raise self.fail(f"heads[{i}].threshold.per_slice[{j}].slice",
                                    f"{list(bound.slice)} is not one of the spec's slices {[list(s) for s in slices]}")
        training = self.training(data.get("training", {}), "training")
        min_slice_size = self.integer(data.get("min_slice_size", 1), "min_slice_size")
        removed = tuple(self.name(n, f"removed_heads[{i}]")
                        for i, n in enumerate(self.sequence(data.get("removed_heads", []), "removed_heads",
                                                            non_empty=False)))
        for i, n in enumerate(removed):
            if n in {h.name for h in heads}:
                raise self.fail(f"removed_heads[{i}]", f"{n!r} is still one of the heads")
        columns = [f.name for f in features] + [h.label for h in heads]
        return HeadsSpec(name=name, features=features, heads=heads, slices=slices, training=training,
                         min_slice_size=min_slice_size, removed_heads=removed,
                         drift=self.distribution_bounds(data.get("drift", {}), "drift", columns),
                         skew=self.distribution_bounds(data.get("skew", {}), "skew", columns))

    def distribution_bounds(self, data: Any, field: str, columns: Sequence[str]) -> tuple[DistributionBound, ...]:
        if not isinstance(data, Mapping):
            raise self.fail(field, "must map columns to bounds, e.g. {island: 0.25}")
        bounds = []
        for column, value in data.items():
            if column not in columns:
                raise self.fail(f"{field}.{column}", f"not a feature or label column of the spec {list(columns)}")
            threshold = self.number(value, f"{field}.{column}", positive=True)
            if threshold > 1:
                raise self.fail(f"{field}.{column}", f"a distance between distributions is at most 1, got {value}")
            bounds.append(DistributionBound(column=column, threshold=threshold))
        return tuple(bounds)

    def unique(self, names: Sequence[str], field: str, key: str) -> None:
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            if n in seen:
                raise self.fail(f"{field}[{i}].{key}", f"duplicate {key} {n!r} (also {field}[{seen[n]}])")
            seen[n] = i

    def feature(self, data: Any, field: str) -> FeatureSpec:
        data = self.mapping(data, field, ("name", "kind"), required=("name", "kind"))
        return FeatureSpec(name=self.name(data["name"], f"{field}.name", column=True),
                           kind=self.choice(data["kind"], f"{field}.kind", FEATURE_KINDS))

    def head(self, data: Any, field: str) -> HeadSpec:
        data = self.mapping(data, field,
                            ("name", "label", "kind", "classes", "class_subset", "loss", "loss_weight", "metrics",
                             "threshold", "conditioned_on"),
                            required=("name", "kind") if self.partial else ("name", "kind", "loss", "threshold"))
        name = self.name(data["name"], f"{field}.name")
        label = self.name(data.get("label", name), f"{field}.label", column=True)
        kind = self.choice(data["kind"], f"{field}.kind", HEAD_KINDS)
        classes: tuple[str, ...] = ()
        if kind in ("regression", "angle"):
            if "classes" in data:
                raise self.fail(f"{field}.classes", f"a{'n' if kind == 'angle' else ''} {kind} head has no classes")
        else:
            raw = self.sequence(data.get("classes"), f"{field}.classes") if "classes" in data else None
            if raw is None:
                raise self.fail(f"{field}.classes", f"required for a {kind} head")
            classes = tuple(self.class_name(c, f"{field}.classes[{i}]") for i, c in enumerate(raw))
            if kind == "binary" and len(classes) != 2:
                raise self.fail(f"{field}.classes", f"a binary head has exactly 2 classes, got {len(classes)}")
            if kind == "multiclass" and len(classes) < 2:
                raise self.fail(f"{field}.classes", "a multiclass head needs at least 2 classes")
            if len(set(classes)) != len(classes):
                raise self.fail(f"{field}.classes", "classes must be distinct")
        class_subset = self.class_subset(data, field, kind, classes)
        loss = self.loss(data["loss"], f"{field}.loss", kind, classes) if "loss" in data else None
        loss_weight = self.number(data.get("loss_weight", 1.0), f"{field}.loss_weight", positive=True)
        metrics = tuple(self.choice(m, f"{field}.metrics[{i}]", tuple(METRICS[kind]))
                        for i, m in enumerate(self.sequence(data.get("metrics", []), f"{field}.metrics",
                                                            non_empty=False)))
        threshold = self.threshold(data["threshold"], f"{field}.threshold", kind) if "threshold" in data else None
        if threshold is not None and threshold.metric not in metrics:
            metrics = metrics + (threshold.metric,)
        if not class_subset:
            if loss is not None and loss.name == "subset_crossentropy":
                raise self.fail(f"{field}.class_subset", "required by loss 'subset_crossentropy'")
            if "subset_accuracy" in metrics:
                raise self.fail(f"{field}.class_subset", "required by metric 'subset_accuracy'")
        conditioned_on = (self.name(data["conditioned_on"], f"{field}.conditioned_on") if "conditioned_on" in data
                          else None)
        return HeadSpec(name=name, label=label, kind=kind, classes=classes, loss=loss, loss_weight=loss_weight,
                        metrics=metrics, threshold=threshold, class_subset=class_subset, conditioned_on=conditioned_on)

    def conditions(self, heads: Sequence[HeadSpec]) -> None:
        """Each `conditioned_on` names another classification head, which is not conditioned itself."""
        by_name = {h.name: h for h in heads}
        for i, head in enumerate(heads):
            if head.conditioned_on is None:
                continue
            field, other = f"heads[{i}].conditioned_on", by_name.get(head.conditioned_on)
            if other is None:
                close = difflib.get_close_matches(head.conditioned_on, list(by_name), n=1)
                raise self.fail(field, f"{head.conditioned_on!r} is not a head of this spec ({', '.join(by_name)})"
                                + (f"; did you mean {close[0]!r}?" if close else ""))
            if other is head:
                raise self.fail(field, "a head cannot be conditioned on itself")
            if not other.is_classification:
                raise self.fail(field, f"{other.name!r} is a {other.kind} head; a head is conditioned on the class "
                                       f"a binary or multiclass head predicts")
            if other.conditioned_on is not None:
                raise self.fail(field, f"{other.name!r} is itself conditioned on {other.conditioned_on!r}; condition "
                                       f"on a head that is not conditioned")

    def class_name(self, value: Any, field: str) -> str:
        """A class as the label column's values read: text, or a whole number (an integer label column)."""
        if isinstance(value, bool):
            raise self.fail(field, f"{value!r} is a YAML boolean (unquoted yes/no/true/false/on/off): quote the "
                                   f"class as it appears in the label column, e.g. 'no'")
        if isinstance(value, float):
            raise self.fail(field, f"{value!r}: a class is text or a whole number, not a decimal number")
        if not isinstance(value, (str, int)):
            raise self.fail(field, f"expected text or a whole number, got {value!r}")
        return str(value)

    def class_subset(self, data: dict, field: str, kind: str, classes: tuple[str, ...]) -> tuple[str, ...]:
        if "class_subset" not in data:
            return ()
        if kind != "multiclass":
            raise self.fail(f"{field}.class_subset", f"only a multiclass head has a class subset, not a {kind} head")
        subset = tuple(str(c) for c in self.sequence(data["class_subset"], f"{field}.class_subset"))
        for i, c in enumerate(subset):
            if c not in classes:
                raise self.fail(f"{field}.class_subset[{i}]", f"{c!r} is not one of the head's classes")
        if len(set(subset)) != len(subset) or len(subset) == len(classes):
            raise self.fail(f"{field}.class_subset", "must name distinct classes, and not all of them")
        return subset

    def loss_param(self, key: str, value: Any, field: str, classes: tuple[str, ...]) -> Any:
        if key == "class_weights":
            weights = self.mapping(value, field, classes)
            return {c: self.number(weights[c], f"{field}.{c}", positive=True) for c in classes if c in weights}
        low, high, low_allowed = _PARAM_RANGES[key]
        number = self.number(value, field)
        if not (low < number < high or (low_allowed and number == low)):
            raise self.fail(field, f"must be {'>=' if low_allowed else '>'} {low:g}"
                                   + (f" and < {high:g}" if high != math.inf else "") + f", got {value!r}")
        return number

    def loss(self, data: Any, field: str, kind: str, classes: tuple[str, ...] = ()) -> LossSpec:
        if isinstance(data, str):
            data = {"name": data}
        # Which parameters are allowed depends on the loss's name, so they are checked once it is known.
        data = self.mapping(data, field, None, required=("name",))
        name = self.choice(data["name"], f"{field}.name", tuple(LOSSES[kind]))
        allowed = LOSSES[kind][name]
        params = dict(allowed)
        for key, value in data.items():
            if key == "name":
                continue
            if key not in allowed:
                raise self.fail(f"{field}.{key}", f"loss {name!r} takes no parameter {key!r} "
                                                  f"({'its parameters: ' + ', '.join(allowed) if allowed else 'none'})")
            params[key] = self.loss_param(key, value, f"{field}.{key}", classes)
        return LossSpec(name=name, params=params)

    def threshold(self, data: Any, field: str, kind: str) -> ThresholdSpec:
        data = self.mapping(data, field, ("metric", "lower", "upper", "tolerance", "per_slice"), required=("metric",))
        metric = self.choice(data["metric"], f"{field}.metric", tuple(METRICS[kind]))
        higher_is_better = METRICS[kind][metric]
        bound, value = self.bound(data, field, metric, higher_is_better)
        tolerance = data.get("tolerance")
        if tolerance is not None:
            tolerance = self.number(tolerance, f"{field}.tolerance")
            if tolerance < 0:
                raise self.fail(f"{field}.tolerance", f"must be >= 0 (how much worse than the baseline {metric} may "
                                                      f"be), got {tolerance:g}")
        per_slice = []
        for i, item in enumerate(self.sequence(data.get("per_slice", []), f"{field}.per_slice", non_empty=False)):
            where = f"{field}.per_slice[{i}]"
            item = self.mapping(item, where, ("slice", "lower", "upper"), required=("slice",))
            columns = [item["slice"]] if isinstance(item["slice"], str) else self.sequence(item["slice"],
                                                                                           f"{where}.slice")
            slice_bound, slice_value = self.bound(item, where, metric, higher_is_better)
            per_slice.append(SliceBound(slice=tuple(columns), **{slice_bound: slice_value}))
        return ThresholdSpec(metric=metric, tolerance=tolerance, per_slice=tuple(per_slice), **{bound: value})

    def bound(self, data: dict, field: str, metric: str, higher_is_better: bool) -> tuple[str, float]:
        """The one bound (`lower` or `upper`, as the metric's direction needs) of a threshold mapping."""
        bound = "lower" if higher_is_better else "upper"
        wrong = "upper" if higher_is_better else "lower"
        if wrong in data:
            raise self.fail(f"{field}.{wrong}", f"{metric} is better when {'larger' if higher_is_better else 'smaller'}"
                                                f"; give {'a lower' if higher_is_better else 'an upper'} bound")
        if bound not in data:
            raise self.fail(f"{field}.{bound}", f"required: the {bound} bound on {metric}")
        return bound, self.number(data[bound], f"{field}.{bound}")

    def slice(self, data: Any, field: str, features: Sequence[FeatureSpec]) -> tuple[str, ...]:
        columns = [data] if isinstance(data, str) else self.sequence(data, field)
        categorical = {f.name for f in features if f.kind == "categorical"}
        for i, c in enumerate(columns):
            if c not in categorical:
                raise self.fail(f"{field}[{i}]" if not isinstance(data, str) else field,
                                f"{c!r} is not a categorical feature (slices are over categorical features)")
        return tuple(columns)

    def training(self, data: Any, field: str) -> TrainingSpec:
        default = TrainingSpec()
        data = self.mapping(data or {}, field, tuple(f.name for f in dataclasses.fields(TrainingSpec)))
        trunk = tuple(self.integer(w, f"{field}.trunk[{i}]")
                      for i, w in enumerate(self.sequence(data.get("trunk", list(default.trunk)), f"{field}.trunk")))
        patience = data.get("early_stopping_patience", default.early_stopping_patience)
        weighting = self.choice(data.get("loss_weighting", default.loss_weighting), f"{field}.loss_weighting",
                                LOSS_WEIGHTINGS)
        if "dwa_temperature" in data and weighting != "dwa":
            # Silently ignored, it would read as if it tuned the weighting in use.
            raise self.fail(f"{field}.dwa_temperature", f"only loss_weighting: dwa has a temperature; this spec's "
                                                        f"loss_weighting is {weighting}")
        return TrainingSpec(
            trunk=trunk,
            batch_size=self.integer(data.get("batch_size", default.batch_size), f"{field}.batch_size"),
            epochs=self.integer(data.get("epochs", default.epochs), f"{field}.epochs"),
            learning_rate=self.number(data.get("learning_rate", default.learning_rate), f"{field}.learning_rate",
                                      positive=True),
            early_stopping_patience=(None if patience is None
                                     else self.integer(patience, f"{field}.early_stopping_patience")),
            seed=self.integer(data.get("seed", default.seed), f"{field}.seed", minimum=0),
            loss_weighting=weighting,
            dwa_temperature=self.number(data.get("dwa_temperature", default.dwa_temperature),
                                        f"{field}.dwa_temperature", positive=True),
            dropout=self.fraction(data.get("dropout", default.dropout), f"{field}.dropout"),
            l2=self.fraction(data.get("l2", default.l2), f"{field}.l2"),
            mixed_precision=self.boolean(data.get("mixed_precision", default.mixed_precision),
                                         f"{field}.mixed_precision"),
            steps_per_execution=self.integer(data.get("steps_per_execution", default.steps_per_execution),
                                             f"{field}.steps_per_execution"),
        )
