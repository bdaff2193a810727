"""Command line: `python -m pipeline run --data FILE --heads HEADS.yaml`.

Only argparse, YAML and the spec module load before a command needs more, so `--help` and spec errors answer at
once; TensorFlow and TFX load when a run starts.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from components import records
from components.spec import SpecError, check_classes, check_columns, load_spec
from pipeline import kubeflow_commands, logs
from pipeline.data import example_gen_fingerprint, hidden_files, resolve_data, span_token, spans_on_disk
from pipeline.kfp_client import ClusterError
from pipeline.preflight import DataError, check_csv_files, check_tfrecord_files, read_statistics
from pipeline.retrain import (
    PipelineBusyError,
    finished_span_runs,
    run_on_span,
    unread_spans,
    workdir_busy,
    workdir_lock,
)

EXIT_PUSHED = 0
EXIT_FAILED = 1          # a component failed for another reason
EXIT_BAD_CONFIG = 2      # the heads spec, schema or a setting is wrong: nothing ran
EXIT_DATA_REJECTED = 3   # the data broke the schema: the run stopped before Transform
EXIT_NOT_BLESSED = 4     # the model missed a threshold: nothing pushed
EXIT_BUSY = 5            # another run of the same pipeline (workdir) is in progress: nothing done
EXIT_INTERRUPTED = 130   # Ctrl-C (SIGINT) during a component, as shells report a process SIGINT stopped

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Multi-head TFX pipeline: records and a heads spec in, a served model out.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline locally (BeamDagRunner, SQLite ML Metadata)",
                              description="Validate, transform, train, evaluate and (if every head passes) push.")
    add_run_arguments(run)
    retrain = commands.add_parser(
        "retrain", help="run the pipeline on the newest data span, if it is new (for cron or a systemd timer)",
        description="Like `run` on --data DIR/span-{SPAN}/*.csv: trains on the newest span only, unless a finished "
                    "run already read that span (then it does nothing and says so, exit 0). One run per workdir "
                    "at a time: a second exits at once (exit 5).")
    add_run_arguments(retrain)
    runs = commands.add_parser("runs", help="list past runs from ML Metadata",
                               description="When, data span, each head's thresholded metric, blessed, pushed "
                                           "version and provenance of every run in a workdir.")
    runs.add_argument("--workdir", required=True, help="the workdir of `run`")
    report = commands.add_parser("report", help="re-create the report of a past run from ML Metadata",
                                 description="Writes <workdir>/reports/<run id>/report.html and its plots.")
    report.add_argument("--workdir", required=True, help="the workdir of `run`")
    report.add_argument("--run", help="the run id as `runs` lists it, or its number there (1: the oldest); "
                                      "default: the newest")
    kubeflow_commands.add_parsers(commands)
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags `run` and `retrain` share."""
    parser.add_argument("--data", required=True,
                        help="a CSV or TFRecord (tf.Example) file, or a folder of them; a path holding {SPAN} "
                             "(quoted: 'DIR/span-{SPAN}/*.csv') names spans, of which the newest is read")
    parser.add_argument("--heads", required=True, help="heads spec YAML (see schemas/penguins/heads.yaml)")
    parser.add_argument("--schema", help="curated schema.pbtxt (default: schema.pbtxt beside the heads spec if "
                                         "there is one; otherwise SchemaGen infers one from the data)")
    parser.add_argument("--format", choices=("csv", "tfrecord"), help="input format (default: from the file suffix)")
    parser.add_argument("--workdir", help="folder for artifacts, ML Metadata and the serving directory "
                                          "(default: runs/<spec name>)")
    parser.add_argument("--serving-dir", help="TensorFlow Serving base folder (default: <workdir>/serving)")
    parser.add_argument("--serving-stats", help="TFDV statistics of the serving data, for the spec's skew bounds: "
                                                "as tfdv.generate_statistics_from_csv(output_path=...) writes them "
                                                "(TFRecord), as text (tfdv.write_stats_text) or a binary proto")
    parser.add_argument("--keep-versions", type=int, metavar="N",
                        help="after a push, delete the oldest versions so that N stay (default: keep all)")
    parser.add_argument("--no-cache", action="store_true", help="re-execute every component")
    parser.add_argument("--beam-arg", action="append", dest="beam_args", metavar="ARG",
                        help="a Beam option for the components' Beam jobs, repeatable (default: in-process, "
                             "--runner=DirectRunner --direct_running_mode=in_memory --direct_num_workers=1; "
                             "see --beam-workers)")
    parser.add_argument("--beam-workers", default="auto", type=_beam_workers, metavar="auto|N",
                        help="worker processes of the ExampleGen and the Evaluator (the ExampleGen's write one "
                             "file each, so the Evaluator's each read their own); 1 keeps every component in one "
                             "process. auto (default): one per core, up to 4, from 32 MiB of input on, 1 below")


