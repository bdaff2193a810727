"""`create_pipeline`: the components, their order and their settings, without running anything."""

import json
import shutil
from pathlib import Path

import pytest
from tfx.proto import transform_pb2
from tfx.utils import proto_utils

from pipeline.definition.data import DataSource
from pipeline.definition.factory import (
    DIRECT_RUNNER_WORKER_SOFTWARE,
    PREPROCESSING_FN,
    PROJECT_ROOT,
    RUN_FN,
    TRAINER_CODE,
    TRANSFORM_CODE,
    code_files,
    create_pipeline,
    module_code_fingerprint,
    needs_no_tfx_package,
)
from pipeline.runners import local as local_runner


def build(spec, tmp_path, data=None, schema="schemas/penguins/schema.pbtxt", component_beam_args=None):
    return create_pipeline(
        name="test", root=str(tmp_path / "root"), data=data or DataSource(str(tmp_path), "penguins.csv"),
        spec=spec, schema_path=schema, serving_dir=str(tmp_path / "serving"),
        metadata_connection_config=local_runner.metadata_config(str(tmp_path / "m.sqlite")),
        beam_pipeline_args=local_runner.IN_PROCESS_BEAM_ARGS, component_beam_args=component_beam_args)


def by_id(pipeline):
    return {c.id: c for c in pipeline.components}


def test_components_in_order(penguins_spec, tmp_path):
    ids = [c.id for c in build(penguins_spec, tmp_path).components]   # topologically sorted by TFX
    assert sorted(ids) == sorted(["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                                  "previous_span_statistics_resolver", "SchemaGate", "Transform", "Trainer",
                                  "latest_blessed_model_resolver", "Evaluator", "Pusher"])
    chain = ["CsvExampleGen", "StatisticsGen", "ExampleValidator", "SchemaGate", "Transform", "Trainer",
             "Evaluator", "Pusher"]
    assert [ids.index(c) for c in chain] == sorted(ids.index(c) for c in chain)


def test_transform_waits_for_the_gate_and_analyzes_train_only(penguins_spec, tmp_path):
    components = by_id(build(penguins_spec, tmp_path))
    transform = components["Transform"]
    assert transform.inputs["schema"].producer_component_id == "SchemaGate"
    assert transform.exec_properties["preprocessing_fn"] == PREPROCESSING_FN
    splits = proto_utils.json_to_proto(transform.exec_properties["splits_config"], transform_pb2.SplitsConfig())
    assert list(splits.analyze) == ["train"] and list(splits.transform) == ["train", "eval"]
    # No second and third pass of TFDV over the data: StatisticsGen's statistics are the ones the gate reads.
    assert not {"pre_transform_stats", "post_transform_stats", "post_transform_anomalies"} & set(transform.outputs)
    assert components["Trainer"].exec_properties["run_fn"] == RUN_FN


def test_module_config_carries_the_component_view_and_a_code_fingerprint(penguins_spec, tmp_path):
    # Module functions go by import path, so the cache key needs the code's hash, not just the path.
    components = by_id(build(penguins_spec, tmp_path))
    for name, code in (("Transform", TRANSFORM_CODE), ("Trainer", TRAINER_CODE)):
        config = json.loads(components[name].exec_properties["custom_config"])
        assert config["heads_spec"] == penguins_spec.component_view(name.lower())
        assert config["code_fingerprint"] == module_code_fingerprint(code)


