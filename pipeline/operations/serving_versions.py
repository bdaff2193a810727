"""The versions in a TensorFlow Serving base directory: which one serves, how many stay, and rollback.

TensorFlow Serving (its default `latest` version policy) serves the highest numbered version folder and ignores
folders whose name is not a number. So a rollback renames the newest version into `.rolled-back/` inside the
base directory: the previous version serves again, and the rolled-back model stays on disk, whole, for
inspection or to be moved back. The rename is atomic on a POSIX filesystem, as a push is. Plain filesystem code.
"""

import dataclasses
import os
import shutil
from typing import Optional

from components.serving_dir import ROLLED_BACK_DIR, serving_versions


class RollbackError(RuntimeError):
    """The serving directory has nothing to roll back to."""


@dataclasses.dataclass(frozen=True)
class Rollback:
    """What a rollback did: the version now served and where the rolled-back one was kept."""

    served: int
    set_aside: str


def served_version(base_dir: str) -> Optional[int]:
    """The version TensorFlow Serving's default policy serves (the highest), None if there is none."""
    versions = serving_versions(base_dir)
    return versions[-1] if versions else None


def rollback(base_dir: str) -> Rollback:
    """Makes the previous version the served one; the newest moves to `<base_dir>/.rolled-back/<version>`.

    Raises:
      RollbackError: if the base directory holds fewer than two versions.
    """
    versions = serving_versions(base_dir)
    if len(versions) < 2:
        raise RollbackError(f"{base_dir} holds {len(versions)} version(s) ({versions or 'none'}): nothing to roll "
                            f"back to; a rollback needs the served version and an earlier one")
    newest = versions[-1]
    aside = os.path.join(base_dir, ROLLED_BACK_DIR)
    os.makedirs(aside, exist_ok=True)
    target = os.path.join(aside, str(newest))
    suffix = 1
    while os.path.exists(target):   # the same number rolled back before (pushed again since): keep both
        target = os.path.join(aside, f"{newest}.{suffix}")
        suffix += 1
    os.rename(os.path.join(base_dir, str(newest)), target)
    return Rollback(served=versions[-2], set_aside=target)


def prune_versions(base_dir: str, keep: int) -> list[int]:
    """Deletes the oldest versions so that `keep` stay (the served one always among them); returns those deleted.

    Raises:
      ValueError: if `keep` is below 1.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (the served version stays), got {keep}")
    versions = serving_versions(base_dir)
    doomed = versions[:-keep] if len(versions) > keep else []
    for version in doomed:
        shutil.rmtree(os.path.join(base_dir, str(version)))
    return doomed
