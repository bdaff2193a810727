"""`run` and `retrain`: their flags, and what they print and return for each outcome of the run use case
(pipeline/operations/run.py)."""

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

from pipeline.cli.exit_codes import EXIT_DATA_REJECTED, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOT_BLESSED, EXIT_PUSHED
from pipeline.operations import run as run_use_case
from pipeline.operations.retrain import workdir_lock


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags `run` and `retrain` share."""
    parser.add_argument("--data", required=True,
                        help="a CSV or TFRecord (tf.Example) file, or a folder of them; a path holding {SPAN} "
                             "(quoted: 'DIR/span-{SPAN}/*.csv') names spans, of which the newest is read")
    parser.add_argument("--heads", required=True, help="heads spec YAML (see schemas/penguins/heads.yaml)")
    parser.add_argument("--schema", help="curated schema.pbtxt (default: schema.pbtxt beside the heads spec if "
                                         "there is one; otherwise SchemaGen infers one from the data)")
    parser.add_argument("--format", choices=("csv", "tfrecord"), help="input format (default: from the file suffix)")
    parser.add_argument("--workdir", help="folder for artifacts, ML Metadata and the serving directory "
                                          "(default: runs/<spec name>)")
    parser.add_argument("--serving-dir", help="TensorFlow Serving base folder (default: <workdir>/serving)")
    parser.add_argument("--serving-stats", help="TFDV statistics of the serving data, for the spec's skew bounds: "
                                                "as tfdv.generate_statistics_from_csv(output_path=...) writes them "
                                                "(TFRecord), as text (tfdv.write_stats_text) or a binary proto")
    parser.add_argument("--keep-versions", type=int, metavar="N",
                        help="after a push, delete the oldest versions so that N stay (default: keep all)")
    parser.add_argument("--no-cache", action="store_true", help="re-execute every component")
    parser.add_argument("--beam-arg", action="append", dest="beam_args", metavar="ARG",
                        help="a Beam option for the components' Beam jobs, repeatable (default: in-process, "
                             "--runner=DirectRunner --direct_running_mode=in_memory --direct_num_workers=1; "
                             "see --beam-workers)")
    parser.add_argument("--beam-workers", default="auto", type=_beam_workers, metavar="auto|N",
                        help="worker processes of the ExampleGen and the Evaluator (the ExampleGen's write one "
                             "file each, so the Evaluator's each read their own); 1 keeps every component in one "
                             "process. auto (default): one per core, up to 4, from 32 MiB of input on, 1 below")


def add_parsers(commands) -> None:
    """Registers `run` and `retrain` on the command line's subparsers."""
    run = commands.add_parser("run", help="run the pipeline locally (BeamDagRunner, SQLite ML Metadata)",
                              description="Validate, transform, train, evaluate and (if every head passes) push.")
    add_run_arguments(run)
    retrain = commands.add_parser(
        "retrain", help="run the pipeline on the newest data span, if it is new (for cron or a systemd timer)",
        description="Like `run` on --data DIR/span-{SPAN}/*.csv: trains on the newest span only, unless a finished "
                    "run already read that span (then it does nothing and says so, exit 0). One run per workdir "
                    "at a time: a second exits at once (exit 5).")
    add_run_arguments(retrain)


def _beam_workers(value: str):
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is neither auto nor a whole number of at least 1")
    return int(value)


def request_from_args(args: argparse.Namespace, retrain: bool) -> run_use_case.RunRequest:
    def path(value):
        return Path(value) if value else None

    return run_use_case.RunRequest(
        data=Path(args.data), heads=Path(args.heads), schema=path(args.schema), data_format=args.format,
        workdir=path(args.workdir), serving_dir=path(args.serving_dir), serving_stats=path(args.serving_stats),
        keep_versions=args.keep_versions, no_cache=args.no_cache, beam_args=tuple(args.beam_args or ()),
        beam_workers=args.beam_workers, retrain=retrain)


def _say(line: str) -> None:
    print(line, flush=True)


def run_command(args: argparse.Namespace, retrain: bool = False) -> int:
    """`run`, or with `retrain` the same on the newest span only when no finished run has read it yet."""
    started = time.monotonic()
    checked = run_use_case.check_request(request_from_args(args, retrain))
    with workdir_lock(checked.workdir):
        run_use_case.check_workdir(checked)
        if retrain:
            decision = run_use_case.retrain_decision(checked)
            print_retrain_decision(checked, decision)
            if not decision.train:
                return EXIT_PUSHED
        input_bytes = run_use_case.check_input_files(checked)
        outcome = run_use_case.execute(checked, input_bytes, started, say=_say)
        return report_outcome(checked, outcome)


