"""Beam worker processes for large data, measured: the ExampleGen and the Evaluator alone, per Beam setting.

What `--beam-workers` rests on (pipeline/runners/local.py), one measurement after the other in this invocation:

- ExampleGen: CsvExampleGen with the pipeline's input config (every `*.csv` of `--data`, split 2:1 into train
  and eval) in a one-component TFX pipeline, per setting: seconds, and the files it wrote per split.
- Evaluator: TFMA as the Evaluator runs it (`evaluator_options.analyse`: the spec's EvalConfig, the run's newest
  Trainer model) on the first `--eval-rows` rows of a finished run's eval split, rewritten as one gzipped
  TFRecord file and as two: in-process on one file, two worker processes on two files, and on one.

Usage (after the benchmark's 1M run):
  .venv/bin/python -m benchmarks.worker_processes --data runs/benchmarks/data_1000000 \
      --workdir runs/benchmarks/run_1000000 --heads schemas/synthetic/heads.yaml --eval-rows 100000
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import argparse
import glob
import os
import tempfile
import time
from pathlib import Path

from benchmarks.beam_options import SETTINGS

EXAMPLE_GEN_SETTINGS = {
    "in_process": SETTINGS["in_process"],
    # Two bundles in one process (threads): also two files per split, with no worker to start.
    "in_process_2_bundles": ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=2"],
    "multi_process_2": SETTINGS["multi_process_2"],
}


def example_gen_seconds(data_dir: str, beam_args: list[str]) -> tuple[float, dict[str, int]]:
    """Seconds of one CsvExampleGen run on `data_dir`, and the number of files it wrote per split."""
    from tfx.orchestration import metadata  # noqa: PLC0415
    from tfx.orchestration import pipeline as tfx_pipeline  # noqa: PLC0415
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner  # noqa: PLC0415

    from pipeline.definition.data import resolve_data  # noqa: PLC0415
    from pipeline.definition.factory import DIRECT_RUNNER_WORKER_SOFTWARE, example_gen_component  # noqa: PLC0415

    root = tempfile.mkdtemp(prefix="worker_processes_")
    example_gen = example_gen_component(resolve_data(Path(data_dir), "csv")[0])
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name="example_gen_alone", pipeline_root=root, components=[example_gen], enable_cache=False,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(os.path.join(root, "m.sqlite")),
        beam_pipeline_args=[*beam_args, DIRECT_RUNNER_WORKER_SOFTWARE])
    started = time.monotonic()
    BeamDagRunner().run(pipeline)
    seconds = time.monotonic() - started
    files = {split: len(glob.glob(os.path.join(root, "CsvExampleGen", "examples", "*", f"Split-{split}", "*")))
             for split in ("train", "eval")}
    return seconds, files


def rewrite_eval_rows(eval_files: str, rows: int, out: str) -> dict[str, str]:
    """The first `rows` records of the eval split as one gzipped file and as two (alternating): their patterns."""
    import tensorflow as tf  # noqa: PLC0415

    options = tf.io.TFRecordOptions(compression_type="GZIP")
    os.makedirs(os.path.join(out, "one"))
    os.makedirs(os.path.join(out, "two"))
    one = tf.io.TFRecordWriter(os.path.join(out, "one", "part-0.gz"), options)
    two = [tf.io.TFRecordWriter(os.path.join(out, "two", f"part-{i}.gz"), options) for i in range(2)]
    for i, record in enumerate(tf.data.TFRecordDataset(glob.glob(eval_files), compression_type="GZIP").take(rows)):
        one.write(record.numpy())
        two[i % 2].write(record.numpy())
    for writer in [one, *two]:
        writer.close()
    return {"one file": os.path.join(out, "one", "*"), "two files": os.path.join(out, "two", "*")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder of the synthetic CSV files")
    parser.add_argument("--workdir", required=True, help="the workdir of a finished `python -m pipeline run`")
    parser.add_argument("--heads", required=True, help="that run's heads spec")
    parser.add_argument("--eval-rows", type=int, default=100_000, help="eval rows TFMA scores per setting")
    args = parser.parse_args()

    for name, beam_args in EXAMPLE_GEN_SETTINGS.items():
        seconds, files = example_gen_seconds(args.data, beam_args)
        print(f"CsvExampleGen {name:22} {seconds:7.1f} s   files per split {files}", flush=True)

    from benchmarks.evaluator_options import analyse  # noqa: PLC0415 - imports TFMA
    from benchmarks.floors import newest_path  # noqa: PLC0415
    from components.spec import load_spec  # noqa: PLC0415
    from pipeline.definition.eval_config import build_eval_config  # noqa: PLC0415

    artifacts = os.path.join(args.workdir, "artifacts")
    model_dir = newest_path(os.path.join(artifacts, "Trainer", "model", "*", "Format-Serving"), "Trainer model")
    eval_split = newest_path(os.path.join(artifacts, "CsvExampleGen", "examples", "*", "Split-eval"), "eval split")
    patterns = rewrite_eval_rows(os.path.join(eval_split, "*"), args.eval_rows, tempfile.mkdtemp())
    eval_config = build_eval_config(load_spec(args.heads), None)
    for files, setting in (("one file", "in_process"), ("two files", "multi_process_2"),
                           ("one file", "multi_process_2")):
        seconds = analyse(eval_config, model_dir, patterns[files], SETTINGS[setting])
        print(f"Evaluator ({args.eval_rows:,} rows) {files:9} {setting:16} {seconds:7.1f} s", flush=True)


if __name__ == "__main__":
    main()
