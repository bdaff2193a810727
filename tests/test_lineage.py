"""Light readers and writers of ML Metadata records: a failed run's error message, a stopped run's provenance."""

from ml_metadata.proto import metadata_store_pb2

from components import records
from pipeline.read import lineage


def with_a_failed_run(store, last_state=metadata_store_pb2.Execution.FAILED):
    """`store` with one pipeline run: StatisticsGen completed, SchemaGate in `last_state` (failed); and that run's
    context."""
    node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="component"))
    run, *nodes = store.put_contexts([metadata_store_pb2.Context(type_id=run_type, name="run-1")] + [
        metadata_store_pb2.Context(type_id=node_type, name=f"penguins.{n}") for n in ("StatisticsGen", "SchemaGate")])
    state = metadata_store_pb2.Execution
    for node, last_state in zip(nodes, (state.COMPLETE, last_state)):
        (execution,) = store.put_executions([state(type_id=execution_type, last_known_state=last_state)])
        store.put_attributions_and_associations(
            [], [metadata_store_pb2.Association(execution_id=execution, context_id=c) for c in (node, run)])
    (run_context,) = store.get_contexts_by_id([run])
    return run_context


def test_a_failure_message_is_kept_with_the_failed_execution_alone(memory_store):
    store, run = memory_store, with_a_failed_run(memory_store)
    assert lineage.record_failure_message(store, run, "SchemaAnomaliesError: column 'x' ...") == ["SchemaGate"]
    messages = {records.node_id(store, e): lineage.failure_message(e) for e in store.get_executions()}
    assert messages == {"StatisticsGen": None, "SchemaGate": "SchemaAnomaliesError: column 'x' ..."}
    # A message already there (TFX records its own for some failures) is not replaced.
    assert lineage.record_failure_message(store, run, "another message") == []
    assert {lineage.failure_message(e) for e in store.get_executions()} == {
        None, "SchemaAnomaliesError: column 'x' ..."}


def test_the_message_is_where_tfx_keeps_an_execution_result_and_reads_back_with_tfx(memory_store):
    from tfx.orchestration.portable.mlmd import execution_lib  # imports TensorFlow, so not in lineage itself

    store, run = memory_store, with_a_failed_run(memory_store)
    lineage.record_failure_message(store, run, "it broke")
    assert lineage.EXECUTION_RESULT_KEY == execution_lib._EXECUTION_RESULT
    failed = [e for e in store.get_executions() if e.last_known_state == metadata_store_pb2.Execution.FAILED]
    assert execution_lib.get_execution_result(failed[0]).result_message == "it broke"


def test_a_stopped_runs_spec_hash_and_commit_are_kept_with_the_run_and_listed(memory_store):
    from pipeline.read import results

    store, run = memory_store, with_a_failed_run(memory_store)
    assert lineage.run_provenance(run) == {}
    lineage.record_run_provenance(store, run, {"heads_spec_fingerprint": "c4d64309f1448a72",
                                               "git_commit": "b5c11abecc67aa", "training": {"epochs": 5}})
    (summary,) = results.run_summaries(store)
    assert summary.failed_at == "SchemaGate"
    assert summary.provenance == {"heads_spec_fingerprint": "c4d64309f1448a72", "git_commit": "b5c11abecc67aa"}
    assert results.format_runs([summary]).splitlines()[1].endswith("c4d64309f1448a72  b5c11abecc67")


def test_the_runs_list_tells_a_stop_by_the_data_from_a_failure(memory_store):
    from components.records import STOPS_BEFORE_TRANSFORM
    from pipeline.read import results

    store, run = memory_store, with_a_failed_run(memory_store)
    lineage.record_failure_message(store, run, f"SchemaAnomaliesError: data.csv does not fit the heads spec; "
                                               f"{STOPS_BEFORE_TRANSFORM}:\n  column 'x' ...")
    assert results._outcome(results.run_summaries(store)[0], running=False) == "stopped by the data at SchemaGate"


def test_a_component_that_broke_reads_as_failed(memory_store):
    from pipeline.read import results

    store, run = memory_store, with_a_failed_run(memory_store)
    lineage.record_failure_message(store, run, "ValueError: something broke")
    assert results._outcome(results.run_summaries(store)[0], running=False) == "failed at SchemaGate"


def test_a_component_that_failed_before_tfx_recorded_an_outcome_reads_as_failed_not_interrupted(memory_store):
    """ExampleGen's driver failing on a file leaves its execution RUNNING; the command caught the error, so the
    run was not killed."""
    from pipeline.read import results

    store, run = memory_store, with_a_failed_run(memory_store, metadata_store_pb2.Execution.RUNNING)
    assert results._outcome(results.run_summaries(store)[0], running=False) == "interrupted at SchemaGate"
    assert lineage.record_failure_message(store, run, "NotFoundError: span-9/late.csv") == ["SchemaGate"]
    (summary,) = results.run_summaries(store)
    assert (results._outcome(summary, running=False), summary.unfinished_at) == ("failed at SchemaGate", None)


def test_the_span_of_a_run_that_stopped_before_example_gen_recorded_it_is_listed(memory_store):
    from pipeline.read import results

    store, run = memory_store, with_a_failed_run(memory_store)
    assert results.run_summaries(store)[0].span is None
    lineage.record_run_provenance(store, run, {"heads_spec_fingerprint": "c4d64309f1448a72", "span": 13})
    assert results.run_summaries(store)[0].span == 13
