"""Runs the pipeline on this machine: BeamDagRunner, a SQLite ML Metadata store, in-process Beam."""

import sys
import time

from tfx.orchestration import metadata
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner, PipelineNodeAsDoFn

# Every Beam job of every component in this process: no worker processes to start (each would import
# TensorFlow again, about 25 s here), and a named runner, so Beam never tries to download another one.
IN_PROCESS_BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1")


class _TimedNodeDoFn(PipelineNodeAsDoFn):
    """Runs one pipeline node as BeamDagRunner does, and reports its start, end and elapsed time."""

    def _run_node(self) -> None:
        print(f"[start]  {self._node_id}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            super()._run_node()
        except BaseException:
            print(f"[failed] {self._node_id} after {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
            raise
        print(f"[done]   {self._node_id} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


class TimedBeamDagRunner(BeamDagRunner):
    _PIPELINE_NODE_DO_FN_CLS = _TimedNodeDoFn


def metadata_config(path: str):
    """The embedded SQLite ML Metadata store at `path` (created on first use)."""
    return metadata.sqlite_metadata_connection_config(path)


def run(pipeline) -> None:
    """Runs every node of `pipeline`; raises the first node's failure."""
    TimedBeamDagRunner().run(pipeline)
