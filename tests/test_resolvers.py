"""The local runner's resolver choices, on hand-made ML Metadata artifacts."""

from tfx.types import standard_artifacts

from pipeline.definition.resolvers import (
    BlessedModelBeforeCandidateStrategy,
    blessed_model_before,
    statistics_of_previous_span,
)


def model(artifact_id):
    artifact = standard_artifacts.Model()
    artifact.id = artifact_id
    return artifact


def blessing(model_id, blessed=True, artifact_id=None):
    artifact = standard_artifacts.ModelBlessing()
    artifact.id = artifact_id or 1000 + model_id
    artifact.set_int_custom_property("current_model_id", model_id)
    artifact.set_int_custom_property("blessed", 1 if blessed else 0)
    return artifact


def statistics(artifact_id):
    artifact = standard_artifacts.ExampleStatistics()
    artifact.id = artifact_id
    return artifact


def test_a_new_candidate_is_compared_with_the_newest_blessed_model():
    models = [model(1), model(2), model(3), model(4)]
    found, found_blessing = blessed_model_before(model(5), models, [blessing(1), blessing(2), blessing(3, False)])
    assert found.id == 2 and found_blessing.get_int_custom_property("current_model_id") == 2


def test_a_cached_candidate_gets_the_baseline_it_was_first_judged_against():
    # Model 3 was blessed in an earlier run; a rerun with nothing changed hands the Evaluator model 3 again.
    models = [model(1), model(3)]
    found, _ = blessed_model_before(model(3), models, [blessing(1), blessing(3)])
    assert found.id == 1
    assert blessed_model_before(model(1), models, [blessing(1), blessing(3)]) == (None, None)


def test_strategy_keeps_every_key_and_returns_nothing_before_the_first_blessing():
    strategy = BlessedModelBeforeCandidateStrategy()
    result = strategy.resolve_artifacts(None, {"candidate": [model(2)], "model": [model(2)], "model_blessing": []})
    assert result["model"] == [] and result["model_blessing"] == [] and [m.id for m in result["candidate"]] == [2]
    result = strategy.resolve_artifacts(None, {"candidate": [model(9)], "model": [model(2), model(9)],
                                               "model_blessing": [blessing(2)]})
    assert [m.id for m in result["model"]] == [2]


def test_previous_span_is_the_newest_artifact_of_the_span_before():
    span_of = {1: 1, 2: 2, 3: 2, 4: 3, 5: 5, 6: 3, 7: 1}
    all_stats = [statistics(i) for i in (1, 2, 3, 4, 5)]
    assert statistics_of_previous_span(statistics(6), all_stats, span_of).id == 3   # span 2, its newest artifact
    assert statistics_of_previous_span(statistics(7), all_stats, span_of) is None
    # Statistics that are not StatisticsGen's (Transform's pre-transform statistics) have no span: never chosen.
    assert statistics_of_previous_span(statistics(6), all_stats + [statistics(8)], span_of).id == 3


def test_only_statistics_whose_data_passed_the_gate_are_a_drift_reference(memory_store):
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.definition.resolvers import statistics_that_passed_the_gate

    store = memory_store
    statistics_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="ExampleStatistics"))
    ids = store.put_artifacts([metadata_store_pb2.Artifact(type_id=statistics_type) for _ in range(4)])
    gate = store.put_execution_type(metadata_store_pb2.ExecutionType(name="components.schema_gate.SchemaGate"))
    validator = store.put_execution_type(metadata_store_pb2.ExecutionType(name="ExampleValidator"))
    state = metadata_store_pb2.Execution

    def read(artifact_id, type_id, last_state):
        (execution_id,) = store.put_executions([state(type_id=type_id, last_known_state=last_state)])
        event = metadata_store_pb2.Event(artifact_id=artifact_id, execution_id=execution_id,
                                         type=metadata_store_pb2.Event.INPUT)
        event.path.steps.add().key = "statistics"
        store.put_events([event])

    read(ids[0], validator, state.COMPLETE)
    read(ids[0], gate, state.COMPLETE)      # span 1: passed
    read(ids[1], validator, state.COMPLETE)
    read(ids[1], gate, state.FAILED)        # span 2: stopped for drift
    read(ids[2], validator, state.COMPLETE)  # span 3: the run was killed before the gate
    read(ids[3], gate, state.CACHED)        # an unchanged rerun: the gate's earlier pass reused
    assert statistics_that_passed_the_gate(store, ids) == {ids[0], ids[3]}
    assert statistics_that_passed_the_gate(store, []) == set()


def push_record(folder, model_uri):
    import json

    record = folder / "assets.extra" / "push.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"model_uri": model_uri}))


def test_the_baseline_is_a_model_in_the_serving_directory(tmp_path):
    models = [model(1), model(2), model(3), model(4)]
    for m in models:
        m.uri = f"/artifacts/Trainer/model/{m.id}"
    push_record(tmp_path / "1795514000", models[0].uri)
    push_record(tmp_path / "1795514100", models[1].uri)
    push_record(tmp_path / ".rolled-back" / "1795514482", models[2].uri)   # model 3 was pushed, then rolled back
    # Model 4 was blessed, but its push failed (a full disk): it never served.
    inputs = {"candidate": [model(5)], "model": models,
              "model_blessing": [blessing(1), blessing(2), blessing(3), blessing(4)]}
    chosen = BlessedModelBeforeCandidateStrategy(serving_dir=str(tmp_path)).resolve_artifacts(None, inputs)
    assert [m.id for m in chosen["model"]] == [2]     # the model serving
    assert [b.get_int_custom_property("current_model_id") for b in chosen["model_blessing"]] == [2]
    # Without a serving directory the choice is the newest blessed model, as TFX's.
    assert [m.id for m in BlessedModelBeforeCandidateStrategy().resolve_artifacts(None, inputs)["model"]] == [4]


def test_the_baseline_has_every_head_the_evaluator_scores_it_on(memory_store):
    import json

    from ml_metadata.proto import metadata_store_pb2 as mlmd

    store = memory_store
    model_type = store.put_artifact_type(mlmd.ArtifactType(name="Model"))
    trainer_type = store.put_execution_type(mlmd.ExecutionType(name="Trainer"))
    ids = []
    for heads in (["species", "sex"], ["species", "sex"], ["species", "sex", "year"]):
        (model_id,) = store.put_artifacts([mlmd.Artifact(type_id=model_type)])
        trainer = mlmd.Execution(type_id=trainer_type)
        trainer.custom_properties["custom_config"].string_value = json.dumps(
            {"heads_spec": {"heads": [{"name": h} for h in heads]}})
        (trainer_id,) = store.put_executions([trainer])
        store.put_events([mlmd.Event(artifact_id=model_id, execution_id=trainer_id, type=mlmd.Event.OUTPUT)])
        ids.append(model_id)
    # The model serving (which added `year`) comes back from the cache as the candidate, its thresholds changed:
    # the EvalConfig scores `year` against the baseline, and the models before it have no `year` output.
    inputs = {"candidate": [model(ids[2])], "model": [model(i) for i in ids],
              "model_blessing": [blessing(i) for i in ids]}
    with_year = BlessedModelBeforeCandidateStrategy(heads=["species", "sex", "year"])
    assert with_year.resolve_artifacts(store, inputs)["model"] == []          # absolute bounds alone
    without_year = BlessedModelBeforeCandidateStrategy(heads=["species", "sex"])
    assert [m.id for m in without_year.resolve_artifacts(store, inputs)["model"]] == [ids[1]]
