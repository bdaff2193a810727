"""The command line: light to start, and configuration errors stop it before any component runs."""

import argparse
import subprocess
import sys

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli
from pipeline import cli


def test_help_does_not_import_tensorflow():
    # `--help` must answer at once: nothing on its path may import TensorFlow or TFX.
    code = ("import sys\nfrom pipeline import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "run the pipeline locally" in result.stdout


def test_bad_heads_spec_exits_2_naming_the_field(tmp_path):
    heads = tmp_path / "heads.yaml"
    heads.write_text(PENGUINS_HEADS.read_text().replace("loss: binary_crossentropy", "loss: hinge"))
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "heads[1].loss.name: 'hinge' is not one of: binary_crossentropy, focal" in result.stderr  # as the README shows
    assert not (tmp_path / "w").exists()


def test_missing_data_path_exits_2(tmp_path):
    result = run_cli("run", "--data", str(tmp_path / "nope.csv"), "--heads", str(PENGUINS_HEADS))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "does not exist" in result.stderr


def test_unreadable_schema_exits_2_naming_the_file(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("feature { name: 'species' type: NOT_A_TYPE }\n")
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--schema", str(schema),
                     "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert f"{schema}: not a readable schema.pbtxt" in result.stderr
    assert not (tmp_path / "w").exists()


def test_schema_without_a_label_column_exits_2_naming_the_spec_field(tmp_path):
    source = (ROOT / "schemas" / "penguins" / "schema.pbtxt").read_text()
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(source.replace('name: "sex"', 'name: "gender"'))
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--schema", str(schema),
                     "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert f"heads[1].label: column 'sex' is not in schema {schema}" in result.stderr


def test_missing_schema_file_exits_2(tmp_path):
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS),
                     "--schema", str(tmp_path / "none.pbtxt"), "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "--schema:" in result.stderr and "does not exist" in result.stderr


def test_beam_workers_with_beam_args_exits_2_before_anything_runs(tmp_path):
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--workdir",
                     str(tmp_path / "w"), "--beam-workers", "2", "--beam-arg=--direct_num_workers=1")
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "--beam-workers and --beam-arg: choose one" in result.stderr
    assert not (tmp_path / "w").exists()


def test_beam_workers_must_be_auto_or_a_count(tmp_path):
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--beam-workers", "0")
    assert result.returncode == 2   # argparse's own usage error
    assert "--beam-workers: '0' is neither auto nor a whole number of at least 1" in result.stderr


def test_help_states_the_input_size_the_local_runner_uses():
    # The help text cannot import the local runner (TFX); this keeps the two in step.
    from pipeline import local_runner  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    cli.add_run_arguments(parser)
    run_help = next(a.help for a in parser._actions if "--beam-workers" in a.option_strings)
    assert f"from {local_runner.WORKER_PROCESSES_FROM_BYTES // 2**20} MiB of input on" in run_help
    assert f"up to {local_runner.MAX_WORKERS}" in run_help
