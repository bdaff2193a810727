"""SchemaGate: the custom component that stops the pipeline before Transform when the data breaks the schema.

ExampleValidator only records anomalies. The gate reads them and fails, naming every column and its problem,
so nothing downstream (Transform, Trainer, Evaluator, Pusher) runs. When there is none, it passes the schema on:
Transform reads its schema from the gate, which makes the order a data dependency that every orchestrator keeps.
"""

import os
import shutil

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, Schema

_ANOMALIES_FILE = "SchemaDiff.pb"
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


def read_anomalies(uri: str, split_names: str) -> dict[str, anomalies_pb2.Anomalies]:
    result = {}
    for split in artifact_utils.decode_split_names(split_names):
        with open(os.path.join(uri, f"Split-{split}", _ANOMALIES_FILE), "rb") as f:
            result[split] = anomalies_pb2.Anomalies.FromString(f.read())
    return result


@component
def SchemaGate(anomalies: InputArtifact[ExampleAnomalies], schema: InputArtifact[Schema],
               validated_schema: OutputArtifact[Schema], data_source: Parameter[str] = "the input data") -> None:
    """Fails when ExampleValidator found anomalies; otherwise passes `schema` on as `validated_schema`."""
    lines = describe_anomalies(read_anomalies(anomalies.uri, anomalies.split_names))
    if lines:
        raise SchemaAnomaliesError(
            f"{data_source} does not match the curated schema; the run stops before Transform:\n  "
            + "\n  ".join(lines))
    os.makedirs(validated_schema.uri, exist_ok=True)
    shutil.copy(os.path.join(schema.uri, _SCHEMA_FILE), os.path.join(validated_schema.uri, _SCHEMA_FILE))
