"""Rollback, end to end: after `rollback`, the next run is judged against the model serving again.

One workdir, three runs of the penguins pipeline (each training change makes a new model), with bounds wide
enough that every model is blessed: model 1 pushed; model 2 pushed; `rollback` takes model 2's version out of
service; model 3 is then compared with model 1, the model serving again, not with the rolled-back model 2.
"""

import re

import pytest
import yaml
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import cli
from pipeline.read import results
from pipeline.runners import local as local_runner

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli

pytestmark = pytest.mark.slow


def model_and_baseline(workdir) -> tuple[int, set[int]]:
    """The newest run's Trainer model id and the ids of the models its Evaluator took as the baseline."""
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    run = results.pipeline_runs(store)[-1]
    (model,) = results.run_outputs(store, run)["Trainer"]["model"]
    evaluator = results.executions_by_node(store, run)["Evaluator"][-1]
    baseline = {e.artifact_id for e in store.get_events_by_execution_ids([evaluator.id])
                if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == "baseline_model"}
    return model.id, baseline


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollback")
    spec = yaml.safe_load(PENGUINS_HEADS.read_text())
    for head, bound in zip(spec["heads"], ({"lower": 0.8, "tolerance": 0.2}, {"lower": 0.6, "tolerance": 0.2},
                                           {"upper": 500, "tolerance": 200})):
        head["threshold"].update(bound)
    heads, workdir = tmp / "heads.yaml", tmp / "work"
    args = ["run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--workdir", str(workdir),
            "--schema", str(ROOT / "schemas" / "penguins" / "schema.pbtxt")]
    outcome = {}
    for name, epochs in (("first", 30), ("second", 35), ("third", 40)):
        if name == "third":
            outcome["rollback"] = run_cli("rollback", "--serving-dir", str(workdir / "serving"))
        spec["training"]["epochs"] = epochs
        heads.write_text(yaml.safe_dump(spec))
        outcome[name] = run_cli(*args)
        outcome[f"{name}_model"] = model_and_baseline(workdir)
    # The third model rolled back, then the same command again: everything comes from the cache.
    outcome["second_rollback"] = run_cli("rollback", "--serving-dir", str(workdir / "serving"))
    outcome["third_again"] = run_cli(*args)
    outcome["workdir"] = workdir
    return outcome


def test_after_a_rollback_the_candidate_is_judged_against_the_model_serving_again(scenario):
    for name in ("first", "second", "third"):
        result = scenario[name]
        assert result.returncode == cli.EXIT_PUSHED, (name, result.stdout[-2000:], result.stderr[-3000:])
    assert scenario["rollback"].returncode == 0, scenario["rollback"].stderr[-2000:]
    first, _ = scenario["first_model"]
    second, second_baseline = scenario["second_model"]
    third, third_baseline = scenario["third_model"]
    assert second_baseline == {first}
    assert third_baseline == {first}, (third_baseline, second)


def test_an_unchanged_rerun_of_a_rolled_back_model_says_it_was_rolled_back(scenario):
    assert scenario["second_rollback"].returncode == 0, scenario["second_rollback"].stderr[-2000:]
    result = scenario["third_again"]
    assert result.returncode == cli.EXIT_PUSHED, (result.stdout[-2000:], result.stderr[-3000:])
    pushed = re.search(r"serving/(\d+)", scenario["third"].stdout).group(1)
    assert "nothing changed since an earlier run" in result.stdout
    assert (f"that run pushed this model to {scenario['workdir'] / 'serving' / pushed}, and it was rolled back "
            f"since (kept in {scenario['workdir'] / 'serving' / '.rolled-back' / pushed})") in result.stdout
    assert sorted(p.name for p in (scenario["workdir"] / "serving").iterdir() if p.name.isdigit()) == [
        re.search(r"serving/(\d+)", scenario["first"].stdout).group(1)]
