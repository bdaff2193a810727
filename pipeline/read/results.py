"""What a run produced, read back from ML Metadata and the Evaluator's artifacts: per-head results, push.

TFMA (and so TensorFlow) is imported only where an evaluation's files are read: the runs list reads the metrics
the Pusher recorded in ML Metadata, and lists a store in about a second.
"""

import dataclasses
import json
from typing import Collection, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.records import (
    ALREADY_SERVING_KEY,
    EVAL_METRICS_KEY,
    ROLLED_BACK_KEY,
    STOPS_BEFORE_TRANSFORM,
    candidate_metrics,
    examples_span,
    exec_property,
    json_property,
    model_heads,
    node_id,
)
from components.spec import METRICS, HeadsSpec, reported_name_of_class, spec_metric_name
from pipeline.read.lineage import failure_message, run_provenance


@dataclasses.dataclass(frozen=True)
class HeadResult:
    """One head's thresholded metric on the eval split (overall slice)."""

    head: str
    metric: str
    value: Optional[float]
    bound: str
    passed: bool
    failed_against_baseline: bool = False   # within its bound, but worse than the baseline by more than tolerated
    failed_slices: tuple[str, ...] = ()     # the slices where a per-slice bound failed (the overall one may pass)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """The outcome of one pipeline run."""

    heads: tuple[HeadResult, ...]
    blessed: bool
    pushed_path: Optional[str]
    evaluation_uri: Optional[str]
    already_serving: Optional[str] = None   # the version folder that already held this very model
    rolled_back: Optional[str] = None       # the folder this very model was rolled back into
    from_cache: bool = False                # the Pusher's outcome is an earlier run's: nothing changed since


def pipeline_runs(store: metadata_store.MetadataStore) -> list:
    """The store's pipeline-run contexts, oldest first."""
    return sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: (c.create_time_since_epoch, c.id))


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
    return run_outputs(store, runs[-1]) if runs else {}


def run_outputs(store: metadata_store.MetadataStore, run) -> dict[str, dict[str, list]]:
    """Output artifacts of every node of one pipeline run (a cached node's are the reused ones)."""
    outputs: dict[str, dict[str, list]] = {}
    for execution in store.get_executions_by_context(run.id):
        node = node_id(store, execution)
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else ""
            outputs.setdefault(node, {}).setdefault(key, []).append(artifacts[event.artifact_id])
    return outputs


def latest_blessed_model_heads(store: metadata_store.MetadataStore,
                               served_model_uris: Optional[Collection[str]] = None) -> Optional[list[str]]:
    """The heads of the model the Evaluator will take as its baseline, None if there is none.

    The same choice as TFX's LatestBlessedModelStrategy (the blessed model with the highest id), among the models
    in the serving directory (`served_model_uris`) as the local baseline resolver makes it (None: among every
    blessed model); its heads are read from the spec its Trainer execution was given.
    """
    blessed = [custom_int(b, "current_model_id") for b in store.get_artifacts_by_type("ModelBlessing")
               if custom_int(b, "blessed") == 1]
    if blessed and served_model_uris is not None:
        uris = {a.id: a.uri for a in store.get_artifacts_by_id(blessed)}
        served = set(served_model_uris)
        blessed = [m for m in blessed if uris.get(m) in served]
    if not blessed:
        return None
    return model_heads(store, max(blessed))


@dataclasses.dataclass(frozen=True)
class PushOutcome:
    """What the Pusher did with a run's model, from its PushedModel artifact."""

    destination: Optional[str] = None       # the version folder it was pushed to
    version: Optional[str] = None
    already_serving: Optional[str] = None   # the version folder that already held this very model
    rolled_back: Optional[str] = None       # the folder this very model was rolled back into


def push_outcome(pushed_model) -> PushOutcome:
    """Reads the Pusher's record on its output artifact (None: the run never reached the Pusher)."""
    if pushed_model is None:
        return PushOutcome()
    properties = pushed_model.custom_properties
    text = lambda key: properties[key].string_value if key in properties else None  # noqa: E731
    if custom_int(pushed_model, "pushed") == 1:
        return PushOutcome(destination=text("pushed_destination"), version=text("pushed_version"))
    return PushOutcome(already_serving=text(ALREADY_SERVING_KEY), rolled_back=text(ROLLED_BACK_KEY))


