"""SchemaGate: the custom component that stops the pipeline before Transform when the data breaks the schema.

ExampleValidator only records anomalies. The gate reads them and fails, naming every column and its problem,
so nothing downstream (Transform, Trainer, Evaluator, Pusher) runs. When there is none, it passes the schema on:
Transform reads its schema from the gate, which makes the order a data dependency that every orchestrator keeps.
"""

import os
import shutil

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

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
    for kind in ("num_stats", "string_stats", "bytes_stats", "struct_stats"):
        if feature.HasField(kind):
            return getattr(feature, kind).common_stats.tot_num_values
    return 0


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
                name = feature.path.step[0] if feature.path.step else feature.name
                totals[name] = totals.get(name, 0) + _total_values(feature)
        for column in label_columns:
            if totals.get(column, 0) == 0:
                lines.append(f"column {column!r} ({split} split): label column has no value in any row")
    return lines


def read_per_split(artifact, file_name: str, proto_class) -> dict:
    """`{split: proto}` from the binary proto file each split folder of a TFDV artifact holds."""
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        with open(os.path.join(artifact.uri, f"Split-{split}", file_name), "rb") as f:
            result[split] = proto_class.FromString(f.read())
    return result


@component
def SchemaGate(anomalies: InputArtifact[ExampleAnomalies], statistics: InputArtifact[ExampleStatistics],
               schema: InputArtifact[Schema], validated_schema: OutputArtifact[Schema],
               label_columns: Parameter[str] = "", data_source: Parameter[str] = "the input data") -> None:
    """Fails when ExampleValidator found anomalies, or a label column (comma-separated `label_columns`) has no
    value in a split; otherwise passes `schema` on as `validated_schema`."""
    lines = describe_anomalies(read_per_split(anomalies, _ANOMALIES_FILE, anomalies_pb2.Anomalies))
    lines += describe_empty_labels(
        read_per_split(statistics, _STATISTICS_FILE, statistics_pb2.DatasetFeatureStatisticsList),
        [c for c in label_columns.split(",") if c])
    if lines:
        raise SchemaAnomaliesError(
            f"{data_source} does not match the curated schema; the run stops before Transform:\n  "
            + "\n  ".join(lines))
    os.makedirs(validated_schema.uri, exist_ok=True)
    shutil.copy(os.path.join(schema.uri, _SCHEMA_FILE), os.path.join(validated_schema.uri, _SCHEMA_FILE))
