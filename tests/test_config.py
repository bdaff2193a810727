"""The heads spec: the bundled spec loads, and every kind of mistake fails naming its field."""

import copy

import pytest
import yaml

from components.spec import (
    SpecError,
    check_columns,
    label_name,
    load_spec,
    spec_from_dict,
    transformed_name,
    weight_name,
)

from conftest import PENGUINS_HEADS


def test_penguins_spec_loads_with_three_heads(penguins_spec):
    assert [h.name for h in penguins_spec.heads] == ["species", "sex", "body_mass_g"]
    assert [h.kind for h in penguins_spec.heads] == ["multiclass", "binary", "regression"]
    assert penguins_spec.head("sex").classes == ("female", "male")
    assert penguins_spec.head("body_mass_g").loss.params["delta"] == 1.0
    assert penguins_spec.head("sex").conditioned_on == "species"
    assert penguins_spec.slices == (("island",),)


def test_spec_round_trips_through_plain_data(penguins_spec):
    # The components rebuild the spec from this dict (their custom_config); it must come back identical.
    assert spec_from_dict(penguins_spec.to_dict()) == penguins_spec
    assert spec_from_dict(penguins_spec.to_dict()).fingerprint() == penguins_spec.fingerprint()


def test_transformed_names_never_shadow_raw_columns(penguins_spec):
    names = {label_name(h.name) for h in penguins_spec.heads} | {weight_name(h.name) for h in penguins_spec.heads}
    names |= {transformed_name(f.name) for f in penguins_spec.features}
    assert not names & set(penguins_spec.raw_columns)


def _raw():
    return yaml.safe_load(PENGUINS_HEADS.read_text())


def _expect_error(data, field: str, words: str):
    with pytest.raises(SpecError) as info:
        spec_from_dict(data, source="test.yaml")
    message = str(info.value)
    assert message.startswith("test.yaml: "), message
    assert field in message, message
    assert words in message, message


def test_unknown_loss_names_the_field():
    data = _raw()
    data["heads"][0]["loss"] = "hinge"
    _expect_error(data, "heads[0].loss.name", "'hinge' is not one of")


def test_loss_parameter_of_another_loss_is_rejected():
    data = _raw()
    data["heads"][2]["loss"] = {"name": "mse", "delta": 2.0}
    _expect_error(data, "heads[2].loss.delta", "takes no parameter")


def test_a_misspelt_loss_parameter_lists_that_losss_own_parameters_once():
    data = _raw()
    data["heads"][2]["loss"] = {"name": "huber", "delt": 2.0}
    _expect_error(data, "heads[2].loss.delt",
                  "loss 'huber' takes no parameter 'delt' (its parameters: delta, pull_weight, pull_target)")
    data["heads"][2]["loss"] = {"name": "mse", "delta": 2.0}
    _expect_error(data, "heads[2].loss.delta", "(its parameters: pull_weight, pull_target)")


@pytest.mark.parametrize("classes,words", [
    ([False, True], "False is a YAML boolean (unquoted yes/no/true/false/on/off): quote the class"),
    (["female", 1.5], "1.5: a class is text or a whole number"),
    (["female", None], "expected text or a whole number, got None"),
])
def test_a_class_that_is_not_text_or_a_whole_number_names_the_field(classes, words):
    data = _raw()
    data["heads"][1]["classes"] = classes
    _expect_error(data, "heads[1].classes[", words)


def test_unquoted_yes_and_no_classes_in_yaml_are_refused(tmp_path):
    path = tmp_path / "heads.yaml"
    path.write_text(PENGUINS_HEADS.read_text().replace("classes: [female, male]", "classes: [no, yes]"))
    assert "classes: [no, yes]" in path.read_text()
    with pytest.raises(SpecError, match=r"heads\[1\]\.classes\[0\]: False is a YAML boolean"):
        load_spec(path)


def test_whole_number_classes_are_the_label_columns_integers_as_text():
    data = _raw()
    data["heads"][1]["classes"] = [0, 1]
    assert spec_from_dict(data).head("sex").classes == ("0", "1")


