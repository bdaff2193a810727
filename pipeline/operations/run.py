"""A local run, as `run` and `retrain` ask for it: the inputs checked before anything imports TensorFlow, the
retrain decision, then the pipeline built, run and its outcome read back, under the workdir's lock.

Nothing here prints or picks an exit code: the command line does, from the records these functions return.
Progress lines go through the `say` callback the caller passes.
"""

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

from components import records
from components.spec import HeadsSpec, SpecError, check_classes, check_columns, load_spec
from pipeline.definition.data import (
    DataSource,
    example_gen_fingerprint,
    hidden_files,
    resolve_data,
    span_token,
    spans_on_disk,
)
from pipeline.definition.provenance import provenance as model_provenance
from pipeline.operations.preflight import DataError, check_csv_files, check_tfrecord_files, read_statistics
from pipeline.operations.retrain import SpanRun, finished_span_runs, run_on_span, unread_spans

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """What the user asked for (the flags of `run` and `retrain`)."""

    data: Path
    heads: Path
    schema: Optional[Path] = None
    data_format: Optional[str] = None
    workdir: Optional[Path] = None
    serving_dir: Optional[Path] = None
    serving_stats: Optional[Path] = None
    keep_versions: Optional[int] = None
    no_cache: bool = False
    beam_args: Sequence[str] = ()
    beam_workers: Union[str, int] = "auto"
    retrain: bool = False


@dataclasses.dataclass(frozen=True)
class CheckedRun:
    """A request whose settings, spec and schema were checked, with what it resolved to."""

    request: RunRequest
    spec: HeadsSpec
    schema: Optional[Path]
    data: DataSource
    files: list[Path]
    workdir: Path
    serving_dir: Path
    serving_statistics: object = None   # a DatasetFeatureStatisticsList, when --serving-stats was given

    @property
    def metadata_path(self) -> Path:
        return self.workdir / "metadata.sqlite"


def read_schema(path: Path):
    """The TFDV schema at `path` (text format); SpecError naming the file if it cannot be read."""
    from google.protobuf import text_format  # noqa: PLC0415
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    try:
        return text_format.Parse(path.read_text(), schema_pb2.Schema())
    except (OSError, text_format.ParseError) as e:
        raise SpecError(f"{path}: not a readable schema.pbtxt: {e}") from None


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


def check_request(request: RunRequest) -> CheckedRun:
    """Checks every setting, the spec and the curated schema, and resolves the data; nothing is written.

    Raises:
      SpecError: naming the flag, file or field that is wrong.
    """
    spec = load_spec(request.heads)
    schema = request.schema
    if schema is None and (request.heads.parent / "schema.pbtxt").exists():
        schema = request.heads.parent / "schema.pbtxt"
    if schema is not None and not schema.exists():
        raise SpecError(f"--schema: {schema} does not exist")
    if schema is not None:
        schema_proto = read_schema(schema)
        try:
            check_columns(spec, [f.name for f in schema_proto.feature], f"schema {schema}")
            check_classes(spec, schema_proto, f"schema {schema}")
        except SpecError as e:
            raise SpecError(f"{request.heads}: {e}") from None
    if request.beam_args and request.beam_workers != "auto":
        raise SpecError("--beam-workers and --beam-arg: choose one (--beam-arg sets every component's Beam "
                        "options itself)")
    if request.keep_versions is not None and request.keep_versions < 1:
        raise SpecError(f"--keep-versions: must be at least 1 (the served version stays), got "
                        f"{request.keep_versions}")
    if request.serving_stats and not request.serving_stats.is_file():
        raise SpecError(f"--serving-stats: {request.serving_stats} is not a file")
    serving_statistics = read_statistics(request.serving_stats) if request.serving_stats else None
    if request.serving_dir:
        check_serving_dir(request.serving_dir)
    data, files = resolve_data(request.data, request.data_format)
    if request.retrain and data.span is None:
        raise SpecError(f"--data: {request.data}: retrain reads spans; name them with {{SPAN}}, "
                        f"e.g. 'DIR/span-{{SPAN}}/*.csv'")
    workdir = Path(request.workdir or Path("runs") / spec.name).resolve()
    serving_dir = request.serving_dir.resolve() if request.serving_dir else workdir / "serving"
    return CheckedRun(request=request, spec=spec, schema=schema, data=data, files=files, workdir=workdir,
                      serving_dir=serving_dir, serving_statistics=serving_statistics)


