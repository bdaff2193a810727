"""The real pipeline on the bundled penguins data, end to end, as `make demo` runs it (one shared run)."""

import glob
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store

from pipeline import cli
from pipeline.read import results
from pipeline.runners import local as local_runner

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli

pytestmark = pytest.mark.slow

COMPONENTS = ["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "SchemaGate", "Transform",
              "Trainer", "Evaluator", "Pusher"]


@pytest.fixture(scope="module")
def run(penguins_run):
    workdir, result = penguins_run
    assert result.returncode == cli.EXIT_PUSHED, result.stdout[-3000:] + result.stderr[-5000:]
    return workdir, result


@pytest.fixture(scope="module")
def store(run):
    return metadata_store.MetadataStore(local_runner.metadata_config(str(run[0] / "metadata.sqlite")))


@pytest.fixture(scope="module")
def run_result(store, penguins_spec):
    return results.read_run_result(store, penguins_spec)


@pytest.fixture(scope="module")
def serving_fn(run_result):
    return tf.saved_model.load(run_result.pushed_path).signatures["serving_default"]


def test_command_prints_progress_the_per_head_table_and_the_pushed_path(run, run_result):
    workdir, result = run
    for component in COMPONENTS:
        assert re.search(rf"\[done\]\s+{component} in \d+\.\d s", result.stderr), component
    table = result.stdout[result.stdout.index("head "):]
    for head in ("species", "sex", "body_mass_g"):
        assert re.search(rf"^{head}\s+\w+\s+[\d.]+\s+[<>]= [\d.]+\s+yes$", table, re.M), table
    assert f"model blessed and pushed to {run_result.pushed_path}" in result.stdout


