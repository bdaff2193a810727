"""The Kubeflow compile: the same pipeline, compiled with KubeflowV2DagRunner into a PipelineSpec YAML."""

import json
import os
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format

from components.spec import SpecError
from pipeline import cli
from pipeline.runners.kubeflow import (
    IMAGE_PROJECT_DIR,
    KubeflowSettings,
    TrainerResources,
    compile_pipeline,
    image_path,
)

from conftest import PENGUINS_HEADS, ROOT

IMAGE = "registry.example.com/ml/multihead:1.2.3"
GPU_TYPE = "nvidia.com/gpu"
GPU_COUNT = 2
# The pipeline's nodes; the resolver compiles into two resolver tasks (blessing, then model).
EXPECTED_TASKS = {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "SchemaGate",
                  "Transform", "Trainer", "Evaluator", "Pusher",
                  "latest_blessed_model_resolver-model-blessing-resolver",
                  "latest_blessed_model_resolver-model-resolver"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The `compile` command run once: the file's text and its PipelineSpec proto."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    output = tmp_path_factory.mktemp("kfp") / "penguins.yaml"
    code = cli.main(["compile", "--heads", str(PENGUINS_HEADS), "--output", str(output), "--image", IMAGE,
                     "--pipeline-root", "gs://bucket/root", "--data-root", "gs://bucket/data/penguins",
                     "--serving-dir", "gs://bucket/serving/penguins", "--gpu-type", GPU_TYPE,
                     "--gpu-count", str(GPU_COUNT), "--trainer-cpu", "8", "--trainer-memory-gb", "30",
                     "--heavy-beam-arg=--runner=DataflowRunner", "--heavy-beam-arg=--region=europe-west4"])
    assert code == 0
    text = output.read_text()
    spec = json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec())
    return text, spec


def _executors(spec) -> dict:
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def _task_executor(spec, task: str) -> dict:
    component = spec.root.dag.tasks[task].component_ref.name
    return _executors(spec)[spec.components[component].executor_label]


def test_every_component_is_compiled(compiled):
    _, spec = compiled
    assert set(spec.root.dag.tasks) == EXPECTED_TASKS
    assert "baseline_model" in spec.root.dag.tasks["Evaluator"].inputs.artifacts
    assert spec.pipeline_info.name == "penguins"


def test_trainer_alone_requests_the_accelerator(compiled):
    _, spec = compiled
    with_gpu = {task for task in spec.root.dag.tasks
                if "accelerator" in _task_executor(spec, task).get("container", {}).get("resources", {})}
    assert with_gpu == {"Trainer"}
    resources = _task_executor(spec, "Trainer")["container"]["resources"]
    assert resources["accelerator"] == {"type": GPU_TYPE, "count": str(GPU_COUNT)}
    assert (resources["cpuLimit"], resources["memoryLimit"]) == (8.0, 30.0)


def test_every_container_runs_the_configured_image(compiled):
    _, spec = compiled
    containers = [e["container"] for e in _executors(spec).values() if "container" in e]
    assert len(containers) == 9
    assert {c["image"] for c in containers} == {IMAGE}


def test_no_path_of_the_build_machine_appears(compiled):
    text, _ = compiled
    for local in (str(ROOT), os.path.expanduser("~"), "/tmp/", "/work/"):
        assert local not in text
    # The curated schema is read from its place in the image.
    assert f"{IMAGE_PROJECT_DIR}/schemas/penguins/schema.pbtxt" in text


def test_module_functions_are_import_paths(compiled):
    _, spec = compiled
    run_fn = spec.root.dag.tasks["Trainer"].inputs.parameters["run_fn"].runtime_value.constant_value.string_value
    assert run_fn == "components.trainer.module.run_fn"
    assert (ROOT / "components" / "trainer" / "module.py").exists()


def test_heavy_beam_args_reach_only_the_beam_heavy_components(compiled):
    _, spec = compiled
    for task in ("StatisticsGen", "Transform", "Evaluator"):
        assert "--runner=DataflowRunner" in _task_executor(spec, task)["container"]["args"]
    for task in ("CsvExampleGen", "Trainer", "Pusher"):
        assert "--runner=DataflowRunner" not in _task_executor(spec, task)["container"]["args"]


