"""A spec whose only head is of each kind runs end to end: trained, evaluated by TFMA, blessed and pushed.

A model with one head of a kind that has no class-name output used to serve one output alone, which TFMA's
predictions extractor turns into a bare array, and the Evaluator failed on it."""

import json

import numpy as np
import pytest
import tensorflow as tf
import yaml

from components.spec import METRICS, load_spec
from data.synthetic import generate
from pipeline import cli

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli

pytestmark = pytest.mark.slow

SYNTHETIC_HEADS = ROOT / "schemas" / "synthetic" / "heads.yaml"
# Which bundled spec and data each kind's head comes from.
CASES = {"regression": (PENGUINS_HEADS, "body_mass_g"), "binary": (PENGUINS_HEADS, "sex"),
         "multiclass": (PENGUINS_HEADS, "species"), "angle": (SYNTHETIC_HEADS, "heading")}


def single_head_spec(source, head: str, folder) -> str:
    """The bundled spec `source` with `head` alone, trained a few epochs and judged on a bound any trained model
    meets: these runs check the wiring, the quality report checks the quality."""
    data = load_spec(source).to_dict()
    data["name"] = f"only_{head}"
    (kept,) = [h for h in data["heads"] if h["name"] == head]
    kept.pop("conditioned_on", None)
    metric = METRICS[kept["kind"]][kept["threshold"]["metric"]]
    kept["threshold"] = {"metric": metric.name, **({"lower": 0.0} if metric.higher_is_better else {"upper": 1e9})}
    data.update(heads=[kept], slices=[], drift={}, skew={}, removed_heads=[])
    data["training"]["epochs"] = 3
    path = folder / "heads.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic_data")
    generate.write_shards(folder, rows=600, shards=1, seed=5)
    return folder


@pytest.mark.parametrize("kind", list(CASES))
def test_a_spec_with_one_head_of_each_kind_is_evaluated_and_pushed(kind, tmp_path, synthetic_csv):
    source, head = CASES[kind]
    data = PENGUINS_CSV if source == PENGUINS_HEADS else synthetic_csv
    heads = single_head_spec(source, head, tmp_path)
    workdir = tmp_path / "w"
    result = run_cli("run", "--data", str(data), "--heads", heads, "--workdir", str(workdir))
    assert result.returncode == cli.EXIT_PUSHED, result.stdout[-3000:] + result.stderr[-5000:]
    assert "model blessed and pushed to" in result.stdout
    metric = load_spec(heads).heads[0].threshold.metric
    assert f"\n{head}  " in result.stdout and f" {metric} " in result.stdout   # its row of the table

    (version,) = (workdir / "serving").iterdir()
    record = json.loads((version / "assets.extra" / "push.json").read_text())
    assert set(record["eval_metrics"]) == {head} and np.isfinite(record["eval_metrics"][head][
        METRICS[kind][metric].reported_as])
    served = tf.saved_model.load(str(version)).signatures["serving_default"](examples=tf.constant([b""]))
    assert head in served and list(served["missing_features"].numpy()) == [len(load_spec(heads).features)]
