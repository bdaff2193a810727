"""Per-head evaluation guards serving, end to end, on one working directory through five runs:

1. a modest model (tiny trunk, few epochs): pushed;
2. a deliberately worse Trainer setting: not blessed, the failing heads named, serving unchanged;
3. one head crippled (its loss weight near zero, its absolute bound loosened): only that head's change bound
   against the baseline fails, and only that head is named; not pushed;
4. a better setting on every head: pushed;
5. a head added: the baseline lacks it, so it is judged on its absolute bound alone; and dropping it again
   without `removed_heads` is refused before anything runs.
Every run changes the spec, so the Trainer really retrains (TFX's cache would otherwise return run 1's model).
"""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from components.spec import spec_from_dict
from pipeline import cli

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli

pytestmark = pytest.mark.slow

BASE = yaml.safe_load(PENGUINS_HEADS.read_text())


def spec_for(run: str) -> dict:
    if run == "slice_bound":
        # Run 5's model and bounds, plus a per-slice bound no island can meet: only the Evaluator re-runs.
        spec = spec_for("new_head")
        spec["heads"][2]["threshold"]["per_slice"] = [{"slice": ["island"], "upper": 1}]
        return spec
    spec = copy.deepcopy(BASE)
    species, sex, mass = spec["heads"]
    species["threshold"] = {"metric": "accuracy", "lower": 0.6, "tolerance": 0.1}
    sex["threshold"] = {"metric": "accuracy", "lower": 0.55, "tolerance": 0.1}
    mass["threshold"] = {"metric": "mae", "upper": 900, "tolerance": 25}
    spec["training"].update(trunk=[4], epochs=10)
    if run == "worse":
        spec["training"].update(epochs=1, learning_rate=0.00001)
    elif run == "one_head_worse":
        mass["loss_weight"] = 0.001
        mass["threshold"]["upper"] = 100000
    elif run in ("better", "new_head", "head_dropped"):
        spec["training"].update(trunk=[32, 16], epochs=60)
    if run == "new_head":
        # `year` turns from a feature into a head; the other heads lose a feature, so their change bounds loosen.
        spec["features"] = [f for f in spec["features"] if f["name"] != "year"]
        species["threshold"]["tolerance"], sex["threshold"]["tolerance"] = 0.2, 0.2
        mass["threshold"]["tolerance"] = 200
        spec["heads"].append({"name": "year", "kind": "multiclass", "classes": ["2007", "2008", "2009"],
                              "loss": "sparse_categorical_crossentropy",
                              "threshold": {"metric": "accuracy", "lower": 0.0, "tolerance": 0.0}})
    if run == "head_dropped":
        spec["features"] = [f for f in spec["features"] if f["name"] != "year"]
    return spec


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluation")
    workdir = tmp / "run"
    outcome = {}
    for run in ("modest", "worse", "one_head_worse", "better", "new_head", "head_dropped"):
        heads = tmp / f"heads_{run}.yaml"
        heads.write_text(yaml.safe_dump(spec_for(run)))
        result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--workdir", str(workdir),
                         "--schema", str(ROOT / "schemas" / "penguins" / "schema.pbtxt"))
        versions = sorted(p.name for p in (workdir / "serving").iterdir()) if (workdir / "serving").exists() else []
        outcome[run] = (result, versions, spec_from_dict(spec_for(run)))
    outcome["runs_list"] = run_cli("runs", "--workdir", str(workdir))
    heads = tmp / "heads_slice_bound.yaml"
    heads.write_text(yaml.safe_dump(spec_for("slice_bound")))
    outcome["slice_bound"] = (run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--workdir",
                                      str(workdir), "--schema", str(ROOT / "schemas" / "penguins" / "schema.pbtxt")),
                              sorted(p.name for p in (workdir / "serving").iterdir()), None)
    outcome["workdir"] = workdir
    return outcome


def table(result) -> dict[str, tuple[float, bool]]:
    """The per-head table the command printed: {head: (value, passed)}."""
    rows = re.findall(r"^(\w+)\s+\w+\s+([\d.]+)\s+[<>]= [\d.e+]+\s+(yes|NO(?:: .+)?)$",
                      result.stdout, re.M)
    return {head: (float(value), passed == "yes") for head, value, passed in rows}


def failure_lines(result) -> list[str]:
    text = result.stderr.split("Failed thresholds:", 1)[-1]
    return [line.strip() for line in text.splitlines() if line.startswith("  ") and ": " in line]


def test_run_1_pushes_a_version(runs):
    result, versions, _ = runs["modest"]
    assert result.returncode == cli.EXIT_PUSHED, result.stderr[-3000:]
    assert len(versions) == 1