def _beam_workers(value: str):
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is neither auto nor a whole number of at least 1")
    return int(value)


def read_schema(path: Path):
    """The TFDV schema at `path` (text format); SpecError naming the file if it cannot be read."""
    from google.protobuf import text_format  # noqa: PLC0415
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    try:
        return text_format.Parse(path.read_text(), schema_pb2.Schema())
    except (OSError, text_format.ParseError) as e:
        raise SpecError(f"{path}: not a readable schema.pbtxt: {e}") from None




def run_command(args: argparse.Namespace, retrain: bool = False) -> int:
    """`run`, or with `retrain` the same on the newest span only when no finished run has read it yet."""
    started = time.monotonic()
    spec_path = Path(args.heads)
    spec = load_spec(spec_path)
    schema = Path(args.schema) if args.schema else None
    if schema is None and (spec_path.parent / "schema.pbtxt").exists():
        schema = spec_path.parent / "schema.pbtxt"
    if schema is not None and not schema.exists():
        raise SpecError(f"--schema: {schema} does not exist")
    if schema is not None:
        schema_proto = read_schema(schema)
        try:
            check_columns(spec, [f.name for f in schema_proto.feature], f"schema {schema}")
            check_classes(spec, schema_proto, f"schema {schema}")
        except SpecError as e:
            raise SpecError(f"{spec_path}: {e}") from None
    if args.beam_args and args.beam_workers != "auto":
        raise SpecError("--beam-workers and --beam-arg: choose one (--beam-arg sets every component's Beam "
                        "options itself)")
    if args.keep_versions is not None and args.keep_versions < 1:
        raise SpecError(f"--keep-versions: must be at least 1 (the served version stays), got {args.keep_versions}")
    if args.serving_stats and not Path(args.serving_stats).is_file():
        raise SpecError(f"--serving-stats: {args.serving_stats} is not a file")
    serving_statistics = read_statistics(Path(args.serving_stats)) if args.serving_stats else None
    if args.serving_dir:
        check_serving_dir(Path(args.serving_dir))
    data, files = resolve_data(Path(args.data), args.format)
    if retrain and data.span is None:
        raise SpecError(f"--data: {args.data}: retrain reads spans; name them with {{SPAN}}, "
                        f"e.g. 'DIR/span-{{SPAN}}/*.csv'")
    workdir = Path(args.workdir or Path("runs") / spec.name).resolve()
    with workdir_lock(workdir):
        if (workdir / "metadata.sqlite").exists():
            check_one_pipeline_per_workdir(records.read_only_store(workdir / "metadata.sqlite"), spec.name, workdir,
                                           spec_path)
        if retrain:
            span_runs = finished_span_runs(workdir / "metadata.sqlite")
            earlier = run_on_span(span_runs, data.span)
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(earlier.started)) if earlier else ""
            if earlier is not None and earlier.fingerprint in (None, example_gen_fingerprint(files)):
                print(f"no new span: the newest, span {data.span} of {data.description.rsplit(' (', 1)[0]}, was "
                      f"already read by run {earlier.run_id} ({when}); nothing to do")
                print_unread_spans(span_runs, data)
                return EXIT_PUSHED
            if earlier is not None:
                print(f"span {data.span} changed since run {earlier.run_id} read it ({when}): its files' number, size "
                      f"or modification times differ; retraining on it", flush=True)
            else:
                print(f"new span {data.span}: retraining on it", flush=True)
            print_unread_spans(span_runs, data)
        hidden = hidden_files(data.pattern, files) if data.span is not None else []
        if hidden:
            raise DataError(f"{hidden[0]}: a hidden file or marker in span {data.span}, which ExampleGen would read "
                            f"as data (the pattern's `*` matches names starting with . or _): move it out")
        if data.format == "csv":
            check_csv_files(files, spec)
        else:
            check_tfrecord_files(files)
        return run_pipeline(args, spec, spec_path, schema, data, workdir, started,
                            input_bytes=sum(f.stat().st_size for f in files), serving_statistics=serving_statistics)