def check_one_pipeline_per_workdir(store, name: str, workdir: Path, spec_path: Path) -> None:
    """Refuses a spec whose pipeline name differs from the one whose runs `workdir` holds: ML Metadata keeps each
    name's runs apart, so its model would be judged against no baseline and pushed over the other's versions.

    Raises:
      SpecError: naming both names and the two ways out.
    """
    from pipeline.read.lineage import pipeline_names  # noqa: PLC0415

    others = [n for n in pipeline_names(store) if n != name]
    if others:
        raise SpecError(f"{spec_path}: name: the spec names pipeline {name!r}, but --workdir {workdir} holds the "
                        f"runs and serving versions of {', '.join(repr(n) for n in others)}; one workdir serves one "
                        f"pipeline: set name: {others[0]} again, or pass another --workdir")


def check_workdir(checked: CheckedRun) -> None:
    """Refuses a workdir that holds another pipeline's runs (`check_one_pipeline_per_workdir`)."""
    if checked.metadata_path.exists():
        check_one_pipeline_per_workdir(records.read_only_store(checked.metadata_path), checked.spec.name,
                                       checked.workdir, checked.request.heads)


@dataclasses.dataclass(frozen=True)
class RetrainDecision:
    """Whether `retrain` trains on the newest span, and what it knows of the spans on disk.

    Attributes:
      train: the newest span is new, or changed since a finished run read it.
      earlier: the newest finished run that read the newest span, if any.
      unread: spans on disk between the first read and the newest that no finished run read (late, or stopped
        by the checks): `retrain` will never read them.
      one_span_path: what `run --data` reads as the first unread span alone, None when no path names it.
    """

    train: bool
    earlier: Optional[SpanRun]
    unread: list[int]
    one_span_path: Optional[Path]


def one_span_path(data: DataSource, span: int) -> Optional[Path]:
    """What `run --data` reads as span `span` alone: its file, or its folder (`run` takes no wildcard); None when
    the pattern's wildcard comes before the span's own folder."""
    token = span_token(data.pattern)
    parts = data.pattern.replace(token.group(0), str(span).zfill(int(token.group("width") or 0))).split("/")
    wild = next((i for i, part in enumerate(parts) if "*" in part), None)
    if wild == 0:
        return None
    return Path(data.input_base, *parts[:wild])


def retrain_decision(checked: CheckedRun) -> RetrainDecision:
    """Whether the newest span needs a run: none finished on it, or its files changed since (ExampleGen's own
    fingerprint of them). Reads ML Metadata only: no TensorFlow."""
    span_runs = finished_span_runs(checked.metadata_path)
    earlier = run_on_span(span_runs, checked.data.span)
    unchanged = earlier is not None and earlier.fingerprint in (None, example_gen_fingerprint(checked.files))
    unread = unread_spans(span_runs, spans_on_disk(Path(checked.data.input_base), checked.data.pattern),
                          checked.data.span)
    return RetrainDecision(train=not unchanged, earlier=earlier, unread=unread,
                           one_span_path=one_span_path(checked.data, unread[0]) if unread else None)


