"""A TensorFlow Serving base directory: its versions, and an atomic push into it. Plain filesystem code, no TFX.

A version is a folder named by a number; TensorFlow Serving ignores other names, so a push is copied into a
hidden staging folder first and renamed into place: on a POSIX filesystem the rename is atomic, and the version
appears whole or not at all.
"""

import json
import os
import re
import shutil
import socket
import tempfile
import time
from typing import Any, Callable, Optional

STAGING_PREFIX = ".incoming-"
PUSH_RECORD = os.path.join("assets.extra", "push.json")   # TF Serving ignores assets.extra/ beyond warmup data


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


def served_model_uris(base_dir: str) -> set[str]:
    """The Trainer outputs of the versions in the serving directory (from their push records): the models a
    candidate may be compared with. A blessed model whose push failed, or that `rollback` took out, is not one."""
    uris = {read_push_record(os.path.join(base_dir, str(v))).get("model_uri") for v in serving_versions(base_dir)}
    return {uri for uri in uris if uri}


# Where `rollback` keeps versions it took out of service (pipeline/operations/serving_versions.py).
ROLLED_BACK_DIR = ".rolled-back"


def rolled_back_versions(base_dir: str) -> list[str]:
    """The folders kept aside by past rollbacks, oldest first."""
    folder = os.path.join(base_dir, ROLLED_BACK_DIR)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def earlier_push(base_dir: str, model_uri: str) -> Optional[tuple[str, str]]:
    """Where the model exported to `model_uri` already went: ("serving", version folder) or ("rolled back",
    folder), None if it was never pushed here. Either way it must not be pushed again: a second copy of a serving
    model adds nothing, and a rolled-back one would undo the rollback."""
    serving = version_serving(base_dir, model_uri)
    if serving:
        return "serving", serving
    for name in rolled_back_versions(base_dir):
        folder = os.path.join(base_dir, ROLLED_BACK_DIR, name)
        if read_push_record(folder).get("model_uri") == model_uri:
            return "rolled back", folder
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_prefix() -> str:
    """The name prefix of this process's staging folders: its pid and host, so that a push can tell which
    abandoned folders are its host's to remove (a pid says nothing about another host's processes)."""
    return f"{STAGING_PREFIX}{os.getpid()}@{socket.gethostname()}-"


def remove_abandoned_staging(base_dir: str) -> None:
    """Removes staging folders left by pushes of this host whose process has died (killed mid-copy). Another
    host's are left: on a serving directory shared between hosts, their pushes may be under way."""
    for name in os.listdir(base_dir):
        if name.startswith(STAGING_PREFIX):
            # `<pid>@<host>-<random>`; folders of earlier releases have no `@<host>`, and were this host's.
            owner = name[len(STAGING_PREFIX):].rsplit("-", 1)[0]
            pid, _, host = owner.partition("@")
            if pid.isdigit() and host in ("", socket.gethostname()) and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(base_dir, name), ignore_errors=True)


class PushError(RuntimeError):
    """The model could not be copied into the serving directory; nothing was pushed."""


def copy_failure(error: OSError, base_dir: str) -> PushError:
    """A PushError naming the serving directory and the reason once (shutil.copytree's error lists every file
    that failed, with its source path first, as if the source were at fault)."""
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
        reasons = [str(why) for _, _, why in error.args[0]]
        reason = re.sub(r":\s*'.*$", "", reasons[0]) if reasons else str(error)
        files = f" ({len(reasons)} files)" if len(reasons) > 1 else ""
    else:
        reason, files = (error.strerror or str(error)), ""
    return PushError(f"could not copy the model into the serving directory {base_dir}: {reason}{files}; nothing "
                     f"was pushed, and its versions are as they were")


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

    Raises:
      PushError: the copy failed (a full disk, no permission); the staging folder is removed.
    """
    os.makedirs(base_dir, exist_ok=True)
    remove_abandoned_staging(base_dir)
    staging = tempfile.mkdtemp(prefix=staging_prefix(), dir=base_dir)
    try:
        try:
            shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        except OSError as e:   # shutil.Error is one
            raise copy_failure(e, base_dir) from e
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
