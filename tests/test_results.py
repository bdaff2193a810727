"""Reading results back: the thresholded metric of each head, and the runs table."""

import json

from google.protobuf import json_format

from components.spec import spec_metric_name
from pipeline.definition.eval_config import build_eval_config
from pipeline.read.results import RunSummary, _thresholded_metrics, format_runs


def test_thresholded_metric_of_each_head_comes_from_the_evaluators_own_config(penguins_spec):
    # As TFX stores it: the EvalConfig as JSON with the protos' field names.
    config = json.dumps(json_format.MessageToDict(build_eval_config(penguins_spec), preserving_proto_field_name=True))
    assert _thresholded_metrics(config) == {"species": "sparse_categorical_accuracy", "sex": "binary_accuracy",
                                            "body_mass_g": "mean_absolute_error"}


def test_runs_table_shows_outcome_push_and_provenance():
    runs = [
        RunSummary(run_id="r1", started=1795435947.5, span=0, heads={"species": ("accuracy", 0.98)}, blessed=True,
                   pushed_version="1795436000", already_serving=None, failed_at=None,
                   provenance={"heads_spec_fingerprint": "abc123", "git_commit": "0123456789abcdef"}),
        RunSummary(run_id="r2", started=1795436947.5, span=1, heads={}, blessed=None, pushed_version=None,
                   already_serving=None, failed_at="SchemaGate", provenance={}),
        RunSummary(run_id="r3", started=1795437947.5, span=1, heads={"species": ("accuracy", 0.98)}, blessed=True,
                   pushed_version=None, already_serving="/s/1795436000", failed_at=None, provenance={}),
    ]
    lines = format_runs(runs).splitlines()
    assert lines[0].split()[:3] == ["run", "started", "(UTC)"]
    assert "species accuracy=0.98" in lines[1] and "1795436000" in lines[1] and "abc123" in lines[1]
    assert "0123456789ab" in lines[1] and "2026-11-23" in lines[1]
    assert "failed at SchemaGate" in lines[2]
    assert "already serving (1795436000)" in lines[3]


def test_a_pushed_version_that_left_the_serving_directory_says_how(tmp_path):
    serving = tmp_path / "serving"
    (serving / "1795436000").mkdir(parents=True)
    (serving / ".rolled-back" / "1795437000").mkdir(parents=True)

    def pushed(version):
        return RunSummary(run_id=version, started=1795435947.5, span=0, heads={}, blessed=True,
                          pushed_version=version, already_serving=None, failed_at=None, provenance={},
                          pushed_destination=str(serving / version))

    lines = format_runs([pushed("1795436000"), pushed("1795437000"), pushed("1795435000")]).splitlines()
    assert lines[1].split()[5:7] == ["yes", "1795436000"]
    assert "1795437000 (rolled back)" in lines[2] and "1795435000 (deleted)" in lines[3]


def test_a_run_that_never_finished_a_component_reads_as_interrupted_unless_it_holds_the_lock():
    def run(run_id, unfinished_at=None):
        return RunSummary(run_id=run_id, started=1795435947.5, span=0, heads={}, blessed=None, pushed_version=None,
                          already_serving=None, failed_at=None, provenance={}, unfinished_at=unfinished_at)

    runs = [run("killed", "Trainer"), run("newest", "Transform")]
    lines = format_runs(runs).splitlines()
    assert "interrupted at Trainer" in lines[1] and "interrupted at Transform" in lines[2]
    # While a run holds the workdir's lock, the newest run's component is running; older ones were still killed.
    lines = format_runs(runs, in_progress=True).splitlines()
    assert "interrupted at Trainer" in lines[1] and "running: Transform" in lines[2]


def test_the_runs_list_names_metrics_as_the_spec_and_the_run_table_do():
    assert spec_metric_name("sparse_categorical_accuracy") == spec_metric_name("binary_accuracy") == "accuracy"
    assert spec_metric_name("mean_absolute_error") == "mae"
    assert spec_metric_name("angular_error_deg") == "angular_error_deg"
    assert spec_metric_name("some_other_metric") == "some_other_metric"


