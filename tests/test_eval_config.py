"""The Evaluator's config, generated from the heads spec."""

import pytest
import tensorflow_model_analysis as tfma

from components.spec import label_name, spec_from_dict, weight_name
from pipeline.definition.eval_config import HeadsChangedError, build_eval_config


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
    for has_baseline, baseline_heads in ((False, None), (True, ["species", "sex", "body_mass_g"]),
                                         (True, ["species"])):
        config = tfma.utils.update_eval_config_with_defaults(build_eval_config(penguins_spec, baseline_heads),
                                                             has_baseline=has_baseline, rubber_stamp=True)
        tfma.utils.verify_eval_config(config)
        assert tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)


def head_metric(config, head, class_name):
    (metrics_spec,) = [m for m in config.metrics_specs if list(m.output_names) == [head]]
    (metric,) = [m for m in metrics_spec.metrics if m.class_name == class_name]
    return metrics_spec, metric


def test_change_bound_against_the_baseline_from_the_tolerance(penguins_spec):
    config = build_eval_config(penguins_spec, baseline_heads=["species", "sex", "body_mass_g"])
    _, accuracy = head_metric(config, "species", "SparseCategoricalAccuracy")
    change = accuracy.per_slice_thresholds[0].threshold.change_threshold
    assert change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert change.absolute.value == pytest.approx(-penguins_spec.head("species").threshold.tolerance)
    _, mae = head_metric(config, "body_mass_g", "MeanAbsoluteError")
    change = mae.per_slice_thresholds[0].threshold.change_threshold
    assert change.direction == tfma.MetricDirection.LOWER_IS_BETTER
    assert change.absolute.value == penguins_spec.head("body_mass_g").threshold.tolerance


def test_a_head_the_baseline_lacks_is_judged_on_absolute_bounds_for_the_candidate_only(penguins_spec):
    config = build_eval_config(penguins_spec, baseline_heads=["species", "body_mass_g"])
    metrics_spec, accuracy = head_metric(config, "sex", "BinaryAccuracy")
    assert not accuracy.per_slice_thresholds[0].threshold.HasField("change_threshold")
    assert accuracy.per_slice_thresholds[0].threshold.HasField("value_threshold")
    assert list(metrics_spec.model_names) == [tfma.CANDIDATE_KEY]
    species_spec, species = head_metric(config, "species", "SparseCategoricalAccuracy")
    assert species.per_slice_thresholds[0].threshold.HasField("change_threshold")
    assert list(species_spec.model_names) == []


def test_dropping_a_served_head_needs_removed_heads(penguins_spec):
    with pytest.raises(HeadsChangedError, match=r"has head\(s\) \['year'\] that the spec does not"):
        build_eval_config(penguins_spec, baseline_heads=["species", "sex", "body_mass_g", "year"])
    data = penguins_spec.to_dict()
    data["removed_heads"] = ["year"]
    build_eval_config(spec_from_dict(data), baseline_heads=["species", "sex", "body_mass_g", "year"])


def test_per_slice_bounds_and_the_minimum_slice_size(penguins_spec):
    data = penguins_spec.to_dict()
    data["heads"][0]["threshold"]["per_slice"] = [{"slice": ["island"], "lower": 0.9}]
    data["min_slice_size"] = 10
    config = build_eval_config(spec_from_dict(data))
    _, accuracy = head_metric(config, "species", "SparseCategoricalAccuracy")
    overall, by_island = accuracy.per_slice_thresholds
    assert list(by_island.slicing_specs) == [tfma.SlicingSpec(feature_keys=["island"])]
    assert by_island.threshold.value_threshold.lower_bound.value == 0.9
    assert config.options.min_slice_size.value == 10


def test_custom_metrics_reach_tfma_by_module_with_their_config():
    from components.spec import load_spec
    from pipeline.definition.eval_config import tfma_metric_name

    from conftest import ROOT

    spec = load_spec(ROOT / "schemas" / "synthetic" / "heads.yaml")
    config = build_eval_config(spec)
    by_head = {m.output_names[0]: {c.class_name: c for c in m.metrics} for m in config.metrics_specs}
    angle = by_head["heading"]["MeanAngularErrorDegrees"]
    subset = by_head["segment"]["SubsetAccuracy"]
    assert angle.module == subset.module == "components.trainer.metrics"
    # TFMA builds the metric objects the Evaluator will run from these configs.
    angle_metric = tfma.metrics.metric_specs.metric_instance(angle)
    subset_metric = tfma.metrics.metric_specs.metric_instance(subset)
    assert (angle_metric.name, subset_metric.name) == ("angular_error_deg", "subset_accuracy")
    assert subset_metric.class_indices == [3]   # segment D
    assert tfma_metric_name(spec.head("heading"), "angular_error_deg") == "angular_error_deg"
    for has_baseline in (False, True):
        tfma.utils.verify_eval_config(tfma.utils.update_eval_config_with_defaults(
            config, has_baseline=has_baseline, rubber_stamp=True))
