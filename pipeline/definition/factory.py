"""The one pipeline factory. Runners (local Beam today) only resolve settings and call `create_pipeline`."""

import hashlib
import json
from pathlib import Path
from typing import Any, Collection, Mapping, Optional, Sequence

from tfx.components.evaluator.component import Evaluator
from tfx.components.example_gen.csv_example_gen.component import CsvExampleGen
from tfx.components.example_gen.import_example_gen.component import ImportExampleGen
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.base.base_beam_component import BaseBeamComponent
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from components.pusher import AtomicPusher
from components.schema_gate import SchemaGate
from components.spec import HeadsSpec
from pipeline import PROJECT_ROOT
from pipeline.definition.data import EXAMPLE_GEN_SPLIT, DataSource
from pipeline.definition.eval_config import build_eval_config
from pipeline.definition.resolvers import BlessedModelBeforeCandidateStrategy, PreviousSpanStatisticsStrategy

PREPROCESSING_FN = "components.transform.module.preprocessing_fn"
RUN_FN = "components.trainer.module.run_fn"


# The code each module-function component runs: the package (which makes the Keras choice), the spec, and the
# component's own folder of components/. The layer contracts (pyproject.toml) keep its imports inside them, so a
# change to the Pusher's code does not retrain.
TRANSFORM_CODE = ("components/__init__.py", "components/spec", "components/transform")
TRAINER_CODE = ("components/__init__.py", "components/spec", "components/trainer")


def code_files(paths: Sequence[str], root: Path = PROJECT_ROOT) -> list[Path]:
    """The Python files of `paths` (files, or folders taken whole), relative to `root`, sorted."""
    files = set()
    for path in (root / p for p in paths):
        files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return sorted(files)


def module_code_fingerprint(paths: Sequence[str], root: Path = PROJECT_ROOT) -> str:
    """A hash of the code files of `paths` (`code_files`).

    The module functions are passed by import path, so TFX's cache key holds the path, not the code: without
    this hash in their execution properties, a code change would get the old model back from the cache.
    """
    digest = hashlib.sha256()
    for path in code_files(paths, root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def example_gen_component(data: DataSource):
    """The ExampleGen of `data`: its records in one split pattern, which ExampleGen hashes 2:1 into train and eval."""
    splits = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=EXAMPLE_GEN_SPLIT, pattern=data.pattern)])
    example_gen_class = CsvExampleGen if data.format == "csv" else ImportExampleGen
    return example_gen_class(input_base=data.input_base, input_config=splits)


def transform_component(examples, schema, spec: HeadsSpec) -> Transform:
    """The Transform of `examples` (a channel of Examples with train and eval splits): analyzes train only."""
    return Transform(
        examples=examples,
        schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=transform_pb2.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
        custom_config={"heads_spec": spec.component_view("transform"),
                       "code_fingerprint": module_code_fingerprint(TRANSFORM_CODE)},
        # StatisticsGen has the raw data's statistics already, and nothing reads the transformed data's: TFDV
        # would pass over every row twice more (pre- and post-transform) for outputs no component uses.
        disable_statistics=True,
    )


# TFX's Beam executors, unless a Beam option names the workers' software, copy the installed TFX (42 MB) into a
# new temp folder and build an sdist of it for remote workers to install (tfx.utils.dependency_utils): 1.8 s per
# component here, and the folder is never removed (a day of test runs filled this machine's disk with them).
# The DirectRunner's workers are this Python or its children, which have TFX. Naming an image, which only remote
# runners read, skips the copy; the value says that nothing pulls it.
DIRECT_RUNNER_WORKER_SOFTWARE = "--sdk_container_image=unused-by-the-direct-runner"
# The options whose presence makes TFX skip that copy (dependency_utils.make_beam_dependency_flags).
_WORKER_SOFTWARE_OPTIONS = ("extra_packages", "setup_file", "requirements_file", "worker_harness_container_image",
                            "sdk_container_image")


