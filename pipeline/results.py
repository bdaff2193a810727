"""What a run produced, read back from ML Metadata and the Evaluator's artifacts: per-head results, push."""

import dataclasses
from typing import Optional

import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.pusher import ALREADY_SERVING_KEY
from pipeline.config import HeadsSpec
from pipeline.eval_config import tfma_metric_name


@dataclasses.dataclass(frozen=True)
class HeadResult:
    """One head's thresholded metric on the eval split (overall slice)."""

    head: str
    metric: str
    value: Optional[float]
    bound: str
    passed: bool


@dataclasses.dataclass(frozen=True)
class RunResult:
    """The outcome of one pipeline run."""

    heads: tuple[HeadResult, ...]
    blessed: bool
    pushed_path: Optional[str]
    evaluation_uri: Optional[str]
    already_serving: Optional[str] = None   # the version folder that already held this very model


def pipeline_runs(store: metadata_store.MetadataStore) -> list:
    """The store's pipeline-run contexts, oldest first."""
    return sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: (c.create_time_since_epoch, c.id))


def node_id(store: metadata_store.MetadataStore, execution) -> str:
    """The pipeline node (component id) an execution belongs to."""
    for context in store.get_contexts_by_execution(execution.id):
        if context.type == "node":
            return context.name.split(".", 1)[-1]
    return str(execution.id)


def executions_by_node(store: metadata_store.MetadataStore, run=None) -> dict[str, list]:
    """`{node_id: [execution, ...]}` for one pipeline run (a pipeline-run context), or for every run."""
    executions = store.get_executions_by_context(run.id) if run is not None else store.get_executions()
    by_node: dict[str, list] = {}
    for execution in sorted(executions, key=lambda e: e.id):
        by_node.setdefault(node_id(store, execution), []).append(execution)
    return by_node


def latest_run_outputs(store: metadata_store.MetadataStore) -> dict[str, dict[str, list]]:
    """Output artifacts of every node of the newest pipeline run: `{node_id: {output_key: [artifact]}}`."""
    runs = pipeline_runs(store)
    if not runs:
        return {}
    outputs: dict[str, dict[str, list]] = {}
    for execution in store.get_executions_by_context(runs[-1].id):
        node = node_id(store, execution)
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else ""
            outputs.setdefault(node, {}).setdefault(key, []).append(artifacts[event.artifact_id])
    return outputs


def _custom_int(artifact, key: str) -> Optional[int]:
    value = artifact.custom_properties.get(key)
    return value.int_value if value is not None else None


def _candidate_metrics(evaluation_uri: str) -> dict[tuple[str, str], float]:
    """Overall-slice metrics of the candidate model: `{(output_name, metric_name): value}`."""
    values = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or key.model_name not in ("", "candidate"):
                continue
            if kv.value.HasField("double_value"):
                values[(key.output_name, key.name)] = kv.value.double_value.value
    return values


def _failures(evaluation_uri: str) -> set[tuple[str, str]]:
    """(output_name, metric_name) pairs that failed a threshold on the overall slice."""
    failed = set()
    result = tfma.load_validation_result(evaluation_uri)
    for per_slice in result.metric_validations_per_slice:
        if per_slice.slice_key.single_slice_keys:
            continue
        for failure in per_slice.failures:
            failed.add((failure.metric_key.output_name, failure.metric_key.name))
    return failed


def _slice_name(slice_key) -> str:
    keys = slice_key.single_slice_keys
    if not keys:
        return "overall"
    return ", ".join(f"{k.column}={k.bytes_value.decode() if k.HasField('bytes_value') else k.int64_value or k.float_value}"
                     for k in keys)


def describe_failures(evaluation_uri: str) -> list[str]:
    """Every failed threshold of an evaluation: head, metric, slice, value and bound (or TFMA's reason)."""
    lines = []
    result = tfma.load_validation_result(evaluation_uri)
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            key, bound = failure.metric_key, failure.metric_threshold.value_threshold
            bounds = [f">= {bound.lower_bound.value:g}" if bound.HasField("lower_bound") else "",
                      f"<= {bound.upper_bound.value:g}" if bound.HasField("upper_bound") else ""]
            value = (f"{failure.metric_value.double_value.value:.4g}"
                     if failure.metric_value.HasField("double_value") else "missing")
            lines.append(f"{key.output_name}: {key.name} on slice {_slice_name(per_slice.slice_key)} = {value}, "
                         f"needs {' and '.join(b for b in bounds if b) or failure.message}")
    return lines


def read_run_result(store: metadata_store.MetadataStore, spec: HeadsSpec) -> RunResult:
    """The per-head table, blessing and pushed path of the newest run in `store`."""
    outputs = latest_run_outputs(store)
    evaluation = outputs.get("Evaluator", {}).get("evaluation", [])
    blessing = outputs.get("Evaluator", {}).get("blessing", [])
    pushed = outputs.get("Pusher", {}).get("pushed_model", [])
    heads: list[HeadResult] = []
    evaluation_uri = evaluation[0].uri if evaluation else None
    if evaluation_uri:
        values = _candidate_metrics(evaluation_uri)
        failed = _failures(evaluation_uri)
        for head in spec.heads:
            name = tfma_metric_name(head, head.threshold.metric)
            bound = (f">= {head.threshold.lower:g}" if head.threshold.lower is not None
                     else f"<= {head.threshold.upper:g}")
            value = values.get((head.name, name))
            heads.append(HeadResult(head=head.name, metric=head.threshold.metric, value=value, bound=bound,
                                    passed=value is not None and (head.name, name) not in failed))
    pushed_path = already_serving = None
    if pushed and _custom_int(pushed[0], "pushed") == 1:
        pushed_path = pushed[0].custom_properties["pushed_destination"].string_value
    elif pushed and ALREADY_SERVING_KEY in pushed[0].custom_properties:
        already_serving = pushed[0].custom_properties[ALREADY_SERVING_KEY].string_value
    return RunResult(heads=tuple(heads), blessed=bool(blessing) and _custom_int(blessing[0], "blessed") == 1,
                     pushed_path=pushed_path, evaluation_uri=evaluation_uri, already_serving=already_serving)


def format_table(result: RunResult) -> str:
    rows = [("head", "metric", "value", "threshold", "passed")]
    for h in result.heads:
        rows.append((h.head, h.metric, "missing" if h.value is None else f"{h.value:.4g}", h.bound,
                     "yes" if h.passed else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