def test_runs_lists_the_run_with_its_metrics_without_importing_tensorflow(run, run_result):
    # The Pusher records the candidate's metrics in ML Metadata, so listing runs reads no TFMA output.
    code = ("import sys\nfrom pipeline import cli\n"
            f"assert cli.main(['runs', '--workdir', {str(run[0])!r}]) == 0\n"
            "heavy = [m for m in ('tensorflow', 'tfx', 'tensorflow_model_analysis') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    listing = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr[-3000:]
    (line,) = listing.stdout.strip().splitlines()[1:]
    for head in run_result.heads:
        assert f"{head.head} {head.metric}={head.value:.4g}" in line, line
    assert Path(run_result.pushed_path).name in line


def test_the_metrics_the_pusher_recorded_are_the_evaluators(store, run_result):
    (pushed_model,) = results.latest_run_outputs(store)["Pusher"]["pushed_model"]
    recorded = results.recorded_metrics(pushed_model, run_result.evaluation_uri)
    assert recorded == results.recorded_metrics(None, run_result.evaluation_uri)   # read from TFMA's output
    assert set(recorded) == {"species", "sex", "body_mass_g"}


def test_the_run_leaves_nothing_in_the_temp_folder(run, penguins_run_tmpdir):
    # Each of TFX's Beam executors used to leave a 42 MB copy of TFX there, never removed: runs on a schedule
    # fill the disk (pipeline.DIRECT_RUNNER_WORKER_SOFTWARE).
    assert sorted(p.name for p in penguins_run_tmpdir.iterdir()) == []


def test_pushed_model_is_in_tensorflow_serving_layout(run, run_result):
    pushed = Path(run_result.pushed_path)
    assert pushed.parent == run[0] / "serving"
    assert re.fullmatch(r"\d{10}", pushed.name)   # the version: Unix seconds
    assert (pushed / "saved_model.pb").is_file() and (pushed / "variables").is_dir()
    assert [p.name for p in pushed.parent.iterdir()] == [pushed.name]


def test_every_component_ran_once_in_ml_metadata(store):
    ran = results.executions_by_node(store)
    for component in COMPONENTS:
        assert len(ran[component]) == 1, (component, ran)


def test_eval_split_quality_read_from_the_evaluator(run_result):
    values = {h.head: h.value for h in run_result.heads}
    assert values["species"] >= 0.95
    assert values["sex"] >= 0.80
    assert values["body_mass_g"] <= 350
    assert run_result.blessed and all(h.passed for h in run_result.heads)


def example(**values) -> bytes:
    features = {}
    for name, value in values.items():
        if isinstance(value, str):
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif isinstance(value, float):
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def test_pushed_model_predicts_every_head_from_raw_rows_without_labels(serving_fn):
    rows = [
        example(island="Biscoe", bill_length_mm=46.1, bill_depth_mm=13.2, flipper_length_mm=211, year=2007),
        example(island="Dream", year=2008),   # every measurement missing
        example(),                            # nothing at all: island goes to the out-of-vocabulary bucket
    ]
    out = serving_fn(examples=tf.constant(rows))
    assert set(out) == {"species", "species__class", "sex", "sex__class", "body_mass_g", "missing_features"}
    assert list(out["missing_features"].numpy()) == [0, 3, 5]   # of island, three measurements and year
    assert out["species"].shape == (3, 3) and out["sex"].shape == (3, 1) and out["body_mass_g"].shape == (3, 1)
    for key in ("species", "sex", "body_mass_g"):
        assert np.all(np.isfinite(out[key].numpy())), key
    np.testing.assert_allclose(out["species"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert out["species__class"].numpy()[0] == b"Gentoo"   # a typical Gentoo: long flippers, shallow bill
    assert set(out["sex__class"].numpy()) <= {b"female", b"male"}
    assert np.all((out["body_mass_g"].numpy() > 2000) & (out["body_mass_g"].numpy() < 7000))


def eval_split(workdir: Path) -> list[bytes]:
    files = glob.glob(str(workdir / "artifacts" / "CsvExampleGen" / "examples" / "*" / "Split-eval" / "*"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def raw_value(serialized: bytes, column: str):
    feature = tf.train.Example.FromString(serialized).features.feature[column]
    values = list(feature.bytes_list.value) or list(feature.int64_list.value) or list(feature.float_list.value)
    return values[0] if values else None


def test_serving_default_agrees_with_what_the_evaluator_scored(run, run_result, serving_fn):
    serialized = eval_split(run[0])
    out = serving_fn(examples=tf.constant(serialized))
    scored = {h.head: h.value for h in run_result.heads}

    species = [raw_value(s, "species") for s in serialized]
    accuracy = np.mean([p == t for p, t in zip(out["species__class"].numpy(), species) if t is not None])
    assert accuracy == pytest.approx(scored["species"], abs=1e-6)

    sex = [raw_value(s, "sex") for s in serialized]
    accuracy = np.mean([p == t for p, t in zip(out["sex__class"].numpy(), sex) if t is not None])
    assert accuracy == pytest.approx(scored["sex"], abs=1e-6)

    mass = [raw_value(s, "body_mass_g") for s in serialized]
    errors = [abs(p - t) for p, t in zip(out["body_mass_g"].numpy()[:, 0], mass) if t is not None]
    assert np.mean(errors) == pytest.approx(scored["body_mass_g"], rel=1e-4)
    assert sum(t is None for t in sex) > 0, "the eval split should hold rows without a sex label"


def test_the_pushed_model_reloads_with_the_keras_loader_given_components_model(run_result):
    # As the README says, in a fresh process: importing components.trainer.model registers every custom object.
    import subprocess
    import sys

    code = ("import components.trainer.model, tf_keras, sys; model = tf_keras.models.load_model(sys.argv[1]); "
            "print(sorted(model.output_names))")
    result = subprocess.run([sys.executable, "-c", code, run_result.pushed_path], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['body_mass_g', 'sex', 'species']"


def test_transform_features_gives_labels_and_weights(run_result):
    fn = tf.saved_model.load(run_result.pushed_path).signatures["transform_features"]
    out = fn(examples=tf.constant([example(island="Dream", species="Chinstrap", year=2008)]))
    assert int(out["species__label"][0]) == 1 and float(out["species__weight"][0]) == 1.0
    assert float(out["sex__weight"][0]) == 0.0 and float(out["body_mass_g__weight"][0]) == 0.0


def test_early_stopping_validates_on_the_eval_split_each_epoch_and_still_pushes(tmp_path):
    # The Trainer's other input path: the eval split, counted and batched like the train split, validates every
    # epoch (several steps per call into TensorFlow need both lengths known); training stops when it stalls.
    heads = tmp_path / "heads.yaml"
    heads.write_text(PENGUINS_HEADS.read_text().replace("training:\n", "training:\n  early_stopping_patience: 3\n", 1))
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads),
                     "--schema", str(PENGUINS_HEADS.parent / "schema.pbtxt"), "--workdir", str(tmp_path / "w"))
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_PUSHED, output[-5000:]
    epochs = [int(n) for n in re.findall(r"^Epoch (\d+)/60$", output, re.M)]
    assert epochs and max(epochs) < 60, epochs
    assert "val_loss" in output


def test_evaluator_in_worker_processes_scores_the_same_split_and_pushes(run, penguins_spec, tmp_path):
    # What large input gets by default (`--beam-workers auto`), forced on penguins: the ExampleGen writes one
    # file per worker and the Evaluator runs TFMA in two worker processes, which import the project's metrics.
    workdir = tmp_path / "w"
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--workdir", str(workdir),
                     "--beam-workers", "2")
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_PUSHED, output[-5000:]
    assert "Evaluator: --direct_running_mode=multi_processing --direct_num_workers=2" in result.stdout
    for split in ("train", "eval"):
        files = glob.glob(str(workdir / "artifacts" / "CsvExampleGen" / "examples" / "*" / f"Split-{split}" / "*"))
        assert len(files) == 2, files
    # The same rows in the eval split as the in-process run's: only the files they are written to differ (and the
    # order of each tf.Example's features as serialized, so the rows are compared as parsed).
    def rows(split):
        return sorted(tf.train.Example.FromString(r).SerializeToString(deterministic=True) for r in split)

    assert rows(eval_split(workdir)) == rows(eval_split(run[0]))
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    outcome = results.read_run_result(store, penguins_spec)
    assert outcome.blessed and {h.head for h in outcome.heads} == {"species", "sex", "body_mass_g"}
