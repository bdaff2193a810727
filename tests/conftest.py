"""Shared fixtures. Every test process uses tf_keras: `components` makes that choice, before any test module
imports TensorFlow."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

import components  # noqa: F401 - the Keras choice, before TensorFlow
from components.spec import HeadsSpec, load_spec, spec_from_dict

ROOT = Path(__file__).resolve().parent.parent
PENGUINS_CSV = ROOT / "data" / "penguins" / "penguins.csv"
PENGUINS_HEADS = ROOT / "schemas" / "penguins" / "heads.yaml"


def one_head_spec(kind: str, loss: str = "", metrics: tuple = ()) -> HeadsSpec:
    """A spec of one numeric feature and one head of `kind`: trained with `loss` (default: the kind's first) with
    its default parameters, logging `metrics`, thresholded on the kind's first metric."""
    from components.spec import LOSSES, METRICS  # noqa: PLC0415

    threshold_metric = next(iter(METRICS[kind].values()))
    threshold_metric, higher_is_better = threshold_metric.name, threshold_metric.higher_is_better
    head = {"name": "target", "kind": kind, "loss": loss or next(iter(LOSSES[kind])), "metrics": list(metrics),
            "threshold": {"metric": threshold_metric, "lower" if higher_is_better else "upper": 0.5}}
    if kind in ("binary", "multiclass"):
        head["classes"] = ["a", "b"] if kind == "binary" else ["a", "b", "c"]
    if head["loss"] == "subset_crossentropy" or "subset_accuracy" in metrics:
        head["class_subset"] = ["b"]
    return spec_from_dict({"name": "t", "features": [{"name": "x", "kind": "numeric"}], "heads": [head]})


@pytest.fixture
def memory_store():
    """An empty ML Metadata store in memory, for tests that write the records a run would leave."""
    from ml_metadata.metadata_store import metadata_store  # noqa: PLC0415
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    return metadata_store.MetadataStore(config)


@pytest.fixture(scope="session")
def penguins_spec() -> HeadsSpec:
    return load_spec(PENGUINS_HEADS)


@pytest.fixture
def autograph_conversions(monkeypatch) -> list[str]:
    """The qualified names of the functions autograph converts from here to the test's end, in order."""
    from tensorflow.python.autograph.impl import api  # noqa: PLC0415 - TensorFlow only for the tests that ask

    converted: list[str] = []
    convert = api._convert_actual
    monkeypatch.setattr(api, "_convert_actual",
                        lambda entity, ctx: converted.append(entity.__qualname__) or convert(entity, ctx))
    return converted


def run_cli(*args: str, timeout: float = 900, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs `python -m pipeline ARGS` as a user would, in a fresh process, from the project root (`env`: variables
    to add to this process's)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def penguins_run_tmpdir(tmp_path_factory) -> Path:
    """The temp folder (TMPDIR) of the shared penguins run's process: what a run leaves there stays for good."""
    return tmp_path_factory.mktemp("penguins_run_tmpdir")


@pytest.fixture(scope="session")
def penguins_run(tmp_path_factory, penguins_run_tmpdir):
    """One real pipeline run on the bundled penguins data, shared by the end-to-end assertions."""
    workdir = tmp_path_factory.mktemp("penguins_run")
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--workdir", str(workdir),
                     env={"TMPDIR": str(penguins_run_tmpdir)})
    return workdir, result
