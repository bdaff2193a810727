"""Benchmark harness (issue 6): the pipeline on synthetic multi-head data at several sizes, with its floors.

For every size it generates the synthetic data (`data/synthetic/generate.py`), runs `python -m pipeline run` in
a fresh workdir as a subprocess, and records per component its wall time (the runner's `[start]`/`[done]` lines,
timestamped as they arrive), rows per second and the peak RSS of the whole process tree (the pipeline process
and every child, e.g. Beam workers) sampled with psutil while that component ran; plus the whole command and the
fixed start-up cost (process start to the first component's start). Then, in the same invocation:

- the cached rerun: the same command again on the largest size's unchanged inputs, as a fraction of the first;
- process start: `python -m pipeline --help`, best of three;
- the Trainer and serving floors (`benchmarks/floors.py`, a subprocess on the largest size's artifacts);
- the anchor: TFX's own penguin example (`benchmarks/tfx_penguin_anchor.py`) against `make demo`'s pipeline.

Model width, batch size and epochs come from the heads spec's `training` section and are printed and written
with the results, so a ratio cannot be bought by shrinking the model. Usage, from the project root:

    .venv/bin/python -m benchmarks.run_benchmarks --rows 10000 100000 1000000 --json benchmarks/results/results.json
"""

import argparse
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

import psutil

from components.spec import load_spec  # light: YAML and dataclasses, no TensorFlow

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
DEFAULT_HEADS = ROOT / "schemas" / "synthetic" / "heads.yaml"
SAMPLE_INTERVAL_S = 0.2
# The pipeline exits 4 when a head misses its threshold: every component ran except the push, still a timing.
_ACCEPTED_EXIT_CODES = (0, 4)
_EVENT = re.compile(r"^\[(start|done|failed)\]\s+(\S+)")
_MARGINAL_UNIT_ROWS = 100_000