def test_a_column_that_is_not_a_name_is_to_be_renamed_in_the_data():
    data = _raw()
    data["features"][0]["name"] = "temp (C)"
    _expect_error(data, "features[0].name", "'temp (C)' is not a valid name (letters, digits and _, not starting "
                                            "with a digit); the spec reads columns by name: rename the column")
    data = _raw()
    data["heads"][2]["label"] = "body mass (g)"
    _expect_error(data, "heads[2].label", "rename the column in the data")


def test_a_head_cannot_take_the_name_of_the_serving_signatures_missing_feature_count():
    data = _raw()
    data["heads"][0]["name"] = "missing_features"
    _expect_error(data, "heads[0].name", "the serving signature's count of missing features")


def test_duplicate_head_name_names_both_places():
    data = _raw()
    data["heads"][1]["name"] = "species"
    _expect_error(data, "heads[1].name", "duplicate name 'species' (also heads[0])")


def test_wrong_kind_names_the_field():
    data = _raw()
    data["heads"][0]["kind"] = "ordinal"
    _expect_error(data, "heads[0].kind", "'ordinal' is not one of")


def test_unknown_field_is_rejected():
    data = _raw()
    data["heads"][0]["lossweight"] = 2
    _expect_error(data, "heads[0].lossweight", "unknown field")


def test_binary_head_needs_two_classes():
    data = _raw()
    data["heads"][1]["classes"] = ["female", "male", "unknown"]
    _expect_error(data, "heads[1].classes", "exactly 2 classes")


def test_threshold_bound_must_match_the_metric_direction():
    data = _raw()
    data["heads"][2]["threshold"] = {"metric": "mae", "lower": 100}
    _expect_error(data, "heads[2].threshold.lower", "give an upper bound")


def test_every_head_needs_a_threshold():
    data = _raw()
    del data["heads"][0]["threshold"]
    _expect_error(data, "heads[0].threshold", "required field is missing")


def test_label_cannot_also_be_a_feature():
    data = _raw()
    data["features"].append({"name": "sex", "kind": "categorical"})
    _expect_error(data, "heads[1].label", "also a feature")


def test_slice_must_be_a_categorical_feature():
    data = _raw()
    data["slices"] = [["bill_length_mm"]]
    _expect_error(data, "slices[0][0]", "not a categorical feature")


def test_training_settings_are_checked():
    data = _raw()
    data["training"]["epochs"] = 0
    _expect_error(data, "training.epochs", "integer >= 1")


def test_steps_per_execution_defaults_to_100_and_is_a_positive_integer(penguins_spec):
    assert penguins_spec.training.steps_per_execution == 100
    data = penguins_spec.to_dict()
    data["training"]["steps_per_execution"] = 0
    _expect_error(data, "training.steps_per_execution", "integer >= 1")


def test_mixed_precision_is_a_boolean_training_setting(penguins_spec):
    assert penguins_spec.training.mixed_precision is False
    data = _raw()
    data["training"]["mixed_precision"] = True
    assert spec_from_dict(data).training.mixed_precision is True
    data["training"]["mixed_precision"] = "yes"
    _expect_error(data, "training.mixed_precision", "expected true or false")


def test_label_column_absent_from_the_schema_names_the_field(penguins_spec):
    columns = [c for c in penguins_spec.raw_columns if c != "sex"]
    with pytest.raises(SpecError, match=r"heads\[1\]\.label: column 'sex' is not in schema.pbtxt"):
        check_columns(penguins_spec, columns, "schema.pbtxt")


def test_a_misspelt_column_gets_the_closest_column_suggested(penguins_spec):
    columns = [c.replace("flipper_length_mm", "flipper_length") for c in penguins_spec.raw_columns]
    with pytest.raises(SpecError, match=r"features\[3\]\.name: column 'flipper_length_mm' is not in the header of "
                                        r"x.csv; did you mean 'flipper_length'\? \(columns: \['bill_depth_mm'"):
        check_columns(penguins_spec, columns, "the header of x.csv")


