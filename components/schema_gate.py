"""SchemaGate: the custom component that stops the pipeline before Transform when the data breaks the schema,
or has moved too far from the previous span (drift) or from the serving data (skew).

ExampleValidator only records anomalies. The gate reads them and fails, naming every column and its problem,
so nothing downstream (Transform, Trainer, Evaluator, Pusher) runs. When there is none, it passes the schema on:
Transform reads its schema from the gate, which makes the order a data dependency that every orchestrator keeps.
Drift and skew are TFDV's comparators, with the spec's bounds set on a copy of the schema.
"""

import difflib
import json
import math
import os
import shutil
from typing import Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

from components.records import STOPS_BEFORE_TRANSFORM

_ANOMALIES_FILE = "SchemaDiff.pb"
_STATISTICS_FILE = "FeatureStats.pb"
_SCHEMA_FILE = "schema.pbtxt"


class SchemaAnomaliesError(RuntimeError):
    """The data does not match the curated schema."""


def describe_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One line per anomaly: split, column and problem."""
    lines = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for column, info in sorted(anomalies.anomaly_info.items()):
            problems = "; ".join(r.description or r.short_description for r in info.reason) or info.description
            lines.append(f"column {column!r} ({split} split): {problems}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            problems = "; ".join(r.description or r.short_description for r in info.reason) or info.description
            lines.append(f"whole dataset ({split} split): {problems}")
    return lines


def _total_values(feature: statistics_pb2.FeatureNameStatistics) -> int:
    return _common_statistics(feature).tot_num_values


def _column_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    return feature.path.step[0] if feature.path.step else feature.name


def describe_empty_labels(stats_by_split: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
                          label_columns: list[str]) -> list[str]:
    """One line per label column that has no value at all in a split.

    The schema cannot say this: an empty CSV cell is a present feature with no value, so `presence` holds
    whether or not a single label was given. A head whose label is empty everywhere can neither train nor be
    judged, and every row of it would be masked, silently.
    """
    lines = []
    for split, stats_list in sorted(stats_by_split.items()):
        totals = {}
        for dataset in stats_list.datasets:
            for feature in dataset.features:
                totals[_column_name(feature)] = totals.get(_column_name(feature), 0) + _total_values(feature)
        for column in label_columns:
            if totals.get(column, 0) == 0:
                lines.append(f"column {column!r} ({split} split): label column has no value in any row")
    return lines


def _column_statistics(stats_list: statistics_pb2.DatasetFeatureStatisticsList,
                       column: str) -> Optional[statistics_pb2.FeatureNameStatistics]:
    for dataset in stats_list.datasets:
        for feature in dataset.features:
            if _column_name(feature) == column:
                return feature
    return None


def _frequent_values(feature: Optional[statistics_pb2.FeatureNameStatistics]) -> list[str]:
    """A text column's most frequent values (TFDV keeps the top ones and a rank histogram of up to 1,000)."""
    if feature is None or not feature.HasField("string_stats"):
        return []
    stats = feature.string_stats
    values = [v.value for v in stats.top_values] + [b.label for b in stats.rank_histogram.buckets]
    return list(dict.fromkeys(values))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def describe_columns_the_spec_cannot_read(stats_by_split: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
                                          feature_columns: list[str], label_columns: list[str]) -> list[str]:
    """One line per feature column that no example of the train split has, and per spec column (feature or
    label) that holds more than one value in some example.

    A curated schema flags both (`presence`, `value_count`); without one, SchemaGen infers a schema that lacks
    the column, or takes it as a list, and Transform fails on it naming no column. A CSV column missing from the
    header is stopped earlier, by the preflight; in tf.Examples a feature is simply absent.
    """
    lines = []
    train = stats_by_split.get("train")
    if train is not None:
        for column in feature_columns:
            feature = _column_statistics(train, column)
            if feature is None or _total_values(feature) == 0:
                where = ("its column is empty in every row" if feature is not None
                         else "the data has no column of that name (check the spelling)")
                lines.append(f"column {column!r} (train split): a feature of the heads spec, but no example has a "
                             f"value for it: {where}")
    for split, stats_list in sorted(stats_by_split.items()):
        for column in feature_columns + label_columns:
            feature = _column_statistics(stats_list, column)
            most = _common_statistics(feature).max_num_values if feature is not None else 0
            if most > 1:
                lines.append(f"column {column!r} ({split} split): some examples hold up to {most} values; the heads "
                             f"spec reads one value per example")
    return lines


