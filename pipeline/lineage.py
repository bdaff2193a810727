"""Small readers of ML Metadata records that need nothing but the records (no TensorFlow, no TFMA), so the
light paths (`retrain` with nothing to do) and the heavy ones (results, resolvers) share them."""

import json
from typing import Optional

# The custom property in which TFX keeps an execution's result, its error message included (the private
# `execution_lib._EXECUTION_RESULT`, whose module imports TensorFlow); TFX sets it only for executors that
# report a failure through their ExecutorOutput, not for one that raises, as every component here does.
EXECUTION_RESULT_KEY = "__execution_result__"

# Custom properties of the Pusher's PushedModel artifact, beside TFX's own (pushed, pushed_version, ...).
ALREADY_SERVING_KEY = "already_serving_version"   # the version folder that already held this very model
ROLLED_BACK_KEY = "rolled_back_version"           # the folder this very model was rolled back into
EVAL_METRICS_KEY = "eval_metrics"                 # JSON: the candidate's overall metrics, {head: {metric: value}}


def read_only_store(metadata_path):
    """The SQLite ML Metadata store at `metadata_path` (which exists), opened read-only: for readers of past runs,
    which need neither TFX nor write access."""
    from ml_metadata.metadata_store import metadata_store  # noqa: PLC0415
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def node_id(store, execution) -> str:
    """The pipeline node (component id) an execution belongs to."""
    for context in store.get_contexts_by_execution(execution.id):
        if context.type == "node":
            return context.name.split(".", 1)[-1]
    return str(execution.id)


def examples_span(artifact) -> Optional[int]:
    """The span of an Examples artifact (an ML Metadata record), None when it has none.

    TFX 1.16's ExampleGen records the span as a custom property, not as the type's `span` property.
    """
    value = artifact.custom_properties.get("span") or artifact.properties.get("span")
    return value.int_value if value is not None else None


def examples_spans(store, statistics_ids: list[int]) -> dict[int, int]:
    """`{statistics id: span}` of StatisticsGen's statistics among `statistics_ids`: the span of the Examples
    each was computed from (ML Metadata lineage).

    The statistics' own `span` property cannot be used: TFX 1.16's ExampleGen records the span as a custom
    property, and StatisticsGen copies the (unset) property, so every statistics artifact says span 0.
    """
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    producer = {e.artifact_id: e.execution_id for e in store.get_events_by_artifact_ids(statistics_ids)
                if e.type == metadata_store_pb2.Event.OUTPUT}
    # Transform's pre-transform statistics are ExampleStatistics too; only StatisticsGen's describe a split.
    executions = store.get_executions_by_id(sorted(set(producer.values())))
    type_names = {t.id: t.name for t in store.get_execution_types_by_id(sorted({e.type_id for e in executions}))}
    from_statistics_gen = {e.id for e in executions if type_names[e.type_id].endswith("StatisticsGen")}
    producer = {stats: execution for stats, execution in producer.items() if execution in from_statistics_gen}
    examples_of = {}
    for event in store.get_events_by_execution_ids(sorted(set(producer.values()))):
        if event.type == metadata_store_pb2.Event.INPUT and event.path.steps and event.path.steps[0].key == "examples":
            examples_of[event.execution_id] = event.artifact_id
    spans = {examples.id: examples_span(examples) or 0
             for examples in store.get_artifacts_by_id(sorted(set(examples_of.values())))}
    return {stats: spans[examples_of[execution]] for stats, execution in producer.items()
            if execution in examples_of and examples_of[execution] in spans}


def drift_reference_span(store, run) -> Optional[int]:
    """The span whose statistics the SchemaGate of pipeline run `run` compared the new span with (drift), or None
    when it compared with none."""
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    gates = [e.id for e in store.get_executions_by_context(run.id) if node_id(store, e) == "SchemaGate"]
    previous = [event.artifact_id for event in store.get_events_by_execution_ids(gates)
                if event.type == metadata_store_pb2.Event.INPUT and event.path.steps
                and event.path.steps[0].key == "previous_statistics"]
    return examples_spans(store, previous[-1:]).get(previous[-1]) if previous else None


def exec_property(execution, key: str) -> str:
    """A string execution property as TFX records it (a custom property of the execution); "" when absent."""
    for properties in (execution.custom_properties, execution.properties):
        if key in properties:
            return properties[key].string_value
    return ""


def json_property(execution, key: str) -> dict:
    """A JSON execution property (a component's custom_config, say) as a dict; {} when absent or unreadable."""
    text = exec_property(execution, key) if execution is not None else ""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def model_heads(store, model_id: int) -> Optional[list[str]]:
    """The heads of a Trainer's model, from the spec its Trainer execution was given; None if not recorded."""
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    events = [e for e in store.get_events_by_artifact_ids([model_id]) if e.type == metadata_store_pb2.Event.OUTPUT]
    if not events:
        return None
    (trainer,) = store.get_executions_by_id([events[0].execution_id])
    heads = json_property(trainer, "custom_config").get("heads_spec", {}).get("heads")
    return [h["name"] for h in heads] if heads else None


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
