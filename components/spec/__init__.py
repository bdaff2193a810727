"""The heads spec: the bottom layer. One YAML file declares the features, the heads and the training; everything
above reads the validated `HeadsSpec`. Imports neither TensorFlow nor anything else of the project."""

from components.spec.checks import check_classes, check_columns
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
from components.spec.names import (
                                   OOV_BUCKETS,
                                   label_name,
                                   predicted_class_name,
                                   transformed_name,
                                   vocabulary_name,
                                   weight_name,
)
from components.spec.parser import SpecError, load_spec, spec_from_dict
from components.spec.registry import (
                                   FEATURE_KINDS,
                                   HEAD_KINDS,
                                   LOSS_WEIGHTINGS,
                                   LOSSES,
                                   METRICS,
                                   Loss,
                                   Metric,
                                   reported_name_of_class,
                                   spec_metric_name,
)

__all__ = ["DistributionBound", "FEATURE_KINDS", "FeatureSpec", "HEAD_KINDS", "HeadSpec", "HeadsSpec",
           "LOSSES", "LOSS_WEIGHTINGS", "Loss", "LossSpec", "METRICS", "Metric", "OOV_BUCKETS", "SliceBound",
           "SpecError", "ThresholdSpec", "TrainingSpec", "check_classes", "check_columns", "label_name",
           "load_spec", "predicted_class_name", "reported_name_of_class", "spec_from_dict", "spec_metric_name",
           "transformed_name", "vocabulary_name", "weight_name"]