def _common_statistics(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    for kind in ("num_stats", "string_stats", "bytes_stats", "struct_stats"):
        if feature.HasField(kind):
            return getattr(feature, kind).common_stats
    return statistics_pb2.CommonStatistics()


def describe_text_in_numeric_columns(schema, statistics: statistics_pb2.DatasetFeatureStatisticsList,
                                     numeric_columns: list[str]) -> list[str]:
    """One line per column the heads spec reads as numbers that the schema types as text (BYTES).

    A curated schema types such a column as a number, and ExampleValidator flags the text in it; a schema that
    SchemaGen inferred types it BYTES as soon as one value is text (`NA`, `n/a`), and Transform would fail
    casting it, naming no column.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    types = {f.name: f.type for f in schema.feature}
    lines = []
    for column in numeric_columns:
        feature = _column_statistics(statistics, column)
        if types.get(column) != schema_pb2.BYTES or feature is None or _total_values(feature) == 0:
            continue   # an empty column is typed BYTES too, for want of a value: `describe_columns_...` names it
        text = [v for v in _frequent_values(feature) if not _is_number(v)][:3]
        lines.append(f"column {column!r}: the heads spec reads it as numbers, but it holds text"
                     + (f" such as {', '.join(repr(v) for v in text)}" if text else "")
                     + " (leave missing values empty, or declare the column categorical)")
    return lines


def describe_labels_without_a_class(schema, statistics: statistics_pb2.DatasetFeatureStatisticsList,
                                    label_classes: dict[str, list[str]]) -> list[str]:
    """One line per classification label column none of whose frequent values can be one of its head's classes.

    Every row of such a head would be masked, and the head would learn nothing: the classes are spelt
    differently from the data (`Yes` for `yes`), the label column holds numbers and the classes do not, or it
    holds decimal numbers (`1.0`), which never read as a class.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    types = {f.name: f.type for f in schema.feature}
    lines = []
    for column, classes in label_classes.items():
        feature = _column_statistics(statistics, column)
        if feature is None:
            continue
        if types.get(column) == schema_pb2.FLOAT:
            lines.append(f"label column {column!r}: holds decimal numbers; a class is text or a whole number "
                         f"(its head's classes: {list(classes)})")
            continue
        if feature.HasField("num_stats") and feature.num_stats.common_stats.tot_num_values:
            if not any(c.lstrip("-").isdigit() for c in classes):
                lines.append(f"label column {column!r}: holds numbers, but none of its head's classes "
                             f"{list(classes)} is a whole number")
            continue
        values = _frequent_values(feature)
        if values and not set(values) & set(classes):
            lines.append(f"label column {column!r}: none of its values is one of its head's classes "
                         f"{list(classes)}; its values include {', '.join(repr(v) for v in values[:5])}")
    return lines


def describe_misspelt_classes(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                              label_classes: dict[str, list[str]]) -> list[str]:
    """One line per class of a head that never occurs in the label column while a value spelt like it does
    (`yess` for `yes`, `foggy` for `fog`, `Fog` for `fog`).

    Every row of the data's spelling would be masked, silently: the head would never learn or predict that
    class, and could still pass its threshold (a binary head that only ever saw `no` scores accuracy 1 on rows
    it can judge). A class merely absent from a span, with no look-alike value, is allowed.
    """
    lines = []
    for column, classes in label_classes.items():
        values = _frequent_values(_column_statistics(statistics, column))
        if not set(values) & set(classes):
            continue   # no value is a class: `describe_labels_without_a_class` names the column once
        outside = [v for v in values if v not in classes]
        for cls in (c for c in classes if c not in values):
            close = ([v for v in outside if v.casefold() == cls.casefold()]
                     or difflib.get_close_matches(cls, outside, n=1, cutoff=0.6))
            if close:
                lines.append(f"label column {column!r}: class {cls!r} of its head never occurs in the train split, "
                             f"which holds {close[0]!r} (not a class: its rows would be masked); is the class "
                             f"misspelt in the heads spec?")
    return lines


def describe_angles_beyond_a_turn(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                                  angle_columns: list[str]) -> list[str]:
    """One line per angle label column holding a value beyond one turn (|value| > 2π): degrees, most likely.

    Angles are radians; degrees read as radians wrap several times round the circle, and the head would be
    trained on what is, to it, noise (its error would be that of a constant guess).
    """
    lines = []
    for column in angle_columns:
        feature = _column_statistics(statistics, column)
        if feature is None or not feature.HasField("num_stats"):
            continue
        largest = max(abs(feature.num_stats.min), abs(feature.num_stats.max))
        if largest > 2 * math.pi + 1e-6:
            lines.append(f"label column {column!r}: an angle head reads radians, but its values reach "
                         f"{largest:g}; degrees? (radians = degrees * pi / 180, in the data; an angle of more than "
                         f"one turn, wrap it into [0, 2*pi))")
    return lines


def read_per_split(artifact, file_name: str, proto_class) -> dict:
    """`{split: proto}` from the binary proto file each split folder of a TFDV artifact holds."""
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        with open(os.path.join(artifact.uri, f"Split-{split}", file_name), "rb") as f:
            result[split] = proto_class.FromString(f.read())
    return result


class DistributionShiftError(RuntimeError):
    """The data moved further from the previous span or the serving data than the spec's bounds allow."""


# The comparators' anomaly types: distance above a drift or skew bound.
_SHIFT_REASONS = {"COMPARATOR_L_INFTY_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
                  "COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH"}


def schema_with_comparators(schema, drift: dict[str, float], skew: dict[str, float]):
    """A copy of `schema` whose columns carry the bounds: L-infinity for string columns, approximate
    Jensen-Shannon divergence for numeric ones (TFDV's drift/skew comparators)."""
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    bounded = schema_pb2.Schema()
    bounded.CopyFrom(schema)
    features = {f.name: f for f in bounded.feature}
    for comparator_field, bounds in (("drift_comparator", drift), ("skew_comparator", skew)):
        for column, threshold in bounds.items():
            feature = features[column]
            comparator = getattr(feature, comparator_field)
            if feature.type == schema_pb2.BYTES:
                comparator.infinity_norm.threshold = threshold
            else:
                comparator.jensen_shannon_divergence.threshold = threshold
    return bounded


def describe_distribution_shift(statistics, schema, drift: dict[str, float], skew: dict[str, float],
                                previous_statistics=None, serving_statistics=None) -> list[str]:
    """One line per column whose distance to the previous span (drift) or the serving data (skew) passes its
    bound, with TFDV's measured distance; checks only the comparisons whose statistics are given."""
    import tensorflow_data_validation as tfdv  # noqa: PLC0415

    drift = drift if previous_statistics is not None else {}
    skew = skew if serving_statistics is not None else {}
    if not drift and not skew:
        return []
    anomalies = tfdv.validate_statistics(statistics, schema_with_comparators(schema, drift, skew),
                                         previous_statistics=previous_statistics if drift else None,
                                         serving_statistics=serving_statistics if skew else None)
    lines = []
    for column, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            if anomalies_pb2.AnomalyInfo.Type.Name(reason.type) in _SHIFT_REASONS:
                lines.append(f"column {column!r}: {reason.description}")
    return lines


def _read_schema(schema_artifact):
    from google.protobuf import text_format  # noqa: PLC0415
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    with open(os.path.join(schema_artifact.uri, _SCHEMA_FILE)) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _train_statistics(artifact) -> statistics_pb2.DatasetFeatureStatisticsList:
    return read_per_split(artifact, _STATISTICS_FILE, statistics_pb2.DatasetFeatureStatisticsList)["train"]


@component
def SchemaGate(anomalies: InputArtifact[ExampleAnomalies], statistics: InputArtifact[ExampleStatistics],
               schema: InputArtifact[Schema], validated_schema: OutputArtifact[Schema],
               previous_statistics: InputArtifact[ExampleStatistics] = None,
               label_columns: Parameter[str] = "", data_source: Parameter[str] = "the input data",
               drift_bounds: Parameter[str] = "{}", skew_bounds: Parameter[str] = "{}",
               serving_statistics_path: Parameter[str] = "", numeric_columns: Parameter[str] = "",
               label_classes: Parameter[str] = "{}", feature_columns: Parameter[str] = "",
               schema_source: Parameter[str] = "the curated schema", angle_columns: Parameter[str] = "") -> None:
    """Fails when ExampleValidator found anomalies against `schema` (`schema_source` names it), the data does
    not fit the heads spec (a label column, of comma-separated `label_columns`, without a value in a split; a
    column of `feature_columns` absent; a spec column with several values in an example; text in a column of
    `numeric_columns`; a label column with none of its classes, `label_classes` as JSON
    `{column: [class, ...]}`, or a class of it spelt unlike the data; a label of `angle_columns` beyond one turn),
    or the train split moved
    past a drift bound against `previous_statistics` (the previous span's) or past a skew bound against the
    statistics file at `serving_statistics_path` (bounds as JSON `{column: bound}`); otherwise passes `schema`
    on as `validated_schema`."""
    statistics_by_split = read_per_split(statistics, _STATISTICS_FILE, statistics_pb2.DatasetFeatureStatisticsList)
    lines = describe_anomalies(read_per_split(anomalies, _ANOMALIES_FILE, anomalies_pb2.Anomalies))
    schema_proto, train_statistics = _read_schema(schema), statistics_by_split["train"]
    labels = [c for c in label_columns.split(",") if c]
    spec_lines = describe_empty_labels(statistics_by_split, labels)
    spec_lines += describe_columns_the_spec_cannot_read(statistics_by_split,
                                                       [c for c in feature_columns.split(",") if c], labels)
    spec_lines += describe_text_in_numeric_columns(schema_proto, train_statistics,
                                                   [c for c in numeric_columns.split(",") if c])
    spec_lines += describe_labels_without_a_class(schema_proto, train_statistics, json.loads(label_classes))
    spec_lines += describe_misspelt_classes(train_statistics, json.loads(label_classes))
    spec_lines += describe_angles_beyond_a_turn(train_statistics, [c for c in angle_columns.split(",") if c])
    if lines or spec_lines:
        broken = " and ".join(([f"does not match {schema_source}"] if lines else [])
                              + (["does not fit the heads spec"] if spec_lines else []))
        raise SchemaAnomaliesError(
            f"{data_source} {broken}; {STOPS_BEFORE_TRANSFORM}:\n  " + "\n  ".join(lines + spec_lines))
    serving = None
    if serving_statistics_path:
        import tensorflow_data_validation as tfdv  # noqa: PLC0415
        serving = tfdv.load_stats_text(serving_statistics_path)   # as the command wrote it (text)
    shifts = describe_distribution_shift(
        _train_statistics(statistics), _read_schema(schema), json.loads(drift_bounds), json.loads(skew_bounds),
        previous_statistics=_train_statistics(previous_statistics) if previous_statistics else None,
        serving_statistics=serving)
    if shifts:
        where = ("the previous span" if previous_statistics else "") + (
            " and " if previous_statistics and serving else "") + (
            f"the serving data ({serving_statistics_path})" if serving else "")
        raise DistributionShiftError(
            f"{data_source} moved further from {where} than the heads spec's drift/skew bounds allow; "
            f"{STOPS_BEFORE_TRANSFORM}:\n  " + "\n  ".join(shifts))
    os.makedirs(validated_schema.uri, exist_ok=True)
    shutil.copy(os.path.join(schema.uri, _SCHEMA_FILE), os.path.join(validated_schema.uri, _SCHEMA_FILE))