def needs_no_tfx_package(beam_args: Sequence[str]) -> bool:
    """Whether a Beam job with these options runs on the DirectRunner and no option names the workers' software,
    so TFX's copy of itself for remote workers is wasted."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions  # noqa: PLC0415

    options = PipelineOptions(flags=list(beam_args))
    runner = options.view_as(StandardOptions).runner or "DirectRunner"   # Beam's default
    all_options = options.get_all_options()
    return ("direct" in runner.lower().split(".")[-1]
            and not any(all_options.get(name) for name in _WORKER_SOFTWARE_OPTIONS))


def create_pipeline(*, name: str, root: str, data: DataSource, spec: HeadsSpec, schema_path: Optional[str],
                    serving_dir: str, metadata_connection_config, beam_pipeline_args: Sequence[str],
                    enable_cache: bool = True, baseline_heads: Optional[Collection[str]] = None,
                    provenance: Optional[dict[str, Any]] = None,
                    compare_with_baseline: bool = True, local_resolvers: bool = True,
                    serving_statistics: Optional[str] = None,
                    component_beam_args: Optional[Mapping[str, Sequence[str]]] = None) -> tfx_pipeline.Pipeline:
    """Builds the multi-head pipeline.

    Args:
      name: pipeline name (ML Metadata groups runs by it).
      root: folder for every artifact of every run.
      data: the input records.
      spec: the validated heads spec.
      schema_path: a curated `schema.pbtxt`; None infers one with SchemaGen (and so checks little).
      serving_dir: base folder of the TensorFlow Serving model; blessed models are pushed to `<serving_dir>/<ver>`.
      metadata_connection_config: the ML Metadata store.
      beam_pipeline_args: Beam options of the components that run Beam jobs.
      enable_cache: reuse outputs of executions whose inputs and properties have not changed.
      baseline_heads: the heads of the latest blessed model (the Evaluator's baseline), None if there is none;
        heads it lacks are judged on absolute bounds alone (see `build_eval_config`).
      provenance: facts recorded beside every pushed model (spec hash, git commit, training settings).
      compare_with_baseline: resolve the latest blessed model as the Evaluator's baseline; False leaves the
        resolver out (absolute bounds only), for orchestrators that cannot run resolver tasks.
      local_resolvers: the local runner's resolver strategies (pipeline/definition/resolvers.py): the baseline is
        the newest blessed model older than the candidate (so an unchanged rerun comes wholly from the cache), and the
        previous span's statistics reach the drift check. Kubeflow's V2 compiler takes neither: False uses TFX's
        LatestBlessedModelStrategy and checks no drift between spans.
      serving_statistics: a TFDV statistics file of the serving data, for the spec's skew bounds.
      component_beam_args: Beam options added after `beam_pipeline_args` (so they win) for some components,
        by role: ExampleGen (whose id is CsvExampleGen or ImportExampleGen), StatisticsGen, Transform, Evaluator;
        e.g. worker processes for the Evaluator of large data.

    Raises:
      ValueError: a key of `component_beam_args` is not one of those roles.
    """
    example_gen = example_gen_component(data)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    if schema_path:
        schema_gen = ImportSchemaGen(schema_file=schema_path)
    else:
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False)
    example_validator = ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                         schema=schema_gen.outputs["schema"])
    previous_span = None
    if local_resolvers and spec.drift:
        previous_span = Resolver(
            strategy_class=PreviousSpanStatisticsStrategy,
            current=statistics_gen.outputs["statistics"],
            previous=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id("previous_span_statistics_resolver")
    schema_gate = SchemaGate(anomalies=example_validator.outputs["anomalies"],
                             statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"],
                             previous_statistics=previous_span.outputs["previous"] if previous_span else None,
                             label_columns=",".join(spec.label_columns), data_source=data.description,
                             drift_bounds=json.dumps({b.column: b.threshold for b in spec.drift}),
                             skew_bounds=json.dumps({b.column: b.threshold for b in spec.skew}),
                             serving_statistics_path=serving_statistics or "",
                             numeric_columns=",".join(spec.numeric_columns),
                             label_classes=json.dumps({c: list(k) for c, k in spec.label_classes.items()}),
                             feature_columns=",".join(f.name for f in spec.features),
                             angle_columns=",".join(h.label for h in spec.heads if h.kind == "angle"),
                             schema_source="the curated schema" if schema_path else "the schema SchemaGen inferred")

    transform = transform_component(example_gen.outputs["examples"], schema_gate.outputs["validated_schema"], spec)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        custom_config={"heads_spec": spec.component_view("trainer"),
                       "code_fingerprint": module_code_fingerprint(TRAINER_CODE)},
    )
    baseline_resolver = None
    if compare_with_baseline and local_resolvers:
        baseline_resolver = Resolver(
            strategy_class=BlessedModelBeforeCandidateStrategy,
            config={"serving_dir": serving_dir,
                    "heads": [h.name for h in spec.heads if baseline_heads is None or h.name in baseline_heads]},
            candidate=trainer.outputs["model"],
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id("latest_blessed_model_resolver")
    elif compare_with_baseline:
        baseline_resolver = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"] if baseline_resolver else None,
        eval_config=build_eval_config(spec, baseline_heads),
    )
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)),
        examples=example_gen.outputs["examples"],
        evaluation=evaluator.outputs["evaluation"],
        provenance=provenance,
    ).with_id("Pusher")
    # The components that run Beam jobs over the data, by role.
    by_role = {"ExampleGen": example_gen, "StatisticsGen": statistics_gen, "Transform": transform,
               "Evaluator": evaluator}
    unknown = sorted(set(component_beam_args or {}) - set(by_role))
    if unknown:
        raise ValueError(f"component_beam_args: {unknown} are not among {list(by_role)}")
    for role, args in (component_beam_args or {}).items():
        by_role[role].with_beam_pipeline_args(list(args))
    components = [example_gen, statistics_gen, schema_gen, example_validator,
                  *([previous_span] if previous_span else []), schema_gate, transform, trainer,
                  *([baseline_resolver] if baseline_resolver else []), evaluator, pusher]
    for component in components:
        if isinstance(component, BaseBeamComponent) and needs_no_tfx_package(
                [*beam_pipeline_args, *component.executor_spec.beam_pipeline_args]):
            component.with_beam_pipeline_args([DIRECT_RUNNER_WORKER_SOFTWARE])
    return tfx_pipeline.Pipeline(
        pipeline_name=name,
        pipeline_root=root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
