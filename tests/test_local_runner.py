"""The local runner: Beam settings by input size, and how it reports each component."""

import pytest
from ml_metadata.proto import metadata_store_pb2

from pipeline.runners import local as local_runner


@pytest.mark.parametrize("input_mib,workers,expected_roles", [
    (1, 2, set()),                                   # penguins, the 10k and 100k benchmark data
    (31.9, 2, set()),
    (32, 2, {"ExampleGen", "Evaluator"}),
    (64, 2, {"ExampleGen", "Evaluator"}),            # the 1M-row benchmark data
    (64, 1, set()),                                  # one core: nothing to spread over
])
def test_worker_processes_only_for_large_input_and_several_cores(input_mib, workers, expected_roles):
    assert set(local_runner.beam_args_by_input_size(int(input_mib * 2**20), workers)) == expected_roles


@pytest.mark.parametrize("cores,workers", [(1, 1), (2, 2), (64, local_runner.MAX_WORKERS)])
def test_worker_count_is_the_usable_cores_at_most_max_workers(monkeypatch, cores, workers):
    monkeypatch.setattr(local_runner.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert local_runner.worker_count() == workers


def test_beam_settings_the_users_beam_args_replace_the_whole_choice():
    args, per_role = local_runner.beam_settings(["--runner=DirectRunner", "--direct_num_workers=4"], "auto", 2**30)
    assert args == ("--runner=DirectRunner", "--direct_num_workers=4") and per_role == {}


def test_beam_settings_auto_adds_workers_for_large_input_only(monkeypatch):
    monkeypatch.setattr(local_runner.os, "sched_getaffinity", lambda pid: {0, 1})
    assert local_runner.beam_settings(None, "auto", 2**20) == (local_runner.IN_PROCESS_BEAM_ARGS, {})
    args, per_role = local_runner.beam_settings(None, "auto", 64 * 2**20)
    assert args == local_runner.IN_PROCESS_BEAM_ARGS
    assert per_role == local_runner.worker_beam_args(2) and set(per_role) == {"ExampleGen", "Evaluator"}


def test_beam_settings_a_worker_count_applies_whatever_the_input_size():
    args, per_role = local_runner.beam_settings(None, 3, 1)
    assert args == local_runner.IN_PROCESS_BEAM_ARGS
    assert per_role["Evaluator"] == ("--direct_running_mode=multi_processing", "--direct_num_workers=3")


def test_a_node_that_reused_an_earlier_runs_outputs_reads_as_cached(memory_store):
    store = memory_store
    node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Transform"))
    transform, run_1, run_2 = store.put_contexts([
        metadata_store_pb2.Context(type_id=node_type, name="penguins.Transform"),
        metadata_store_pb2.Context(type_id=run_type, name="run-1"),
        metadata_store_pb2.Context(type_id=run_type, name="run-2")])
    state = metadata_store_pb2.Execution
    for run, last_state in ((run_1, state.COMPLETE), (run_2, state.CACHED)):
        (execution,) = store.put_executions([state(type_id=execution_type, last_known_state=last_state)])
        store.put_attributions_and_associations(
            [], [metadata_store_pb2.Association(execution_id=execution, context_id=c) for c in (transform, run)])

    assert not local_runner.node_was_cached(store, "penguins", "Transform", "run-1")
    assert local_runner.node_was_cached(store, "penguins", "Transform", "run-2")
    assert not local_runner.node_was_cached(store, "penguins", "Trainer", "run-2")     # no such node yet
    assert not local_runner.node_was_cached(store, "penguins", "Transform", "run-3")   # no such run yet


def test_the_schema_is_read_from_a_copy_whose_path_changes_exactly_when_its_text_does(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "island" type: BYTES }\n')
    first = local_runner.schema_snapshot(schema, tmp_path / "workdir")
    assert first.read_text() == schema.read_text() and first.is_relative_to(tmp_path / "workdir" / "schemas")
    assert local_runner.schema_snapshot(schema, tmp_path / "workdir") == first          # unchanged: same path
    schema.write_text('feature { name: "island" type: BYTES presence { min_fraction: 1.0 } }\n')
    edited = local_runner.schema_snapshot(schema, tmp_path / "workdir")
    assert edited != first and edited.read_text() == schema.read_text()
    assert first.read_text() == 'feature { name: "island" type: BYTES }\n'             # the earlier version kept


def test_serving_statistics_are_read_from_a_text_copy_whose_path_changes_with_them(tmp_path):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    statistics.datasets.add(num_examples=10).features.add().path.step.append("island")
    first = local_runner.serving_statistics_snapshot(statistics, tmp_path)
    assert first.is_relative_to(tmp_path / "serving_statistics")
    assert text_format.Parse(first.read_text(), statistics_pb2.DatasetFeatureStatisticsList()) == statistics
    assert local_runner.serving_statistics_snapshot(statistics, tmp_path) == first
    statistics.datasets[0].num_examples = 11
    assert local_runner.serving_statistics_snapshot(statistics, tmp_path) != first
