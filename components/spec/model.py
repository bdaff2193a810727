"""The heads spec as typed, frozen records: what the YAML file says, validated (see `parser.py`).

Each setting is one dataclass field. Its metadata says which component reads it (`read_by`), which is all that
`HeadsSpec.component_view` needs; the YAML keys the parser accepts are the field names, and `to_dict` writes the
fields back in the YAML file's own layout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Optional

from components.spec.registry import CLASSIFICATION_KINDS

TRANSFORM, TRAINER = "transform", "trainer"
COMPONENT_VIEWS = (TRANSFORM, TRAINER)
_BOTH = (TRANSFORM, TRAINER)


def setting(default: Any = dataclasses.MISSING, *, read_by: tuple[str, ...] = (), omit_empty: bool = False,
            by_column: bool = False, factory: Any = dataclasses.MISSING):
    """A spec field. `read_by`: the module-function components whose `custom_config` carries it (the others are
    the Evaluator's, the gate's or the command's, given to them as their own settings); `omit_empty`: `to_dict`
    leaves it out when None or empty; `by_column`: bounds written as a mapping of column to bound."""
    metadata = {"read_by": read_by, "omit_empty": omit_empty, "by_column": by_column}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """A model input column.

    Attributes:
      name: column name in the data.
      kind: `numeric` (missing values are filled with the training mean, then z-scored) or `categorical`
        (a vocabulary from the training split plus one out-of-vocabulary bucket, which also takes missing values).
    """

    name: str = setting(read_by=_BOTH)
    kind: str = setting(read_by=_BOTH)


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A head's loss: a name from the registry's `LOSSES` and its parameters."""

    name: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


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
      loss: the head's loss; None only in a component view that does not train.
      loss_weight: the head's weight in the total loss.
      metrics: metrics computed for the head (in training logs and by the Evaluator).
      threshold: the bound the Evaluator checks before blessing the model; None only in a component view.
      conditioned_on: another classification head; this head's output layer then holds one set of weights per
        class of that head, and the class that head predicts picks the set, in training and serving alike (for
        targets that behave differently by class: a penguin's sex reads differently from the bill of each
        species). The predicted class passes no gradient back: the other head learns from its own loss only.
    """

    name: str = setting(read_by=_BOTH)
    label: str = setting(read_by=_BOTH)
    kind: str = setting(read_by=_BOTH)
    classes: tuple[str, ...] = setting((), read_by=_BOTH, omit_empty=True)
    class_subset: tuple[str, ...] = setting((), read_by=(TRAINER,), omit_empty=True)
    loss: Optional[LossSpec] = setting(None, read_by=(TRAINER,), omit_empty=True)
    loss_weight: float = setting(1.0, read_by=(TRAINER,))
    metrics: tuple[str, ...] = setting((), read_by=(TRAINER,))
    threshold: Optional[ThresholdSpec] = setting(None, omit_empty=True)
    conditioned_on: Optional[str] = setting(None, read_by=(TRAINER,), omit_empty=True)

    @property
    def is_classification(self) -> bool:
        return self.kind in CLASSIFICATION_KINDS


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
        the call itself.
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

    name: str = setting(read_by=_BOTH)
    features: tuple[FeatureSpec, ...] = setting(read_by=_BOTH)
    heads: tuple[HeadSpec, ...] = setting(read_by=_BOTH)
    slices: tuple[tuple[str, ...], ...] = setting(())
    training: TrainingSpec = setting(factory=TrainingSpec, read_by=(TRAINER,))
    min_slice_size: int = setting(1)                 # smaller slices are suppressed by TFMA (the report says so)
    removed_heads: tuple[str, ...] = setting(())     # heads of the serving model this spec drops on purpose
    drift: tuple[DistributionBound, ...] = setting((), by_column=True)   # a new span against the previous span
    skew: tuple[DistributionBound, ...] = setting((), by_column=True)    # the training data against the serving
                                                                         # data's statistics

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
        return _plain(self)

    def fingerprint(self) -> str:
        """A short hash of the spec's content; equal specs hash equal whatever their YAML formatting."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def component_view(self, component: str) -> dict[str, Any]:
        """The part of the spec one component reads (the fields `read_by` it), as plain data for its
        `custom_config`.

        TFX re-executes a component when its properties change: handing each component only what it reads means
        that, say, a new threshold re-runs the Evaluator but leaves Transform and Trainer cached.

        Args:
          component: `transform` (features and each head's label: name, label, kind, classes) or `trainer`
            (all but slices, thresholds and the gate's bounds).
        """
        if component not in COMPONENT_VIEWS:
            raise ValueError(f"no view of the spec for component {component!r}")
        return _plain(self, component)


def _plain(value: Any, component: Optional[str] = None) -> Any:
    """A record as YAML-layout plain data; with `component`, only the fields that component reads."""
    if isinstance(value, LossSpec):
        return {"name": value.name, **value.params}
    if isinstance(value, (TrainingSpec, ThresholdSpec, SliceBound)):
        data = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, TrainingSpec):
            if value.loss_weighting != "dwa":
                del data["dwa_temperature"]
            return data
        return {k: v for k, v in data.items() if v is not None and v != []}
    if dataclasses.is_dataclass(value):
        data = {}
        for f in dataclasses.fields(value):
            if component is not None and component not in f.metadata["read_by"]:
                continue
            item = getattr(value, f.name)
            if f.metadata["omit_empty"] and item in (None, ()):
                continue
            data[f.name] = ({b.column: b.threshold for b in item} if f.metadata["by_column"]
                            else _plain(item, component))
        return data
    if isinstance(value, tuple):
        return [_plain(v, component) for v in value]
    return value
