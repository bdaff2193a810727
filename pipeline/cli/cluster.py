"""`compile`, `submit` and `schedule`: the pipeline compiled for Kubeflow Pipelines and sent to a server (the
Kubeflow runner and its kfp client, pipeline/runners/). Only argparse loads here; TFX and kfp load when a command
runs."""

from pathlib import Path

from components.spec import load_spec
from pipeline.definition.provenance import provenance as model_provenance
from pipeline.runners.kfp_client import (
    check_cron,
    check_endpoint,
    check_package,
    connect,
    reporting_cluster_errors,
    schedule,
    submit,
)
from pipeline.runners.kubeflow import (
    BACKEND_KFP,
    DEFAULT_ACCELERATOR,
    IMAGE_PROJECT_DIR,
    KubeflowSettings,
    TrainerResources,
    compile_pipeline,
    image_path,
)


def settings_from_args(args, spec_path: Path) -> KubeflowSettings:
    """KubeflowSettings from the `compile` command's flags; the schema defaults to the one beside the heads spec,
    at its path inside the image."""
    schema = args.schema
    if schema is None and not args.infer_schema and (spec_path.parent / "schema.pbtxt").exists():
        schema = image_path(spec_path.parent / "schema.pbtxt")
    trainer = TrainerResources(cpu_limit=args.trainer_cpu, memory_limit_gb=args.trainer_memory_gb,
                               accelerator_type=args.gpu_type, accelerator_count=args.gpu_count)
    beam_args = tuple(args.beam_args) if args.beam_args else KubeflowSettings.beam_args
    return KubeflowSettings(image=args.image, pipeline_root=args.pipeline_root, data_root=args.data_root,
                            data_pattern=args.data_pattern, data_format=args.format, serving_dir=args.serving_dir,
                            schema_path=schema, backend=args.backend, beam_args=beam_args,
                            heavy_beam_args=tuple(args.heavy_beam_args or ()), trainer=trainer,
                            enable_cache=not args.no_cache, compare_with_baseline=not args.no_baseline)


def add_compile_parser(commands) -> None:
    """Registers `compile` on the command line's subparsers."""
    p = commands.add_parser("compile", help="compile the pipeline for Kubeflow Pipelines (PipelineSpec YAML)",
                            description="Compile the pipeline with KubeflowV2DagRunner; every cluster detail is a "
                                        "flag. The spec names --image; the pipeline root is passed again at "
                                        "submit/schedule.")
    p.add_argument("--heads", required=True, help="heads spec YAML (embedded in the compiled spec)")
    p.add_argument("--output", required=True, help="PipelineSpec file to write (.yaml)")
    p.add_argument("--image", required=True, help="the project's image (see Dockerfile), e.g. REGISTRY/multihead:TAG")
    p.add_argument("--pipeline-root", required=True, help="artifact root as the cluster sees it (gs://, s3://, ...)")
    p.add_argument("--data-root", required=True, help="folder of the input records as the pods see it")
    p.add_argument("--data-pattern", default="*.csv", help="file pattern in --data-root; may hold {SPAN} "
                                                           "(default *.csv)")
    p.add_argument("--format", choices=("csv", "tfrecord"), default="csv", help="input format (default csv)")
    p.add_argument("--serving-dir", required=True, help="TensorFlow Serving base directory as the pods see it")
    p.add_argument("--schema", help=f"curated schema as the pods see it (default: schema.pbtxt beside the heads "
                                    f"spec, at its path in the image under {IMAGE_PROJECT_DIR})")
    p.add_argument("--infer-schema", action="store_true", help="no curated schema: SchemaGen infers one")
    p.add_argument("--name", help="pipeline name (default: the spec's name)")
    p.add_argument("--backend", choices=sorted(DEFAULT_ACCELERATOR), default=BACKEND_KFP,
                   help="kfp: open-source Kubeflow Pipelines; vertex: Vertex AI Pipelines (default kfp)")
    p.add_argument("--gpu-type", help="Trainer accelerator type (default: nvidia.com/gpu for kfp, "
                                      "NVIDIA_TESLA_T4 for vertex)")
    p.add_argument("--gpu-count", type=int, default=1, help="Trainer GPUs (0: CPU only; default 1)")
    p.add_argument("--trainer-cpu", type=float, default=4.0, help="Trainer CPU limit (default 4)")
    p.add_argument("--trainer-memory-gb", type=float, default=16.0, help="Trainer memory limit in GB (default 16)")
    p.add_argument("--beam-arg", action="append", dest="beam_args", metavar="ARG",
                   help="Beam option of every Beam component, repeatable (default: DirectRunner in the "
                        "component's own process)")
    p.add_argument("--heavy-beam-arg", action="append", dest="heavy_beam_args", metavar="ARG",
                   help="Beam option for StatisticsGen, Transform and Evaluator only, repeatable (e.g. "
                        "--runner=DataflowRunner, --project=..., --region=...)")
    p.add_argument("--no-cache", action="store_true", help="compile with caching off")
    p.add_argument("--no-baseline", action="store_true",
                   help="leave out the latest-blessed-model resolver: the Evaluator judges absolute bounds only "
                        "(for a backend that does not run resolver tasks; see docs/kubeflow.md, Backends)")


