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

from components.serving_dir import ROLLED_BACK_DIR, read_push_record, rolled_back_versions, serving_versions


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


def add_parsers(commands) -> None:
    """Registers `rollback` and `versions` on the CLI's subparsers."""
    p = commands.add_parser("rollback", help="serve the previous model version again",
                            description="Moves the newest version of the serving directory into .rolled-back/ "
                                        "(kept, not deleted), so TensorFlow Serving serves the previous one.")
    p.add_argument("--serving-dir", required=True, help="TensorFlow Serving base directory (as `run` pushes to)")
    p = commands.add_parser("versions", help="list the serving directory's versions; --keep prunes old ones",
                            description="Lists the versions (the served one marked) and the rolled-back ones.")
    p.add_argument("--serving-dir", required=True, help="TensorFlow Serving base directory")
    p.add_argument("--keep", type=int, help="delete the oldest versions so that this many stay")


def rollback_command(args) -> int:
    from components.spec import SpecError  # noqa: PLC0415

    if not os.path.isdir(args.serving_dir):
        raise SpecError(f"--serving-dir: {args.serving_dir} is not a folder")
    try:
        done = rollback(args.serving_dir)
    except RollbackError as e:
        raise SpecError(str(e)) from None
    print(f"rolled back: version {done.served} is served again; the newer one is kept in {done.set_aside}")
    return 0


def versions_command(args) -> int:
    from components.spec import SpecError  # noqa: PLC0415

    if not os.path.isdir(args.serving_dir):
        raise SpecError(f"--serving-dir: {args.serving_dir} is not a folder")
    if args.keep is not None:
        if args.keep < 1:
            raise SpecError(f"--keep: must be >= 1 (the served version stays), got {args.keep}")
        for version in prune_versions(args.serving_dir, args.keep):
            print(f"deleted version {version}")
    served = served_version(args.serving_dir)
    for version in serving_versions(args.serving_dir):
        model = read_push_record(os.path.join(args.serving_dir, str(version))).get("model_uri", "?")
        print(f"{version}{'  (served)' if version == served else ''}  {model}")
    for name in rolled_back_versions(args.serving_dir):
        print(f"{name}  (rolled back, in {ROLLED_BACK_DIR}/)")
    if served is None and not rolled_back_versions(args.serving_dir):
        print(f"no versions in {args.serving_dir} (nothing pushed yet)")
    return 0
