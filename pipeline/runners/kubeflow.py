"""Compiles the one pipeline (`create_pipeline`) for Kubeflow Pipelines with TFX's KubeflowV2DagRunner.

Only the runner and its settings differ from a local run: the same factory builds the same components; here the
Trainer alone gets GPU resources (its platform config, which TFX applies to container components only and the
local runner rejects), the Beam-heavy components get their own Beam options, and every component runs the
project's image, where the module functions resolve by import path (`components.trainer.module.run_fn`).

The output is a bare PipelineSpec in YAML: KubeflowV2DagRunner writes that for a `.yaml` file (a `.json` file
would get a PipelineJob wrapper, which kfp's `Client` does not upload). The pipeline root is not in a bare
PipelineSpec, so `submit`/`schedule` pass it again with each run.
"""

import dataclasses
import re
from pathlib import Path
from typing import Optional

from components.spec import HeadsSpec, SpecError
from pipeline import PROJECT_ROOT
from pipeline.definition.data import DataSource

# Where the Dockerfile installs the project inside the image (its WORKDIR and PYTHONPATH).
IMAGE_PROJECT_DIR = "/opt/multihead"

# Backends that run the compiled PipelineSpec, with the name each gives an NVIDIA GPU in a ResourceSpec.
BACKEND_KFP = "kfp"         # open-source Kubeflow Pipelines 2.x: the type is the Kubernetes resource name
BACKEND_VERTEX = "vertex"   # Vertex AI Pipelines: the type is a machine accelerator enum name
DEFAULT_ACCELERATOR = {BACKEND_KFP: "nvidia.com/gpu", BACKEND_VERTEX: "NVIDIA_TESLA_T4"}
_ACCELERATOR_PATTERN = {BACKEND_KFP: re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]+$"),
                        BACKEND_VERTEX: re.compile(r"^[A-Z][A-Z0-9_]+$")}

# The components whose Beam jobs grow with the data; `heavy_beam_args` (e.g. a Dataflow or Flink runner) go to
# them alone. ExampleGen and the small components keep the in-container default.
BEAM_HEAVY_COMPONENTS = ("StatisticsGen", "Transform", "Evaluator")
TRAINER_ID = "Trainer"


@dataclasses.dataclass(frozen=True)
class TrainerResources:
    """What the Trainer's pod asks for: CPU and memory limits, and its GPUs (none when `accelerator_count` is 0)."""

    cpu_limit: float = 4.0
    memory_limit_gb: float = 16.0
    accelerator_type: Optional[str] = None   # None: the backend's default NVIDIA GPU name
    accelerator_count: int = 1


@dataclasses.dataclass(frozen=True)
class KubeflowSettings:
    """Everything that differs between clusters; none of it is an edit of the pipeline.

    Attributes:
      image: the container image every component runs (built from the project's Dockerfile).
      pipeline_root: where the cluster writes artifacts (e.g. `gs://bucket/root`, `minio://mlpipeline/root`).
      data_root: the folder of the input records, as the cluster's pods see it.
      data_pattern: file pattern inside `data_root` (`{SPAN}` selects spans; ExampleGen then takes the latest).
      data_format: `csv` or `tfrecord`.
      serving_dir: TensorFlow Serving base directory the Pusher writes versions into.
      schema_path: the curated schema as the pods see it (a path inside the image or a bucket URI); None infers
        one with SchemaGen.
      backend: `kfp` (open-source Kubeflow Pipelines) or `vertex` (Vertex AI Pipelines).
      beam_args: Beam options of every Beam component.
      heavy_beam_args: Beam options added for StatisticsGen, Transform and Evaluator only.
      trainer: the Trainer's resources.
      enable_cache: let the backend reuse unchanged executions.
      compare_with_baseline: compile the latest-blessed-model resolver (two resolver tasks) so the Evaluator
        compares with the model last blessed; False leaves it out (absolute bounds only), for a backend that
        does not run resolver tasks.
    """

    image: str
    pipeline_root: str
    data_root: str
    serving_dir: str
    data_pattern: str = "*.csv"
    data_format: str = "csv"
    schema_path: Optional[str] = None
    backend: str = BACKEND_KFP
    # In-process, as local runs (local_runner.IN_PROCESS_BEAM_ARGS, which imports TFX): on penguins it beat
    # worker processes 2.2x (docs/design.md, Beam options); data that outgrows a pod takes `heavy_beam_args`.
    beam_args: tuple[str, ...] = ("--runner=DirectRunner", "--direct_running_mode=in_memory",
                                  "--direct_num_workers=1")
    heavy_beam_args: tuple[str, ...] = ()
    trainer: TrainerResources = TrainerResources()
    enable_cache: bool = True
    compare_with_baseline: bool = True

    def accelerator_type(self) -> str:
        return self.trainer.accelerator_type or DEFAULT_ACCELERATOR[self.backend]

    def validate(self) -> None:
        """Raises SpecError naming the setting that cannot work on the chosen backend."""
        if self.backend not in DEFAULT_ACCELERATOR:
            raise SpecError(f"--backend: {self.backend!r} is not one of {sorted(DEFAULT_ACCELERATOR)}")
        if not self.image or any(c.isspace() for c in self.image):
            raise SpecError(f"--image: {self.image!r} is not an image reference")
        for flag, value in (("--pipeline-root", self.pipeline_root), ("--data-root", self.data_root),
                            ("--serving-dir", self.serving_dir), ("--schema", self.schema_path)):
            if value is not None and not _is_absolute_location(value):
                raise SpecError(f"{flag}: {value!r} must be a bucket URI or an absolute path as the cluster's "
                                f"pods see it (a relative path would resolve inside each container)")
        if self.trainer.accelerator_count < 0:
            raise SpecError(f"--gpu-count: {self.trainer.accelerator_count} is negative")
        if self.trainer.cpu_limit <= 0 or self.trainer.memory_limit_gb <= 0:
            raise SpecError("--trainer-cpu and --trainer-memory-gb must be positive")
        if self.trainer.accelerator_count and not _ACCELERATOR_PATTERN[self.backend].match(self.accelerator_type()):
            example = DEFAULT_ACCELERATOR[self.backend]
            raise SpecError(f"--gpu-type: {self.accelerator_type()!r} is not a {self.backend} accelerator name "
                            f"(e.g. {example!r})")


