"""The local runner's resolver choices, on hand-made ML Metadata artifacts."""

from tfx.types import standard_artifacts

from pipeline.resolvers import (BlessedModelBeforeCandidateStrategy,
                                blessed_model_before, statistics_of_previous_span)


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
