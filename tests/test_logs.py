"""The command's log filter: the stack's known-harmless lines go, everything else stays."""

import logging
import warnings

import pytest

from components import records
from pipeline.cli import logs


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    saved = {name: list(logging.getLogger(name).filters) for name in (*logs.FILTERED_LOGGERS, logs.BEAM_ERROR_LOGGER)}
    with warnings.catch_warnings():
        logs.quiet_harmless_logs()
        yield
    for name, filters in saved.items():
        logging.getLogger(name).filters[:] = filters


def test_known_harmless_lines_are_dropped_and_every_other_line_kept(quiet, caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("absl").warning("ArtifactQuery.property_predicate is not supported.")
        logging.getLogger("absl").warning("Analyzer (scale_to_z_score/mean_and_var/x:0) node's cache key varies on "
                                          "repeated tracing. This warning is safe to ignore if ...")
        logging.getLogger("tensorflow").warning("From tfx_bsl/x.py:343: parse_example_dataset (from ...) is "
                                                "deprecated and will be removed in a future version.")
        logging.getLogger("apache_beam.io.tfrecordio").warning(
            "Couldn't find python-snappy so the implementation of _TFRecordUtil._masked_crc32c is not as fast as "
            "it could be.")
        logging.getLogger("absl").warning("Evaluator: the baseline model could not be loaded")
        logging.getLogger("tensorflow").error("Tables initialized inside a tf.function: failed")   # an error
    assert [r.getMessage() for r in caplog.records] == ["Evaluator: the baseline model could not be loaded",
                                                        "Tables initialized inside a tf.function: failed"]


def test_tensorflow_cpp_info_and_warnings_are_off_unless_the_user_set_a_level(quiet, monkeypatch):
    import os

    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    logs.quiet_harmless_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_the_python_version_notice_of_googles_client_libraries_is_dropped(quiet):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs.quiet_harmless_logs()
        warnings.warn_explicit("You are using a non-supported Python version (3.10.13).", FutureWarning,
                               "_python_version_support.py", 246, module="google.api_core._python_version_support")
        warnings.warn_explicit("another FutureWarning", FutureWarning, "x.py", 1, module="pandas.core")
    assert [str(w.message) for w in caught] == ["another FutureWarning"]


def test_beams_logged_copy_of_a_gate_stop_goes_and_other_errors_keep_their_trace(quiet, caplog):
    beam = logging.getLogger(logs.BEAM_ERROR_LOGGER)
    with caplog.at_level(logging.INFO):
        beam.error("data.csv does not fit the heads spec; %s:\n  column 'x' ... [while running 'Run[SchemaGate]']",
                   records.STOPS_BEFORE_TRANSFORM)
        beam.error("ValueError: something broke [while running 'Run[Trainer]']")
    assert [r.getMessage() for r in caplog.records] == ["ValueError: something broke [while running 'Run[Trainer]']"]


def test_kfps_server_version_notice_is_dropped(quiet):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs.quiet_harmless_logs()
        warnings.warn_explicit("This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later versions.",
                               FutureWarning, "client.py", 159, module="kfp.client.client")
        warnings.warn_explicit("another FutureWarning", FutureWarning, "client.py", 1, module="kfp.client.client")
    assert [str(w.message) for w in caught] == ["another FutureWarning"]


def test_tfmas_division_warning_on_a_slice_without_positives_is_dropped_and_others_kept(quiet):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs.quiet_harmless_logs()
        warnings.warn_explicit("invalid value encountered in divide", RuntimeWarning, "confusion_matrix_metrics.py",
                               553, module="tensorflow_model_analysis.metrics.confusion_matrix_metrics")
        warnings.warn_explicit("invalid value encountered in divide", RuntimeWarning, "model.py", 1,
                               module="components.trainer.model")
    assert [w.filename for w in caught] == ["model.py"]


def test_only_tensorflows_error_in_finalizing_its_functions_at_exit_is_dropped():
    import types

    from tensorflow.python.eager.polymorphic_function.atomic_function import AtomicFunction

    seen = []
    hook = logs._drop_teardown_of_tensorflow_functions(seen.append)

    def unraisable(exc_type, obj):
        return types.SimpleNamespace(exc_type=exc_type, exc_value=exc_type(), exc_traceback=None, err_msg=None,
                                     object=obj)

    hook(unraisable(TypeError, AtomicFunction.__del__))
    assert seen == []
    for other in (unraisable(ValueError, AtomicFunction.__del__), unraisable(TypeError, lambda: None)):
        hook(other)
    assert len(seen) == 2