def test_classes_are_checked_against_the_schemas_domain_inline_or_named(penguins_spec):
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.spec import check_classes

    schema = schema_pb2.Schema()
    schema.feature.add(name="species", domain="species")                      # a named, top-level domain
    schema.string_domain.add(name="species", value=["Adelie", "Chinstrap", "Gentoo"])
    schema.feature.add(name="sex").string_domain.value.extend(["female", "male"])   # an inline one
    check_classes(penguins_spec, schema, "schema.pbtxt")
    schema.string_domain[0].value[1] = "chinstrap"
    with pytest.raises(SpecError, match=r"heads\[0\]\.classes\[1\]: class 'Chinstrap' is not in the domain of column "
                                        r"'species' in schema.pbtxt \['Adelie', 'chinstrap', 'Gentoo'\]; did you mean "
                                        r"'chinstrap'\?"):
        check_classes(penguins_spec, schema, "schema.pbtxt")
    del schema.feature[1].string_domain.value[:]                              # no domain: nothing to check
    schema.string_domain[0].value[1] = "Chinstrap"
    check_classes(penguins_spec, schema, "schema.pbtxt")


def test_load_spec_names_the_file_when_yaml_is_broken(tmp_path):
    bad = tmp_path / "heads.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=f"{bad}: not valid YAML"):
        load_spec(bad)


def test_load_spec_names_a_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read heads spec"):
        load_spec(tmp_path / "absent.yaml")


def test_spec_is_not_mutated_by_from_dict():
    data = _raw()
    before = copy.deepcopy(data)
    spec_from_dict(data)
    assert data == before


@pytest.mark.parametrize("conditioned_on, words", [
    ("specie", "'specie' is not a head of this spec (species, sex, body_mass_g); did you mean 'species'?"),
    ("sex", "a head cannot be conditioned on itself"),
    ("body_mass_g", "'body_mass_g' is a regression head; a head is conditioned on the class a binary or "
                    "multiclass head predicts"),
    ("3", "'3' is not a valid name"),
])
def test_conditioned_on_must_name_another_classification_head(conditioned_on, words):
    data = _raw()
    data["heads"][1]["conditioned_on"] = conditioned_on
    _expect_error(data, "heads[1].conditioned_on", words)


def test_a_head_cannot_be_conditioned_on_a_conditioned_head():
    data = _raw()
    data["heads"][1]["conditioned_on"] = "species"
    data["heads"][0]["conditioned_on"] = "sex"
    _expect_error(data, "heads[0].conditioned_on", "'sex' is itself conditioned on 'species'")


def test_conditioned_on_is_optional_and_written_back_only_when_set(penguins_spec):
    data = _raw()
    del data["heads"][1]["conditioned_on"]
    plain = spec_from_dict(data)
    assert plain.head("sex").conditioned_on is None
    assert "conditioned_on" not in plain.to_dict()["heads"][1]
    assert penguins_spec.to_dict()["heads"][1]["conditioned_on"] == "species"
    # Only the Trainer reads it: a change retrains, but leaves Transform cached.
    assert plain.component_view("transform") == penguins_spec.component_view("transform")
    assert plain.component_view("trainer") != penguins_spec.component_view("trainer")


def test_component_views_hold_only_what_each_component_reads(penguins_spec):
    transform = penguins_spec.component_view("transform")
    assert set(transform) == {"name", "features", "heads"}
    assert transform["heads"][0] == {"name": "species", "label": "species", "kind": "multiclass",
                                     "classes": ["Adelie", "Chinstrap", "Gentoo"]}
    trainer = penguins_spec.component_view("trainer")
    assert "slices" not in trainer and all("threshold" not in h for h in trainer["heads"])
    assert trainer["training"] == penguins_spec.to_dict()["training"]
    # Each view is read back into the same typed object, with what the component does not read left empty.
    partial = spec_from_dict(transform, partial=True)
    assert partial.features == penguins_spec.features
    assert [(h.name, h.label, h.kind, h.classes, h.loss) for h in partial.heads] == [
        (h.name, h.label, h.kind, h.classes, None) for h in penguins_spec.heads]


def test_views_differ_only_when_what_the_component_reads_differs(penguins_spec):
    data = penguins_spec.to_dict()
    data["training"]["epochs"] += 1
    data["heads"][0]["threshold"]["lower"] = 0.5
    changed = spec_from_dict(data)
    assert changed.component_view("transform") == penguins_spec.component_view("transform")
    assert changed.component_view("trainer") != penguins_spec.component_view("trainer")
    data = penguins_spec.to_dict()
    data["heads"][0]["threshold"]["lower"] = 0.5
    assert spec_from_dict(data).component_view("trainer") == penguins_spec.component_view("trainer")