def custom_int(artifact, key: str) -> Optional[int]:
    value = artifact.custom_properties.get(key)
    return value.int_value if value is not None else None


def _failures(evaluation_uri: str) -> dict[tuple[str, str], set[str]]:
    """`{(output_name, metric_name): kinds}` of the thresholds that failed; a kind is "bound" (the value on the
    overall slice), "change" (against the baseline) or a slice's name (a per-slice bound on that slice)."""
    import tensorflow_model_analysis as tfma  # noqa: PLC0415

    failed: dict[tuple[str, str], set[str]] = {}
    result = tfma.load_validation_result(evaluation_uri)
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            kind = ("change" if failure.metric_threshold.HasField("change_threshold")
                    else _slice_name(per_slice.slice_key) if per_slice.slice_key.single_slice_keys else "bound")
            failed.setdefault((failure.metric_key.output_name, failure.metric_key.name), set()).add(kind)
    return failed


def _slice_name(slice_key) -> str:
    keys = slice_key.single_slice_keys
    if not keys:
        return "overall"
    return ", ".join(f"{k.column}="
                     f"{k.bytes_value.decode() if k.HasField('bytes_value') else k.int64_value or k.float_value}"
                     for k in keys)


# TFMA 0.47 scores no slice with fewer eval rows than `min_slice_size`, then counts every threshold of that
# slice, the overall-only ones included, as failed (metrics_validator.py, "All unchecked thresholds are
# considered failures"): a bound "missing" on a slice is that.
SUPPRESSED_SLICE_NOTE = (" (TFMA suppressed this slice: fewer eval rows than the spec's min_slice_size; TFMA 0.47 "
                         "counts every threshold of a suppressed slice as failed, so lower min_slice_size)")
# A metric over no rows is NaN (TFMA's own metrics, and the project's), and NaN meets no bound.
NO_LABELLED_ROWS_NOTE = (" (no eval row of this slice has this head's label: the head cannot be judged on it; "
                         "such a bound fails until the slice has labelled rows)")


def describe_failures(evaluation_uri: str) -> list[str]:
    """Every failed threshold of an evaluation: head, metric (the spec's name), slice, value and bound (or TFMA's
    reason)."""
    import tensorflow_model_analysis as tfma  # noqa: PLC0415

    lines = []
    result = tfma.load_validation_result(evaluation_uri)
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            key, threshold = failure.metric_key, failure.metric_threshold
            value = (f"{failure.metric_value.double_value.value:.4g}"
                     if failure.metric_value.HasField("double_value") else "missing")
            where = (f"{key.output_name}: {spec_metric_name(key.name)} on slice "
                     f"{_slice_name(per_slice.slice_key)}")
            if threshold.HasField("change_threshold"):
                # TFMA reports the change (candidate - baseline) as the value of a failed change threshold.
                change = threshold.change_threshold
                better = "higher" if change.direction == tfma.MetricDirection.HIGHER_IS_BETTER else "lower"
                needs = f"{'>=' if better == 'higher' else '<='} {change.absolute.value:g}"
                lines.append(f"{where} changed by {value} against the baseline, needs a change {needs} "
                             f"({better} is better)")
            else:
                bound = threshold.value_threshold
                bounds = [f">= {bound.lower_bound.value:g}" if bound.HasField("lower_bound") else "",
                          f"<= {bound.upper_bound.value:g}" if bound.HasField("upper_bound") else ""]
                note = (SUPPRESSED_SLICE_NOTE if value == "missing" and per_slice.slice_key.single_slice_keys
                        else NO_LABELLED_ROWS_NOTE if value == "nan" else "")
                lines.append(f"{where} = {value}, needs {' and '.join(b for b in bounds if b) or failure.message}"
                             + note)
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
        values = {(head, name): value for head, metrics in candidate_metrics(evaluation_uri).items()
                  for name, value in metrics.items()}
        failed = _failures(evaluation_uri)
        for head in spec.heads:
            name = METRICS[head.kind][head.threshold.metric].reported_as
            bound = (f">= {head.threshold.lower:g}" if head.threshold.lower is not None
                     else f"<= {head.threshold.upper:g}")
            value, kinds = values.get((head.name, name)), failed.get((head.name, name), set())
            heads.append(HeadResult(head=head.name, metric=head.threshold.metric, value=value, bound=bound,
                                    passed=value is not None and not kinds,
                                    failed_against_baseline="change" in kinds and "bound" not in kinds,
                                    failed_slices=tuple(sorted(kinds - {"change", "bound"}))))
    push = push_outcome(pushed[0] if pushed else None)
    runs = pipeline_runs(store)
    pusher_runs = executions_by_node(store, runs[-1]).get("Pusher", []) if runs else []
    from_cache = bool(pusher_runs) and pusher_runs[-1].last_known_state == metadata_store_pb2.Execution.CACHED
    return RunResult(heads=tuple(heads), blessed=bool(blessing) and custom_int(blessing[0], "blessed") == 1,
                     pushed_path=push.destination, evaluation_uri=evaluation_uri,
                     already_serving=push.already_serving, rolled_back=push.rolled_back, from_cache=from_cache)