@dataclasses.dataclass
class ComponentTiming:
    """One component's interval on the harness's monotonic clock, and its peak process-tree RSS."""

    name: str
    start_s: float
    end_s: Optional[float] = None
    peak_rss_bytes: int = 0

    @property
    def wall_s(self) -> float:
        return (self.end_s if self.end_s is not None else math.nan) - self.start_s


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 once the process is gone).

    Shared pages (e.g. a forked worker's copy-on-write memory) count once per process, so this is an upper
    bound on what the tree holds; it is what a container's memory limit sees, roughly.
    """
    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a worker that exited between listing and reading holds nothing
    return total


def component_events(lines: Iterable[tuple[float, str]]) -> list[ComponentTiming]:
    """Components' intervals from timestamped runner lines (`[start]  Name`, `[done]   Name in 1.0 s`)."""
    timings: dict[str, ComponentTiming] = {}
    for stamp, line in lines:
        match = _EVENT.match(line.strip())
        if not match:
            continue
        kind, name = match.groups()
        if kind == "start":
            timings[name] = ComponentTiming(name=name, start_s=stamp)
        elif name in timings:
            timings[name].end_s = stamp
    return list(timings.values())


def assign_peaks(timings: Sequence[ComponentTiming], samples: Sequence[tuple[float, int]]) -> None:
    """Sets each component's peak RSS: the largest sample taken while it ran (components may overlap).

    A component shorter than the sampling interval gets the first sample after its start, the tree's size
    just after it ran (0 if there is none).
    """
    for timing in timings:
        end = timing.end_s if timing.end_s is not None else math.inf
        inside = [rss for stamp, rss in samples if timing.start_s <= stamp <= end]
        after = [rss for stamp, rss in samples if stamp >= timing.start_s][:1]
        timing.peak_rss_bytes = max(inside or after, default=0)


def rows_per_second(rows: int, wall_s: float) -> Optional[float]:
    """Rows over wall time; None under 0.05 s, where the runner's timing resolution makes a rate meaningless."""
    return round(rows / wall_s, 0) if wall_s >= 0.05 else None


def marginal_seconds_per_100k(seconds_by_rows: Mapping[int, float]) -> dict[str, float]:
    """Extra seconds per 100k rows between consecutive sizes, keyed `"<small>-><large>"`.

    A component that scales linearly has the same marginal cost between every pair; a growing one gets
    slower per row as data grows (the issue's target: none growing).
    """
    sizes = sorted(seconds_by_rows)
    result = {}
    for small, large in zip(sizes, sizes[1:]):
        rows = (large - small) / _MARGINAL_UNIT_ROWS
        result[f"{small}->{large}"] = round((seconds_by_rows[large] - seconds_by_rows[small]) / rows, 2)
    return result


def marginal_costs(runs: Mapping[int, dict]) -> dict[str, dict[str, float]]:
    """Marginal seconds per 100k rows for every component (and the whole command) present at every size."""
    if len(runs) < 2:
        return {}
    names = set.intersection(*(set(run["components"]) for run in runs.values()))
    costs = {}
    for name in sorted(names, key=lambda n: list(next(iter(runs.values()))["components"]).index(n)):
        costs[name] = marginal_seconds_per_100k({rows: run["components"][name]["wall_s"]
                                                 for rows, run in runs.items()})
    costs["total (whole command)"] = marginal_seconds_per_100k({rows: run["total_s"] for rows, run in runs.items()})
    return costs


def _watch(process: subprocess.Popen, clock: Callable[[], float]) -> tuple[list[tuple[float, str]], list, str]:
    """Samples the tree's RSS until `process` exits; returns timestamped stderr lines, samples and stdout."""
    stderr_lines: list[tuple[float, str]] = []
    stdout_chunks: list[str] = []

    def read_stderr():
        for line in process.stderr:
            stderr_lines.append((clock(), line))

    def read_stdout():
        stdout_chunks.append(process.stdout.read())

    readers = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    for reader in readers:
        reader.start()
    samples = []
    while process.poll() is None:
        samples.append((clock(), tree_rss_bytes(process.pid)))
        time.sleep(SAMPLE_INTERVAL_S)
    for reader in readers:
        reader.join()
    return stderr_lines, samples, "".join(stdout_chunks)


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONWARNINGS": "ignore::FutureWarning"}


def run_pipeline(data: Path, heads: Path, workdir: Path, rows: int, beam_args: Sequence[str] = ()) -> dict:
    """One `python -m pipeline run` with per-component wall time, rows/s and peak tree RSS.

    Raises:
      SystemExit: if the pipeline failed (exit code other than pushed or not blessed), with its stderr tail.
    """
    cmd = [sys.executable, "-m", "pipeline", "run", "--data", str(data), "--heads", str(heads),
           "--workdir", str(workdir)] + [f"--beam-arg={a}" for a in beam_args]
    started = time.monotonic()
    process = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    stderr_lines, samples, stdout = _watch(process, time.monotonic)
    total = time.monotonic() - started
    if process.returncode not in _ACCEPTED_EXIT_CODES:
        tail = "".join(line for _, line in stderr_lines)[-3000:]
        raise SystemExit(f"pipeline run on {data} failed (exit {process.returncode}):\n{tail}")
    timings = component_events(stderr_lines)
    assign_peaks(timings, samples)
    construction = re.search(r"imports and pipeline construction: ([\d.]+) s", stdout)
    return {
        "rows": rows,
        "exit_code": process.returncode,
        "total_s": round(total, 1),
        "startup_s": round(timings[0].start_s - started, 1) if timings else None,
        "imports_and_construction_s": float(construction.group(1)) if construction else None,
        "peak_rss_bytes": max((rss for _, rss in samples), default=0),
        "components": {t.name: {"wall_s": round(t.wall_s, 1), "rows_per_s": rows_per_second(rows, t.wall_s),
                                "peak_rss_bytes": t.peak_rss_bytes}
                       for t in timings},
    }


def help_seconds(repeats: int = 3) -> float:
    """Best wall time of `python -m pipeline --help` over `repeats` fresh processes."""
    best = math.inf
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "pipeline", "--help"], cwd=ROOT, env=_env(), check=True,
                       capture_output=True)
        best = min(best, time.monotonic() - started)
    return round(best, 2)


