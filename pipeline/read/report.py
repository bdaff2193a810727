"""The run report: `report.html` with PNG plots, for any pipeline run recorded in ML Metadata.

Everything is read back from ML Metadata and the artifacts it points to, so the report of any past run can be
re-created (`python -m pipeline report --workdir W --run RUN`) as long as its artifacts are still on disk:

- the heads (kind, label, classes) from the spec the Trainer (or Transform) execution was given;
- thresholds, slices and the minimum slice size from the Evaluator's own EvalConfig;
- per-slice metrics of the candidate and the baseline from TFMA's output, and the validation result;
- confusion matrices and predicted-against-true from the run's candidate model applied to the run's eval split;
- training curves from the TensorBoard logs the Trainer wrote;
- provenance from the pushed version's `assets.extra/push.json` (or the Pusher's record when nothing was pushed).

The data gathering (`gather_report`) and the drawing (`plot_*`, `render_html`) are separate: the plots are pure
functions of plain numbers, tested on tiny in-memory data.
"""

from __future__ import annotations

import dataclasses
import glob
import html
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI; set before anything draws

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from components.spec import HeadSpec, SpecError, reported_name_of_class, spec_from_dict, spec_metric_name  # noqa: E402

REPORTS_DIR = "reports"
REPORT_FILE = "report.html"
# Predictions for the confusion matrices and scatter plots are made on at most this many eval rows (the first ones):
# enough for the plots, and it bounds the time a report adds to a run on large data.
MAX_PREDICTION_ROWS = 20_000
_PREDICT_BATCH = 1024
_TOO_SMALL_METRIC = "__ERROR__"   # what TFMA records instead of the metrics of a slice below min_slice_size

SliceKey = tuple[tuple[str, str], ...]   # () is the whole eval split; (("island", "Biscoe"),) one slice


class ReportError(SpecError):
    """The report cannot be made (no store, no such run): the message names the workdir or run. A SpecError, so
    the command line answers it with exit code 2, like any other wrong setting."""


# ---------------------------------------------------------------------------------------------------------
# Plain data read from a run.


@dataclasses.dataclass(frozen=True)
class HeadThreshold:
    """One head's thresholded metric and its bounds, as the Evaluator applied them.

    Attributes:
      metric: the TFMA metric name (e.g. `sparse_categorical_accuracy`).
      lower / upper: the bound on the whole eval split.
      change: TFMA's absolute change bound on candidate - baseline (e.g. -0.02: at most 0.02 worse); None: none.
      slice_bounds: `(slice features, lower, upper)` bounds on every slice of those features.
    """

    metric: str
    lower: Optional[float] = None
    upper: Optional[float] = None
    change: Optional[float] = None
    slice_bounds: tuple[tuple[tuple[str, ...], Optional[float], Optional[float]], ...] = ()

    @property
    def higher_is_better(self) -> bool:
        return self.lower is not None

    def bound_text(self) -> str:
        return f">= {self.lower:g}" if self.lower is not None else f"<= {self.upper:g}"

    def slice_bound(self, key: SliceKey) -> Optional[float]:
        """The bound that applies to one slice: the overall bound on the overall slice, else a per-slice one."""
        if not key:
            return self.lower if self.lower is not None else self.upper
        features = tuple(column for column, _ in key)
        for bound_features, lower, upper in self.slice_bounds:
            if tuple(bound_features) == features:
                return lower if lower is not None else upper
        return None


@dataclasses.dataclass(frozen=True)
class EvalMetrics:
    """TFMA's metrics of one evaluation.

    Attributes:
      values: `{(slice key, head, metric, model): value}`; model is `candidate` or `baseline`.
      too_small: slices TFMA suppressed for having fewer rows than `min_slice_size`, with TFMA's message.
    """

    values: Mapping[tuple[SliceKey, str, str, str], float]
    too_small: Mapping[SliceKey, str]

    def slices(self) -> list[SliceKey]:
        """Every slice, scored or suppressed: the overall slice first, then by name."""
        keys = {k[0] for k in self.values} | set(self.too_small)
        return sorted(keys, key=lambda k: (len(k) > 0, k))

    def get(self, key: SliceKey, head: str, metric: str, model: str = "candidate") -> Optional[float]:
        return self.values.get((key, head, metric, model))

    @property
    def has_baseline(self) -> bool:
        return any(k[3] == "baseline" for k in self.values)


@dataclasses.dataclass(frozen=True)
class HeadPredictions:
    """One head's labels and the candidate's predictions on the eval rows that have the head's label.

    Attributes:
      true / predicted: class indices (classification) or values in the label's units (regression, angle).
      rows: eval rows predicted (with or without this head's label).
    """

    true: np.ndarray
    predicted: np.ndarray
    rows: int


