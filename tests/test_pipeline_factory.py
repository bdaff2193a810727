"""`create_pipeline`: the components, their order and their settings, without running anything."""

import pytest

from pipeline import local_runner
from pipeline.data import DataSource
from pipeline.pipeline import PREPROCESSING_FN, RUN_FN, create_pipeline, module_code_fingerprint


def build(spec, tmp_path, data=None, schema="schemas/penguins/schema.pbtxt"):
    return create_pipeline(
        name="test", root=str(tmp_path / "root"), data=data or DataSource(str(tmp_path), "penguins.csv"),
        spec=spec, schema_path=schema, serving_dir=str(tmp_path / "serving"),
        metadata_connection_config=local_runner.metadata_config(str(tmp_path / "m.sqlite")),
        beam_pipeline_args=local_runner.IN_PROCESS_BEAM_ARGS)


def by_id(pipeline):
    return {c.id: c for c in pipeline.components}


def test_components_in_order(penguins_spec, tmp_path):
    ids = [c.id for c in build(penguins_spec, tmp_path).components]
    assert ids == ["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "SchemaGate",
                   "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher"]


def test_transform_waits_for_the_gate_and_analyzes_train_only(penguins_spec, tmp_path):
    components = by_id(build(penguins_spec, tmp_path))
    transform = components["Transform"]
    assert transform.inputs["schema"].producer_component_id == "SchemaGate"
    assert transform.exec_properties["preprocessing_fn"] == PREPROCESSING_FN
    splits = transform.exec_properties["splits_config"]
    assert list(splits.analyze) == ["train"] and list(splits.transform) == ["train", "eval"]
    assert components["Trainer"].exec_properties["run_fn"] == RUN_FN


def test_module_config_carries_the_spec_and_a_code_fingerprint(penguins_spec, tmp_path):
    # Module functions go by import path, so the cache key needs the code's hash, not just the path.
    components = by_id(build(penguins_spec, tmp_path))
    for name in ("Transform", "Trainer"):
        config = components[name].exec_properties["custom_config"]
        assert config["heads_spec"] == penguins_spec.to_dict()
        assert config["code_fingerprint"] == module_code_fingerprint()


def test_tfrecord_input_uses_import_example_gen(penguins_spec, tmp_path):
    pipeline = build(penguins_spec, tmp_path, data=DataSource(str(tmp_path), "*.tfrecord.gz", format="tfrecord"))
    assert pipeline.components[0].id == "ImportExampleGen"


def test_without_a_curated_schema_schema_gen_infers_one(penguins_spec, tmp_path):
    ids = [c.id for c in build(penguins_spec, tmp_path, schema=None).components]
    assert "SchemaGen" in ids and "ImportSchemaGen" not in ids


@pytest.mark.parametrize("arg", local_runner.IN_PROCESS_BEAM_ARGS)
def test_beam_runner_is_named_and_in_process(penguins_spec, tmp_path, arg):
    assert arg in build(penguins_spec, tmp_path).beam_pipeline_args
