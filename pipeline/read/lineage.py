"""The read side's ML Metadata records of runs: why a run failed, its provenance, the span its drift check
compared with. No TensorFlow, no TFMA: the runs list and `retrain` read them in about a second."""

import json
from typing import Optional

from components.records import examples_spans, node_id

# The custom property in which TFX keeps an execution's result, its error message included (the private
# `execution_lib._EXECUTION_RESULT`, whose module imports TensorFlow); TFX sets it only for executors that
# report a failure through their ExecutorOutput, not for one that raises, as every component here does.
EXECUTION_RESULT_KEY = "__execution_result__"


def drift_reference_span(store, run) -> Optional[int]:
    """The span whose statistics the SchemaGate of pipeline run `run` compared the new span with (drift), or None
    when it compared with none."""
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    gates = [e.id for e in store.get_executions_by_context(run.id) if node_id(store, e) == "SchemaGate"]
    previous = [event.artifact_id for event in store.get_events_by_execution_ids(gates)
                if event.type == metadata_store_pb2.Event.INPUT and event.path.steps
                and event.path.steps[0].key == "previous_statistics"]
    return examples_spans(store, previous[-1:]).get(previous[-1]) if previous else None


def pipeline_names(store) -> list[str]:
    """The names of the pipelines whose runs the store holds."""
    return sorted(c.name for c in store.get_contexts_by_type("pipeline"))


def failure_message(execution) -> Optional[str]:
    """The error message recorded with a failed execution, None if none was.

    Read from the JSON of TFX's ExecutionResult (`json_format.MessageToJson`, camel-case keys) without TFX's
    proto class, whose package imports TensorFlow: the runs list reads it.
    """
    value = execution.custom_properties.get(EXECUTION_RESULT_KEY)
    if value is None or not value.string_value:
        return None
    try:
        return json.loads(value.string_value).get("resultMessage") or None
    except (ValueError, AttributeError):
        return None


def record_failure_message(store, run, message: str) -> list[str]:
    """Records `message` with every failed execution of the pipeline run `run` (a `pipeline_run` context) that
    has none yet, so that `report` can say later why the run stopped; returns those executions' nodes.

    Only for a run whose process caught the failure: an execution still NEW or RUNNING then failed before TFX
    could record an outcome (in ExampleGen's driver, say, on a file it cannot read), and is marked FAILED too;
    left as it is, it would read as a run killed during that component.
    """
    from google.protobuf import json_format  # noqa: PLC0415
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415
    from tfx.proto.orchestration import execution_result_pb2  # noqa: PLC0415

    state = metadata_store_pb2.Execution
    recorded = []
    for execution in store.get_executions_by_context(run.id):
        if execution.last_known_state in (state.NEW, state.RUNNING):
            execution.last_known_state = state.FAILED
        if execution.last_known_state == state.FAILED and not failure_message(execution):
            result = execution_result_pb2.ExecutionResult(code=1, result_message=message)
            execution.custom_properties[EXECUTION_RESULT_KEY].string_value = json_format.MessageToJson(result)
            store.put_executions([execution])
            recorded.append(node_id(store, execution))
    return recorded


# What `runs` shows of a run's provenance; the Pusher's record holds them, and a stopped run's context does
# (with the span the command found, for a run that stopped before ExampleGen recorded it).
RUN_PROVENANCE_KEYS = ("heads_spec_fingerprint", "git_commit", "span")


def record_run_provenance(store, run, provenance: dict) -> None:
    """Records the spec hash and git commit of `provenance` on the pipeline run `run` (a `pipeline_run`
    context), for a run that stopped before its Pusher recorded them."""
    for key in RUN_PROVENANCE_KEYS:
        if key in provenance:
            run.custom_properties[key].string_value = str(provenance[key])
    store.put_contexts([run])


def run_provenance(run) -> dict:
    """What `record_run_provenance` recorded on a pipeline run's context ({} when nothing was)."""
    return {key: run.custom_properties[key].string_value for key in RUN_PROVENANCE_KEYS
            if key in run.custom_properties}
