"""`runs` and `report`: past runs read back from a workdir's ML Metadata (pipeline/read/)."""

from pathlib import Path

from components import records
from components.spec import SpecError
from pipeline.operations.retrain import workdir_busy


def add_parsers(commands) -> None:
    """Registers `runs` and `report` on the command line's subparsers."""
    runs = commands.add_parser("runs", help="list past runs from ML Metadata",
                               description="When, data span, each head's thresholded metric, blessed, pushed "
                                           "version and provenance of every run in a workdir.")
    runs.add_argument("--workdir", required=True, help="the workdir of `run`")
    report = commands.add_parser("report", help="re-create the report of a past run from ML Metadata",
                                 description="Writes <workdir>/reports/<run id>/report.html and its plots.")
    report.add_argument("--workdir", required=True, help="the workdir of `run`")
    report.add_argument("--run", help="the run id as `runs` lists it, or its number there (1: the oldest); "
                                      "default: the newest")


def runs_command(args) -> int:
    metadata_path = Path(args.workdir) / "metadata.sqlite"
    if not metadata_path.exists():
        raise SpecError(f"--workdir: {args.workdir} holds no ML Metadata store (metadata.sqlite)")
    from pipeline.read import results  # noqa: PLC0415 - no TensorFlow

    store = records.read_only_store(metadata_path)
    print(results.format_runs(results.run_summaries(store), in_progress=workdir_busy(Path(args.workdir))))
    return 0


def report_command(args) -> int:
    """`python -m pipeline report`: re-creates one run's report from the workdir's ML Metadata; prints its path.

    Raises:
      ReportError: the workdir holds no ML Metadata store, or no such run.
    """
    workdir, run = Path(args.workdir), args.run
    metadata_path = workdir / "metadata.sqlite"
    if not metadata_path.exists():
        raise SpecError(f"--workdir: {workdir} holds no ML Metadata store (metadata.sqlite)")
    from ml_metadata.metadata_store import metadata_store  # noqa: PLC0415

    from pipeline.read.report import write_report  # noqa: PLC0415 - matplotlib
    from pipeline.runners import local as local_runner  # noqa: PLC0415

    store = metadata_store.MetadataStore(local_runner.metadata_config(str(metadata_path)))
    print(write_report(store, workdir, run))
    return 0


COMMANDS = {"runs": runs_command, "report": report_command}