def _verdict(head: HeadResult) -> str:
    """The table's "passed" cell: yes, or NO with what failed when the overall value met its bound."""
    if head.passed:
        return "yes"
    reasons = (["worse than the baseline"] if head.failed_against_baseline else []) + (
        [f"on slice {head.failed_slices[0]}" if len(head.failed_slices) == 1
         else f"on {len(head.failed_slices)} slices"] if head.failed_slices else [])
    return "NO" + (": " + "; ".join(reasons) if reasons else "")


def format_table(result: RunResult) -> str:
    rows = [("head", "metric", "value", "threshold", "passed")]
    for h in result.heads:
        rows.append((h.head, h.metric, "missing" if h.value is None else f"{h.value:.4g}", h.bound, _verdict(h)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One line of the runs list."""

    run_id: str
    started: float                      # Unix seconds
    span: Optional[int]
    heads: dict[str, tuple[str, Optional[float]]]   # head -> (thresholded metric, value)
    blessed: Optional[bool]             # None: the run never reached the Evaluator
    pushed_version: Optional[str]
    already_serving: Optional[str]
    failed_at: Optional[str]            # the component that failed, if any
    provenance: dict
    from_cache: bool = False            # the Pusher's outcome was an earlier run's (nothing changed)
    unfinished_at: Optional[str] = None  # the component whose execution never ended: still running, or killed
    stopped_by_data: bool = False       # it failed because the gate stopped the data (schema, spec, drift, skew)
    pushed_destination: Optional[str] = None   # the pushed version's folder, as pushed


def _pushed_cell(summary: RunSummary) -> str:
    """The pushed version, and whether it has left the serving directory since (rolled back, or deleted by
    `--keep-versions` or `versions --keep`)."""
    import os  # noqa: PLC0415

    from components.serving_dir import ROLLED_BACK_DIR  # noqa: PLC0415 - no TensorFlow

    where = summary.pushed_destination
    if not where or os.path.exists(where):
        return summary.pushed_version
    base, version = os.path.split(where.rstrip("/"))
    gone = "rolled back" if os.path.exists(os.path.join(base, ROLLED_BACK_DIR, version)) else "deleted"
    return f"{summary.pushed_version} ({gone})"


def _thresholded_metrics(eval_config_json: str) -> dict[str, str]:
    """`{head: TFMA metric name}` of the metric each head is thresholded on, from the Evaluator's own config."""
    heads = {}
    for spec in json.loads(eval_config_json or "{}").get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            if metric.get("per_slice_thresholds") or metric.get("threshold"):
                heads[spec["output_names"][0]] = reported_name_of_class(metric["class_name"])
    return heads


def recorded_metrics(pushed_model, evaluation_uri: str) -> dict[str, dict[str, float]]:
    """The candidate's overall metrics of a run, `{head: {metric: value}}`: as the Pusher recorded them in ML
    Metadata, or read from the Evaluator's output (TFMA) when it recorded none (a run stopped before the Pusher,
    or a store older than the record)."""
    value = pushed_model.custom_properties.get(EVAL_METRICS_KEY) if pushed_model is not None else None
    if value is not None and value.string_value:
        return json.loads(value.string_value)
    return candidate_metrics(evaluation_uri)


def run_summaries(store: metadata_store.MetadataStore) -> list[RunSummary]:
    """Every run in the store, oldest first, read from ML Metadata and the artifacts it points to."""
    summaries = []
    for run in pipeline_runs(store):
        outputs = run_outputs(store, run)
        executions = executions_by_node(store, run)
        failed = [(node, runs[-1]) for node, runs in executions.items()
                  if runs[-1].last_known_state == metadata_store_pb2.Execution.FAILED]
        # A process killed mid-component (SIGKILL, Ctrl-C, a lost machine) leaves its execution RUNNING for good.
        unfinished = [node for node, runs in executions.items()
                      if runs[-1].last_known_state in (metadata_store_pb2.Execution.NEW,
                                                       metadata_store_pb2.Execution.RUNNING)]
        examples = next(iter(outputs.get("CsvExampleGen", outputs.get("ImportExampleGen", {})).get("examples", [])),
                        None)
        heads: dict[str, tuple[str, Optional[float]]] = {}
        evaluation = outputs.get("Evaluator", {}).get("evaluation", [])
        pushed_model = next(iter(outputs.get("Pusher", {}).get("pushed_model", [])), None)
        if evaluation and "Evaluator" in executions:
            metrics = recorded_metrics(pushed_model, evaluation[0].uri)
            eval_config = exec_property(executions["Evaluator"][-1], "eval_config")
            for head, name in _thresholded_metrics(eval_config).items():
                heads[head] = (spec_metric_name(name), metrics.get(head, {}).get(name))
        blessing = outputs.get("Evaluator", {}).get("blessing", [])
        push = push_outcome(pushed_model)
        provenance = json_property(executions.get("Pusher", [None])[-1], "custom_config") or run_provenance(run)
        if examples is not None:
            span = examples_span(examples)
        else:   # the run stopped before ExampleGen recorded its span; the command recorded the one it found
            span = int(run_provenance(run)["span"]) if "span" in run_provenance(run) else None
        summaries.append(RunSummary(
            run_id=run.name, started=run.create_time_since_epoch / 1000,
            span=span,
            heads=heads, blessed=(custom_int(blessing[0], "blessed") == 1) if blessing else None,
            pushed_version=push.version, pushed_destination=push.destination, already_serving=push.already_serving,
            failed_at=failed[0][0] if failed else None,
            stopped_by_data=bool(failed) and STOPS_BEFORE_TRANSFORM in (failure_message(failed[0][1]) or ""),
            provenance=provenance, from_cache=bool(executions.get("Pusher")) and
            executions["Pusher"][-1].last_known_state == metadata_store_pb2.Execution.CACHED,
            unfinished_at=unfinished[0] if unfinished else None))
    return summaries


def _outcome(summary: RunSummary, running: bool) -> str:
    """The runs list's "blessed" cell: yes or no, or how the run ended before the Evaluator decided."""
    if summary.failed_at:
        return ("stopped by the data at " if summary.stopped_by_data else "failed at ") + summary.failed_at
    if summary.unfinished_at:
        return ("running: " if running else "interrupted at ") + summary.unfinished_at
    return "-" if summary.blessed is None else "yes" if summary.blessed else "no"


def format_runs(summaries: list[RunSummary], in_progress: bool = False) -> str:
    """The runs list as a text table, oldest first; `in_progress`: a run of this workdir holds its lock now (so
    the newest run's unfinished component is running, not killed)."""
    import time  # noqa: PLC0415

    rows = [("run", "started (UTC)", "span", "heads", "blessed", "pushed", "spec", "commit")]
    for number, s in enumerate(summaries, start=1):
        heads = ", ".join(f"{h} {m}={'-' if v is None else f'{v:.4g}'}" for h, (m, v) in s.heads.items()) or "-"
        outcome = _outcome(s, running=in_progress and number == len(summaries))
        pushed = (s.pushed_version and _pushed_cell(s)) or (f"already serving ({s.already_serving.rsplit('/', 1)[-1]})"
                                      if s.already_serving else "-")
        if s.from_cache:
            pushed = "nothing new (cached)"
        rows.append((s.run_id, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.started)),
                     "-" if s.span is None else str(s.span), heads, outcome, pushed,
                     s.provenance.get("heads_spec_fingerprint", "-"), s.provenance.get("git_commit", "-")[:12]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
