"""AtomicPusher: TFX's Pusher, but a model server never sees a half-copied version, and a model is pushed once.

TFX's Pusher copies the model file by file into `<base>/<version>/`, so a reader (TensorFlow Serving polls the base
directory) can find a version folder that is still being written, and a crash mid-copy leaves a broken version
behind. Here the model is copied into a hidden staging folder beside the versions and renamed into place: on a
POSIX filesystem the rename is atomic, so the version appears whole or not at all. Version numbers are Unix
seconds as in TFX, but always above every existing version, so two pushes within one second get two versions.

A model already in the serving directory (the same Trainer output, e.g. a rerun with nothing changed) is not
pushed again: the push is recorded as not pushed, with the version that already serves it.
"""

import json
import os
import time
from typing import Any, Optional

from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from components.records import ALREADY_SERVING_KEY, EVAL_METRICS_KEY, ROLLED_BACK_KEY, candidate_metrics, examples_span
from components.serving_dir import earlier_push, push_atomically

EXAMPLES_KEY = "examples"
EVALUATION_KEY = "evaluation"


class AtomicPushExecutor(tfx_pusher_executor.Executor):
    """TFX's Pusher executor with an atomic, once-only filesystem push and a provenance record.

    ML Metadata records are TFX's own (pushed, pushed_destination, pushed_version); the record written beside the
    model (`assets.extra/push.json`) adds what a person or a script needs without TensorFlow: which model artifact,
    the data it was trained on, the heads spec's hash, the git commit, the training settings and the eval metrics.
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        evaluation = input_dict.get(EVALUATION_KEY) or []
        metrics = candidate_metrics(evaluation[0].uri) if evaluation else None
        if metrics is not None:
            # Recorded whether or not the model is pushed, so the runs list reads every run's metrics from ML
            # Metadata alone, without importing TFMA.
            model_push.set_string_custom_property(EVAL_METRICS_KEY, json.dumps(metrics))
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base_dir = destination.filesystem.base_directory
        if destination.WhichOneof("destination") != "filesystem" or "://" in base_dir:
            # Object stores have no atomic rename: keep TFX's own copy there.
            return super().Do(input_dict, output_dict, exec_properties)

        self._log_startup(input_dict, output_dict, exec_properties)
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        earlier = earlier_push(base_dir, model.uri)
        if earlier:
            self._MarkNotPushed(model_push)
            state, where = earlier
            model_push.set_string_custom_property(ALREADY_SERVING_KEY if state == "serving" else ROLLED_BACK_KEY,
                                                  where)
            return
        record = provenance_record(model, input_dict, exec_properties, metrics)
        version_dir = push_atomically(self.GetModelPath(input_dict), base_dir, record)
        io_utils.copy_dir(self.GetModelPath(input_dict), model_push.uri)   # TFX's archive copy
        self._MarkPushed(model_push, pushed_destination=version_dir, pushed_version=os.path.basename(version_dir))


def provenance_record(model, input_dict, exec_properties, eval_metrics: Optional[dict] = None) -> dict:
    """What the push record holds: the model, its data, the settings it was built with, its eval metrics (the
    candidate's overall metrics, as `candidate_metrics` reads them; None: the run had no evaluation)."""
    record = {"model_uri": model.uri, "model_artifact_id": model.id, "pushed_at": time.time()}
    record.update(json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {})
    examples = input_dict.get(EXAMPLES_KEY) or []
    if examples:
        # ExampleGen records the span as a custom property; the type's `span` property stays 0.
        record["data"] = {"uri": examples[0].uri, "span": examples_span(examples[0].mlmd_artifact)}
    if eval_metrics is not None:
        record["eval_metrics"] = eval_metrics
    return record


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec, plus the inputs the provenance record reads: the examples and the evaluation."""

    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
        EVALUATION_KEY: component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
    }


class AtomicPusher(base_component.BaseComponent):
    """The Pusher component with `AtomicPushExecutor`.

    Args:
      model, model_blessing, push_destination: as TFX's Pusher.
      examples: the Examples the model was trained on (their span goes into the record).
      evaluation: the Evaluator's output (its overall metrics go into the record).
      provenance: JSON-compatible facts to record with every push (spec hash, git commit, training settings).
    """

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)

    def __init__(self, model, model_blessing, push_destination: pusher_pb2.PushDestination, examples=None,
                 evaluation=None, provenance: Optional[dict[str, Any]] = None):
        super().__init__(spec=AtomicPusherSpec(
            model=model, model_blessing=model_blessing, push_destination=push_destination,
            custom_config=json_utils.dumps(provenance or {}), examples=examples, evaluation=evaluation,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
