"""The CLI's cluster and serving commands (`compile`, `submit`, `schedule`, `rollback`), registered by `cli.py`.

Only argparse-level code loads here; TFX and kfp load when a command runs.
"""

from pipeline import kfp_client, kubeflow_runner, serving_versions

COMMANDS = {"compile": kubeflow_runner.compile_command, "submit": kfp_client.submit_command,
            "schedule": kfp_client.schedule_command, "rollback": serving_versions.rollback_command,
            "versions": serving_versions.versions_command}


def add_parsers(commands) -> None:
    """Adds this module's commands to the CLI's subparsers."""
    kubeflow_runner.add_compile_parser(commands)
    kfp_client.add_parsers(commands)
    serving_versions.add_parsers(commands)