def test_a_partial_view_is_refused_where_a_full_spec_is_needed(penguins_spec):
    with pytest.raises(SpecError, match=r"heads\[0\]\.loss: required field is missing"):
        spec_from_dict(penguins_spec.component_view("transform"))


def test_threshold_tolerance_and_per_slice_bounds_load_and_round_trip():
    data = _raw()
    data["heads"][0]["threshold"] = {"metric": "accuracy", "lower": 0.9, "tolerance": 0.02,
                                     "per_slice": [{"slice": ["island"], "lower": 0.8}]}
    data["removed_heads"] = ["old_head"]
    spec = spec_from_dict(data)
    threshold = spec.head("species").threshold
    assert (threshold.lower, threshold.tolerance) == (0.9, 0.02)
    assert [(b.slice, b.lower) for b in threshold.per_slice] == [(("island",), 0.8)]
    assert spec.removed_heads == ("old_head",)
    assert spec_from_dict(spec.to_dict()) == spec


def test_per_slice_bound_must_name_a_spec_slice():
    data = _raw()
    data["heads"][0]["threshold"]["per_slice"] = [{"slice": ["year"], "lower": 0.8}]
    _expect_error(data, "heads[0].threshold.per_slice[0].slice", "is not one of the spec's slices")


def test_per_slice_bound_follows_the_metric_direction():
    data = _raw()
    data["heads"][2]["threshold"]["per_slice"] = [{"slice": ["island"], "lower": 100}]
    _expect_error(data, "heads[2].threshold.per_slice[0].lower", "give an upper bound")


def test_negative_tolerance_is_rejected():
    data = _raw()
    data["heads"][0]["threshold"]["tolerance"] = -0.1
    _expect_error(data, "heads[0].threshold.tolerance", "must be >= 0")


def test_removed_head_cannot_still_be_a_head():
    data = _raw()
    data["removed_heads"] = ["sex"]
    _expect_error(data, "removed_heads[0]", "'sex' is still one of the heads")


def test_drift_and_skew_bounds_load_round_trip_and_stay_out_of_the_model_components_views():
    data = _raw()
    data["drift"] = {"island": 0.25, "bill_length_mm": 0.3}
    data["skew"] = {"species": 0.2}
    spec = spec_from_dict(data)
    assert [(b.column, b.threshold) for b in spec.drift] == [("island", 0.25), ("bill_length_mm", 0.3)]
    assert spec_from_dict(spec.to_dict()) == spec
    assert "drift" not in spec.component_view("transform") and "skew" not in spec.component_view("trainer")


@pytest.mark.parametrize("drift, field, words", [
    ({"beak": 0.2}, "drift.beak", "not a feature or label column"),
    ({"island": 0}, "drift.island", "must be > 0"),
    ({"island": 1.5}, "drift.island", "at most 1"),
    ([0.2], "drift", "must map columns to bounds"),
])
def test_drift_bounds_name_the_field(drift, field, words):
    data = _raw()
    data["drift"] = drift
    _expect_error(data, field, words)


# --- Loss library, class subsets, angle heads and loss weighting (issue 3) ---


def test_loss_parameters_round_trip_with_their_defaults():
    data = _raw()
    data["heads"][0]["class_subset"] = ["Chinstrap"]
    data["heads"][0]["loss"] = {"name": "subset_crossentropy", "subset_weight": 4}
    data["heads"][0]["metrics"] = ["accuracy", "subset_accuracy"]
    data["heads"][1]["loss"] = {"name": "focal", "gamma": 0}
    data["heads"][2]["loss"] = {"name": "mae", "pull_weight": 0.5, "pull_target": -10}
    data["training"]["loss_weighting"] = "dwa"
    spec = spec_from_dict(data)
    assert spec.head("species").loss.params == {"label_smoothing": 0.0, "subset_weight": 4.0}
    assert spec.head("species").class_subset == ("Chinstrap",)
    assert spec.head("sex").loss.params == {"gamma": 0.0, "alpha": 0.25}
    assert spec.head("body_mass_g").loss.params == {"pull_weight": 0.5, "pull_target": -10.0}
    assert spec.training.loss_weighting == "dwa" and spec.training.dwa_temperature == 2.0
    assert spec_from_dict(spec.to_dict()) == spec


