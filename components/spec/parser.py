"""Reading a heads spec: YAML in, a validated `HeadsSpec` out, or a SpecError naming the file and the field.

A heads spec is a YAML file (see `schemas/penguins/heads.yaml`). `load_spec` reads and validates it once; the
pipeline hands the validated spec to the components as plain data (`HeadsSpec.component_view`) through their
`custom_config`, and the module functions rebuild the same object with `spec_from_dict(..., partial=True)`, which
validates again.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from components.spec.model import (
    DistributionBound,
    FeatureSpec,
    HeadSpec,
    HeadsSpec,
    LossSpec,
    SliceBound,
    ThresholdSpec,
    TrainingSpec,
)
from components.spec.names import MISSING_FEATURES_OUTPUT
from components.spec.registry import FEATURE_KINDS, HEAD_KINDS, LOSS_WEIGHTINGS, LOSSES, METRICS, Param

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpecError(ValueError):
    """A heads spec or a setting is wrong; the message names the file or flag, and the field."""


def _keys(record) -> tuple[str, ...]:
    """The YAML keys of a record: its field names, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(record))


def spec_from_dict(data: Any, source: str = "heads spec", partial: bool = False) -> HeadsSpec:
    """Builds and validates a spec from parsed YAML.

    Args:
      data: the parsed YAML (or `HeadsSpec.to_dict`'s output).
      source: what to name in error messages (the file).
      partial: accept a `component_view` (heads without loss or threshold; those fields are then None).

    Raises:
      SpecError: naming `source` and the offending field.
    """
    return _Parser(source, partial).spec(data)


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
    return spec_from_dict(data, source=str(path))



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
        data = self.mapping(data, "", _keys(HeadsSpec), required=("name", "features", "heads"))
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
                raise self.fail(f"heads[{i}].label",
                                f"column {h.label!r} is also a feature; a label cannot be an input")
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
        data = self.mapping(data, field, _keys(FeatureSpec), required=("name", "kind"))
        return FeatureSpec(name=self.name(data["name"], f"{field}.name", column=True),
                           kind=self.choice(data["kind"], f"{field}.kind", FEATURE_KINDS))

    def head(self, data: Any, field: str) -> HeadSpec:
        data = self.mapping(data, field, _keys(HeadSpec),
                            required=("name", "kind") if self.partial else ("name", "kind", "loss", "threshold"))
        name = self.name(data["name"], f"{field}.name")
        if name == MISSING_FEATURES_OUTPUT:
            raise self.fail(f"{field}.name", f"{name!r} is the serving signature's count of missing features; name "
                                             f"the head otherwise (its label column may keep the name: label: {name})")
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

    def loss_param(self, param: Param, value: Any, field: str, classes: tuple[str, ...]) -> Any:
        if param.per_class:
            weights = self.mapping(value, field, classes)
            return {c: self.number(weights[c], f"{field}.{c}", positive=True) for c in classes if c in weights}
        low, high, low_allowed = param.low, param.high, param.low_allowed
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
        allowed = LOSSES[kind][name].params
        params = LOSSES[kind][name].defaults()
        for key, value in data.items():
            if key == "name":
                continue
            if key not in allowed:
                raise self.fail(f"{field}.{key}", f"loss {name!r} takes no parameter {key!r} "
                                                  f"({'its parameters: ' + ', '.join(allowed) if allowed else 'none'})")
            params[key] = self.loss_param(allowed[key], value, f"{field}.{key}", classes)
        return LossSpec(name=name, params=params)

    def threshold(self, data: Any, field: str, kind: str) -> ThresholdSpec:
        data = self.mapping(data, field, _keys(ThresholdSpec), required=("metric",))
        metric = self.choice(data["metric"], f"{field}.metric", tuple(METRICS[kind]))
        higher_is_better = METRICS[kind][metric].higher_is_better
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
            item = self.mapping(item, where, _keys(SliceBound), required=("slice",))
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
        data = self.mapping(data or {}, field, _keys(TrainingSpec))
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
