"""Retraining on new spans, end to end, as a cron job would call it: `python -m pipeline retrain` on
`DIR/span-{SPAN}/penguins.csv`, one working directory through six calls:

1. span 1 (120 penguins) alone: trains on it and pushes version 1;
2. span 2 (the other 224 penguins) added: trains on span 2 only, judged against span 1's model, and pushes; a
   second `retrain` started meanwhile exits at once, saying another run is in progress; `--keep-versions 1`
   leaves span 2's version alone in the serving directory;
3. no new span: nothing runs, and the command says so;
3b. span 2 delivered again with other content (ten rows fewer): the span changed since it was read, so it
   trains on it again;
4. span 3 (Biscoe penguins only: the island shares moved past the spec's drift bound against span 2): the run
   stops before Transform, naming the column and the distance, and nothing is pushed;
5. span 4 (span 2's penguins again): compared with span 2, the newest span that passed the gate, not with the
   refused span 3, so it trains.
The spec is the bundled one with lower absolute bounds, so that a model of 80 training rows passes them, and
wider change bounds: span 2's eval split has about 75 rows, so one penguin is more than a point of accuracy, and
the bundled bounds (0.02, 0.03, 15 g) would judge sampling noise between two small models rather than retraining.
"""

import json
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline import cli
from pipeline.definition.data import example_gen_fingerprint
from pipeline.operations.retrain import finished_span_runs
from pipeline.read import results
from pipeline.runners import local as local_runner

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli

pytestmark = pytest.mark.slow


def write_span(spans_dir, span: int, frame: pd.DataFrame) -> None:
    folder = spans_dir / f"span-{span}"
    folder.mkdir(parents=True, exist_ok=True)
    # Integers stay integers with empty cells for missing values, as in the bundled CSV.
    frame.astype({c: "Int64" for c in ("flipper_length_mm", "body_mass_g", "year")}).to_csv(
        folder / "penguins.csv", index=False)


def versions(serving) -> list[str]:
    return sorted(p.name for p in serving.iterdir() if p.name.isdigit()) if serving.exists() else []


def newest_run(workdir):
    """(node -> execution state, node -> output key -> artifacts, ids of the Evaluator's baseline models) of the
    newest run."""
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    run = results.pipeline_runs(store)[-1]
    executions = results.executions_by_node(store, run)
    baseline = set()
    if "Evaluator" in executions:
        baseline = {e.artifact_id for e in store.get_events_by_execution_ids([executions["Evaluator"][-1].id])
                    if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == "baseline_model"}
    return {node: e[-1].last_known_state for node, e in executions.items()}, results.run_outputs(store, run), baseline


def gate_previous_statistics(workdir) -> set[int]:
    """Ids of the previous span's statistics that the newest run's SchemaGate compared with (drift)."""
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    gate = results.executions_by_node(store, results.pipeline_runs(store)[-1])["SchemaGate"][-1]
    return {e.artifact_id for e in store.get_events_by_execution_ids([gate.id])
            if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == "previous_statistics"}