def check_input_files(checked: CheckedRun) -> int:
    """The preflight of the input files, before any component; returns their size in bytes.

    Raises:
      DataError: naming the file, line or column that ExampleGen could not read as the spec needs.
    """
    data, files = checked.data, checked.files
    hidden = hidden_files(data.pattern, files) if data.span is not None else []
    if hidden:
        raise DataError(f"{hidden[0]}: a hidden file or marker in span {data.span}, which ExampleGen would read "
                        f"as data (the pattern's `*` matches names starting with . or _): move it out")
    if data.format == "csv":
        check_csv_files(files, checked.spec)
    else:
        check_tfrecord_files(files)
    return sum(f.stat().st_size for f in files)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a run ended.

    Attributes:
      kind: `finished` (every component ran or came from the cache; `result` says what it decided),
        `interrupted` (Ctrl-C), `rejected` (the data: the gate, or mixed feature types) or `failed`.
      message: for `rejected` and `failed`, why.
      result: for `finished`, the run's per-head results and push.
      seconds: the command's time so far.
      store: the run's ML Metadata store, for its report (`write_report`).
      workdir: the run's workdir.
    """

    kind: str
    message: str = ""
    result: object = None
    seconds: float = 0.0
    store: object = None
    workdir: Optional[Path] = None


def write_report(outcome: RunOutcome) -> None:
    """Writes the run's report (a failed run's shows how far it got); a report that fails is a warning only."""
    from pipeline.read import report  # noqa: PLC0415

    report.write_report_or_warn(outcome.store, outcome.workdir)


def execute(checked: CheckedRun, input_bytes: int, started: float, say: Say) -> RunOutcome:
    """Builds the pipeline, runs it, and reads back how it ended; a failure is recorded in ML Metadata with its
    message."""
    request, spec, workdir = checked.request, checked.spec, checked.workdir
    say(f"heads spec {request.heads} ({len(spec.heads)} heads: {', '.join(h.name for h in spec.heads)}), "
        f"data {checked.data.description}, schema {checked.schema or 'inferred by SchemaGen'}")
    say(f"workdir {workdir}")
    from ml_metadata.metadata_store import metadata_store  # noqa: PLC0415

    from components.serving_dir import served_model_uris  # noqa: PLC0415
    from pipeline.definition.eval_config import HeadsChangedError  # noqa: PLC0415
    from pipeline.definition.factory import create_pipeline  # noqa: PLC0415
    from pipeline.read import results  # noqa: PLC0415
    from pipeline.runners import local  # noqa: PLC0415

    workdir.mkdir(parents=True, exist_ok=True)
    store = metadata_store.MetadataStore(local.metadata_config(str(checked.metadata_path)))
    provenance = model_provenance(spec)
    beam_args, component_beam_args = local.beam_settings(request.beam_args, request.beam_workers, input_bytes)
    say(f"Beam: {' '.join(beam_args)}"
        + "".join(f"; {role}: {' '.join(extra)}" for role, extra in component_beam_args.items())
        + f" (input {input_bytes / 2**20:.1f} MiB)")
    serving_statistics = (str(local.serving_statistics_snapshot(checked.serving_statistics, workdir))
                          if checked.serving_statistics is not None else None)
    try:
        pipeline = create_pipeline(
            name=spec.name, root=str(workdir / "artifacts"), data=checked.data, spec=spec,
            schema_path=str(local.schema_snapshot(checked.schema.resolve(), workdir)) if checked.schema else None,
            serving_dir=str(checked.serving_dir),
            metadata_connection_config=local.metadata_config(str(checked.metadata_path)),
            beam_pipeline_args=beam_args, enable_cache=not request.no_cache,
            baseline_heads=results.latest_blessed_model_heads(store, served_model_uris(str(checked.serving_dir))),
            provenance=provenance, serving_statistics=serving_statistics, component_beam_args=component_beam_args)
    except HeadsChangedError as e:
        raise SpecError(f"{request.heads}: {e}") from None
    say(f"imports and pipeline construction: {time.monotonic() - started:.1f} s")
    run_started = time.time()
    try:
        local.run(pipeline)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every failure is classified below
        if was_interrupted(e):
            return RunOutcome("interrupted", seconds=time.monotonic() - started, store=store, workdir=workdir)
        mixed_types = mixed_feature_types(f"{e} {root_message(e)}", checked.data.description)
        rejected = is_data_rejection(e) or mixed_types is not None
        message = mixed_types or root_message(e)
        if "moved further from the previous span" in message:
            message += drift_reference_note(store)
        record_failure(store, run_started, message,
                       provenance if checked.data.span is None else {**provenance, "span": checked.data.span})
        return RunOutcome("rejected" if rejected else "failed", message=message, seconds=time.monotonic() - started,
                          store=store, workdir=workdir)
    return RunOutcome("finished", result=results.read_run_result(store, spec), seconds=time.monotonic() - started,
                      store=store, workdir=workdir)


def drift_reference_note(store) -> str:
    """A line naming the span the newest run's drift check compared with: the newest earlier span that passed
    the gate, which is not the one before when a span between was stopped."""
    from pipeline.read import lineage, results  # noqa: PLC0415

    runs = results.pipeline_runs(store)
    span = lineage.drift_reference_span(store, runs[-1]) if runs else None
    return "" if span is None else (f"\n  (the previous span compared with: span {span}, the newest earlier span "
                                    f"whose data passed these checks)")


def record_failure(store, run_started: float, message: str, provenance: dict) -> None:
    """Keeps `message` with the failed component's execution in ML Metadata, for `report` to show later, and the
    spec hash, git commit and span with the run (the Pusher and ExampleGen record them for runs that reach them),
    for `runs`; only in a pipeline run that began after `run_started` (Unix seconds): a failure before the first
    component has none."""
    from pipeline.read import lineage, results  # noqa: PLC0415

    runs = results.pipeline_runs(store)
    if runs and runs[-1].create_time_since_epoch / 1000 >= run_started:
        lineage.record_failure_message(store, runs[-1], message)
        lineage.record_run_provenance(store, runs[-1], provenance)


def is_data_rejection(error: BaseException) -> bool:
    """Whether a run stopped at the SchemaGate (schema anomalies, drift or skew): the data's fault.

    Beam re-raises a component's error wrapped in its own, so the gate's message is what identifies it.
    """
    return records.STOPS_BEFORE_TRANSFORM in f"{error} {root_message(error)}"


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


def root_message(error: BaseException) -> str:
    """The innermost message of an exception chain."""
    *_, root = _exception_chain(error)
    return f"{type(root).__name__}: {root}"