def print_retrain_decision(checked: run_use_case.CheckedRun, decision: run_use_case.RetrainDecision) -> None:
    data, earlier = checked.data, decision.earlier
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(earlier.started)) if earlier else ""
    if not decision.train:
        _say(f"no new span: the newest, span {data.span} of {data.description.rsplit(' (', 1)[0]}, was already "
             f"read by run {earlier.run_id} ({when}); nothing to do")
    elif earlier is not None:
        _say(f"span {data.span} changed since run {earlier.run_id} read it ({when}): its files' number, size or "
             f"modification times differ; retraining on it")
    else:
        _say(f"new span {data.span}: retraining on it")
    if decision.unread:
        _say(f"note: span(s) {', '.join(map(str, decision.unread))} on disk were never trained on (late, or stopped "
             f"by the checks); retrain reads the newest span only"
             + (f": `run --data {decision.one_span_path}` trains on one" if decision.one_span_path else ""))


def report_outcome(checked: run_use_case.CheckedRun, outcome: run_use_case.RunOutcome) -> int:
    """Prints how the run ended and returns its exit code."""
    if outcome.kind == "interrupted":
        print("\nRUN INTERRUPTED (Ctrl-C): the component that was running did not finish; a push is whole or "
              "absent. The same command again reuses every component that finished.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.kind in ("rejected", "failed"):
        print(f"\nRUN STOPPED: {outcome.message}", file=sys.stderr)
        if outcome.kind == "rejected":
            print("Nothing was transformed, trained or pushed.", file=sys.stderr)
        run_use_case.write_report(outcome)
        return EXIT_DATA_REJECTED if outcome.kind == "rejected" else EXIT_FAILED
    from pipeline.read import results  # noqa: PLC0415

    result, serving_dir = outcome.result, checked.serving_dir
    print(f"\nfinished in {outcome.seconds:.1f} s\n")
    print(results.format_table(result))
    run_use_case.write_report(outcome)
    if result.from_cache:
        print("\nnothing changed since an earlier run (same data, code and spec): every component's outputs came "
              "from the cache and nothing was pushed again" + cached_push_note(result.pushed_path, serving_dir))
        return EXIT_PUSHED if result.blessed else EXIT_NOT_BLESSED
    if result.pushed_path:
        print(f"\nmodel blessed and pushed to {result.pushed_path}")
        keep = checked.request.keep_versions
        if keep:
            from pipeline.operations.serving_versions import prune_versions  # noqa: PLC0415

            deleted = prune_versions(str(serving_dir), keep)
            if deleted:
                kept = "the newest version" if keep == 1 else f"the newest {keep} versions"
                print(f"kept {kept}; deleted {', '.join(map(str, deleted))}")
        return EXIT_PUSHED
    if result.already_serving:
        print("\n" + already_serving_message(result.already_serving, serving_dir))
        return EXIT_PUSHED
    if result.rolled_back:
        print(f"\nnot pushed again: this model was rolled back (kept in {result.rolled_back}); to train a new "
              f"one, change the data, the code or what the Trainer reads (the heads, losses or training "
              f"settings; a threshold alone re-runs only the Evaluator onwards)")
        return EXIT_PUSHED
    if result.evaluation_uri is None:
        print("\nNOT PUSHED: the run produced no evaluation.", file=sys.stderr)
        return EXIT_FAILED
    print("\nNOT PUSHED: the model was not blessed. Failed thresholds:\n  "
          + "\n  ".join(results.describe_failures(result.evaluation_uri)), file=sys.stderr)
    return EXIT_NOT_BLESSED


def already_serving_message(version_dir: str, serving_dir: Path) -> str:
    """What to say when the Pusher found the model already in the serving directory: TensorFlow Serving serves
    the highest version, so an older copy (the spec went back to an earlier model's) is there but not serving."""
    from components.serving_dir import serving_versions  # noqa: PLC0415

    newest = max(serving_versions(str(serving_dir)), default=None)
    if newest is None or Path(version_dir).name == str(newest):
        return f"nothing new to push: this model is already serving as {version_dir}"
    return (f"not pushed: this model is already in the serving directory as {version_dir}, but the newer version "
            f"{newest} is the one serving; to serve this model again, take the newer versions out with "
            f"`python -m pipeline rollback --serving-dir {serving_dir}`")


def cached_push_note(pushed_path: Optional[str], serving_dir: Path) -> str:
    """Where the model of a run that came wholly from the cache is now: the version its first run pushed it to,
    unless that version was rolled back or deleted since."""
    from components.serving_dir import ROLLED_BACK_DIR, rolled_back_versions  # noqa: PLC0415

    if not pushed_path:
        return ""
    if Path(pushed_path).is_dir():
        return f"; that run pushed this model to {pushed_path}"
    version = Path(pushed_path).name
    aside = [name for name in rolled_back_versions(str(serving_dir)) if name.split(".")[0] == version]
    if aside:
        return (f"; that run pushed this model to {pushed_path}, and it was rolled back since (kept in "
                f"{serving_dir / ROLLED_BACK_DIR / aside[-1]}): to train a new one, change the data, the code or "
                f"what the Trainer reads")
    return f"; that run pushed this model to {pushed_path}, which the serving directory no longer holds"