@dataclasses.dataclass
class RunReport:
    """Everything the page shows; gathered from ML Metadata and artifacts, then drawn."""

    run_id: str
    started: float
    components: list[tuple[str, str, int]]          # (node, state, execution id)
    heads: list[HeadSpec]
    thresholds: dict[str, HeadThreshold]
    slicing: list[tuple[str, ...]]
    min_slice_size: int
    metrics: Optional[EvalMetrics]
    blessed: Optional[bool]
    failures: list[str]
    slice_counts: dict[SliceKey, int]               # eval rows per slice, counted from the eval split
    predictions: dict[str, HeadPredictions]
    curves: dict[str, dict[str, list[tuple[int, float]]]]   # {log subdir: {tag: [(epoch, value)]}}
    pushed: str                                     # what happened at the push, in words
    provenance: dict[str, Any]
    provenance_source: str
    notes: list[str]                                # what could not be shown, and why
    failure: Optional[tuple[str, str]] = None       # (component, error message) of a run that failed
    data: str = ""                                  # what the run read: its span and ExampleGen's output


# ---------------------------------------------------------------------------------------------------------
# Pure helpers.


def slice_name(key: SliceKey) -> str:
    return "overall" if not key else ", ".join(f"{column}={value}" for column, value in key)


def slice_key_of(proto_slice_key) -> SliceKey:
    """A TFMA SliceKey proto as `((column, value), ...)`, values as text."""
    key = []
    for single in proto_slice_key.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind) if kind else ""
        key.append((single.column, value.decode() if isinstance(value, bytes) else f"{value:g}"
                    if isinstance(value, float) else str(value)))
    return tuple(key)


def parse_metrics(metrics_for_slices: Iterable[Any]) -> EvalMetrics:
    """TFMA's `MetricsForSlice` protos as `EvalMetrics`; slices suppressed for their size are kept as too small."""
    values: dict[tuple[SliceKey, str, str, str], float] = {}
    too_small: dict[SliceKey, str] = {}
    for per_slice in metrics_for_slices:
        key = slice_key_of(per_slice.slice_key)
        for kv in per_slice.metric_keys_and_values:
            metric = kv.key
            if metric.name == _TOO_SMALL_METRIC:
                too_small[key] = (kv.value.bytes_value.decode() if kv.value.HasField("bytes_value")
                                  else str(kv.value))
                continue
            if metric.is_diff or not kv.value.HasField("double_value"):
                continue
            model = metric.model_name or "candidate"
            entry = (key, metric.output_name, metric.name, model)
            # TFMA may report a metric both weighted and unweighted; the heads' weights mask missing labels, so the
            # weighted one is what the thresholds judge.
            if entry not in values or metric.example_weighted.value:
                values[entry] = kv.value.double_value.value
    return EvalMetrics(values=values, too_small=too_small)


def parse_thresholds(eval_config) -> dict[str, HeadThreshold]:
    """`{head: HeadThreshold}` from a TFMA EvalConfig as `eval_config.build_eval_config` writes it."""
    thresholds = {}
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if not metric.per_slice_thresholds and not metric.HasField("threshold"):
                continue
            overall = metric.threshold if metric.HasField("threshold") else None
            slice_bounds = []
            for per_slice in metric.per_slice_thresholds:
                features = tuple(per_slice.slicing_specs[0].feature_keys) if per_slice.slicing_specs else ()
                if not features:
                    overall = per_slice.threshold
                    continue
                bound = per_slice.threshold.value_threshold
                slice_bounds.append((features,
                                     bound.lower_bound.value if bound.HasField("lower_bound") else None,
                                     bound.upper_bound.value if bound.HasField("upper_bound") else None))
            name = reported_name_of_class(metric.class_name)
            if metric.config:
                name = json.loads(metric.config).get("name", name)
            lower = upper = change = None
            if overall is not None:
                bound = overall.value_threshold
                lower = bound.lower_bound.value if bound.HasField("lower_bound") else None
                upper = bound.upper_bound.value if bound.HasField("upper_bound") else None
                if overall.HasField("change_threshold"):
                    change = overall.change_threshold.absolute.value
            for head in spec.output_names:
                thresholds[head] = HeadThreshold(metric=name, lower=lower, upper=upper, change=change,
                                                 slice_bounds=tuple(slice_bounds))
    return thresholds


def confusion_counts(true: Sequence[int], predicted: Sequence[int], num_classes: int) -> np.ndarray:
    """`counts[i, j]`: rows of true class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return counts


def residuals(head_kind: str, true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """predicted - true; for angle heads the shorter way round the circle, in (-pi, pi]."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    if head_kind == "angle":
        diff = -((-diff + np.pi) % (2 * np.pi) - np.pi)
    return diff


