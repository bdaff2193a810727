"""Beam options for the local runner, measured: in-process against multi-process, on the penguins pipeline.

Runs `python -m pipeline run` on the bundled penguins data once per setting, each in a fresh workdir (no cache),
one after the other in this same invocation, and prints per-component seconds and each setting's ratio to the
in-process baseline. Usage: `make venv && .venv/bin/python -m benchmarks.beam_options [--json OUT]`.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "in_process": ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"],
    "multi_process_2": ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def run_once(beam_args: list[str], workdir: Path) -> dict:
    cmd = [sys.executable, "-m", "pipeline", "run", "--data", "data/penguins/penguins.csv",
           "--heads", "schemas/penguins/heads.yaml", "--workdir", str(workdir)]
    cmd += [f"--beam-arg={a}" for a in beam_args]
    env = {**os.environ}
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    total = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    components = {m[0]: float(m[1]) for m in re.findall(r"\[done\]\s+(\S+) in ([\d.]+) s", result.stderr)}
    return {"total_s": round(total, 1), "components_s": components}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, beam_args in SETTINGS.items():
            results[name] = {"beam_args": beam_args, **run_once(beam_args, Path(tmp) / name)}
    base = results["in_process"]
    names = list(base["components_s"])
    print(f"{'component':24}" + "".join(f"{n:>18}" for n in results))
    for component in names + ["total (whole command)"]:
        cells = []
        for r in results.values():
            value = r["total_s"] if component.startswith("total") else r["components_s"].get(component, float("nan"))
            cells.append(f"{value:>18.1f}")
        print(f"{component:24}" + "".join(cells))
    for name, r in results.items():
        r["ratio_to_in_process"] = round(r["total_s"] / base["total_s"], 2)
        print(f"{name}: {r['ratio_to_in_process']:.2f} x in-process")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