def test_a_bound_missing_on_a_slice_says_tfma_suppressed_it_and_nan_that_no_row_had_a_label(tmp_path):
    import tensorflow as tf
    from tensorflow_model_analysis.proto import validation_result_pb2

    from pipeline.read.results import NO_LABELLED_ROWS_NOTE, SUPPRESSED_SLICE_NOTE, describe_failures

    result = validation_result_pb2.ValidationResult(validation_ok=False)
    torgersen = result.metric_validations_per_slice.add()
    torgersen.slice_key.single_slice_keys.add(column="island", bytes_value=b"Torgersen")
    failure = torgersen.failures.add()       # suppressed: no value
    failure.metric_key.output_name, failure.metric_key.name = "species", "sparse_categorical_accuracy"
    failure.metric_threshold.value_threshold.lower_bound.value = 0.95
    overall = result.metric_validations_per_slice.add()
    failure = overall.failures.add()         # the overall slice is never suppressed: no note
    failure.metric_key.output_name, failure.metric_key.name = "sex", "binary_accuracy"
    failure.metric_value.double_value.value = 0.7
    failure.metric_threshold.value_threshold.lower_bound.value = 0.8
    dream = result.metric_validations_per_slice.add()
    dream.slice_key.single_slice_keys.add(column="island", bytes_value=b"Dream")
    failure = dream.failures.add()           # scored, but no row of the slice has the head's label
    failure.metric_key.output_name, failure.metric_key.name = "heading", "angular_error_deg"
    failure.metric_value.double_value.value = float("nan")
    failure.metric_threshold.value_threshold.upper_bound.value = 30
    with tf.io.TFRecordWriter(str(tmp_path / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    lines = describe_failures(str(tmp_path))
    # Metrics are named as the spec names them (TFMA's sparse_categorical_accuracy is the spec's accuracy).
    assert lines[0].startswith("species: accuracy on slice island=Torgersen = missing, "
                               "needs >= 0.95") and lines[0].endswith(SUPPRESSED_SLICE_NOTE)
    assert "min_slice_size" in SUPPRESSED_SLICE_NOTE
    assert SUPPRESSED_SLICE_NOTE not in lines[1] and lines[1].startswith("sex: accuracy on slice ")
    assert lines[2] == ("heading: angular_error_deg on slice island=Dream = nan, needs <= 30"
                        + NO_LABELLED_ROWS_NOTE)


def test_the_baselines_heads_are_those_of_a_model_in_the_serving_directory(memory_store):
    import json

    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline.read.results import latest_blessed_model_heads

    store = memory_store
    model_type = store.put_artifact_type(mlmd.ArtifactType(name="Model"))
    blessing_type = store.put_artifact_type(mlmd.ArtifactType(name="ModelBlessing"))
    trainer_type = store.put_execution_type(mlmd.ExecutionType(name="Trainer"))
    for number, heads in ((1, ["species", "sex"]), (2, ["species", "sex", "body_mass_g"])):
        (model_id,) = store.put_artifacts([mlmd.Artifact(type_id=model_type, uri=f"/models/{number}")])
        trainer = mlmd.Execution(type_id=trainer_type)
        trainer.custom_properties["custom_config"].string_value = json.dumps(
            {"heads_spec": {"heads": [{"name": h} for h in heads]}})
        (trainer_id,) = store.put_executions([trainer])
        store.put_events([mlmd.Event(artifact_id=model_id, execution_id=trainer_id, type=mlmd.Event.OUTPUT)])
        blessing = mlmd.Artifact(type_id=blessing_type)
        blessing.custom_properties["current_model_id"].int_value = model_id
        blessing.custom_properties["blessed"].int_value = 1
        store.put_artifacts([blessing])
    assert latest_blessed_model_heads(store) == ["species", "sex", "body_mass_g"]
    # Model 2 was rolled back, or its push failed: model 1 is the one serving.
    assert latest_blessed_model_heads(store, {"/models/1"}) == ["species", "sex"]
    assert latest_blessed_model_heads(store, {"/models/1", "/models/2"}) == ["species", "sex", "body_mass_g"]
    assert latest_blessed_model_heads(store, set()) is None


def test_the_run_table_says_when_a_head_within_its_bound_failed_against_the_baseline():
    from pipeline.read.results import HeadResult, RunResult, format_table

    heads = (HeadResult("species", "accuracy", 0.98, ">= 0.95", True),
             HeadResult("sex", "accuracy", 0.7, ">= 0.8", False),
             HeadResult("body_mass_g", "mae", 318.5, "<= 350", False, failed_against_baseline=True))
    lines = format_table(RunResult(heads=heads, blessed=False, pushed_path=None, evaluation_uri="/e")).splitlines()
    assert lines[1].endswith("yes") and lines[2].endswith("NO")
    assert lines[3].split() == ["body_mass_g", "mae", "318.5", "<=", "350", "NO:", "worse", "than", "the", "baseline"]


def test_the_run_table_says_no_for_a_head_that_met_its_overall_bound_but_failed_on_a_slice():
    from pipeline.read.results import HeadResult, RunResult, format_table

    heads = (HeadResult("sky", "accuracy", 0.78, ">= 0.6", False, failed_slices=("station=harbor",)),
             HeadResult("frost", "accuracy", 0.9, ">= 0.8", False, failed_against_baseline=True,
                        failed_slices=("station=harbor", "station=hill")))
    lines = format_table(RunResult(heads=heads, blessed=False, pushed_path=None, evaluation_uri="/e")).splitlines()
    assert lines[1].endswith("NO: on slice station=harbor")
    assert lines[2].endswith("NO: worse than the baseline; on 2 slices")
