"""The Evaluator's Beam options, measured: TFMA on one finished run's model and eval split, per Beam setting.

Runs what the Evaluator runs (`tfma.run_model_analysis` with the EvalConfig `build_eval_config` makes from the
spec, the run's newest Trainer model and ExampleGen eval split) once per setting, one after the other in this
process, and prints each setting's seconds and its ratio to in-process. With `--profile`, the in-process run is
also profiled, and the share of TFMA's per-example metric work (its combiners' `add_input`) is printed.

Usage (after a run of the synthetic data, e.g. the benchmark's 100k run):
  .venv/bin/python -m benchmarks.evaluator_options --workdir runs/benchmarks/run_100000 \
      --heads schemas/synthetic/heads.yaml [--profile]
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import argparse
import cProfile
import os
import pstats
import tempfile
import time

import tensorflow_model_analysis as tfma
from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks.beam_options import SETTINGS  # the same settings as the whole-pipeline measurement
from benchmarks.floors import newest_path
from components.spec import load_spec
from pipeline.definition.eval_config import build_eval_config

# TFMA's per-example metric work: the metric combiners' add_input, called once per example, slice and metric.
_METRIC_WORK = ("metrics_plots_and_validations_evaluator.py", "add_input")


def analyse(eval_config, model_dir: str, eval_files: str, beam_args: list[str]) -> float:
    """Seconds of one TFMA run (model loading included, as in the Evaluator)."""
    started = time.monotonic()
    shared = tfma.default_eval_shared_model(model_dir, eval_config=eval_config)
    tfma.run_model_analysis(eval_shared_model=shared, eval_config=eval_config, data_location=eval_files,
                            file_format="tfrecords", output_path=tempfile.mkdtemp(),
                            pipeline_options=PipelineOptions(beam_args))
    return time.monotonic() - started


def metric_work_share(profile: cProfile.Profile) -> float:
    """The fraction of the profiled time spent in TFMA's per-example metric combiners."""
    stats = pstats.Stats(profile)
    work = sum(timing[3] for (path, _, function), timing in stats.stats.items()
               if path.endswith(_METRIC_WORK[0]) and function == _METRIC_WORK[1])
    return work / stats.total_tt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="the workdir of a finished `python -m pipeline run`")
    parser.add_argument("--heads", required=True, help="that run's heads spec")
    parser.add_argument("--profile", action="store_true", help="also profile the in-process run")
    args = parser.parse_args()
    eval_config = build_eval_config(load_spec(args.heads), None)
    artifacts = os.path.join(args.workdir, "artifacts")  # the pipeline root `python -m pipeline run` uses
    model_dir = newest_path(os.path.join(artifacts, "Trainer", "model", "*", "Format-Serving"), "Trainer model")
    eval_files = newest_path(os.path.join(artifacts, "CsvExampleGen", "examples", "*", "Split-eval"),
                             "eval split") + "/*"
    print(f"model {model_dir}\neval split {eval_files}", flush=True)
    seconds = {name: analyse(eval_config, model_dir, eval_files, beam_args) for name, beam_args in SETTINGS.items()}
    for name, value in seconds.items():
        print(f"{name:18} {value:7.1f} s   {value / seconds['in_process']:.2f} x in-process", flush=True)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(analyse, eval_config, model_dir, eval_files, SETTINGS["in_process"])
        print(f"in-process, profiled: {metric_work_share(profile):.0%} of the time in TFMA's per-example metric "
              f"combiners (add_input)")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(r"tensorflow_model_analysis/metrics/.*add_input", 12)


if __name__ == "__main__":
    main()