def copy_of_project(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "components", root / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("changed,transform_changes,trainer_changes", [
    # The Trainer re-runs anyway when Transform does: its transform graph input changes.
    ("components/transform/features.py", True, False),
    ("components/spec/parser.py", True, True),
    ("components/trainer/strategy.py", False, True),
    ("components/trainer/model.py", False, True),
    ("components/trainer/losses.py", False, True),
    ("components/pusher.py", False, False),
    ("components/schema_gate.py", False, False),
])
def test_code_change_changes_the_fingerprint_of_exactly_the_components_that_run_it(tmp_path, changed,
                                                                                  transform_changes, trainer_changes):
    root = copy_of_project(tmp_path)
    before = {code: module_code_fingerprint(code, root) for code in (TRANSFORM_CODE, TRAINER_CODE)}
    with open(root / changed, "a") as f:
        f.write("\n# a change\n")
    assert (module_code_fingerprint(TRANSFORM_CODE, root) != before[TRANSFORM_CODE]) == transform_changes
    assert (module_code_fingerprint(TRAINER_CODE, root) != before[TRAINER_CODE]) == trainer_changes


def project_imports(module: str) -> set[str]:
    """The project files `module` imports, directly or not (imports inside functions included), with the
    packages' `__init__.py` files: what a component whose entry point is in `module` runs."""
    import ast

    seen: set[Path] = set()
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        files = [PROJECT_ROOT.joinpath(*parts[:i], "__init__.py") for i in range(1, len(parts))]
        files.append(PROJECT_ROOT.joinpath(*parts).with_suffix(".py"))
        for path in (f for f in files if f.is_file() and f not in seen):
            seen.add(path)
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                todo += [name for name in names if name.split(".")[0] in ("components", "pipeline")]
    return {path.relative_to(PROJECT_ROOT).as_posix() for path in seen}


@pytest.mark.parametrize("entry_point,code", [(PREPROCESSING_FN, TRANSFORM_CODE), (RUN_FN, TRAINER_CODE)])
def test_the_fingerprinted_layer_holds_everything_the_entry_point_imports(entry_point, code):
    imported = project_imports(entry_point.rsplit(".", 1)[0])
    assert imported <= {path.relative_to(PROJECT_ROOT).as_posix() for path in code_files(code)}
    assert "components/pusher.py" not in imported and not any(path.startswith("pipeline/") for path in imported)


def test_tfrecord_input_uses_import_example_gen(penguins_spec, tmp_path):
    pipeline = build(penguins_spec, tmp_path, data=DataSource(str(tmp_path), "*.tfrecord.gz", format="tfrecord"))
    assert pipeline.components[0].id == "ImportExampleGen"


def test_without_a_curated_schema_schema_gen_infers_one(penguins_spec, tmp_path):
    ids = [c.id for c in build(penguins_spec, tmp_path, schema=None).components]
    assert "SchemaGen" in ids and "ImportSchemaGen" not in ids


@pytest.mark.parametrize("arg", local_runner.IN_PROCESS_BEAM_ARGS)
def test_beam_runner_is_named_and_in_process(penguins_spec, tmp_path, arg):
    assert arg in build(penguins_spec, tmp_path).beam_pipeline_args


def beam_args_of(pipeline) -> dict[str, list[str]]:
    return {c.id: list(c.executor_spec.beam_pipeline_args) for c in pipeline.components
            if hasattr(c.executor_spec, "beam_pipeline_args")}


def test_worker_beam_args_follow_the_pipelines_for_the_example_gen_and_evaluator_alone(penguins_spec, tmp_path):
    workers = local_runner.worker_beam_args(2)
    args = beam_args_of(build(penguins_spec, tmp_path, component_beam_args=workers))
    in_process = list(local_runner.IN_PROCESS_BEAM_ARGS)
    # After the pipeline's options, so that Beam's parser (the last value wins) takes them.
    assert args["CsvExampleGen"] == in_process + list(workers["ExampleGen"]) + [DIRECT_RUNNER_WORKER_SOFTWARE]
    assert args["Evaluator"] == in_process + list(workers["Evaluator"]) + [DIRECT_RUNNER_WORKER_SOFTWARE]
    assert "--direct_running_mode=multi_processing" in args["CsvExampleGen"]
    assert "--direct_running_mode=multi_processing" in args["Evaluator"]
    assert args["StatisticsGen"] == args["Transform"] == in_process + [DIRECT_RUNNER_WORKER_SOFTWARE]


def test_beam_executors_on_the_direct_runner_do_not_package_tfx(penguins_spec, tmp_path, monkeypatch):
    # Each would copy TFX (42 MB) into a temp folder it never removes, and spend 1.8 s building an sdist of it.
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.utils import dependency_utils

    def build_ephemeral_package():
        raise AssertionError("TFX packaged itself for a DirectRunner job")

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", build_ephemeral_package)
    pipeline = build(penguins_spec, tmp_path, schema=None, component_beam_args=local_runner.worker_beam_args(2))
    args = beam_args_of(pipeline)
    assert set(args) == {"CsvExampleGen", "StatisticsGen", "Transform", "Evaluator"}
    for component in pipeline.components:
        if component.id in args:
            component.executor_spec.executor_class(BaseBeamExecutor.Context(beam_pipeline_args=args[component.id]))


@pytest.mark.parametrize("args, direct_without_software", [
    (["--runner=DirectRunner"], True),
    ([], True),   # Beam's default runner is the DirectRunner
    (["--runner=DataflowRunner", "--project=p"], False),
    (["--runner=DirectRunner", "--runner=FlinkRunner"], False),   # the last value wins
    (["--runner=DirectRunner", "--setup_file=./setup.py"], False),   # the user named the software
])
def test_needs_no_tfx_package_only_on_the_direct_runner_with_no_software_named(args, direct_without_software):
    assert needs_no_tfx_package(args) == direct_without_software


def test_a_remote_runner_for_some_components_keeps_its_own_worker_software(penguins_spec, tmp_path):
    dataflow = ("--runner=DataflowRunner",)
    args = beam_args_of(build(penguins_spec, tmp_path, component_beam_args={"Transform": dataflow}))
    assert DIRECT_RUNNER_WORKER_SOFTWARE not in args["Transform"]
    assert DIRECT_RUNNER_WORKER_SOFTWARE in args["StatisticsGen"]


def test_component_beam_args_for_an_unknown_role_are_refused(penguins_spec, tmp_path):
    with pytest.raises(ValueError, match="Pusher"):
        build(penguins_spec, tmp_path, component_beam_args={"Pusher": ("--direct_num_workers=2",)})
