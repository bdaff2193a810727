"""What the components record in ML Metadata that the layers above read back, and the readers of those records.

The Pusher writes these keys and the gate's stop phrase; the resolvers, the retrain decision, the runs list and
the report read them. Only ML Metadata's client is imported (no TensorFlow), and only where a store is read.
"""

import json
from typing import Optional

# Custom properties of the Pusher's PushedModel artifact, beside TFX's own (pushed, pushed_version, ...).
ALREADY_SERVING_KEY = "already_serving_version"   # the version folder that already held this very model
ROLLED_BACK_KEY = "rolled_back_version"           # the folder this very model was rolled back into
EVAL_METRICS_KEY = "eval_metrics"                 # JSON: the candidate's overall metrics, {head: {metric: value}}

# The phrase of SchemaGate's errors: the data stopped the run, an outcome the command reports itself (RUN STOPPED,
# exit 3) with the gate's whole message, and the runs list marks as "stopped by the data".
STOPS_BEFORE_TRANSFORM = "the run stops before Transform"


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


def candidate_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """The candidate model's metrics on the whole eval split, from TFMA's output: `{head: {metric: value}}`."""
    import tensorflow_model_analysis as tfma  # noqa: PLC0415 - heavy; only where metrics are read

    values: dict[str, dict[str, float]] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or key.model_name not in ("", tfma.CANDIDATE_KEY):
                continue
            if kv.value.HasField("double_value"):
                values.setdefault(key.output_name, {})[key.name] = kv.value.double_value.value
    return values
