"""The command line: light to start, and configuration errors stop it before any component runs."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.cli import run as run_commands
from pipeline.operations import run as run_use_case

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli


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
    # As the README shows.
    assert "heads[1].loss.name: 'hinge' is not one of: binary_crossentropy, focal" in result.stderr
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
    assert f"error: {PENGUINS_HEADS}: heads[1].label: column 'sex' is not in schema {schema}" in result.stderr


def test_a_class_outside_the_schemas_domain_exits_2_naming_the_spec_field(tmp_path):
    heads = tmp_path / "heads.yaml"
    heads.write_text(PENGUINS_HEADS.read_text().replace("Chinstrap", "Chinstrap penguin"))
    schema = ROOT / "schemas" / "penguins" / "schema.pbtxt"
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--schema", str(schema),
                     "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert (f"error: {heads}: heads[0].classes[1]: class 'Chinstrap penguin' is not in the domain of column "
            f"'species' in schema {schema} ['Adelie', 'Chinstrap', 'Gentoo']; did you mean 'Chinstrap'?"
            ) in result.stderr
    assert not (tmp_path / "w").exists()


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
    from pipeline.runners import local as local_runner  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    run_commands.add_run_arguments(parser)
    run_help = next(a.help for a in parser._actions if "--beam-workers" in a.option_strings)
    assert f"from {local_runner.WORKER_PROCESSES_FROM_BYTES // 2**20} MiB of input on" in run_help
    assert f"up to {local_runner.MAX_WORKERS}" in run_help


def test_a_feature_given_two_types_reads_as_the_datas_fault_naming_the_column():
    # As tfx_bsl's decoder words it, wrapped by Beam.
    error = ('RuntimeError: INVALID_ARGUMENT: Feature had wrong type, expected float_list, found int64_list for '
             'feature "f1" [while running \'GenerateStatistics[train]/...\']')
    assert run_use_case.mixed_feature_types(error, "/data/*") == (
        "/data/*: column 'f1' holds int64 values in some examples and float values in others; a feature has one "
        "type in every example (write it as one type, e.g. every number as float)")
    assert run_use_case.mixed_feature_types("KeyError: 'count'", "/data/*") is None


def test_a_serving_dir_that_cannot_be_a_folder_exits_2_before_anything_runs(tmp_path):
    not_a_folder = tmp_path / "serving"
    not_a_folder.write_text("")
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--workdir",
                     str(tmp_path / "run"), "--serving-dir", str(not_a_folder))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert f"--serving-dir: {not_a_folder} is a file, not a folder" in result.stderr
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--workdir",
                     str(tmp_path / "run"), "--serving-dir", str(not_a_folder / "versions"))
    assert result.returncode == cli.EXIT_BAD_CONFIG and "--serving-dir: cannot create" in result.stderr
    assert not (tmp_path / "run" / "metadata.sqlite").exists()


def test_an_older_copy_of_the_model_is_not_called_serving(tmp_path):
    for version in ("1795521086", "1795523054"):
        (tmp_path / version).mkdir()
    assert run_commands.already_serving_message(str(tmp_path / "1795523054"), tmp_path) == (
        f"nothing new to push: this model is already serving as {tmp_path / '1795523054'}")
    message = run_commands.already_serving_message(str(tmp_path / "1795521086"), tmp_path)
    assert message.startswith(f"not pushed: this model is already in the serving directory as "
                              f"{tmp_path / '1795521086'}, but the newer version 1795523054 is the one serving")
    assert f"python -m pipeline rollback --serving-dir {tmp_path}" in message


def test_ctrl_c_inside_a_component_reads_as_interrupted_through_beams_wrapping():
    def wrapped(error):
        try:
            try:
                raise error
            except BaseException as inner:
                raise RuntimeError("KeyboardInterrupt [while running 'Run[Transform]']") from inner
        except RuntimeError as outer:
            return outer

    assert run_use_case.was_interrupted(wrapped(KeyboardInterrupt()))
    assert run_use_case.was_interrupted(KeyboardInterrupt())
    assert not run_use_case.was_interrupted(wrapped(ValueError("a real failure")))


def test_a_workdir_that_holds_another_pipelines_runs_refuses_a_renamed_spec(memory_store, tmp_path):
    from ml_metadata.proto import metadata_store_pb2

    from components.spec import SpecError
    from pipeline.read.lineage import pipeline_names

    store = memory_store
    pipeline_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    store.put_contexts([metadata_store_pb2.Context(type_id=pipeline_type, name="penguins")])
    assert pipeline_names(store) == ["penguins"]
    run_use_case.check_one_pipeline_per_workdir(store, "penguins", tmp_path, tmp_path / "heads.yaml")
    with pytest.raises(SpecError, match=r"heads.yaml: name: the spec names pipeline 'penguins_v2', but --workdir "
                                        r".* holds the runs and serving versions of 'penguins'; .* set name: "
                                        r"penguins again, or pass another --workdir"):
        run_use_case.check_one_pipeline_per_workdir(store, "penguins_v2", tmp_path, tmp_path / "heads.yaml")


def test_retrain_with_a_renamed_spec_exits_2_before_looking_at_spans(tmp_path):
    # Checked first: with the newest span already read, retrain would otherwise say "nothing to do" and exit 0.
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.runners import local as local_runner

    workdir = tmp_path / "w"
    workdir.mkdir()
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    pipeline_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    store.put_contexts([metadata_store_pb2.Context(type_id=pipeline_type, name="penguins")])
    (tmp_path / "incoming" / "span-1").mkdir(parents=True)
    (tmp_path / "incoming" / "span-1" / "p.csv").write_text(PENGUINS_CSV.read_text())
    heads = tmp_path / "heads.yaml"
    heads.write_text(PENGUINS_HEADS.read_text().replace("name: penguins", "name: penguins_v2"))
    result = run_cli("retrain", "--data", str(tmp_path / "incoming" / "span-{SPAN}" / "*.csv"), "--heads",
                     str(heads), "--workdir", str(workdir))
    assert result.returncode == cli.EXIT_BAD_CONFIG, result.stderr[-2000:]
    assert "the spec names pipeline 'penguins_v2'" in result.stderr and "retraining" not in result.stdout


def test_the_multihead_command_answers_help_for_every_command_without_loading_the_stack():
    # `pip install -e .` gives the console script; `python -m pipeline` stays the same command.
    multihead = Path(sys.executable).parent / "multihead"
    for command in [[], *([c] for c in cli.COMMANDS)]:
        result = subprocess.run([str(multihead), *command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith("usage: multihead"), result.stderr[-2000:]
    # What the command line loads before a command runs (its start, measured in BENCHMARKS.md): no TensorFlow,
    # TFX, Beam, ML Metadata, matplotlib or NumPy.
    code = ("import sys\nfrom pipeline import cli\ncli.build_parser()\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tfx', 'apache_beam',"
            " 'ml_metadata', 'matplotlib', 'numpy', 'kfp'})\nprint(heavy)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "[]", loaded.stderr[-2000:]
