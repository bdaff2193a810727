"""Runs the pipeline on this machine: BeamDagRunner, a SQLite ML Metadata store, in-process Beam (with worker
processes for the ExampleGen and the Evaluator of large input)."""

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Sequence, Union

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner, PipelineNodeAsDoFn

# Every Beam job of every component in this process: no worker processes to start (each would import
# TensorFlow again, about 25 s here), and a named runner, so Beam never tries to download another one.
IN_PROCESS_BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")

# From this much input on, the ExampleGen and the Evaluator run in one worker process per core. Both spend their
# time in per-row Python (parsing CSV rows into tf.Examples; TFMA's metric combiners, once per example, slice and
# head), which one process runs on one core. Each worker imports TensorFlow again (tens of seconds), which smaller
# data does not earn back (BENCHMARKS.md, "Worker processes for large data"). The ExampleGen's workers also write
# one file per worker, which the Evaluator's need: a gzipped TFRecord file is read whole by one worker.
WORKER_PROCESSES_FROM_BYTES = 32 * 2**20
# Each worker holds TensorFlow and the model (about 1 GiB here): more than this many would cost memory for cores
# the runner's own process and the other workers already contend for.
MAX_WORKERS = 4


def worker_count() -> int:
    """The cores this process may run on, at most MAX_WORKERS."""
    return min(len(os.sched_getaffinity(0)), MAX_WORKERS)


def worker_beam_args(workers: int) -> dict[str, tuple[str, ...]]:
    """Beam options added to IN_PROCESS_BEAM_ARGS, by component role, for `workers` worker processes of the
    ExampleGen and the Evaluator (none below 2)."""
    if workers < 2:
        return {}
    return dict.fromkeys(("ExampleGen", "Evaluator"),
                         ("--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"))


def beam_args_by_input_size(input_bytes: int, workers: int) -> dict[str, tuple[str, ...]]:
    """`worker_beam_args(workers)` from WORKER_PROCESSES_FROM_BYTES of input on; none for less."""
    return worker_beam_args(workers) if input_bytes >= WORKER_PROCESSES_FROM_BYTES else {}


def beam_settings(beam_args: Sequence[str], beam_workers: Union[str, int],
                  input_bytes: int) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The pipeline's Beam options and the options added per component role (`create_pipeline`'s two arguments).

    Args:
      beam_args: the user's Beam options (`--beam-arg`); when given, they replace the whole choice.
      beam_workers: worker processes of the ExampleGen and the Evaluator; "auto": one per core from
        WORKER_PROCESSES_FROM_BYTES of input on.
      input_bytes: the size of the input files.
    """
    if beam_args:
        return tuple(beam_args), {}
    if beam_workers == "auto":
        return IN_PROCESS_BEAM_ARGS, beam_args_by_input_size(input_bytes, worker_count())
    return IN_PROCESS_BEAM_ARGS, worker_beam_args(int(beam_workers))


def node_was_cached(store, pipeline_name: str, node_id: str, run_id: str) -> bool:
    """Whether the node's execution in the pipeline run `run_id` reused an earlier one's outputs."""
    node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if node is None or run is None:
        return False
    in_run = {e.id for e in store.get_executions_by_context(run.id)}
    states = [e.last_known_state for e in store.get_executions_by_context(node.id) if e.id in in_run]
    return metadata_store_pb2.Execution.CACHED in states


class _TimedNodeDoFn(PipelineNodeAsDoFn):
    """Runs one pipeline node as BeamDagRunner does, and reports its start, end and elapsed time (or that it
    reused an earlier run's outputs: "in 0.0 s" alone reads like a component that did nothing)."""

    def _run_node(self) -> None:
        print(f"[start]  {self._node_id}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            super()._run_node()
        except BaseException:
            print(f"[failed] {self._node_id} after {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
            raise
        cached = " (cached)" if self._was_cached() else ""
        print(f"[done]   {self._node_id} in {time.monotonic() - started:.1f} s{cached}", file=sys.stderr, flush=True)

    def _was_cached(self) -> bool:
        run_id = self._pipeline_runtime_spec.pipeline_run_id.field_value.string_value
        with metadata.Metadata(self._mlmd_connection_config) as m:
            return node_was_cached(m.store, self._pipeline_info.id, self._node_id, run_id)


class TimedBeamDagRunner(BeamDagRunner):
    _PIPELINE_NODE_DO_FN_CLS = _TimedNodeDoFn


def content_snapshot(content: bytes, folder: Path, name: str) -> Path:
    """`content` written once to `<folder>/<hash of content>/<name>`: a path that changes exactly when the content
    does, for components whose cache key holds a file's path, not its text (an edited file would otherwise come
    from the cache and never be checked). Each version a run read is kept."""
    snapshot = folder / hashlib.sha256(content).hexdigest()[:16] / name
    if not snapshot.exists():
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        partial = snapshot.with_suffix(".partial")
        partial.write_bytes(content)
        partial.replace(snapshot)
    return snapshot


def schema_snapshot(schema: Path, workdir: Path) -> Path:
    """The curated schema's copy under `<workdir>/schemas/<hash of its text>/`, the path ImportSchemaGen reads."""
    return content_snapshot(schema.read_bytes(), workdir / "schemas", "schema.pbtxt")


def serving_statistics_snapshot(statistics, workdir: Path) -> Path:
    """The serving statistics (a DatasetFeatureStatisticsList, read in whichever form the user gave) as text under
    `<workdir>/serving_statistics/<hash>/`, the path SchemaGate reads; an edited file is compared again."""
    from google.protobuf import text_format  # noqa: PLC0415

    return content_snapshot(text_format.MessageToString(statistics).encode(), workdir / "serving_statistics",
                            "stats.pbtxt")


def metadata_config(path: str):
    """The embedded SQLite ML Metadata store at `path` (created on first use)."""
    return metadata.sqlite_metadata_connection_config(path)


def run(pipeline) -> None:
    """Runs every node of `pipeline`; raises the first node's failure."""
    TimedBeamDagRunner().run(pipeline)
