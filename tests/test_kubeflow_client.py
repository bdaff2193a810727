"""`submit` and `schedule` through the real kfp.Client, against the local Kubeflow Pipelines API stand-in."""

import re

import pytest
import yaml
from kfp_api_stub import API, BodyError, KfpApiStub, validate

from components.spec import SpecError
from pipeline import cli
from pipeline.runners.kfp_client import check_cron, connect
from pipeline.runners.kubeflow import KubeflowSettings, compile_pipeline

ROOT_URI = "gs://bucket/penguins/root"


@pytest.fixture(scope="module")
def package(tmp_path_factory, penguins_spec):
    settings = KubeflowSettings(image="registry.example.com/multihead:1", pipeline_root=ROOT_URI,
                                data_root="gs://bucket/penguins/data", serving_dir="gs://bucket/penguins/serving")
    return compile_pipeline(penguins_spec, settings, tmp_path_factory.mktemp("kfp") / "penguins.yaml")


@pytest.fixture
def stub():
    with KfpApiStub() as server:
        yield server


def _submit(stub, package, *extra):
    return cli.main(["submit", "--package", str(package), "--endpoint", stub.endpoint, "--experiment", "penguins",
                     "--pipeline-root", ROOT_URI, *extra])


def _schedule(stub, package, name="penguins-nightly", cron="0 0 3 * * *"):
    return cli.main(["schedule", "--package", str(package), "--endpoint", stub.endpoint, "--experiment",
                     "penguins", "--pipeline-root", ROOT_URI, "--name", name, "--cron", cron])


def test_submit_starts_a_run_of_the_compiled_spec_with_the_pipeline_root(stub, package):
    assert _submit(stub, package, "--run-name", "first") == 0
    assert stub.errors == []
    assert stub.requests[0]["path"] == f"{API}/healthz"          # kfp.Client checks health on creation
    [experiment] = stub.sent("POST", f"{API}/experiments")
    assert experiment["body"]["display_name"] == "penguins"
    [run] = stub.sent("POST", f"{API}/runs")
    assert run["body"]["pipeline_spec"] == yaml.safe_load(package.read_text())
    assert run["body"]["runtime_config"]["pipeline_root"] == ROOT_URI
    assert run["body"]["display_name"] == "first"
    assert run["body"]["experiment_id"] == next(iter(stub.experiments))


def test_a_second_submit_reuses_the_experiment(stub, package):
    assert _submit(stub, package) == 0 and _submit(stub, package) == 0
    assert len(stub.sent("POST", f"{API}/experiments")) == 1
    assert len(stub.runs) == 2 and stub.errors == []


def test_schedule_sends_cron_one_run_at_a_time_and_no_catchup(stub, package):
    assert _schedule(stub, package) == 0
    assert stub.errors == []
    [created] = stub.sent("POST", f"{API}/recurringruns")
    body = created["body"]
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert int(body["max_concurrency"]) == 1
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    assert body["display_name"] == "penguins-nightly"
    assert body["pipeline_spec"] == yaml.safe_load(package.read_text())
    assert body["runtime_config"]["pipeline_root"] == ROOT_URI


def test_schedule_replaces_a_recurring_run_of_the_same_name_only(stub, package):
    assert _schedule(stub, package) == 0
    assert _schedule(stub, package, name="penguins-weekly", cron="0 0 4 * * 0") == 0
    [first_id] = [i for i, r in stub.recurring_runs.items() if r["display_name"] == "penguins-nightly"]
    assert _schedule(stub, package, cron="0 30 2 * * *") == 0
    deleted = [r["path"] for r in stub.sent("DELETE", f"{API}/recurringruns/{first_id}")]
    assert deleted == [f"{API}/recurringruns/{first_id}"]
    crons = sorted(r["trigger"]["cron_schedule"]["cron"] for r in stub.recurring_runs.values())
    assert crons == ["0 0 4 * * 0", "0 30 2 * * *"]
    assert stub.errors == []


def test_five_field_cron_is_refused_before_any_request(stub, package, capsys):
    assert _schedule(stub, package, cron="0 3 * * *") == cli.EXIT_BAD_CONFIG
    assert "did you mean '0 0 3 * * *'" in capsys.readouterr().err
    assert stub.requests == []


@pytest.mark.parametrize("cron", ["0 0 3 * * *", "*/30 15 2-4 1,15 JAN-MAR mon-fri", "0 0 0 ? * SUN",
                                  "59 59 23 31 12 6"])
