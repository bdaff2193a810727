"""Faults and cache correctness, end to end, on one working directory that lives through six runs:

A. killed with SIGKILL (the whole process group) while the Trainer runs;
B. the same command again: completes, with everything upstream of the Trainer reused from the cache;
C. again with nothing changed: every component comes from the cache, nothing is pushed, and the command says so;
D. a training setting changed: the Trainer onwards re-execute, Transform does not;
E. a threshold changed: only the Evaluator onwards re-execute;
F. the curated schema edited in place: the data is validated against the new text (and now stopped).
The data holds an island never seen before and rows with missing labels: both proceed under their rules.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import cli
from pipeline.read import results
from pipeline.runners import local as local_runner

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli

pytestmark = pytest.mark.slow

UPSTREAM_OF_TRAINER = ["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "SchemaGate",
                       "Transform"]
CACHED = metadata_store_pb2.Execution.CACHED
COMPLETE = metadata_store_pb2.Execution.COMPLETE


def run_and_kill_during_trainer(args, timeout=600) -> int:
    """Starts the command in its own process group and SIGKILLs the whole group once the Trainer has begun."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        if "[start]  Trainer" in line:
            time.sleep(3)   # well inside the Trainer: its execution is registered and running
            break
        if time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def latest_run_states(workdir) -> dict[str, int]:
    """`{component: execution state}` of the newest run, from ML Metadata."""
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    run = results.pipeline_runs(store)[-1]
    return {node: executions[-1].last_known_state
            for node, executions in results.executions_by_node(store, run).items()}


def versions(workdir) -> list[str]:
    serving = workdir / "serving"
    return sorted(p.name for p in serving.iterdir() if p.name.isdigit()) if serving.exists() else []


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    lines = PENGUINS_CSV.read_text().splitlines()
    data = tmp / "penguins.csv"
    data.write_text("\n".join(lines + ["Adelie,Atlantis,39.0,18.0,190,3700,,2009"]) + "\n")
    workdir = tmp / "run"
    spec = yaml.safe_load(PENGUINS_HEADS.read_text())
    heads = {}
    for name, edit in [("same", lambda s: None),
                       ("epochs", lambda s: s["training"].update(epochs=s["training"]["epochs"] + 5)),
                       ("threshold", lambda s: s["heads"][1]["threshold"].update(lower=0.75))]:
        edit(spec)   # cumulative: the threshold run keeps the epochs change
        heads[name] = tmp / f"heads_{name}.yaml"
        heads[name].write_text(yaml.safe_dump(spec))

    schema = tmp / "schema.pbtxt"
    schema.write_text((ROOT / "schemas" / "penguins" / "schema.pbtxt").read_text())

    def args(spec_name):
        return ["run", "--data", str(data), "--heads", str(heads[spec_name]), "--workdir", str(workdir),
                "--schema", str(schema)]

    outcome = {"killed": run_and_kill_during_trainer(args("same"))}
    outcome["killed_versions"] = versions(workdir)
    for name, spec_name in [("rerun", "same"), ("unchanged", "same"), ("epochs", "epochs"),
                            ("threshold", "threshold")]:
        outcome[name] = run_cli(*args(spec_name))
        outcome[f"{name}_states"] = latest_run_states(workdir)
        outcome[f"{name}_versions"] = versions(workdir)
    # F: the curated schema edited in place, the same path: island's unseen values are no longer tolerated.
    schema.write_text(schema.read_text().replace("min_domain_mass: 0.9", "min_domain_mass: 1.0"))
    outcome["schema_edited"] = run_cli(*args("threshold"))
    outcome["schema_edited_states"] = latest_run_states(workdir)
    outcome["runs_list"] = run_cli("runs", "--workdir", str(workdir))
    return outcome


def test_killed_run_left_nothing_in_serving(runs):
    assert runs["killed"] == -signal.SIGKILL
    assert runs["killed_versions"] == []


def test_the_runs_list_shows_where_the_killed_run_stopped(runs):
    listing = runs["runs_list"]
    assert listing.returncode == 0, listing.stderr[-2000:]
    killed, rerun = listing.stdout.splitlines()[1:3]
    assert "interrupted at Trainer" in killed, listing.stdout
    assert "interrupted" not in rerun and " yes " in rerun, listing.stdout


def test_rerun_after_the_kill_completes_reusing_everything_upstream_of_the_trainer(runs):
    assert runs["rerun"].returncode == cli.EXIT_PUSHED, runs["rerun"].stderr[-3000:]
    states = runs["rerun_states"]
    for component in UPSTREAM_OF_TRAINER:
        assert states[component] == CACHED, (component, states)
    for component in ("Trainer", "Evaluator", "Pusher"):
        assert states[component] == COMPLETE, (component, states)
    assert len(runs["rerun_versions"]) == 1
    # The runner's progress lines say which components were reused, and only those.
    for component, state in states.items():
        marked = re.search(rf"\[done\]\s+{component} in \d+\.\d s \(cached\)", runs["rerun"].stderr) is not None
        assert marked == (state == CACHED), (component, state)


def test_unseen_category_and_missing_labels_proceed(runs):
    # The data had an island outside the schema's domain (within min_domain_mass) and rows without labels.
    assert "does not match the curated schema" not in runs["rerun"].stderr
    assert "model blessed and pushed to" in runs["rerun"].stdout


def test_rerun_with_nothing_changed_pushes_nothing_and_says_so(runs):
    result = runs["unchanged"]
    assert result.returncode == cli.EXIT_PUSHED, result.stderr[-3000:]
    assert "nothing changed since an earlier run" in result.stdout
    assert "that run pushed this model to" in result.stdout
    assert runs["unchanged_versions"] == runs["rerun_versions"]
    states = runs["unchanged_states"]
    # The baseline is the newest blessed model older than the (cached) candidate, so the Evaluator's inputs
    # are those of the run that first judged it, and it and the Pusher come from the cache too.
    for component in UPSTREAM_OF_TRAINER + ["Trainer", "Evaluator", "Pusher"]:
        assert states[component] == CACHED, (component, states)


def test_training_setting_change_retrains_but_does_not_retransform(runs):
    states = runs["epochs_states"]
    assert runs["epochs"].returncode in (cli.EXIT_PUSHED, cli.EXIT_NOT_BLESSED), runs["epochs"].stderr[-3000:]
    for component in UPSTREAM_OF_TRAINER:
        assert states[component] == CACHED, (component, states)
    for component in ("Trainer", "Evaluator", "Pusher"):
        assert states[component] == COMPLETE, (component, states)


def test_threshold_change_reevaluates_without_retraining(runs):
    states = runs["threshold_states"]
    assert runs["threshold"].returncode in (cli.EXIT_PUSHED, cli.EXIT_NOT_BLESSED), runs["threshold"].stderr[-3000:]
    for component in UPSTREAM_OF_TRAINER + ["Trainer"]:
        assert states[component] == CACHED, (component, states)
    assert states["Evaluator"] == COMPLETE


def test_an_edited_schema_at_the_same_path_is_checked_again(runs):
    result = runs["schema_edited"]
    assert result.returncode == cli.EXIT_DATA_REJECTED, result.stderr[-3000:]
    assert "column 'island'" in result.stderr and "does not match the curated schema" in result.stderr
    states = runs["schema_edited_states"]
    for component in ("ImportSchemaGen", "ExampleValidator", "SchemaGate"):
        assert states[component] != CACHED, (component, states)