def test_vertex_backend_names_its_accelerator(penguins_spec, tmp_path, compiled):
    settings = KubeflowSettings(image=IMAGE, pipeline_root="gs://b/root", data_root="gs://b/data",
                                serving_dir="gs://b/serving", backend="vertex")
    output = compile_pipeline(penguins_spec, settings, tmp_path / "vertex.yaml")
    accelerator = json.dumps(yaml.safe_load(output.read_text())["deploymentSpec"]["executors"]["Trainer_executor"])
    assert '"type": "NVIDIA_TESLA_T4"' in accelerator


def test_no_baseline_leaves_the_resolver_tasks_out(penguins_spec, tmp_path, compiled):
    from kfp.pipeline_spec import pipeline_spec_pb2

    settings = KubeflowSettings(image=IMAGE, pipeline_root="gs://b/root", data_root="gs://b/data",
                                serving_dir="gs://b/serving", compare_with_baseline=False,
                                schema_path=f"{IMAGE_PROJECT_DIR}/schemas/penguins/schema.pbtxt")
    output = compile_pipeline(penguins_spec, settings, tmp_path / "no_baseline.yaml")
    spec = json_format.ParseDict(yaml.safe_load(output.read_text()), pipeline_spec_pb2.PipelineSpec())
    assert set(spec.root.dag.tasks) == {t for t in EXPECTED_TASKS if "resolver" not in t}
    assert not [e for e in _executors(spec).values() if "resolver" in e]
    assert "baseline_model" not in spec.root.dag.tasks["Evaluator"].inputs.artifacts


@pytest.mark.parametrize("change, message", [
    ({"backend": "vertex", "trainer": TrainerResources(accelerator_type="nvidia.com/gpu")}, "--gpu-type"),
    ({"trainer": TrainerResources(accelerator_type="NVIDIA_TESLA_T4")}, "--gpu-type"),
    ({"pipeline_root": "runs/root"}, "--pipeline-root"),
    ({"data_root": "data"}, "--data-root"),
    ({"backend": "argo"}, "--backend"),
    ({"trainer": TrainerResources(accelerator_count=-1)}, "--gpu-count"),
])
def test_wrong_settings_name_their_flag(change, message):
    settings = KubeflowSettings(**{"image": IMAGE, "pipeline_root": "gs://b/root", "data_root": "gs://b/data",
                                   "serving_dir": "gs://b/serving", **change})
    with pytest.raises(SpecError, match=message):
        settings.validate()


def test_json_output_is_refused(penguins_spec, tmp_path):
    settings = KubeflowSettings(image=IMAGE, pipeline_root="gs://b/root", data_root="gs://b/data",
                                serving_dir="gs://b/serving")
    with pytest.raises(SpecError, match=r"\.yaml"):
        compile_pipeline(penguins_spec, settings, tmp_path / "pipeline.json")


def test_image_path_maps_project_files_and_refuses_others(tmp_path):
    assert image_path(ROOT / "schemas" / "penguins" / "schema.pbtxt") == \
        f"{IMAGE_PROJECT_DIR}/schemas/penguins/schema.pbtxt"
    with pytest.raises(SpecError, match="outside the project"):
        image_path(Path(tmp_path) / "schema.pbtxt")


def test_default_beam_args_are_the_local_runners_in_process_ones():
    from pipeline.runners.local import IN_PROCESS_BEAM_ARGS

    assert KubeflowSettings.beam_args == IN_PROCESS_BEAM_ARGS


def test_the_gate_names_the_data_by_its_uri_with_both_slashes(compiled):
    text, _ = compiled
    assert "gs://bucket/data/penguins/*.csv" in text and "gs:/bucket/data" not in text


def test_a_cpu_only_trainer_is_printed_as_such(tmp_path, capsys):
    code = cli.main(["compile", "--heads", str(PENGUINS_HEADS), "--output", str(tmp_path / "p.yaml"), "--image",
                     IMAGE, "--pipeline-root", "gs://bucket/root", "--data-root", "gs://bucket/data/penguins",
                     "--serving-dir", "gs://bucket/serving/penguins", "--gpu-count", "0", "--gpu-type", GPU_TYPE])
    assert code == 0
    assert "Trainer: no GPU, 4 CPU, 16 GB" in capsys.readouterr().out