def compile_command(args) -> int:
    spec_path = Path(args.heads)
    spec = load_spec(spec_path)
    settings = settings_from_args(args, spec_path)
    settings.validate()
    provenance = model_provenance(spec, image=settings.image)
    output = compile_pipeline(spec, settings, Path(args.output), args.name, provenance)
    gpus = settings.trainer.accelerator_count
    print(f"compiled {args.name or spec.name} for {settings.backend} into {output}\n"
          f"  image {settings.image}; Trainer: {f'{gpus} x {settings.accelerator_type()}' if gpus else 'no GPU'}, "
          f"{settings.trainer.cpu_limit:g} CPU, {settings.trainer.memory_limit_gb:g} GB\n"
          f"  pass the pipeline root ({settings.pipeline_root}) again to submit/schedule")
    return 0


def add_client_parsers(commands) -> None:
    """Registers `submit` and `schedule` on the CLI's subparsers."""
    for command, help_text in (("submit", "upload the compiled pipeline and start one run on Kubeflow Pipelines"),
                               ("schedule", "create (or replace) a recurring run of the compiled pipeline")):
        p = commands.add_parser(command, help=help_text, description=help_text)
        p.add_argument("--package", required=True, help="the PipelineSpec .yaml written by `compile`")
        p.add_argument("--endpoint", required=True, help="Kubeflow Pipelines API, e.g. http://localhost:8888")
        p.add_argument("--namespace", help="Kubernetes namespace (multi-user deployments)")
        p.add_argument("--experiment", default="multihead", help="experiment name (created if missing)")
        p.add_argument("--pipeline-root", required=True, help="artifact root as the cluster sees it "
                                                              "(a bare PipelineSpec does not carry it)")
        if command == "submit":
            p.add_argument("--run-name", help="run name (default: kfp's, from the file name and the time)")
        else:
            p.add_argument("--name", required=True, help="recurring run name; one of the same name is replaced")
            p.add_argument("--cron", required=True, help="kfp cron, six fields, seconds first "
                                                         "(e.g. '0 0 3 * * *': daily at 03:00:00)")


def submit_command(args) -> int:
    endpoint = check_endpoint(args.endpoint)
    package = check_package(Path(args.package))
    with reporting_cluster_errors(endpoint):
        client = connect(endpoint, args.namespace)
        run_id = submit(client, package, pipeline_root=args.pipeline_root, experiment=args.experiment,
                        namespace=args.namespace, run_name=args.run_name)
    print(f"submitted {package} as run {run_id} in experiment {args.experiment!r}")
    return 0


def schedule_command(args) -> int:
    endpoint = check_endpoint(args.endpoint)
    package = check_package(Path(args.package))
    cron = check_cron(args.cron)
    with reporting_cluster_errors(endpoint):
        client = connect(endpoint, args.namespace)
        recurring_id, replaced = schedule(client, package, name=args.name, cron=cron,
                                          pipeline_root=args.pipeline_root, experiment=args.experiment,
                                          namespace=args.namespace)
    print(f"scheduled {args.name!r} ({cron}; one run at a time, no catch-up) as recurring run {recurring_id}"
          + (f"; replaced {', '.join(replaced)}" if replaced else ""))
    return 0


COMMANDS = {"compile": compile_command, "submit": submit_command, "schedule": schedule_command}


def add_parsers(commands) -> None:
    """Registers `compile`, `submit` and `schedule` on the command line's subparsers."""
    add_compile_parser(commands)
    add_client_parsers(commands)