def generate_data(rows: int, shards: int, out: Path) -> Path:
    """Writes the synthetic data once per (rows, shards); a complete earlier copy is reused."""
    done_marker = out / "_COMPLETE"
    if not done_marker.exists():
        subprocess.run([sys.executable, "-m", "data.synthetic.generate", "--rows", str(rows), "--shards", str(shards),
                        "--out", str(out)], cwd=ROOT, env=_env(), check=True)
        done_marker.write_text("")
    return out


def run_floors(workdir: Path, data: Path, heads: Path, trainer_wall_s: Optional[float]) -> dict:
    """The Trainer and serving floors on one run's artifacts, in a fresh process (see benchmarks/floors.py)."""
    cmd = [sys.executable, "-m", "benchmarks.floors", "--workdir", str(workdir), "--data", str(data),
           "--heads", str(heads)]
    if trainer_wall_s is not None:
        cmd += ["--trainer-wall-s", str(trainer_wall_s)]
    result = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"floors failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def penguin_anchor(out: Path) -> dict:
    """TFX's penguin example (benchmarks/tfx_penguin_anchor.py) against `make demo`'s pipeline, one after the other.

    Both start from empty workdirs, so neither reads the other's cache.
    """
    subprocess.run(["rm", "-rf", str(out / "anchor_tfx"), str(out / "anchor_demo")], check=True)
    # The example's Beam jobs each leave a copy of TFX (42 MB) in the temp folder (pipeline.py,
    # DIRECT_RUNNER_WORKER_SOFTWARE, which the example does not set): give it one that goes with its workdir.
    tmpdir = out / "anchor_tfx" / "tmp"
    tmpdir.mkdir(parents=True)
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tfx_penguin_anchor.py"), "--workdir",
                             str(out / "anchor_tfx")], cwd=ROOT, env={**_env(), "TMPDIR": str(tmpdir)},
                            capture_output=True, text=True)
    tfx_example_s = time.monotonic() - started
    subprocess.run(["rm", "-rf", str(tmpdir)], check=True)
    if result.returncode != 0:
        raise SystemExit(f"TFX's penguin example failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    penguins = ROOT / "data" / "penguins" / "penguins.csv"
    rows = len(penguins.read_text().splitlines()) - 1  # less the header
    demo = run_pipeline(penguins, ROOT / "schemas" / "penguins" / "heads.yaml", out / "anchor_demo", rows=rows)
    return {"tfx_penguin_example_s": round(tfx_example_s, 1), "make_demo_s": demo["total_s"],
            "ratio": round(demo["total_s"] / tfx_example_s, 3), "make_demo_components": demo["components"]}


def _mib(value: int) -> str:
    return f"{value / 2**20:,.0f}"


def format_table(runs: Mapping[int, dict]) -> str:
    """Per-component table: one row per component, wall s / rows/s / peak RSS MiB columns per size."""
    sizes = sorted(runs)
    names: list[str] = []
    for rows in sizes:
        names += [n for n in runs[rows]["components"] if n not in names]
    header = f"{'component':30}" + "".join(f"{f'{rows:,} rows: s':>18}{'rows/s':>10}{'RSS MiB':>9}"
                                           for rows in sizes)
    lines = [header, "-" * len(header)]
    for name in names:
        cells = []
        for rows in sizes:
            c = runs[rows]["components"].get(name)
            rate = f"{c['rows_per_s']:,.0f}" if c and c["rows_per_s"] is not None else "-"
            cells.append(f"{c['wall_s']:>18.1f}{rate:>10}{_mib(c['peak_rss_bytes']):>9}" if c
                         else f"{'-':>18}{'-':>10}{'-':>9}")
        lines.append(f"{name:30}" + "".join(cells))
    for label, key in (("start-up (to 1st comp.)", "startup_s"), ("total (whole command)", "total_s")):
        cells = []
        for rows in sizes:
            run = runs[rows]
            rss = _mib(run["peak_rss_bytes"]) if key == "total_s" else ""
            rate = f"{rows / run[key]:,.0f}" if key == "total_s" and run[key] else ""
            cells.append(f"{run[key]:>18.1f}{rate:>10}{rss:>9}")
        lines.append(f"{label:30}" + "".join(cells))
    return "\n".join(lines)


def build_results(spec_training: Mapping, heads: Path, runs: Mapping[int, dict], extras: Mapping) -> dict:
    """The JSON document: the fixed training settings, every size's run, marginal costs and the floors."""
    return {
        "heads_spec": str(heads),
        "training": {k: spec_training[k] for k in ("trunk", "batch_size", "epochs") if k in spec_training},
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "runs": {str(rows): run for rows, run in sorted(runs.items())},
        "marginal_s_per_100k_rows": marginal_costs(runs),
        **extras,
    }


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS), help="dataset sizes")
    parser.add_argument("--shards", type=int, default=2, help="CSV files per dataset")
    parser.add_argument("--heads", type=Path, default=DEFAULT_HEADS, help="the benchmark's heads spec")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "benchmarks",
                        help="data and workdirs go here (each size's workdir is emptied first)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip", nargs="*", default=[], choices=("rerun", "help", "floors", "anchor"),
                        help="measurements to leave out")
    args = parser.parse_args(argv)
    spec = load_spec(args.heads)
    training = spec.to_dict()["training"]
    print(f"benchmark spec {args.heads}: trunk {training.get('trunk')}, batch size {training.get('batch_size')}, "
          f"epochs {training.get('epochs')}", flush=True)

    runs, extras = {}, {}

    def save() -> None:
        # After every stage: a failure late in a long invocation keeps what was measured before it.
        if args.json:
            args.json.write_text(json.dumps(build_results(training, args.heads, runs, extras), indent=2) + "\n")

    for rows in sorted(args.rows):
        data = generate_data(rows, args.shards, args.out / f"data_{rows}")
        workdir = args.out / f"run_{rows}"
        subprocess.run(["rm", "-rf", str(workdir)], check=True)  # a fresh workdir: nothing cached
        print(f"running the pipeline on {rows:,} rows ...", flush=True)
        runs[rows] = run_pipeline(data, args.heads, workdir, rows)
        print(f"  {runs[rows]['total_s']} s", flush=True)
        save()
    largest = max(runs)
    largest_data, largest_workdir = args.out / f"data_{largest}", args.out / f"run_{largest}"
    if "rerun" not in args.skip:
        print(f"rerunning on {largest:,} rows with unchanged inputs (cache) ...", flush=True)
        rerun = run_pipeline(largest_data, args.heads, largest_workdir, largest)
        extras["cached_rerun"] = {"rows": largest, "total_s": rerun["total_s"],
                                  "fraction_of_first": round(rerun["total_s"] / runs[largest]["total_s"], 3),
                                  "components": rerun["components"]}
        save()
    if "help" not in args.skip:
        extras["help_s"] = help_seconds()
    stages = {"floors": lambda: run_floors(largest_workdir, largest_data, args.heads,
                                           runs[largest]["components"].get("Trainer", {}).get("wall_s")),
              "anchor": lambda: penguin_anchor(args.out)}
    for name, measure in stages.items():
        if name in args.skip:
            continue
        print(f"measuring {name} ...", flush=True)
        try:
            extras[name] = measure()
        except SystemExit as e:  # recorded, and the other measurements still run
            print(e, file=sys.stderr)
            extras[name] = {"error": str(e)[-2000:]}
        save()

    results = build_results(training, args.heads, runs, extras)
    print()
    print(format_table(runs))
    print(json.dumps({k: v for k, v in results.items() if k not in ("runs", "cached_rerun", "anchor")}, indent=2))
    anchor = results.get("anchor", {})
    if "ratio" in anchor:
        print(f"anchor: make demo {anchor['make_demo_s']} s, TFX's penguin example "
              f"{anchor['tfx_penguin_example_s']} s, ratio {anchor['ratio']:.2f}")
    if "cached_rerun" in results:
        print(f"cached rerun on {largest:,} rows: {results['cached_rerun']['total_s']} s, "
              f"{results['cached_rerun']['fraction_of_first']:.1%} of the first run")


if __name__ == "__main__":
    main()