def examples_per_split(statistics) -> dict[str, int]:
    counts = {}
    for split in ("train", "eval"):
        with open(os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb"), "rb") as f:
            counts[split] = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()).datasets[0].num_examples
    return counts


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrain")
    penguins = pd.read_csv(PENGUINS_CSV)
    first = penguins.sample(n=120, random_state=7)
    spans = tmp / "spans"
    write_span(spans, 1, first)
    spec = yaml.safe_load(PENGUINS_HEADS.read_text())
    for head, bound in zip(spec["heads"], ({"lower": 0.8, "tolerance": 0.05}, {"lower": 0.6, "tolerance": 0.08},
                                           {"upper": 500, "tolerance": 40})):
        head["threshold"].update(bound)
    heads = tmp / "heads.yaml"
    heads.write_text(yaml.safe_dump(spec))
    workdir = tmp / "work"
    args = ["retrain", "--data", str(spans / "span-{SPAN}" / "penguins.csv"), "--heads", str(heads),
            "--schema", str(ROOT / "schemas" / "penguins" / "schema.pbtxt"), "--workdir", str(workdir)]
    outcome = {"rows": {1: len(first), 2: len(penguins) - len(first)}, "serving": workdir / "serving"}

    outcome["span1"] = run_cli(*args)
    outcome["span1_versions"] = versions(workdir / "serving")
    outcome["span1_run"] = newest_run(workdir)

    write_span(spans, 2, penguins.drop(first.index))
    log = tmp / "span2.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "w") as out:
        span2 = subprocess.Popen([sys.executable, "-m", "pipeline", *args, "--keep-versions", "1"], cwd=ROOT,
                                 env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 300
        while "new span 2" not in log.read_text() and span2.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        started = time.monotonic()
        outcome["concurrent"] = run_cli(*args)
        outcome["concurrent_seconds"] = time.monotonic() - started
        outcome["span2_code"] = span2.wait(timeout=900)
    outcome["span2_output"] = log.read_text()
    outcome["span2_versions"] = versions(workdir / "serving")
    outcome["span2_run"] = newest_run(workdir)

    outcome["again"] = run_cli(*args)
    outcome["again_versions"] = versions(workdir / "serving")
    outcome["again_fingerprints"] = (finished_span_runs(workdir / "metadata.sqlite")[-1].fingerprint,
                                     example_gen_fingerprint([spans / "span-2" / "penguins.csv"]))

    time.sleep(1.1)   # ExampleGen's fingerprint holds modification times to the second
    write_span(spans, 2, penguins.drop(first.index).iloc[:-10])
    outcome["redelivered"] = run_cli(*args)
    outcome["redelivered_versions"] = versions(workdir / "serving")
    outcome["redelivered_run"] = newest_run(workdir)

    write_span(spans, 3, penguins[penguins.island == "Biscoe"])
    outcome["drift"] = run_cli(*args)
    outcome["drift_versions"] = versions(workdir / "serving")
    outcome["drift_run"] = newest_run(workdir)
    write_span(spans, 4, penguins.drop(first.index))
    outcome["after_drift"] = run_cli(*args)
    outcome["after_drift_run"] = newest_run(workdir)
    outcome["after_drift_previous"] = gate_previous_statistics(workdir)
    return outcome


def test_first_span_trains_and_pushes_a_version(scenario):
    assert scenario["span1"].returncode == cli.EXIT_PUSHED, scenario["span1"].stderr[-3000:]
    assert "new span 1: retraining on it" in scenario["span1"].stdout
    assert len(scenario["span1_versions"]) == 1


def test_new_span_trains_on_that_span_only_and_pushes_when_no_head_got_worse(scenario):
    output = scenario["span2_output"]
    assert scenario["span2_code"] == cli.EXIT_PUSHED, output[-3000:]
    assert "model blessed and pushed to" in output
    states, outputs, baseline = scenario["span2_run"]
    (examples,) = outputs["CsvExampleGen"]["examples"]
    assert examples.custom_properties["span"].int_value == 2
    (statistics,) = outputs["StatisticsGen"]["statistics"]
    assert sum(examples_per_split(statistics).values()) == scenario["rows"][2]
    # Judged against span 1's model: the Evaluator had a baseline and every head passed its change bound.
    (evaluation,) = outputs["Evaluator"]["evaluation"]
    assert results.describe_failures(evaluation.uri) == []
    _, first_outputs, _ = scenario["span1_run"]
    assert baseline == {first_outputs["Trainer"]["model"][0].id}
    # The push record beside the model names the span it was trained on.
    (version,) = scenario["span2_versions"]
    record = json.loads((scenario["serving"] / version / "assets.extra" / "push.json").read_text())
    assert record["data"]["span"] == 2 and record["data"]["uri"] == examples.uri


def test_a_second_retrain_while_one_runs_exits_at_once_saying_so(scenario):
    result = scenario["concurrent"]
    assert result.returncode == cli.EXIT_BUSY, (result.stdout[-2000:], result.stderr[-2000:])
    assert "another run of this pipeline is in progress (pid" in result.stderr
    assert scenario["concurrent_seconds"] < 30
    assert "[start]" not in result.stderr


def test_keep_versions_leaves_only_the_newest(scenario):
    assert len(scenario["span2_versions"]) == 1
    assert scenario["span2_versions"] != scenario["span1_versions"]
    assert "kept the newest version; deleted" in scenario["span2_output"]


def test_no_new_span_does_nothing_and_says_so(scenario):
    result = scenario["again"]
    assert result.returncode == cli.EXIT_PUSHED, result.stderr[-2000:]
    assert "no new span: the newest, span 2" in result.stdout and "nothing to do" in result.stdout
    assert "[start]" not in result.stderr
    assert scenario["again_versions"] == scenario["span2_versions"]
    # What the command compares: the fingerprint ExampleGen recorded, and its own of the files now there.
    recorded, now = scenario["again_fingerprints"]
    assert recorded == now and recorded.startswith("split:all,num_files:1,")


def test_a_span_delivered_again_with_other_content_is_read_again(scenario):
    result = scenario["redelivered"]
    assert result.returncode in (cli.EXIT_PUSHED, cli.EXIT_NOT_BLESSED), (result.stdout[-2000:], result.stderr[-3000:])
    assert "span 2 changed since run" in result.stdout and "retraining on it" in result.stdout
    states, outputs, _ = scenario["redelivered_run"]
    assert states["CsvExampleGen"] == metadata_store_pb2.Execution.COMPLETE
    (statistics,) = outputs["StatisticsGen"]["statistics"]
    assert sum(examples_per_split(statistics).values()) == scenario["rows"][2] - 10


def test_a_span_that_drifted_past_the_bound_stops_before_transform(scenario):
    result = scenario["drift"]
    assert result.returncode == cli.EXIT_DATA_REJECTED, (result.stdout[-2000:], result.stderr[-3000:])
    assert ("(span 3) moved further from the previous span than the heads spec's drift/skew bounds allow"
            in result.stderr)
    # Span 3 is all Biscoe; about half of span 2 (as delivered again) is.
    assert re.search(r"column 'island': The Linfty distance between current and previous is 0\.5\d", result.stderr)
    assert "(the previous span compared with: span 2, the newest earlier span whose data passed" in result.stderr
    states, outputs, _ = scenario["drift_run"]
    assert outputs["CsvExampleGen"]["examples"][0].custom_properties["span"].int_value == 3
    for component in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert component not in states, states
    assert scenario["drift_versions"] == scenario["redelivered_versions"]


def test_a_span_after_a_refused_one_is_compared_with_the_last_span_that_passed(scenario):
    result = scenario["after_drift"]
    assert result.returncode in (cli.EXIT_PUSHED, cli.EXIT_NOT_BLESSED), (result.stdout[-2000:], result.stderr[-3000:])
    assert "new span 4: retraining on it" in result.stdout
    assert ("note: span(s) 3 on disk were never trained on (late, or stopped by the checks); retrain reads the "
            "newest span only: `run --data ") in result.stdout and "span-3/penguins.csv` trains on one" in result.stdout
    assert "moved further from the previous span" not in result.stderr
    states, outputs, _ = scenario["after_drift_run"]
    assert outputs["CsvExampleGen"]["examples"][0].custom_properties["span"].int_value == 4
    assert states["Transform"] == metadata_store_pb2.Execution.COMPLETE
    # The drift check ran against span 2's statistics (as last read), not span 3's.
    _, span2_outputs, _ = scenario["redelivered_run"]
    assert scenario["after_drift_previous"] == {span2_outputs["StatisticsGen"]["statistics"][0].id}
