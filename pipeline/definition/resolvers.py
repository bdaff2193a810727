"""Resolver strategies of the local runner: artifacts chosen from ML Metadata when a run reaches them.

Kubeflow's V2 compiler accepts only TFX's own latest-artifact and latest-blessed-model strategies, so these two
are the local runner's; `create_pipeline(local_resolvers=False)` uses TFX's instead.
"""

from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import _BLESSED, _CURRENT_MODEL_ID

from components.records import examples_spans, model_heads
from components.serving_dir import served_model_uris


def blessed_model_before(candidate, models: list, blessings: list) -> tuple[Optional[object], Optional[object]]:
    """The newest blessed model older than `candidate` (lower id), and its blessing; (None, None) if none.

    "Older than the candidate" rather than TFX's "latest": when the Trainer's output comes from the cache, the
    candidate is a model already blessed, and TFX's choice (that very model) would change the Evaluator's inputs,
    so the Evaluator and the Pusher would run again and push the same model as a new version. Before this
    candidate, the baseline is the one it was first judged against, and the whole run comes from the cache.
    For a newly trained candidate every blessed model is older, and the choice is TFX's.
    """
    blessed = {b.get_int_custom_property(_CURRENT_MODEL_ID): b for b in blessings
               if b.get_int_custom_property(_BLESSED) == 1}
    for model in sorted(models, key=lambda a: a.id, reverse=True):
        if model.id < candidate.id and model.id in blessed:
            return model, blessed[model.id]
    return None, None


class BlessedModelBeforeCandidateStrategy(resolver.ResolverStrategy):
    """Resolves `model`/`model_blessing` to the newest blessed model older than `candidate` (see
    `blessed_model_before`) among those in the serving directory that have every head of `heads`; `candidate` is
    the Trainer's output of this run. None: TFX's Evaluator then judges absolute bounds alone.

    Args:
      serving_dir: the serving base directory, whose versions' push records name the models that may be the
        baseline: the model now serving is, a blessed model whose push failed is not, and after a rollback the
        model serving again is, not the one rolled back for being bad. Empty: every blessed model (TFX's choice).
      heads: the heads the Evaluator scores the baseline on (the EvalConfig, fixed when the pipeline is built,
        from the model serving then). A baseline without one of them fails the Evaluator; that happens when the
        candidate is the model serving itself (a threshold changed, the Trainer came from the cache) and the
        model before it lacks a head the candidate added.
    """

    def __init__(self, serving_dir: str = "", heads: Sequence[str] = ()):
        self._serving_dir = serving_dir
        self._heads = set(heads)

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]):
        candidates = input_dict["candidate"]
        if not candidates:
            return {key: [] for key in input_dict}
        models = input_dict["model"]
        if self._serving_dir:
            served = served_model_uris(self._serving_dir)
            models = [m for m in models if m.uri in served]
        if self._heads:
            models = [m for m in models if self._heads <= set(model_heads(store, m.id) or ())]
        model, blessing = blessed_model_before(candidates[0], models, input_dict["model_blessing"])
        return {"candidate": candidates, "model": [model] if model else [],
                "model_blessing": [blessing] if blessing else []}


def statistics_of_previous_span(current, statistics: list, span_of: dict[int, int]) -> Optional[object]:
    """The statistics of the newest span before `current`'s (the newest artifact of that span), or None.

    `span_of` maps statistics artifact ids to the span of the examples they describe.
    """
    earlier = [s for s in statistics if s.id in span_of and span_of[s.id] < span_of[current.id]]
    return max(earlier, key=lambda s: (span_of[s.id], s.id)) if earlier else None


def statistics_that_passed_the_gate(store, statistics_ids: list[int]) -> set[int]:
    """The ids among `statistics_ids` that a SchemaGate execution took as its `statistics` and completed with
    (or reused from the cache): statistics of data that passed the schema, spec, drift and skew checks."""
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    readers: dict[int, set[int]] = {}
    for event in store.get_events_by_artifact_ids(statistics_ids):
        if (event.type == metadata_store_pb2.Event.INPUT and event.path.steps
                and event.path.steps[0].key == "statistics"):
            readers.setdefault(event.artifact_id, set()).add(event.execution_id)
    executions = {e.id: e for e in store.get_executions_by_id(sorted(set().union(*readers.values())))}
    if not executions:
        return set()
    type_names = {t.id: t.name for t in store.get_execution_types_by_id(sorted({e.type_id
                                                                               for e in executions.values()}))}
    passed = {metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED}
    gate_passed = {i for i, e in executions.items()
                   if type_names[e.type_id].endswith("SchemaGate") and e.last_known_state in passed}
    return {artifact for artifact, execution_ids in readers.items() if execution_ids & gate_passed}


class PreviousSpanStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves `previous` to the statistics of the newest earlier span than `current`'s (this run's
    StatisticsGen output) whose data passed the gate, for TFDV's drift comparison; empty on the first span.

    A span the gate stopped (for drift, say) is no reference: otherwise every later span would be compared with
    the very data that was refused, and stopped in turn.
    """

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]):
        current = input_dict["current"]
        previous = None
        if current:
            passed = statistics_that_passed_the_gate(store, [s.id for s in input_dict["previous"]])
            candidates = [s for s in input_dict["previous"] if s.id in passed]
            span_of = examples_spans(store, [current[0].id] + [s.id for s in candidates])
            previous = statistics_of_previous_span(current[0], candidates, span_of)
        return {"current": current, "previous": [previous] if previous else []}