def _is_absolute_location(value: str) -> bool:
    return "://" in value or value.startswith("/")


def image_path(local_path: Path) -> str:
    """The path inside the image of a file of this project (the Dockerfile copies the project to IMAGE_PROJECT_DIR).

    Raises:
      SpecError: if the file is outside the project, so the image does not hold it.
    """
    try:
        relative = local_path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        raise SpecError(f"{local_path} is outside the project, so the image does not hold it; copy it into "
                        f"schemas/ or pass --schema with its location as the pods see it") from None
    return f"{IMAGE_PROJECT_DIR}/{relative.as_posix()}"


def trainer_resource_spec(settings: KubeflowSettings):
    """The Trainer's ResourceSpec (platform config): CPU and memory limits and, if any, its GPUs."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # noqa: PLC0415 - with TFX, only where a pipeline compiles

    resource_spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=settings.trainer.cpu_limit, memory_limit=settings.trainer.memory_limit_gb)
    if settings.trainer.accelerator_count:
        resource_spec.accelerator.type = settings.accelerator_type()
        resource_spec.accelerator.count = settings.trainer.accelerator_count
    return resource_spec


def build_kubeflow_pipeline(spec: HeadsSpec, settings: KubeflowSettings, name: Optional[str] = None,
                            provenance: Optional[dict] = None):
    """The pipeline of `create_pipeline` with the Kubeflow runner's settings applied (no ML Metadata config:
    the backend provides its own store)."""
    from pipeline.definition.factory import create_pipeline  # noqa: PLC0415

    settings.validate()
    tfx_pipeline = create_pipeline(
        name=name or spec.name, root=settings.pipeline_root,
        data=DataSource(input_base=settings.data_root, pattern=settings.data_pattern, format=settings.data_format),
        spec=spec, schema_path=settings.schema_path, serving_dir=settings.serving_dir,
        metadata_connection_config=None, beam_pipeline_args=settings.beam_args,
        enable_cache=settings.enable_cache, provenance=provenance,
        compare_with_baseline=settings.compare_with_baseline, local_resolvers=False,
        component_beam_args=(dict.fromkeys(BEAM_HEAVY_COMPONENTS, settings.heavy_beam_args)
                             if settings.heavy_beam_args else None))
    by_id = {component.id: component for component in tfx_pipeline.components}
    by_id[TRAINER_ID].with_platform_config(trainer_resource_spec(settings))
    return tfx_pipeline


def compile_pipeline(spec: HeadsSpec, settings: KubeflowSettings, output: Path, name: Optional[str] = None,
                     provenance: Optional[dict] = None) -> Path:
    """Writes the PipelineSpec YAML of the pipeline for `settings` to `output` and returns its path.

    Raises:
      SpecError: if `output` does not end in `.yaml`/`.yml` or a setting is wrong.
    """
    if output.suffix not in (".yaml", ".yml"):
        raise SpecError(f"--output: {output} must end in .yaml (kfp's Client uploads a PipelineSpec YAML; "
                        f"KubeflowV2DagRunner writes a PipelineJob wrapper for other suffixes)")
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # noqa: PLC0415

    tfx_pipeline = build_kubeflow_pipeline(spec, settings, name, provenance)
    output.parent.mkdir(parents=True, exist_ok=True)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=settings.image),
        output_dir=str(output.parent), output_filename=output.name)
    runner.run(tfx_pipeline)
    return output