def head_labels(head: HeadSpec, raw: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A head's labels from its raw column, and which rows have one.

    Rows without a label, or (classification) with a class not in the head's classes, are not scored: the same
    rows the head's weight masks in training and in the Evaluator.

    Returns:
      (labels of the kept rows: class indices or floats, boolean mask of kept rows).
    """
    keep = np.zeros(len(raw), dtype=bool)
    labels = []
    for i, value in enumerate(raw):
        if value is None:
            continue
        if head.is_classification:
            name = value.decode() if isinstance(value, bytes) else str(value)
            if name not in head.classes:
                continue
            labels.append(head.classes.index(name))
        else:
            labels.append(float(value))
        keep[i] = True
    return np.asarray(labels, dtype=np.int64 if head.is_classification else np.float64), keep


def count_slices(rows: Sequence[Mapping[str, Any]], slicing: Sequence[Sequence[str]]) -> dict[SliceKey, int]:
    """Eval rows per slice value (a row lacking a slice feature is in none of its slices, as in TFMA)."""
    counts: dict[SliceKey, int] = {(): len(rows)}
    for features in slicing:
        for row in rows:
            if all(row.get(f) is not None for f in features):
                key = tuple((f, _text(row[f])) for f in features)
                counts[key] = counts.get(key, 0) + 1
    return counts


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------------------
# Plots: each takes plain numbers and writes one PNG.

_CANDIDATE, _BASELINE, _BOUND, _FAIL = "#1f77b4", "#b0b0b0", "#d62728", "#fbe3e3"


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def plot_metric_vs_threshold(path: Path, head: str, metric: str, candidate: Optional[float],
                             baseline: Optional[float], threshold: HeadThreshold) -> Path:
    """A head's thresholded metric: the candidate's (and the baseline's) value against the bound and tolerance.

    The axis is zoomed to the values and bounds (not from 0), so that a close call is visible.
    """
    figure = Figure(figsize=(6.4, 2.8))
    axes = figure.add_subplot()
    rows = [("candidate", candidate, _CANDIDATE)] + ([("baseline", baseline, "#777777")] if baseline is not None
                                                     else [])
    bound = threshold.lower if threshold.lower is not None else threshold.upper
    tolerance_bound = baseline + threshold.change if baseline is not None and threshold.change is not None else None
    marks = [v for v in (candidate, baseline, bound, tolerance_bound) if v is not None]
    low, high = (min(marks), max(marks)) if marks else (0.0, 1.0)
    margin = (high - low) * 0.25 or abs(high) * 0.05 or 1.0
    left, right = low - margin, high + margin
    if bound is not None:
        # Shade the failing side of the absolute bound.
        if threshold.higher_is_better:
            axes.axvspan(left, bound, color=_FAIL, label="fails the bound")
        else:
            axes.axvspan(bound, right, color=_FAIL, label="fails the bound")
        axes.axvline(bound, color=_BOUND, linestyle="--", label=f"threshold {threshold.bound_text()}")
    if tolerance_bound is not None:
        axes.axvline(tolerance_bound, color="#ff7f0e", linestyle=":",
                     label=f"baseline {threshold.change:+g} (tolerance)")
    positions = np.arange(len(rows))[::-1]
    for y, (name, value, colour) in zip(positions, rows):
        if value is None:
            axes.text(left, y, "  missing", va="center", color=_BOUND)
            continue
        axes.hlines(y, left, value, color=colour, linewidth=2, alpha=0.5)
        axes.plot([value], [y], "o", color=colour, markersize=9)
        axes.annotate(f"{value:.4g}", (value, y), textcoords="offset points", xytext=(0, 8), ha="center",
                      fontsize=9)
    axes.set_xlim(left, right)
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_yticks(positions, [name for name, _, _ in rows])
    axes.set_xlabel(metric)
    axes.set_title(f"{head}: {metric}")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    return _save(figure, path)


def plot_slice_bars(path: Path, head: str, metric: str, bars: Sequence[tuple[str, Optional[float],
                                                                              Optional[float], Optional[float],
                                                                              Optional[str]]]) -> Path:
    """The metric on every slice; suppressed slices are drawn as hatched placeholders marked too small.

    Args:
      bars: `(slice name, candidate value, baseline value, bound, too-small text)` per slice; a too-small slice
        has no values and its text says why.
    """
    figure = Figure(figsize=(max(6.4, 1.2 * len(bars) + 2), 3.6))
    axes = figure.add_subplot()
    positions = np.arange(len(bars))
    width = 0.38
    top = max([v for bar in bars for v in (bar[1], bar[2], bar[3]) if v is not None] or [1.0])
    with_baseline = any(bar[2] is not None for bar in bars)
    for x, (name, candidate, baseline, bound, too_small) in zip(positions, bars):
        if too_small:
            axes.bar(x, top * 0.3, width=2 * width, color="white", edgecolor="#888", hatch="//")
            axes.text(x, top * 0.32, too_small, ha="center", va="bottom", fontsize=8, wrap=True)
            continue
        offset = -width / 2 if with_baseline else 0.0
        if candidate is not None:
            axes.bar(x + offset, candidate, width=width, color=_CANDIDATE,
                     label="candidate" if x == positions[0] or "candidate" not in _labels(axes) else None)
            axes.text(x + offset, candidate, f"{candidate:.3g}", ha="center", va="bottom", fontsize=8)
        if baseline is not None:
            axes.bar(x + width / 2, baseline, width=width, color=_BASELINE,
                     label=None if "baseline" in _labels(axes) else "baseline")
        if bound is not None:
            axes.hlines(bound, x - width, x + width, color=_BOUND, linestyle="--",
                        label=None if "bound" in _labels(axes) else "bound")
    axes.set_xticks(positions, [bar[0] for bar in bars], rotation=20 if len(bars) > 4 else 0, fontsize=9)
    axes.set_ylim(0, top * 1.3)
    axes.set_ylabel(metric)
    axes.set_title(f"{head}: {metric} per slice")
    if _labels(axes):
        axes.legend(loc="upper right", ncol=3, fontsize=8)
    return _save(figure, path)


def _labels(axes) -> list[str]:
    return [label for label in axes.get_legend_handles_labels()[1]]


def plot_confusion_matrix(path: Path, head: str, classes: Sequence[str], counts: np.ndarray) -> Path:
    """Counts of true (rows) against predicted (columns) classes, shaded by the share of each true class."""
    figure = Figure(figsize=(1.1 * len(classes) + 3, 0.9 * len(classes) + 2.2))
    axes = figure.add_subplot()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        axes.text(j, i, str(count), ha="center", va="center", color="white" if shares[i, j] > 0.6 else "black")
    axes.set_xticks(range(len(classes)), classes)
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{head}: confusion matrix ({int(counts.sum())} eval rows)")
    figure.colorbar(image, ax=axes, label="share of the true class")
    return _save(figure, path)


def plot_predicted_vs_true(path: Path, head: str, true: np.ndarray, predicted: np.ndarray) -> Path:
    """Predicted against true values, with the line where they are equal."""
    figure = Figure(figsize=(5.2, 4.6))
    axes = figure.add_subplot()
    axes.scatter(true, predicted, s=12, alpha=0.7, color=_CANDIDATE)
    low = float(min(np.min(true), np.min(predicted))) if len(true) else 0.0
    high = float(max(np.max(true), np.max(predicted))) if len(true) else 1.0
    axes.plot([low, high], [low, high], color=_BOUND, linestyle="--", label="predicted = true")
    axes.set_xlabel(f"true {head}")
    axes.set_ylabel(f"predicted {head}")
    axes.set_title(f"{head}: predicted against true ({len(true)} eval rows)")
    axes.legend(loc="upper left", fontsize=8)
    return _save(figure, path)


def plot_residuals(path: Path, head: str, predicted: np.ndarray, residual: np.ndarray) -> Path:
    """Residuals (predicted - true) against the prediction, and their histogram."""
    figure = Figure(figsize=(8.4, 3.6))
    scatter, histogram = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    scatter.scatter(predicted, residual, s=12, alpha=0.7, color=_CANDIDATE)
    scatter.axhline(0, color=_BOUND, linestyle="--")
    scatter.set_xlabel(f"predicted {head}")
    scatter.set_ylabel("predicted - true")
    scatter.set_title(f"{head}: residuals")
    histogram.hist(residual, bins=min(30, max(5, len(residual) // 5)), color=_CANDIDATE, alpha=0.8)
    histogram.axvline(0, color=_BOUND, linestyle="--")
    histogram.set_xlabel("predicted - true")
    histogram.set_ylabel("rows")
    return _save(figure, path)


def plot_training_curves(path: Path, head: str, losses: Mapping[str, Sequence[tuple[int, float]]],
                         weights: Optional[Sequence[tuple[int, float]]] = None) -> Path:
    """A head's loss per epoch (one line per log, e.g. train and validation), and its effective weight if logged."""
    figure = Figure(figsize=(8.4 if weights else 6.4, 3.6))
    panels = figure.subplots(1, 2) if weights else [figure.add_subplot()]
    for name, points in losses.items():
        epochs, values = zip(*points) if points else ((), ())
        panels[0].plot([e + 1 for e in epochs], values, marker="." if len(points) < 30 else None, label=name)
    panels[0].set_xlabel("epoch")
    panels[0].set_ylabel(f"{head} loss")
    panels[0].set_title(f"{head}: loss per epoch")
    panels[0].legend(fontsize=8)
    if weights:
        epochs, values = zip(*weights)
        panels[1].plot([e + 1 for e in epochs], values, color="#2ca02c")
        panels[1].set_xlabel("epoch")
        panels[1].set_ylabel("effective loss weight")
        panels[1].set_title(f"{head}: loss weight per epoch")
    return _save(figure, path)


# ---------------------------------------------------------------------------------------------------------
# Reading a run.


def find_run(store, run: Optional[str] = None):
    """A pipeline-run context: the newest, or the one named `run` (its id as `runs` lists it, or its number there,
    1 being the oldest).

    Raises:
      ReportError: no such run.
    """
    from pipeline.read.results import pipeline_runs  # noqa: PLC0415

    runs = pipeline_runs(store)
    if not runs:
        raise ReportError("the ML Metadata store holds no pipeline run")
    if run is None:
        return runs[-1]
    for context in runs:
        if context.name == run:
            return context
    if run.isdigit() and 1 <= int(run) <= len(runs):
        return runs[int(run) - 1]
    raise ReportError(f"--run: no run {run!r} (runs: {', '.join(c.name for c in runs)}, or 1 to {len(runs)})")


def read_scalars(log_dir: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Scalars of every TensorBoard event file under `log_dir`: `{subdir (train, validation): {tag: [(step, v)]}}`."""
    import tensorflow as tf  # noqa: PLC0415

    scalars: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True)):
        subdir = os.path.relpath(os.path.dirname(path), log_dir)
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = value.simple_value
                elif kind == "tensor" and not value.tensor.tensor_shape.dim:
                    number = tf.make_ndarray(value.tensor)
                    if number.dtype.kind not in "iuf":  # TensorBoard also logs the model's config, as text
                        continue
                else:
                    continue
                scalars.setdefault(subdir, {}).setdefault(value.tag, []).append((int(event.step), float(number)))
    return scalars


def read_eval_examples(examples_uri: str, limit: int = MAX_PREDICTION_ROWS) -> list[bytes]:
    """Serialized tf.Examples of the eval split (GZIP TFRecords, as ExampleGen writes them), at most `limit`."""
    import tensorflow as tf  # noqa: PLC0415

    files = sorted(glob.glob(os.path.join(examples_uri, "Split-eval", "*")))
    if not files:
        raise ReportError(f"{examples_uri}: no eval split (Split-eval/) in the examples artifact")
    records = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit):
        records.append(record.numpy())
    return records


def example_rows(serialized: Sequence[bytes], columns: Iterable[str]) -> list[dict[str, Any]]:
    """The first value of each named column per tf.Example; None where a row has no value."""
    import tensorflow as tf  # noqa: PLC0415

    columns = list(columns)
    rows = []
    for record in serialized:
        features = tf.train.Example.FromString(record).features.feature
        row = {}
        for column in columns:
            feature = features.get(column)
            kind = feature.WhichOneof("kind") if feature is not None else None
            values = getattr(feature, kind).value if kind else []
            row[column] = values[0] if len(values) else None
        rows.append(row)
    return rows


def predict(model_dir: str, serialized: Sequence[bytes]) -> dict[str, np.ndarray]:
    """The model's `serving_default` outputs on serialized raw tf.Examples."""
    import tensorflow as tf  # noqa: PLC0415

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    outputs: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(serialized), _PREDICT_BATCH):
        batch = signature(examples=tf.constant(list(serialized[start:start + _PREDICT_BATCH])))
        for name, tensor in batch.items():
            outputs.setdefault(name, []).append(tensor.numpy())
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def head_predictions(head: HeadSpec, rows: Sequence[Mapping[str, Any]],
                     outputs: Mapping[str, np.ndarray]) -> HeadPredictions:
    """One head's labelled rows: true and predicted class indices, or true and predicted values."""
    from components.spec import predicted_class_name  # noqa: PLC0415

    true, keep = head_labels(head, [row.get(head.label) for row in rows])
    if head.is_classification:
        names = [n.decode() if isinstance(n, bytes) else str(n)
                 for n in np.asarray(outputs[predicted_class_name(head.name)]).reshape(-1)]
        predicted = np.asarray([head.classes.index(n) for n in names], dtype=np.int64)[keep]
    else:
        predicted = np.asarray(outputs[head.name], dtype=np.float64).reshape(len(rows), -1)[:, 0][keep]
    return HeadPredictions(true=true, predicted=predicted, rows=len(rows))


def gather_report(store, run) -> RunReport:
    """Reads everything the report shows for one pipeline run (a `pipeline_run` context)."""
    import tensorflow_model_analysis as tfma  # noqa: PLC0415
    from google.protobuf import json_format  # noqa: PLC0415
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    from components import records  # noqa: PLC0415
    from components.serving_dir import PUSH_RECORD, read_push_record  # noqa: PLC0415
    from pipeline.read import lineage, results  # noqa: PLC0415

    notes: list[str] = []
    executions = results.executions_by_node(store, run)
    outputs = results.run_outputs(store, run)
    states = {value: name for name, value in metadata_store_pb2.Execution.State.items()}
    components = [(node, states.get(runs[-1].last_known_state, "?"), runs[-1].id) for node, runs in
                  sorted(executions.items(), key=lambda item: item[1][-1].id)]
    failure = next(((node, lineage.failure_message(runs[-1]) or "no error message was recorded")
                    for node, runs in executions.items()
                    if runs[-1].last_known_state == metadata_store_pb2.Execution.FAILED), None)

    heads: list[HeadSpec] = []
    for node in ("Trainer", "Transform"):
        config = records.json_property(executions.get(node, [None])[-1], "custom_config")
        if "heads_spec" in config:
            heads = list(spec_from_dict(config["heads_spec"], source=f"{node} custom_config",
                                             partial=True).heads)
            break
    else:
        notes.append("The run stopped before Transform, the first component given the heads: no per-head results.")

    thresholds: dict[str, HeadThreshold] = {}
    slicing: list[tuple[str, ...]] = []
    min_slice_size = 1
    evaluator = executions.get("Evaluator", [None])[-1]
    eval_config_json = records.exec_property(evaluator, "eval_config") if evaluator is not None else ""
    if eval_config_json:
        eval_config = json_format.Parse(eval_config_json, tfma.EvalConfig())
        thresholds = parse_thresholds(eval_config)
        slicing = [tuple(s.feature_keys) for s in eval_config.slicing_specs if s.feature_keys]
        min_slice_size = eval_config.options.min_slice_size.value or 1

    metrics = None
    failures: list[str] = []
    evaluation = outputs.get("Evaluator", {}).get("evaluation", [])
    if evaluation:
        try:
            metrics = parse_metrics(tfma.load_metrics(evaluation[0].uri))
            failures = results.describe_failures(evaluation[0].uri)
        except Exception as e:  # noqa: BLE001 - a report shows what it can; the note says what is missing
            notes.append(f"Evaluation {evaluation[0].uri} could not be read: {e}")
    else:
        notes.append("The run produced no evaluation (it stopped before the Evaluator).")
    blessing = outputs.get("Evaluator", {}).get("blessing", [])
    blessed = (results.custom_int(blessing[0], "blessed") == 1) if blessing else None

    slice_counts: dict[SliceKey, int] = {}
    predictions: dict[str, HeadPredictions] = {}
    examples = next(iter(outputs.get("CsvExampleGen", outputs.get("ImportExampleGen", {})).get("examples", [])),
                    None)
    model = next(iter(outputs.get("Trainer", {}).get("model", [])), None)
    if examples is not None and heads:
        try:
            serialized = read_eval_examples(examples.uri)
            columns = {h.label for h in heads} | {f for s in slicing for f in s}
            rows = example_rows(serialized, columns)
            slice_counts = count_slices(rows, slicing)
            if len(serialized) == MAX_PREDICTION_ROWS:
                notes.append(f"Plots of predictions use the first {MAX_PREDICTION_ROWS} eval rows.")
            if model is not None:
                model_outputs = predict(os.path.join(model.uri, "Format-Serving"), serialized)
                predictions = {h.name: head_predictions(h, rows, model_outputs) for h in heads}
            else:
                notes.append("The run has no trained model: no confusion matrices or predicted-against-true plots.")
        except Exception as e:  # noqa: BLE001
            notes.append(f"Predictions on the eval split failed: {type(e).__name__}: {e}")

    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    model_run = next(iter(outputs.get("Trainer", {}).get("model_run", [])), None)
    if model_run is not None:
        curves = read_scalars(model_run.uri)
        if not curves:
            notes.append(f"{model_run.uri}: no TensorBoard scalars: no training curves.")

    pushed_model = next(iter(outputs.get("Pusher", {}).get("pushed_model", [])), None)
    pusher = executions.get("Pusher", [None])[-1]
    provenance, provenance_source = {}, ""
    push = results.push_outcome(pushed_model)
    if push.destination:
        pushed = f"pushed to {push.destination}"
        if pusher is not None and pusher.last_known_state == pusher.CACHED:
            pushed = f"nothing changed since an earlier run, which pushed this model to {push.destination}"
        provenance, provenance_source = read_push_record(push.destination), os.path.join(push.destination,
                                                                                            PUSH_RECORD)
    elif push.already_serving:
        pushed = f"nothing new to push: this model was already serving as {push.already_serving}"
        provenance, provenance_source = read_push_record(push.already_serving), os.path.join(push.already_serving,
                                                                                                PUSH_RECORD)
    else:
        pushed = "not pushed"
    if not provenance and pusher is not None:
        provenance = records.json_property(pusher, "custom_config")
        provenance_source = "the Pusher execution's custom_config in ML Metadata" if provenance else ""

    span = records.examples_span(examples) if examples is not None else lineage.run_provenance(run).get("span")
    data = " ".join(([f"span {span}"] if span is not None else [])
                    + ([f"({examples.uri})" if span is not None else examples.uri] if examples is not None else []))
    return RunReport(run_id=run.name, started=run.create_time_since_epoch / 1000, components=components,
                     heads=heads, thresholds=thresholds, slicing=slicing, min_slice_size=min_slice_size,
                     metrics=metrics, blessed=blessed, failures=failures, slice_counts=slice_counts,
                     predictions=predictions, curves=curves, pushed=pushed, provenance=provenance,
                     provenance_source=provenance_source, notes=notes, failure=failure, data=data)


# ---------------------------------------------------------------------------------------------------------
# Drawing a report.


def slice_bars(report: RunReport, head: str) -> list[tuple[str, Optional[float], Optional[float], Optional[float],
                                                           Optional[str]]]:
    """The bars of a head's per-slice plot: every slice TFMA scored or suppressed, and every slice in the data."""
    threshold = report.thresholds[head]
    metrics = report.metrics
    keys = set(metrics.slices()) | {k for k in report.slice_counts if k}
    bars = []
    for key in sorted(keys, key=lambda k: (len(k) > 0, k)):
        if key in metrics.too_small or (key and metrics.get(key, head, "weighted_example_count") is None
                                        and metrics.get(key, head, threshold.metric) is None):
            count = report.slice_counts.get(key)
            bars.append((slice_name(key), None, None, None,
                         f"too small\n(n={count if count is not None else '?'} < {report.min_slice_size})"))
            continue
        bars.append((slice_name(key), metrics.get(key, head, threshold.metric),
                     metrics.get(key, head, threshold.metric, "baseline"), threshold.slice_bound(key), None))
    return bars


def draw_plots(report: RunReport, out_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Every plot of the report: `{head: [(png file name, caption)]}`."""
    plots: dict[str, list[tuple[str, str]]] = {}
    for head in report.heads:
        files = plots.setdefault(head.name, [])
        threshold = report.thresholds.get(head.name)
        if threshold is not None and report.metrics is not None:
            candidate = report.metrics.get((), head.name, threshold.metric)
            baseline = report.metrics.get((), head.name, threshold.metric, "baseline")
            name = f"{head.name}_threshold.png"
            plot_metric_vs_threshold(out_dir / name, head.name, spec_metric_name(threshold.metric), candidate,
                                     baseline, threshold)
            files.append((name, "thresholded metric against its bound" +
                          (" and the baseline" if baseline is not None else " (no baseline: first blessed run)")))
            name = f"{head.name}_slices.png"
            plot_slice_bars(out_dir / name, head.name, spec_metric_name(threshold.metric),
                            slice_bars(report, head.name))
            files.append((name, "per slice"))
        predicted = report.predictions.get(head.name)
        if predicted is not None and head.is_classification:
            name = f"{head.name}_confusion.png"
            plot_confusion_matrix(out_dir / name, head.name, head.classes,
                                  confusion_counts(predicted.true, predicted.predicted, len(head.classes)))
            files.append((name, "confusion matrix on the eval split"))
        elif predicted is not None:
            name = f"{head.name}_predicted_vs_true.png"
            plot_predicted_vs_true(out_dir / name, head.name, predicted.true, predicted.predicted)
            files.append((name, "predicted against true on the eval split"))
            name = f"{head.name}_residuals.png"
            plot_residuals(out_dir / name, head.name, predicted.predicted,
                           residuals(head.kind, predicted.true, predicted.predicted))
            files.append((name, "residuals on the eval split"))
        losses = {subdir: tags[f"epoch_{head.name}_loss"] for subdir, tags in sorted(report.curves.items())
                  if f"epoch_{head.name}_loss" in tags}
        if losses:
            name = f"{head.name}_training.png"
            weights = report.curves.get("train", {}).get(f"epoch_{head.name}_weight")
            constant = weights is not None and len({round(v, 6) for _, v in weights}) == 1
            plot_training_curves(out_dir / name, head.name, losses, None if constant else weights)
            files.append((name, "loss per epoch" + (f" (loss weight {weights[0][1]:g} throughout)" if constant
                                                    else " and effective loss weight" if weights else "")))
    return plots


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
.plots { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.5em; }
.plots img { max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }
th { background: #f3f3f3; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; }
.small { color: #8a6d00; } figure { margin: 0.5em; }
figcaption { font-size: 0.85em; color: #555; } code { background: #f3f3f3; padding: 0 0.2em; }
"""

# Sets data-images on <body> once every image has loaded ("ok:N", or "broken:" and the files) and data-errors on a
# script error, so a headless browser's DOM dump tells whether the page rendered whole.
_CHECK_SCRIPT = """
window.addEventListener("error", function (e) { document.body.setAttribute("data-errors", String(e.message)); });
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.setAttribute("data-images", broken.length ?
    "broken:" + broken.map(function (i) { return i.getAttribute("src"); }).join(",") : "ok:" + images.length);
});
"""


def _cell(value: Any, key: str = "") -> str:
    if key.endswith("_at") and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value)) + f" ({value:.0f})"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return f"<code>{html.escape(json.dumps(value, sort_keys=True))}</code>"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _head_summary_rows(report: RunReport) -> list[list[str]]:
    rows = []
    failed_heads = {line.split(":", 1)[0] for line in report.failures}
    for head in report.heads:
        threshold = report.thresholds.get(head.name)
        if threshold is None or report.metrics is None:
            rows.append([html.escape(head.name), head.kind, "-", "-", "-", "-", "-"])
            continue
        value = report.metrics.get((), head.name, threshold.metric)
        baseline = report.metrics.get((), head.name, threshold.metric, "baseline")
        change = "-" if threshold.change is None else f"{threshold.change:+g}"
        passed = value is not None and head.name not in failed_heads
        rows.append([html.escape(head.name), head.kind, html.escape(spec_metric_name(threshold.metric)),
                     "missing" if value is None else f"{value:.4g}", html.escape(threshold.bound_text()),
                     "-" if baseline is None else f"{baseline:.4g} (change bound {change})",
                     f'<span class="{"pass" if passed else "fail"}">{"yes" if passed else "NO"}</span>'])
    return rows


def _slice_rows(report: RunReport, head: HeadSpec) -> list[list[str]]:
    metrics = report.metrics
    names = sorted({k[2] for k in metrics.values if k[1] == head.name} - {"example_count", "weighted_example_count"})
    rows = []
    keys = set(metrics.slices()) | {k for k in report.slice_counts if k}
    for key in sorted(keys, key=lambda k: (len(k) > 0, k)):
        count = metrics.get(key, head.name, "weighted_example_count")
        if key in metrics.too_small or (key and count is None):
            n = report.slice_counts.get(key, "?")
            rows.append([html.escape(slice_name(key)), str(n), f'<span class="small">too small: {n} eval rows, '
                         f'below min_slice_size {report.min_slice_size}; TFMA suppressed its metrics</span>']
                        + [""] * (len(names) - 1))
            continue
        cells = []
        for name in names:
            value, baseline = metrics.get(key, head.name, name), metrics.get(key, head.name, name, "baseline")
            cells.append("-" if value is None else f"{value:.4g}" + ("" if baseline is None else
                                                                    f" (baseline {baseline:.4g})"))
        rows.append([html.escape(slice_name(key)), "-" if count is None else f"{count:g}"] + cells)
    return [["slice", "labelled rows"] + [html.escape(spec_metric_name(name)) for name in names]] + rows


def render_html(report: RunReport, plots: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    """The report page; images are referenced by file name, beside the page."""
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started))
    failed = [node for node, state, _ in report.components if state == "FAILED"]
    unfinished = [node for node, state, _ in report.components if state in ("NEW", "RUNNING")]
    outcome = ("blessed" if report.blessed else "NOT blessed" if report.blessed is False
               else "not evaluated" + (f": the run stopped at {failed[0]}" if failed else
                                       f": the run was interrupted during {unfinished[0]} (killed, or still "
                                       f"running)" if unfinished else ""))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Run {html.escape(report.run_id)}</title>"
             f"<style>{_STYLE}</style><script>{_CHECK_SCRIPT}</script></head><body>",
             f"<h1>Run {html.escape(report.run_id)}</h1>",
             f"<p>Started {started}." + (f" Data: {html.escape(report.data)}." if report.data else "")
             + f" Model <b>{outcome}</b>; {html.escape(report.pushed)}.</p>"]
    if report.failure:
        node, message = report.failure
        parts.append(f"<p class='fail'>{html.escape(node)} failed:</p><pre>{html.escape(message)}</pre>")
    if report.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("<h2>Heads</h2>")
    parts.append(_table(["head", "kind", "thresholded metric", "value", "threshold", "baseline", "passed"],
                        _head_summary_rows(report)))
    if report.failures:
        parts.append("<p class='fail'>Failed thresholds:</p><ul>"
                     + "".join(f"<li>{html.escape(f)}</li>" for f in report.failures) + "</ul>")
    if report.metrics is not None:
        slicing = "".join(f", {' x '.join(s)}" for s in report.slicing)
        parts.append(f"<p>Slices: overall{html.escape(slicing)}; slices with fewer than {report.min_slice_size} "
                     f"eval rows are suppressed by TFMA and shown here as too small.</p>")
    for head in report.heads:
        parts.append(f"<h2 id='head-{html.escape(head.name)}'>{html.escape(head.name)} "
                     f"<small>({head.kind}, label <code>{html.escape(head.label)}</code>)</small></h2>")
        if report.metrics is not None:
            header, *rows = _slice_rows(report, head)
            parts.append(_table(header, rows))
        parts.append("<div class='plots'>")
        for file_name, caption in plots.get(head.name, []):
            parts.append(f"<figure><img src='{html.escape(file_name)}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(head.name)}: {html.escape(caption)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("<h2>Provenance</h2>")
    if report.provenance:
        parts.append(f"<p>From <code>{html.escape(report.provenance_source)}</code>.</p>")
        parts.append(_table(["key", "value"], [[html.escape(k), _cell(v, k)]
                                               for k, v in sorted(report.provenance.items())]))
    else:
        parts.append("<p>No provenance recorded (the run did not reach the Pusher).</p>")
    parts.append("<h2>Components</h2>")
    parts.append(_table(["component", "state", "execution"],
                        [[html.escape(n), s, str(i)] for n, s, i in report.components]))
    parts.append("</body></html>")
    return "\n".join(parts)


def report_dir(workdir: Path, run_id: str) -> Path:
    return Path(workdir) / REPORTS_DIR / run_id


def write_report(store, workdir: Path, run: Optional[str] = None) -> Path:
    """Writes `<workdir>/reports/<run id>/report.html` and its PNGs for one run (default the newest).

    Returns:
      The report's path.

    Raises:
      ReportError: no such run.
    """
    context = find_run(store, run)
    report = gather_report(store, context)
    out_dir = report_dir(workdir, context.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):   # a re-created report replaces the plots of the old one
        old.unlink()
    plots = draw_plots(report, out_dir)
    path = out_dir / REPORT_FILE
    path.write_text(render_html(report, plots))
    return path


def write_report_or_warn(store, workdir: Path) -> Optional[Path]:
    """`write_report` for the newest run, after `run`: a failure is printed as a warning, never raised, so the
    report cannot change the run's outcome or exit code."""
    started = time.monotonic()
    try:
        path = write_report(store, workdir)
    except Exception as e:  # noqa: BLE001 - the run's own result stands whatever happens here
        print(f"warning: the run report could not be written: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    print(f"report: {path} ({time.monotonic() - started:.1f} s)", flush=True)
    return path
