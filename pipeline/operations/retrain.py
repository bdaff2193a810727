"""Retraining on new spans: one run at a time per workdir, and nothing to do when the newest span was done.

Only ML Metadata's client is imported here (no TensorFlow), so a cron job with nothing to do ends in seconds.
"""

import contextlib
import dataclasses
import fcntl
import os
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional

from components.records import examples_span, node_id, read_only_store

LOCK_FILE = "pipeline.lock"


class PipelineBusyError(RuntimeError):
    """Another run of the same pipeline (same workdir) holds the lock."""


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    """Holds `<workdir>/pipeline.lock` while the block runs; fails at once if another process holds it.

    An flock, not a file's existence: the kernel releases it when its holder dies, even by SIGKILL, so a
    crashed run never blocks the next one.

    Raises:
      PipelineBusyError: naming the holder's pid and start time, as it wrote them into the file.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK_FILE
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            raise PipelineBusyError(f"another run of this pipeline is in progress ({holder}; lock {path}); "
                                    f"this one exits without doing anything") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
        handle.flush()
        yield
    finally:
        handle.close()   # closing releases the lock


def workdir_busy(workdir: Path) -> bool:
    """Whether a run of `workdir` holds its lock now (tried, and let go at once, without waiting)."""
    path = workdir / LOCK_FILE
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


@dataclasses.dataclass(frozen=True)
class SpanRun:
    """A finished run (its Pusher ran) over one span."""

    run_id: str
    span: int
    started: float   # Unix seconds
    fingerprint: Optional[str] = None   # ExampleGen's input fingerprint of the span's files, as it read them


def finished_span_runs(metadata_path: Path) -> list[SpanRun]:
    """The runs in the store whose Pusher ran (pushed or not) and the span their ExampleGen read, oldest first.

    A run that failed or stopped (on bad data, say) does not count: its span may be tried again.
    """
    if not metadata_path.exists():
        return []
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    store = read_only_store(metadata_path)
    done = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    span_runs = []
    for run in store.get_contexts_by_type("pipeline_run"):
        executions = store.get_executions_by_context(run.id)
        nodes = {execution.id: node_id(store, execution) for execution in executions}
        if not any(nodes[e.id] == "Pusher" and e.last_known_state in done for e in executions):
            continue
        examples = _examples_read(store, [e for e in executions if nodes[e.id].endswith("ExampleGen")])
        if examples is not None:
            fingerprint = examples.custom_properties.get(INPUT_FINGERPRINT)
            span_runs.append(SpanRun(run_id=run.name, span=examples_span(examples),
                                     started=run.create_time_since_epoch / 1000,
                                     fingerprint=fingerprint.string_value if fingerprint is not None else None))
    return sorted(span_runs, key=lambda r: r.started)


# The custom property on which TFX's ExampleGen records the fingerprint of the input files it read.
INPUT_FINGERPRINT = "input_fingerprint"


def _examples_read(store, example_gen_executions: list):
    """The Examples artifact (with a span) that one of `example_gen_executions` wrote, or None."""
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    for execution in example_gen_executions:
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in store.get_artifacts_by_id([e.artifact_id for e in events]):
            if examples_span(artifact) is not None:
                return artifact
    return None


def unread_spans(span_runs: list[SpanRun], on_disk: Iterable[int], newest: int) -> list[int]:
    """Spans on disk that no finished run read, between the first span a run read and `newest`: they came late,
    filled a gap, or were stopped by the checks, and `retrain`, which reads the newest span, will not read them."""
    read = {r.span for r in span_runs}
    return sorted(s for s in on_disk if read and min(read) < s < newest and s not in read)


def run_on_span(span_runs: list[SpanRun], span: int) -> Optional[SpanRun]:
    """The newest of `span_runs` (`finished_span_runs`, oldest first) over `span`, None if it is new."""
    runs = [r for r in span_runs if r.span == span]
    return runs[-1] if runs else None
