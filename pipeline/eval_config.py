"""The Evaluator's TFMA EvalConfig, generated from the heads spec: one MetricsSpec per head.

Each head is scored on its own output of `serving_default`, against its own label and with its own weight
(taken from `transform_features`), so rows missing that head's label are not scored for it.
"""

import json

import tensorflow_model_analysis as tfma

from pipeline.config import HeadSpec, HeadsSpec, label_name, weight_name

# Spec metric -> (TFMA/Keras metric class, the name TFMA reports it under).
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

# The project's own Keras metrics (components/metrics.py): TFMA imports them from this module, in the Evaluator.
CUSTOM_METRICS_MODULE = "components.metrics"
_CUSTOM = {"SubsetAccuracy", "MeanAngularErrorDegrees"}


def tfma_metric_name(head: HeadSpec, metric: str) -> str:
    """The name under which TFMA reports one of a head's spec metrics."""
    return METRIC_CLASSES[(head.kind, metric)][1]


def build_threshold(head: HeadSpec) -> tfma.MetricThreshold:
    bound = ({"lower_bound": {"value": head.threshold.lower}} if head.threshold.lower is not None
             else {"upper_bound": {"value": head.threshold.upper}})
    return tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(**bound))


def metric_config(head: HeadSpec, metric: str) -> tfma.MetricConfig:
    """One of a head's spec metrics as a TFMA MetricConfig (Keras's own, or the project's by module)."""
    class_name, reported = METRIC_CLASSES[(head.kind, metric)]
    if class_name not in _CUSTOM:
        return tfma.MetricConfig(class_name=class_name)
    config = {"name": reported}
    if metric == "subset_accuracy":
        config["class_indices"] = [head.classes.index(c) for c in head.class_subset]
    return tfma.MetricConfig(class_name=class_name, module=CUSTOM_METRICS_MODULE, config=json.dumps(config))


def build_metrics_spec(head: HeadSpec) -> tfma.MetricsSpec:
    metrics = [tfma.MetricConfig(class_name="ExampleCount"), tfma.MetricConfig(class_name="WeightedExampleCount")]
    for metric in head.metrics:
        config = metric_config(head, metric)
        if metric == head.threshold.metric:
            # A plain MetricConfig.threshold would judge every slice; the spec's bound is for the whole eval split.
            config.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()], threshold=build_threshold(head))
        metrics.append(config)
    return tfma.MetricsSpec(output_names=[head.name], metrics=metrics)


def build_eval_config(spec: HeadsSpec) -> tfma.EvalConfig:
    """The EvalConfig: every head thresholded (TFMA blesses nothing without thresholds), sliced as the spec says."""
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
                           metrics_specs=[build_metrics_spec(h) for h in spec.heads])