def test_crons_robfig_reads_pass(cron):
    assert check_cron(cron) == cron


@pytest.mark.parametrize("cron,problem", [
    ("99 99 99 * * *", "seconds field '99': 99 is outside 0-59"),
    ("a b c d e f", "seconds field 'a': 'a' is not a number"),
    ("0 0 3 0 * *", "day of month field '0': 0 is outside 1-31"),
    ("0 0 3 * 13 *", "month field '13': 13 is outside 1-12"),
    ("0 0 3 * * FUNDAY", "day of week field 'FUNDAY': 'FUNDAY' is not a number or one of SUN, MON, TUE, ..."),
    ("0 */0 * * * *", "minutes field '*/0': the step '0' is not a positive number"),
])
def test_a_cron_field_robfig_cannot_read_is_named(cron, problem):
    with pytest.raises(SpecError, match=re.escape(f"--cron: {cron!r}: {problem}")):
        check_cron(cron)


def test_unhealthy_server_is_reported_after_kfps_retries(stub, monkeypatch):
    import kfp.client.client as kfp_client_module

    monkeypatch.setattr(kfp_client_module.time, "sleep", lambda seconds: None)
    stub.healthy = False
    with pytest.raises(TimeoutError, match="healthz"):
        connect(stub.endpoint)
    assert len(stub.sent("GET", f"{API}/healthz")) == 5


def test_an_unreachable_endpoint_is_one_line_naming_it(package, capsys):
    import socket

    with socket.socket() as free:                 # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{free.getsockname()[1]}"
    code = cli.main(["submit", "--package", str(package), "--endpoint", endpoint, "--experiment", "penguins",
                     "--pipeline-root", ROOT_URI])
    err = capsys.readouterr().err
    assert code == cli.EXIT_FAILED
    assert err.startswith(f"error: cannot reach Kubeflow Pipelines at {endpoint}: ") and "Traceback" not in err


@pytest.mark.parametrize("command", ["submit", "schedule"])
def test_an_endpoint_without_a_scheme_is_refused_before_any_request(stub, package, capsys, command):
    endpoint = stub.endpoint.removeprefix("http://")
    extra = ["--name", "nightly", "--cron", "0 0 3 * * *"] if command == "schedule" else []
    code = cli.main([command, "--package", str(package), "--endpoint", endpoint, "--experiment", "penguins",
                     "--pipeline-root", ROOT_URI, *extra])
    assert code == cli.EXIT_BAD_CONFIG
    assert f"--endpoint: {endpoint!r} has no scheme" in capsys.readouterr().err
    assert stub.sent("GET", f"{API}/healthz") == []


def test_missing_or_json_package_is_refused(stub, tmp_path):
    assert _submit(stub, tmp_path / "absent.yaml") == cli.EXIT_BAD_CONFIG
    assert _submit(stub, tmp_path / "pipeline.json") == cli.EXIT_BAD_CONFIG
    assert stub.requests == []


def test_cron_check():
    assert check_cron(" 0 0 3  * * * ") == "0 0 3 * * *"
    with pytest.raises(SpecError, match="has 3 fields"):
        check_cron("every day now")


@pytest.mark.parametrize("body, model, words", [
    ({"display_name": "x", "colour": "red"}, "V2beta1Run", "body.colour: not a field"),
    ({"display_name": 7}, "V2beta1Run", "body.display_name: expected str"),
    ({"mode": "SOMETIMES"}, "V2beta1RecurringRun", "body.mode: 'SOMETIMES' is not one of"),
    ({"trigger": {"cron_schedule": {"cron": 5}}}, "V2beta1RecurringRun", "body.trigger.cron_schedule.cron"),
    ({"no_catchup": "yes"}, "V2beta1RecurringRun", "body.no_catchup: expected bool"),
])
def test_stand_in_rejects_bodies_the_api_would(body, model, words):
    with pytest.raises(BodyError, match=words.replace("(", r"\(").replace(".", r"\.")):
        validate(body, model)


def test_stand_in_answers_400_to_an_invalid_body_on_the_wire(stub):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{stub.endpoint}{API}/recurringruns", method="POST",
                                     data=json.dumps({"display_name": "x", "max_concurrency": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 400
    assert stub.errors == ["body.max_concurrency: expected str, got True"] and stub.recurring_runs == {}
