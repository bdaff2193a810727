"""Marginal cost per 100k rows of StatisticsGen and Transform, with repeats, sizes interleaved.

The issue's target "no component's marginal cost growing with size" compares the extra seconds per 100k rows from
10k to 100k rows with those from 100k to 1M. For StatisticsGen and Transform one pipeline run per size leaves it
open (BENCHMARKS.md, "Every target in one invocation"): their fixed costs dominate at 100k, so the 10k->100k
figure is a small difference of two larger, noisy numbers. Here each of the two runs in a TFX pipeline of its
own, as `create_pipeline` builds it (Importer of the ExampleGen output of an earlier benchmark run at that size
-> StatisticsGen; ImportSchemaGen of the synthetic schema -> Transform), timed by the local runner's own
`[start]`/`[done]` lines, in-process Beam as the pipeline runs them at every size. Every round runs every size,
in alternating order, so a slow spell of the shared machine falls on all sizes alike.

Usage (after `benchmarks/run_benchmarks.py --rows 10000 100000 1000000` has left its runs in runs/benchmarks):
  .venv/bin/python -m benchmarks.marginal_cost --rounds 3 --json benchmarks/results/results_marginal_cost.json
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np

from benchmarks.run_benchmarks import marginal_seconds_per_100k

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("StatisticsGen", "Transform")
_DONE = re.compile(r"^\[done\]\s+(\S+) in ([\d.]+) s", re.MULTILINE)


def done_seconds(log: str) -> dict[str, float]:
    """Each component's seconds from the local runner's `[done] NAME in S s` lines."""
    return {name: float(seconds) for name, seconds in _DONE.findall(log)}


def round_orders(sizes: Sequence[int], rounds: int) -> list[list[int]]:
    """The sizes of each round: ascending in even rounds, descending in odd ones."""
    ascending = sorted(sizes)
    return [ascending if r % 2 == 0 else ascending[::-1] for r in range(rounds)]


def summarize(seconds: Mapping[str, Mapping[int, Sequence[float]]]) -> dict:
    """Per component: the median seconds per size, the marginal cost per 100k rows between consecutive sizes from
    the medians and from each round, and whether the last step's marginal cost is above the first's in the medians
    and in how many rounds."""
    summary = {}
    for component, by_size in seconds.items():
        rounds = min(len(v) for v in by_size.values())
        per_round = [marginal_seconds_per_100k({size: values[r] for size, values in by_size.items()})
                     for r in range(rounds)]
        medians = {size: float(np.median(values)) for size, values in by_size.items()}
        from_medians = marginal_seconds_per_100k(medians)
        steps = list(from_medians)
        summary[component] = {
            "median_s": {str(size): round(value, 2) for size, value in medians.items()},
            "marginal_s_per_100k_from_medians": from_medians,
            "marginal_s_per_100k_per_round": per_round,
            "last_step_above_first": {
                "in_medians": from_medians[steps[-1]] > from_medians[steps[0]],
                "rounds": sum(m[steps[-1]] > m[steps[0]] for m in per_round),
                "of_rounds": rounds,
            },
        }
    return summary


@contextlib.contextmanager
def stderr_captured(path: str) -> Iterator[None]:
    """Everything written to file descriptor 2 (the runner's lines, Beam's and TensorFlow's logs) goes to `path`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as out:
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def newest_examples(run_dir: Path) -> str:
    paths = sorted(glob.glob(str(run_dir / "artifacts" / "CsvExampleGen" / "examples" / "*")),
                   key=lambda p: int(Path(p).name))
    if not paths:
        raise SystemExit(f"{run_dir}: no CsvExampleGen output; run benchmarks/run_benchmarks.py at this size first")
    return paths[-1]


def time_components(examples_uri: str, spec, schema_file: str, workdir: str) -> dict[str, float]:
    """One run of StatisticsGen and Transform on `examples_uri`, no cache; their seconds."""
    from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen  # noqa: PLC0415
    from tfx.components.statistics_gen.component import StatisticsGen  # noqa: PLC0415
    from tfx.dsl.components.common.importer import Importer  # noqa: PLC0415
    from tfx.orchestration import pipeline as tfx_pipeline  # noqa: PLC0415
    from tfx.types import artifact_utils, standard_artifacts  # noqa: PLC0415

    from pipeline.definition.factory import DIRECT_RUNNER_WORKER_SOFTWARE, transform_component  # noqa: PLC0415
    from pipeline.runners import local as local_runner  # noqa: PLC0415

    examples = Importer(source_uri=examples_uri, artifact_type=standard_artifacts.Examples,
                        properties={"split_names": artifact_utils.encode_split_names(["train", "eval"])}
                        ).with_id("examples")
    statistics_gen = StatisticsGen(examples=examples.outputs["result"])
    schema_gen = ImportSchemaGen(schema_file=schema_file)
    transform = transform_component(examples.outputs["result"], schema_gen.outputs["schema"], spec)
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name="marginal_cost", pipeline_root=os.path.join(workdir, "root"),
        components=[examples, statistics_gen, schema_gen, transform], enable_cache=False,
        metadata_connection_config=local_runner.metadata_config(os.path.join(workdir, "metadata.sqlite")),
        beam_pipeline_args=[*local_runner.IN_PROCESS_BEAM_ARGS, DIRECT_RUNNER_WORKER_SOFTWARE])
    log = os.path.join(workdir, "stderr.log")
    try:
        with stderr_captured(log):
            local_runner.run(pipeline)
    except Exception:
        print(Path(log).read_text()[-5000:], file=sys.stderr)
        raise
    seconds = done_seconds(Path(log).read_text())
    return {name: seconds[name] for name in COMPONENTS}


def main(argv: Optional[Sequence[str]] = None) -> None:
    from components.spec import load_spec  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "benchmarks"),
                        help="the benchmark harness's folder (its run_<rows> workdirs)")
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heads", default=str(ROOT / "schemas" / "synthetic" / "heads.yaml"))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    spec = load_spec(args.heads)
    schema_file = str(Path(args.heads).resolve().parent / "schema.pbtxt")
    examples = {rows: newest_examples(Path(args.runs) / f"run_{rows}") for rows in args.rows}
    seconds: dict[str, dict[int, list[float]]] = {c: {rows: [] for rows in args.rows} for c in COMPONENTS}
    for number, order in enumerate(round_orders(args.rows, args.rounds), start=1):
        for rows in order:
            workdir = tempfile.mkdtemp(prefix=f"marginal_cost_{rows}_")
            try:
                measured = time_components(examples[rows], spec, schema_file, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            for component, value in measured.items():
                seconds[component][rows].append(value)
            print(f"round {number}, {rows:>9,} rows: " + ", ".join(f"{c} {v:.1f} s" for c, v in measured.items()),
                  flush=True)
    summary = summarize(seconds)
    print()
    for component, result in summary.items():
        verdict = result["last_step_above_first"]
        print(f"{component}: median s {result['median_s']}; marginal s per 100k rows from the medians "
              f"{result['marginal_s_per_100k_from_medians']}; the last step's above the first's in "
              f"{verdict['rounds']} of {verdict['of_rounds']} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": "python -m benchmarks.marginal_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
            "rows": args.rows, "rounds": args.rounds, "examples": examples,
            "seconds": {c: {str(r): v for r, v in by.items()} for c, by in seconds.items()},
            "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
