"""Known-harmless log lines of the stack, kept out of a command's output so that the runner's lines, errors and
results stand out. Each is printed by TFX, TF Transform, TFMA or TensorFlow on every run and asks nothing of the
user; every other line, and every error, is left as it is."""

import logging
import os
import sys
import warnings

from components.records import STOPS_BEFORE_TRANSFORM

HARMLESS_MESSAGES = (
    # TFX's resolver ops, once per query: the local resolver strategies filter artifacts in Python instead.
    "ArtifactQuery.property_predicate is not supported",
    # The serving signature's vocabulary lookups: the Transform layer builds its tables inside the tf.function.
    "Tables initialized inside a tf.function",
    # Examples of TFX 1.16's ExampleGens carry no payload format; the fallback, tf.Example, is what they hold.
    "does not have payload_format custom property",
    # TF Transform, z-scoring a mean-filled column (a two-phase analyzer): the analyzers run in a fixed order.
    "node's cache key varies on repeated tracing",
    # Deprecations inside TFX, TFMA and tfx_bsl code, not the project's.
    "is deprecated and will be removed in a future version",
    # Beam's TFRecord IO checksums records with crcmod instead: its C extension, about 0.65 us a 200-byte record
    # here, a second or so per million rows.
    "Couldn't find python-snappy",
)

# The loggers those come from (a filter on a logger sees only the records logged to it, not its children's).
FILTERED_LOGGERS = ("absl", "tensorflow", "apache_beam.io.tfrecordio")

# Beam logs a SchemaGate stop (STOPS_BEFORE_TRANSFORM) with a stack trace that is no use to the owner of the
# data, before the command reports it itself: that one record goes; a failure of any other kind keeps its trace.
BEAM_ERROR_LOGGER = "apache_beam.runners.common"


class _DropHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            return True
        message = record.getMessage()
        return not any(harmless in message for harmless in HARMLESS_MESSAGES)


class _DropGateStop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return STOPS_BEFORE_TRANSFORM not in record.getMessage()


def _drop_teardown_of_tensorflow_functions(previous_hook):
    """An unraisable-exception hook that drops one error of TensorFlow 2.16 at interpreter exit: traced functions
    still held by TensorFlow's own registries are finalized after the module whose table they update has been
    cleared (`AtomicFunction.__del__`: TypeError on None). The process is ending; nothing is lost. Any other
    unraisable exception goes to `previous_hook`."""

    def hook(unraisable) -> None:
        function = unraisable.object
        teardown = (unraisable.exc_type is TypeError
                    and getattr(function, "__qualname__", "") == "AtomicFunction.__del__"
                    and getattr(function, "__module__", "").startswith("tensorflow."))
        if not teardown:
            previous_hook(unraisable)

    return hook


def quiet_harmless_logs() -> None:
    """Drops HARMLESS_MESSAGES from the absl and TensorFlow loggers, Google client libraries' notice that Python
    3.10 is no longer supported (docs/design.md, the stack), TFMA's division warnings on slices without positives (the
    metric is NaN), kfp's notice of the server versions it works with (docs/kubeflow.md),
    Beam's logged copy of a SchemaGate stop (the command prints it), TensorFlow's error in finalizing its traced
    functions at interpreter exit, and TensorFlow's C++ info and warning lines
    (CUDA stubs, CPU features; its errors stay). Call before TensorFlow is imported; worker processes inherit the
    C++ setting."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
    # TFMA's confusion-matrix metrics divide by zero on a slice with no positive (or no predicted positive) row;
    # the metric is then NaN, which the table, the failure lines and the report show as such.
    warnings.filterwarnings("ignore", message="invalid value encountered in (scalar )?divide",
                            category=RuntimeWarning, module=r"tensorflow_model_analysis\.")
    # kfp 2.5's client, on every connection: it works with Kubeflow Pipelines 2.0.0-beta.2 and later (docs/kubeflow.md).
    warnings.filterwarnings("ignore", message="This client only works with Kubeflow Pipeline v2",
                            category=FutureWarning)
    for name in FILTERED_LOGGERS:
        logging.getLogger(name).addFilter(_DropHarmless())
    logging.getLogger(BEAM_ERROR_LOGGER).addFilter(_DropGateStop())
    sys.unraisablehook = _drop_teardown_of_tensorflow_functions(sys.unraisablehook)
