"""The synthetic example through the real pipeline, by the same command as penguins (one run, a minute or two)."""

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store

from components.spec import load_spec
from data.synthetic import generate
from pipeline import cli
from pipeline.read import results
from pipeline.runners import local as local_runner

from conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

HEADS = ROOT / "schemas" / "synthetic" / "heads.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("synthetic_data")
    generate.write_shards(data, rows=3000, shards=2, seed=11)
    workdir = tmp_path_factory.mktemp("synthetic_run")
    result = run_cli("run", "--data", str(data), "--heads", str(HEADS), "--workdir", str(workdir))
    assert result.returncode == cli.EXIT_PUSHED, result.stdout[-3000:] + result.stderr[-5000:]
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    return result, results.read_run_result(store, load_spec(HEADS))


def overall_metrics(evaluation_uri: str) -> dict[tuple[str, str], float]:
    values = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            if kv.value.HasField("double_value") and kv.key.model_name in ("", "candidate") and not kv.key.is_diff:
                values[(kv.key.output_name, kv.key.name)] = kv.value.double_value.value
    return values


def test_every_head_kind_is_evaluated_with_its_own_metrics(run):
    result, run_result = run
    assert run_result.blessed and all(h.passed for h in run_result.heads)
    values = overall_metrics(run_result.evaluation_uri)
    # The project's TFMA metrics ran in the Evaluator: angular error in degrees and accuracy on segment D.
    assert 0 < values[("heading", "angular_error_deg")] <= 30
    assert 0 <= values[("segment", "subset_accuracy")] <= 1
    assert values[("segment", "sparse_categorical_accuracy")] >= 0.7
    table = result.stdout[result.stdout.index("head "):]
    assert "heading" in table and "angular_error_deg" in table


def test_pushed_model_serves_every_head_from_raw_rows(run):
    _, run_result = run
    serve = tf.saved_model.load(run_result.pushed_path).signatures["serving_default"]

    def example(**values):
        return tf.train.Example(features=tf.train.Features(feature={
            k: (tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) if isinstance(v, str)
                else tf.train.Feature(float_list=tf.train.FloatList(value=[v]))) for k, v in values.items()
        })).SerializeToString()

    # Region "north" adds no turn: the heading follows atan2(x2, x1).
    rows = [example(x1=0.0, x2=2.0, x3=0.0, x4=5.0, region="north", channel="web"),
            example(x1=-2.0, x2=0.0, x3=0.0, x4=5.0, region="north", channel="web"),
            example()]
    out = serve(examples=tf.constant(rows))
    assert set(out) == {"demand", "lead_time", "churn", "churn__class", "segment", "segment__class", "heading",
                        "missing_features"}
    heading = out["heading"].numpy()[:, 0]
    assert np.all((heading >= 0) & (heading < 2 * math.pi))
    for predicted, expected in zip(heading[:2], (math.pi / 2, math.pi)):
        assert abs(math.remainder(predicted - expected, 2 * math.pi)) < math.radians(30)


def test_an_angle_head_given_degrees_stops_at_the_gate(tmp_path):
    # A compass heading in degrees, read as radians, would train the angle head on noise.
    data = tmp_path / "data"
    generate.write_shards(data, rows=600, shards=1, seed=5)
    (shard,) = data.glob("*.csv")
    frame = pd.read_csv(shard)
    frame["heading"] = np.degrees(frame["heading"])
    frame.to_csv(shard, index=False)
    result = run_cli("run", "--data", str(data), "--heads", str(HEADS), "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_DATA_REJECTED, result.stderr[-3000:]
    assert "label column 'heading': an angle head reads radians, but its values reach 35" in result.stderr
    assert not (tmp_path / "w" / "serving").exists()
