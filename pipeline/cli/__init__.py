"""The command line: `multihead run --data FILE --heads HEADS.yaml` (or `python -m pipeline ...`).

Each command's flags and messages live in its module here; what it does lives in the layers below. Only argparse,
YAML and the spec load before a command needs more, so `--help` and spec errors answer at once; TensorFlow and
TFX load when a run starts.
"""

import argparse
import sys
from typing import Optional, Sequence

from components.spec import SpecError
from pipeline.cli import cluster, logs, read, serving
from pipeline.cli import run as run_commands
from pipeline.cli.exit_codes import (  # noqa: F401
    EXIT_BAD_CONFIG,
    EXIT_BUSY,
    EXIT_DATA_REJECTED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_BLESSED,
    EXIT_PUSHED,
)
from pipeline.operations.preflight import DataError
from pipeline.operations.retrain import PipelineBusyError
from pipeline.runners.kfp_client import ClusterError

COMMANDS = {"run": run_commands.run_command,
            "retrain": lambda args: run_commands.run_command(args, retrain=True),
            **read.COMMANDS, **cluster.COMMANDS, **serving.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multihead", description="Multi-head TFX pipeline: records and a heads spec in, a served model out.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_commands.add_parsers(commands)
    read.add_parsers(commands)
    cluster.add_parsers(commands)
    serving.add_parsers(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logs.quiet_harmless_logs()
    try:
        return COMMANDS[args.command](args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except PipelineBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    except DataError as e:
        print(f"RUN STOPPED before any component: {e}\nNothing was transformed, trained or pushed.", file=sys.stderr)
        return EXIT_DATA_REJECTED
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