def test_class_weights_name_classes_of_the_head():
    data = _raw()
    data["heads"][0]["loss"] = {"name": "sparse_categorical_crossentropy", "class_weights": {"Gentoo": 2}}
    assert spec_from_dict(data).head("species").loss.params["class_weights"] == {"Gentoo": 2.0}
    data["heads"][0]["loss"]["class_weights"] = {"Emperor": 2}
    _expect_error(data, "heads[0].loss.class_weights.Emperor", "unknown field")
    data["heads"][0]["loss"]["class_weights"] = {"Gentoo": 0}
    _expect_error(data, "heads[0].loss.class_weights.Gentoo", "must be > 0")


@pytest.mark.parametrize("loss,field,words", [
    ({"name": "focal", "alpha": 1.0}, "heads[1].loss.alpha", "must be > 0 and < 1"),
    ({"name": "focal", "gamma": -1}, "heads[1].loss.gamma", "must be >= 0"),
    ({"name": "binary_crossentropy", "pos_weight": 0}, "heads[1].loss.pos_weight", "must be > 0"),
    ({"name": "focal", "pos_weight": 2}, "heads[1].loss.pos_weight", "takes no parameter"),
])
def test_loss_parameter_ranges_name_the_field(loss, field, words):
    data = _raw()
    data["heads"][1]["loss"] = loss
    _expect_error(data, field, words)


def test_subset_loss_and_metric_need_a_class_subset_of_known_classes():
    data = _raw()
    data["heads"][0]["loss"] = "subset_crossentropy"
    _expect_error(data, "heads[0].class_subset", "required by loss 'subset_crossentropy'")
    data = _raw()
    data["heads"][0]["metrics"] = ["subset_accuracy"]
    _expect_error(data, "heads[0].class_subset", "required by metric 'subset_accuracy'")
    data["heads"][0]["class_subset"] = ["Emperor"]
    _expect_error(data, "heads[0].class_subset[0]", "'Emperor' is not one of the head's classes")
    data["heads"][0]["class_subset"] = ["Adelie", "Chinstrap", "Gentoo"]
    _expect_error(data, "heads[0].class_subset", "not all of them")
    data = _raw()
    data["heads"][1]["class_subset"] = ["male"]
    _expect_error(data, "heads[1].class_subset", "only a multiclass head")


def test_angle_head_takes_the_cosine_loss_and_angular_error():
    data = _raw()
    data["heads"][2] = {"name": "body_mass_g", "kind": "angle", "loss": "cosine",
                        "threshold": {"metric": "angular_error_deg", "upper": 20}}
    head = spec_from_dict(data).head("body_mass_g")
    assert (head.kind, head.loss.name, head.metrics) == ("angle", "cosine", ("angular_error_deg",))
    data["heads"][2]["classes"] = ["a", "b"]
    _expect_error(data, "heads[2].classes", "an angle head has no classes")
    del data["heads"][2]["classes"]
    data["heads"][2]["loss"] = "mse"
    _expect_error(data, "heads[2].loss.name", "'mse' is not one of: cosine")


def test_loss_weighting_mode_is_checked():
    data = _raw()
    data["training"]["loss_weighting"] = "gradnorm"
    _expect_error(data, "training.loss_weighting", "'gradnorm' is not one of: fixed, uncertainty, dwa")
    data["training"]["loss_weighting"] = "dwa"
    data["training"]["dwa_temperature"] = 0
    _expect_error(data, "training.dwa_temperature", "must be > 0")
    data["training"]["loss_weighting"] = "uncertainty"
    data["training"]["dwa_temperature"] = 2
    _expect_error(data, "training.dwa_temperature", "only loss_weighting: dwa has a temperature")


def test_to_dict_writes_dwa_temperature_only_for_dwa_and_reads_back_equal():
    data = _raw()
    for weighting in ("fixed", "uncertainty", "dwa"):
        data["training"]["loss_weighting"] = weighting
        spec = spec_from_dict(data)
        assert ("dwa_temperature" in spec.to_dict()["training"]) == (weighting == "dwa")
        assert spec_from_dict(spec.to_dict()) == spec