def run_pipeline(args: argparse.Namespace, spec, spec_path: Path, schema: Optional[Path], data, workdir: Path,
                 started: float, input_bytes: int, serving_statistics=None) -> int:
    """Builds and runs the pipeline once its inputs are checked; prints and returns the outcome."""
    serving_dir = Path(args.serving_dir).resolve() if args.serving_dir else workdir / "serving"
    print(f"heads spec {spec_path} ({len(spec.heads)} heads: {', '.join(h.name for h in spec.heads)}), "
          f"data {data.description}, schema {schema or 'inferred by SchemaGen'}", flush=True)
    print(f"workdir {workdir}", flush=True)
    from ml_metadata.metadata_store import metadata_store  # noqa: PLC0415

    from components.serving_dir import served_model_uris  # noqa: PLC0415
    from pipeline import local_runner, report, results  # noqa: PLC0415
    from pipeline.eval_config import HeadsChangedError  # noqa: PLC0415
    from pipeline.pipeline import create_pipeline  # noqa: PLC0415

    metadata_path = workdir / "metadata.sqlite"
    workdir.mkdir(parents=True, exist_ok=True)
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(metadata_path)))
    provenance = {"heads_spec_fingerprint": spec.fingerprint(), "git_commit": project_git_commit(),
                  "training": spec.to_dict()["training"], "heads": [h.name for h in spec.heads]}
    beam_args, component_beam_args = local_runner.beam_settings(args.beam_args, args.beam_workers, input_bytes)
    print(f"Beam: {' '.join(beam_args)}"
          + "".join(f"; {role}: {' '.join(extra)}" for role, extra in component_beam_args.items())
          + f" (input {input_bytes / 2**20:.1f} MiB)", flush=True)
    try:
        pipeline = create_pipeline(
            name=spec.name, root=str(workdir / "artifacts"), data=data, spec=spec,
            schema_path=str(local_runner.schema_snapshot(schema.resolve(), workdir)) if schema else None,
            serving_dir=str(serving_dir),
            metadata_connection_config=local_runner.metadata_config(str(metadata_path)),
            beam_pipeline_args=beam_args, enable_cache=not args.no_cache,
            baseline_heads=results.latest_blessed_model_heads(store, served_model_uris(str(serving_dir))),
            provenance=provenance,
            serving_statistics=(str(local_runner.serving_statistics_snapshot(serving_statistics, workdir))
                                if serving_statistics is not None else None),
            component_beam_args=component_beam_args)
    except HeadsChangedError as e:
        raise SpecError(f"{spec_path}: {e}") from None
    print(f"imports and pipeline construction: {time.monotonic() - started:.1f} s", flush=True)
    run_started = time.time()
    try:
        local_runner.run(pipeline)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every failure is reported below, with its kind
        if was_interrupted(e):
            print("\nRUN INTERRUPTED (Ctrl-C): the component that was running did not finish; a push is whole or "
                  "absent. The same command again reuses every component that finished.", file=sys.stderr)
            return EXIT_INTERRUPTED
        mixed_types = mixed_feature_types(f"{e} {_root_message(e)}", data.description)
        rejected = _is_data_rejection(e) or mixed_types is not None
        message = mixed_types or _root_message(e)
        if "moved further from the previous span" in message:
            message += drift_reference_note(store)
        print(f"\nRUN STOPPED: {message}", file=sys.stderr)
        record_failure(store, run_started, message,
                       provenance if data.span is None else {**provenance, "span": data.span})
        if rejected:
            print("Nothing was transformed, trained or pushed.", file=sys.stderr)
        report.write_report_or_warn(store, workdir)   # a failed run's report shows how far it got
        return EXIT_DATA_REJECTED if rejected else EXIT_FAILED
    result = results.read_run_result(store, spec)
    print(f"\nfinished in {time.monotonic() - started:.1f} s\n")
    print(results.format_table(result))
    report.write_report_or_warn(store, workdir)
    if result.from_cache:
        print("\nnothing changed since an earlier run (same data, code and spec): every component's outputs came "
              "from the cache and nothing was pushed again" + cached_push_note(result.pushed_path, serving_dir))
        return EXIT_PUSHED if result.blessed else EXIT_NOT_BLESSED
    if result.pushed_path:
        print(f"\nmodel blessed and pushed to {result.pushed_path}")
        if args.keep_versions:
            from pipeline.serving_versions import prune_versions  # noqa: PLC0415
            deleted = prune_versions(str(serving_dir), args.keep_versions)
            if deleted:
                kept = "the newest version" if args.keep_versions == 1 else f"the newest {args.keep_versions} versions"
                print(f"kept {kept}; deleted {', '.join(map(str, deleted))}")
        return EXIT_PUSHED
    if result.already_serving:
        print("\n" + already_serving_message(result.already_serving, serving_dir))
        return EXIT_PUSHED
    if result.rolled_back:
        print(f"\nnot pushed again: this model was rolled back (kept in {result.rolled_back}); to train a new "
              f"one, change the data, the code or what the Trainer reads (the heads, losses or training "
              f"settings; a threshold alone re-runs only the Evaluator onwards)")
        return EXIT_PUSHED
    if result.evaluation_uri is None:
        print("\nNOT PUSHED: the run produced no evaluation.", file=sys.stderr)
        return EXIT_FAILED
    print("\nNOT PUSHED: the model was not blessed. Failed thresholds:\n  "
          + "\n  ".join(results.describe_failures(result.evaluation_uri)), file=sys.stderr)
    return EXIT_NOT_BLESSED


