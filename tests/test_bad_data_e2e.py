"""Data that breaks the curated schema stops the run before Transform, naming the column; nothing is pushed."""

import pytest
from ml_metadata.metadata_store import metadata_store

from conftest import PENGUINS_CSV, PENGUINS_HEADS, run_cli
from pipeline import cli, local_runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rejected_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_data")
    lines = PENGUINS_CSV.read_text().splitlines()
    # Text in a numeric column, and a body mass far outside the schema's range.
    lines[1] = lines[1].replace("Adelie,Torgersen,39.1,", "Adelie,Torgersen,n/a,")
    lines[2] = lines[2].replace(",3800,", ",380000,")
    data = tmp / "penguins.csv"
    data.write_text("\n".join(lines) + "\n")
    workdir = tmp / "run"
    return workdir, run_cli("run", "--data", str(data), "--heads", str(PENGUINS_HEADS), "--workdir", str(workdir))


def test_run_stops_with_a_distinct_exit_code_naming_each_column(rejected_run):
    _, result = rejected_run
    assert result.returncode == cli.EXIT_DATA_REJECTED, result.stderr[-3000:]
    assert "does not match the curated schema" in result.stderr
    assert "column 'bill_length_mm'" in result.stderr and "n/a" in result.stderr
    assert "column 'body_mass_g'" in result.stderr
    assert "Nothing was transformed, trained or pushed." in result.stderr


def test_nothing_after_the_gate_ran_and_nothing_was_pushed(rejected_run):
    workdir, _ = rejected_run
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    ran = {types[e.type_id] for e in store.get_executions()}
    assert "ExampleValidator" in ran
    assert not ran & {"Transform", "Trainer", "Evaluator", "Pusher"}
    serving = workdir / "serving"
    assert not serving.exists() or not any(serving.iterdir())
