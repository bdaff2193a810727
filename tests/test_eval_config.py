"""The Evaluator's config, generated from the heads spec."""

import tensorflow_model_analysis as tfma

from pipeline.config import label_name, weight_name
from pipeline.eval_config import build_eval_config


def test_one_metrics_spec_per_head_with_its_own_label_and_weight(penguins_spec):
    config = build_eval_config(penguins_spec)
    (model_spec,) = config.model_specs
    assert model_spec.signature_name == "serving_default"
    assert list(model_spec.preprocessing_function_names) == ["transform_features"]
    assert dict(model_spec.label_keys) == {h.name: label_name(h.name) for h in penguins_spec.heads}
    assert dict(model_spec.example_weight_keys) == {h.name: weight_name(h.name) for h in penguins_spec.heads}
    assert [list(m.output_names) for m in config.metrics_specs] == [["species"], ["sex"], ["body_mass_g"]]


def thresholds(config):
    found = {}
    for metrics_spec in config.metrics_specs:
        for metric in metrics_spec.metrics:
            assert not metric.HasField("threshold"), "a plain threshold would judge every slice"
            for per_slice in metric.per_slice_thresholds:
                assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()], "judged on the overall slice only"
                found[(metrics_spec.output_names[0], metric.class_name)] = per_slice.threshold.value_threshold
    return found


def test_every_head_has_its_threshold_from_the_spec(penguins_spec):
    found = thresholds(build_eval_config(penguins_spec))
    assert set(found) == {("species", "SparseCategoricalAccuracy"), ("sex", "BinaryAccuracy"),
                          ("body_mass_g", "MeanAbsoluteError")}
    assert found[("species", "SparseCategoricalAccuracy")].lower_bound.value == 0.95
    assert found[("sex", "BinaryAccuracy")].lower_bound.value == 0.80
    assert found[("body_mass_g", "MeanAbsoluteError")].upper_bound.value == 350
    assert not found[("body_mass_g", "MeanAbsoluteError")].HasField("lower_bound")


def test_slices_overall_and_by_island(penguins_spec):
    config = build_eval_config(penguins_spec)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["island"]]


def test_tfma_accepts_the_config(penguins_spec):
    # The checks the TFX Evaluator runs on its config before evaluating, with and without a baseline.
    for has_baseline in (False, True):
        config = tfma.utils.update_eval_config_with_defaults(build_eval_config(penguins_spec),
                                                             has_baseline=has_baseline, rubber_stamp=True)
        tfma.utils.verify_eval_config(config)
        assert tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
