"""AtomicPusher: TFX's Pusher, but a model server never sees a half-copied version, and a model is pushed once.

TFX's Pusher copies the model file by file into `<base>/<version>/`, so a reader (TensorFlow Serving polls the base
directory) can find a version folder that is still being written, and a crash mid-copy leaves a broken version
behind. Here the model is copied into a hidden staging folder beside the versions and renamed into place: on a
POSIX filesystem the rename is atomic, so the version appears whole or not at all. Version numbers are Unix
seconds as in TFX, but always above every existing version, so two pushes within one second get two versions.

A model already in the serving directory (the same Trainer output, e.g. a rerun with nothing changed) is not
pushed again: the push is recorded as not pushed, with the version that already serves it.
"""

import os
import time

from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.serving_dir import push_atomically, version_serving

ALREADY_SERVING_KEY = "already_serving_version"


class AtomicPushExecutor(tfx_pusher_executor.Executor):
    """TFX's Pusher executor with an atomic, once-only filesystem push; ML Metadata records as TFX writes them."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base_dir = destination.filesystem.base_directory
        if destination.WhichOneof("destination") != "filesystem" or "://" in base_dir:
            # Object stores have no atomic rename: keep TFX's own copy there.
            return super().Do(input_dict, output_dict, exec_properties)

        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        already = version_serving(base_dir, model.uri)
        if already:
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property(ALREADY_SERVING_KEY, already)
            return
        record = {"model_uri": model.uri, "model_artifact_id": model.id, "pushed_at": time.time()}
        version_dir = push_atomically(self.GetModelPath(input_dict), base_dir, record)
        io_utils.copy_dir(self.GetModelPath(input_dict), model_push.uri)   # TFX's archive copy
        self._MarkPushed(model_push, pushed_destination=version_dir, pushed_version=os.path.basename(version_dir))


class AtomicPusher(Pusher):
    """The Pusher component with `AtomicPushExecutor`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