def runs_command(args: argparse.Namespace) -> int:
    metadata_path = Path(args.workdir) / "metadata.sqlite"
    if not metadata_path.exists():
        raise SpecError(f"--workdir: {args.workdir} holds no ML Metadata store (metadata.sqlite)")
    from pipeline import results  # noqa: PLC0415 - neither imports TensorFlow

    store = records.read_only_store(metadata_path)
    print(results.format_runs(results.run_summaries(store), in_progress=workdir_busy(Path(args.workdir))))
    return 0


def project_git_commit() -> str:
    """The project's git commit, `+dirty` when tracked files differ from it; `unknown` outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def already_serving_message(version_dir: str, serving_dir: Path) -> str:
    """What to say when the Pusher found the model already in the serving directory: TensorFlow Serving serves
    the highest version, so an older copy (the spec went back to an earlier model's) is there but not serving."""
    from components.serving_dir import serving_versions  # noqa: PLC0415

    newest = max(serving_versions(str(serving_dir)), default=None)
    if newest is None or Path(version_dir).name == str(newest):
        return f"nothing new to push: this model is already serving as {version_dir}"
    return (f"not pushed: this model is already in the serving directory as {version_dir}, but the newer version "
            f"{newest} is the one serving; to serve this model again, take the newer versions out with "
            f"`python -m pipeline rollback --serving-dir {serving_dir}`")


def cached_push_note(pushed_path: Optional[str], serving_dir: Path) -> str:
    """Where the model of a run that came wholly from the cache is now: the version its first run pushed it to,
    unless that version was rolled back or deleted since."""
    from components.serving_dir import ROLLED_BACK_DIR, rolled_back_versions  # noqa: PLC0415

    if not pushed_path:
        return ""
    if Path(pushed_path).is_dir():
        return f"; that run pushed this model to {pushed_path}"
    version = Path(pushed_path).name
    aside = [name for name in rolled_back_versions(str(serving_dir)) if name.split(".")[0] == version]
    if aside:
        return (f"; that run pushed this model to {pushed_path}, and it was rolled back since (kept in "
                f"{serving_dir / ROLLED_BACK_DIR / aside[-1]}): to train a new one, change the data, the code or "
                f"what the Trainer reads")
    return f"; that run pushed this model to {pushed_path}, which the serving directory no longer holds"


def check_serving_dir(path: Path) -> None:
    """Creates the serving directory if need be, so that a path the Pusher could not write to stops the command
    before anything runs, not after training.

    Raises:
      SpecError: the path is a file, or cannot be created or written to.
    """
    if path.exists() and not path.is_dir():
        raise SpecError(f"--serving-dir: {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecError(f"--serving-dir: cannot create {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SpecError(f"--serving-dir: {path} is not writable")


def check_one_pipeline_per_workdir(store, name: str, workdir: Path, spec_path: Path) -> None:
    """Refuses a spec whose pipeline name differs from the one whose runs `workdir` holds: ML Metadata keeps each
    name's runs apart, so its model would be judged against no baseline and pushed over the other's versions.

    Raises:
      SpecError: naming both names and the two ways out.
    """
    from pipeline.lineage import pipeline_names  # noqa: PLC0415

    others = [n for n in pipeline_names(store) if n != name]
    if others:
        raise SpecError(f"{spec_path}: name: the spec names pipeline {name!r}, but --workdir {workdir} holds the "
                        f"runs and serving versions of {', '.join(repr(n) for n in others)}; one workdir serves one "
                        f"pipeline: set name: {others[0]} again, or pass another --workdir")


def print_unread_spans(span_runs, data) -> None:
    """Names the spans on disk that `retrain` passed over and never will read (late, or stopped by the checks);
    `span_runs`: the workdir's finished runs (`finished_span_runs`)."""
    unread = unread_spans(span_runs, spans_on_disk(Path(data.input_base), data.pattern), data.span)
    if unread:
        print(f"note: span(s) {', '.join(map(str, unread))} on disk were never trained on (late, or stopped by the "
              f"checks); retrain reads the newest span only" + "".join(
                  f": `run --data {path}` trains on one" for path in [one_span_path(data, unread[0])] if path),
              flush=True)


def one_span_path(data, span: int) -> Optional[Path]:
    """What `run --data` reads as span `span` alone: its file, or its folder (`run` takes no wildcard); None when
    the pattern's wildcard comes before the span's own folder."""
    token = span_token(data.pattern)
    parts = data.pattern.replace(token.group(0), str(span).zfill(int(token.group("width") or 0))).split("/")
    wild = next((i for i, part in enumerate(parts) if "*" in part), None)
    if wild == 0:
        return None
    return Path(data.input_base, *parts[:wild])


def drift_reference_note(store) -> str:
    """A line naming the span the newest run's drift check compared with: the newest earlier span that passed
    the gate, which is not the one before when a span between was stopped."""
    from pipeline import lineage, results  # noqa: PLC0415

    runs = results.pipeline_runs(store)
    span = lineage.drift_reference_span(store, runs[-1]) if runs else None
    return "" if span is None else (f"\n  (the previous span compared with: span {span}, the newest earlier span "
                                    f"whose data passed these checks)")


def record_failure(store, run_started: float, message: str, provenance: dict) -> None:
    """Keeps `message` with the failed component's execution in ML Metadata, for `report` to show later, and the
    spec hash, git commit and span with the run (the Pusher and ExampleGen record them for runs that reach them),
    for `runs`; only in a
    pipeline run that began after `run_started` (Unix seconds): a failure before the first component has none."""
    from pipeline import lineage, results  # noqa: PLC0415

    runs = results.pipeline_runs(store)
    if runs and runs[-1].create_time_since_epoch / 1000 >= run_started:
        lineage.record_failure_message(store, runs[-1], message)
        lineage.record_run_provenance(store, runs[-1], provenance)


def _is_data_rejection(error: BaseException) -> bool:
    """Whether a run stopped at the SchemaGate (schema anomalies, drift or skew): the data's fault.

    Beam re-raises a component's error wrapped in its own, so the gate's message is what identifies it.
    """
    return records.STOPS_BEFORE_TRANSFORM in f"{error} {_root_message(error)}"


_MIXED_TYPES = re.compile(r'Feature had wrong type, expected (\w+)_list, found (\w+)_list for feature "([^"]+)"')


def mixed_feature_types(error_text: str, data_description: str) -> Optional[str]:
    """The message for tf.Examples that give one feature different types (float in some, int64 in others), which
    the stack's decoder reports naming the feature but not as the data's fault; None for any other error."""
    match = _MIXED_TYPES.search(error_text)
    if match is None:
        return None
    first, other, column = match.groups()
    return (f"{data_description}: column {column!r} holds {other} values in some examples and {first} values in "
            f"others; a feature has one type in every example (write it as one type, e.g. every number as float)")


def _exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it was raised from, down to the innermost (Beam wraps a component's error in its own)."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def was_interrupted(error: BaseException) -> bool:
    """Whether the run stopped for Ctrl-C: Beam re-raises a KeyboardInterrupt in a component wrapped in its own."""
    return any(isinstance(e, KeyboardInterrupt) for e in _exception_chain(error))


def _root_message(error: BaseException) -> str:
    """The innermost message of an exception chain."""
    *_, root = _exception_chain(error)
    return f"{type(root).__name__}: {root}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logs.quiet_harmless_logs()
    try:
        if args.command in ("run", "retrain"):
            return run_command(args, retrain=args.command == "retrain")
        if args.command == "runs":
            return runs_command(args)
        if args.command == "report":
            from pipeline.report import report_command  # noqa: PLC0415
            return report_command(Path(args.workdir), args.run)
        if args.command in kubeflow_commands.COMMANDS:
            return kubeflow_commands.COMMANDS[args.command](args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except PipelineBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    except DataError as e:
        print(f"RUN STOPPED before any component: {e}\nNothing was transformed, trained or pushed.", file=sys.stderr)
        return EXIT_DATA_REJECTED
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED
