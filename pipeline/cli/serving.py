"""`rollback` and `versions`: the serving directory's versions (pipeline/operations/serving_versions.py)."""

import os

from components.serving_dir import ROLLED_BACK_DIR, read_push_record, rolled_back_versions, serving_versions
from components.spec import SpecError
from pipeline.operations.serving_versions import RollbackError, prune_versions, rollback, served_version


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
    if not os.path.isdir(args.serving_dir):
        raise SpecError(f"--serving-dir: {args.serving_dir} is not a folder")
    try:
        done = rollback(args.serving_dir)
    except RollbackError as e:
        raise SpecError(str(e)) from None
    print(f"rolled back: version {done.served} is served again; the newer one is kept in {done.set_aside}")
    return 0


def versions_command(args) -> int:
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


COMMANDS = {"rollback": rollback_command, "versions": versions_command}
