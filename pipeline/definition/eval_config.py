"""The Evaluator's TFMA EvalConfig, generated from the heads spec: one MetricsSpec per head.

Each head is scored on its own output of `serving_default`, against its own label and with its own weight
(taken from `transform_features`), so rows missing that head's label are not scored for it.
"""

import json
from typing import Collection, Optional

import tensorflow_model_analysis as tfma

from components.spec import METRICS, HeadSpec, HeadsSpec, label_name, weight_name

# The project's own Keras metrics (the registry's `custom` ones): TFMA imports them from this module, in the
# Evaluator.
CUSTOM_METRICS_MODULE = "components.trainer.metrics"


def tfma_metric_name(head: HeadSpec, metric: str) -> str:
    """The name under which TFMA reports one of a head's spec metrics."""
    return METRICS[head.kind][metric].reported_as


def value_threshold(lower: Optional[float], upper: Optional[float]) -> tfma.GenericValueThreshold:
    return tfma.GenericValueThreshold(**({"lower_bound": {"value": lower}} if lower is not None
                                         else {"upper_bound": {"value": upper}}))


def build_threshold(head: HeadSpec, compare_to_baseline: bool) -> tfma.MetricThreshold:
    """The head's overall bound, and its change bound against the baseline when it has one and is compared."""
    threshold = tfma.MetricThreshold(value_threshold=value_threshold(head.threshold.lower, head.threshold.upper))
    if compare_to_baseline and head.threshold.tolerance is not None:
        higher_is_better = head.threshold.lower is not None
        # TFMA compares candidate - baseline with `absolute`: at least -tolerance, or at most +tolerance.
        threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER if higher_is_better
            else tfma.MetricDirection.LOWER_IS_BETTER,
            absolute={"value": -head.threshold.tolerance if higher_is_better else head.threshold.tolerance}))
    return threshold


def metric_config(head: HeadSpec, metric: str) -> tfma.MetricConfig:
    """One of a head's spec metrics as a TFMA MetricConfig (Keras's own, or the project's by module)."""
    record = METRICS[head.kind][metric]
    if not record.custom:
        return tfma.MetricConfig(class_name=record.keras_class)
    config = {"name": record.reported_as}
    if record.needs_class_subset:
        config["class_indices"] = [head.classes.index(c) for c in head.class_subset]
    return tfma.MetricConfig(class_name=record.keras_class, module=CUSTOM_METRICS_MODULE, config=json.dumps(config))


def build_metrics_spec(head: HeadSpec, in_baseline: bool) -> tfma.MetricsSpec:
    """One head's metrics and thresholds.

    Args:
      head: the head.
      in_baseline: whether the baseline model has this head. A new head is judged on its absolute bounds alone
        and scored for the candidate only: the baseline has no output to score, and a change threshold on a
        metric the baseline lacks fails ("Metric not found"), so the model could never be blessed.
    """
    # The rows scored for a head are its labelled rows: the count weighted by its mask. An unweighted count
    # would be every head's same eval-row count, computed per example, slice and head all the same.
    metrics = [tfma.MetricConfig(class_name="WeightedExampleCount")]
    for metric in head.metrics:
        config = metric_config(head, metric)
        if metric == head.threshold.metric:
            # A plain MetricConfig.threshold would judge every slice; the spec's bound is for the whole eval split.
            config.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()],
                                            threshold=build_threshold(head, compare_to_baseline=in_baseline))
            for bound in head.threshold.per_slice:
                config.per_slice_thresholds.add(
                    slicing_specs=[tfma.SlicingSpec(feature_keys=list(bound.slice))],
                    threshold=tfma.MetricThreshold(value_threshold=value_threshold(bound.lower, bound.upper)))
        metrics.append(config)
    return tfma.MetricsSpec(output_names=[head.name], metrics=metrics,
                            model_names=[] if in_baseline else [tfma.CANDIDATE_KEY])


class HeadsChangedError(ValueError):
    """The spec drops a head the serving model has, without saying so in `removed_heads`."""


def build_eval_config(spec: HeadsSpec, baseline_heads: Optional[Collection[str]] = None) -> tfma.EvalConfig:
    """The EvalConfig: every head thresholded (TFMA blesses nothing without thresholds), sliced as the spec says.

    Args:
      spec: the heads spec.
      baseline_heads: the heads of the latest blessed model, the Evaluator's baseline; None when there is none
        (the first run: TFMA then ignores change thresholds and judges absolute bounds alone).

    Raises:
      HeadsChangedError: the baseline has a head that the spec neither has nor lists in `removed_heads`.
    """
    if baseline_heads is not None:
        dropped = sorted(set(baseline_heads) - {h.name for h in spec.heads} - set(spec.removed_heads))
        if dropped:
            raise HeadsChangedError(
                f"the model now serving has head(s) {dropped} that the spec does not; to drop them on purpose, "
                f"list them under removed_heads")
    in_baseline = (lambda name: True) if baseline_heads is None else (lambda name: name in baseline_heads)
    model_spec = tfma.ModelSpec(
        signature_name="serving_default",
        preprocessing_function_names=["transform_features"],
        # Signatures only: TFMA need not rebuild the Keras model (nor know its custom losses).
        model_type=tfma.TF_GENERIC,
        label_keys={h.name: label_name(h.name) for h in spec.heads},
        example_weight_keys={h.name: weight_name(h.name) for h in spec.heads},
    )
    slicing_specs = [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=list(s)) for s in spec.slices]
    return tfma.EvalConfig(model_specs=[model_spec], slicing_specs=slicing_specs,
                           metrics_specs=[build_metrics_spec(h, in_baseline(h.name)) for h in spec.heads],
                           options=tfma.Options(min_slice_size={"value": spec.min_slice_size}))
