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
import shutil
import tempfile
import time
from typing import Any, Callable, Optional

from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

STAGING_PREFIX = ".incoming-"
PUSH_RECORD = os.path.join("assets.extra", "push.json")   # TF Serving ignores assets.extra/ beyond warmup data
ALREADY_SERVING_KEY = "already_serving_version"


def serving_versions(base_dir: str) -> list[int]:
    """The version numbers present in a TensorFlow Serving base directory, ascending."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(name) for name in os.listdir(base_dir) if name.isdigit())


def read_push_record(version_dir: str) -> dict:
    try:
        with open(os.path.join(version_dir, PUSH_RECORD)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def version_serving(base_dir: str, model_uri: str) -> Optional[str]:
    """The version folder that already holds the model exported to `model_uri`, if any."""
    for version in serving_versions(base_dir):
        path = os.path.join(base_dir, str(version))
        if read_push_record(path).get("model_uri") == model_uri:
            return path
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_staging(base_dir: str) -> None:
    """Removes staging folders left by pushes whose process has died (killed mid-copy)."""
    for name in os.listdir(base_dir):
        if name.startswith(STAGING_PREFIX):
            pid = name[len(STAGING_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(base_dir, name), ignore_errors=True)


def push_atomically(model_dir: str, base_dir: str, record: dict[str, Any],
                    clock: Callable[[], float] = time.time) -> str:
    """Copies `model_dir` to a new version folder of `base_dir`, which appears whole or not at all.

    Args:
      model_dir: the SavedModel to push.
      base_dir: the TensorFlow Serving base directory (local or mounted POSIX filesystem).
      record: written to `<version>/assets.extra/push.json` (what was pushed, from where).
      clock: Unix time source, for tests.

    Returns:
      The new version folder.
    """
    os.makedirs(base_dir, exist_ok=True)
    remove_abandoned_staging(base_dir)
    staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=base_dir)
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        os.makedirs(os.path.dirname(os.path.join(staging, PUSH_RECORD)), exist_ok=True)
        while True:
            existing = serving_versions(base_dir)
            version = max([int(clock())] + [v + 1 for v in existing])
            target = os.path.join(base_dir, str(version))
            with open(os.path.join(staging, PUSH_RECORD), "w") as f:
                json.dump({**record, "version": version}, f, indent=2, sort_keys=True)
            if os.path.exists(target):
                continue
            try:
                os.rename(staging, target)
                return target
            except OSError:
                if not os.path.exists(target):
                    raise
                # Another push took this version between our check and our rename: take the next one.
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