def test_run_2_worse_setting_is_not_blessed_and_names_the_failing_heads(runs):
    result, versions, _ = runs["worse"]
    assert result.returncode == cli.EXIT_NOT_BLESSED, result.stderr[-3000:]
    failed = {line.split(":")[0] for line in failure_lines(result)}
    assert {"species", "sex"} <= failed, result.stderr[-3000:]
    assert versions == runs["modest"][1]   # serving still holds only run 1's version


def test_run_3_one_head_worse_than_the_baseline_is_named_alone(runs):
    result, versions, _ = runs["one_head_worse"]
    assert result.returncode == cli.EXIT_NOT_BLESSED, result.stderr[-3000:]
    lines = failure_lines(result)
    assert lines and all(line.startswith("body_mass_g: mae on slice overall changed by")
                         and "against the baseline, needs a change <= 25" in line for line in lines), lines
    values = table(result)
    assert values["body_mass_g"][0] < 100000   # within its absolute bound: only the change bound failed
    assert re.search(r"^body_mass_g\s+mae\s+[\d.]+\s+<= 100000\s+NO: worse than the baseline$", result.stdout, re.M)
    assert values["species"][1] and values["sex"][1]
    assert versions == runs["modest"][1]


def test_run_4_better_on_every_head_is_pushed(runs):
    result, versions, _ = runs["better"]
    assert result.returncode == cli.EXIT_PUSHED, result.stderr[-3000:]
    modest, better = table(runs["modest"][0]), table(result)
    assert better["species"][0] >= modest["species"][0] and better["sex"][0] >= modest["sex"][0]
    assert better["body_mass_g"][0] <= modest["body_mass_g"][0]
    assert len(versions) == 2


def test_run_5_a_new_head_is_judged_on_its_absolute_bound_alone(runs):
    result, versions, _ = runs["new_head"]
    # The baseline (run 4's model) has no `year` output: a change bound on it could never pass.
    assert result.returncode == cli.EXIT_PUSHED, result.stderr[-3000:]
    assert "year" in table(result)
    assert len(versions) == 3


def test_dropping_a_served_head_needs_removed_heads(runs):
    result, versions, _ = runs["head_dropped"]
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "has head(s) ['year'] that the spec does not; to drop them on purpose, list them under removed_heads" \
        in result.stderr
    assert versions == runs["new_head"][1]


def test_every_pushed_version_carries_its_provenance(runs):
    serving = runs["workdir"] / "serving"
    for run in ("modest", "better", "new_head"):
        result, versions, spec = runs[run]
        pushed = re.search(r"pushed to (\S+)", result.stdout).group(1)
        record = json.loads((Path(pushed) / "assets.extra" / "push.json").read_text())
        assert Path(pushed).parent == serving
        assert record["heads_spec_fingerprint"] == spec.fingerprint()
        assert record["training"] == spec.to_dict()["training"]
        assert record["data"]["span"] == 0
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", record["git_commit"])
        assert set(record["eval_metrics"]) == {h.name for h in spec.heads}
        printed = table(result)
        for head in spec.heads:
            assert any(abs(v - printed[head.name][0]) < 1e-3 * max(1, abs(v))
                       for v in record["eval_metrics"][head.name].values())


def test_runs_list_shows_each_run_with_its_outcome_and_provenance(runs):
    listing = runs["runs_list"]
    assert listing.returncode == 0, listing.stderr[-2000:]
    lines = listing.stdout.strip().splitlines()[1:]
    assert len(lines) == 5   # the refused run never started
    outcomes = [("yes", True), ("no", False), ("no", False), ("yes", True), ("yes", True)]
    for line, run, (blessed, pushed) in zip(lines, ("modest", "worse", "one_head_worse", "better", "new_head"),
                                            outcomes):
        columns = re.split(r"\s{2,}", line)
        assert blessed in columns, line
        spec = runs[run][2]
        if pushed:
            assert any(c.isdigit() and len(c) == 10 for c in columns), line
            assert spec.fingerprint() in line
        for head in spec.heads:
            assert f"{head.name} " in line


def test_a_per_slice_bound_that_fails_blocks_the_push_and_the_table_says_where(runs):
    result, versions, _ = runs["slice_bound"]
    assert result.returncode == cli.EXIT_NOT_BLESSED, (result.stdout[-2000:], result.stderr[-3000:])
    assert versions == runs["new_head"][1]                       # serving unchanged
    assert "[done]   Trainer in" in result.stderr and "(cached)" in result.stderr.split("[done]   Trainer")[1][:40]
    value, passed = table(result)["body_mass_g"]
    assert value <= 900 and not passed                          # the overall bound holds; the slices do not
    assert re.search(r"^body_mass_g\s+mae\s+[\d.]+\s+<= 900\s+NO: on 3 slices$", result.stdout, re.M)
    lines = failure_lines(result)
    assert {line.split(" = ")[0] for line in lines} == {f"body_mass_g: mae on slice island={island}"
                                                        for island in ("Biscoe", "Dream", "Torgersen")}
    assert all(line.endswith("needs <= 1") for line in lines), lines
