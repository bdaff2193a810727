"""The gate's message: every anomaly, by split and column, in words."""

from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.schema_gate import describe_anomalies


def anomalies(**columns):
    result = anomalies_pb2.Anomalies()
    for column, description in columns.items():
        info = result.anomaly_info[column]
        info.reason.add(type=anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES, description=description)
    return result


def test_no_anomalies_no_lines():
    assert describe_anomalies({"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()}) == []


def test_each_anomaly_names_split_column_and_problem():
    lines = describe_anomalies({"train": anomalies(bill_length_mm="String values were found"),
                                "eval": anomalies(year="Out of range")})
    assert lines == ["column 'year' (eval split): Out of range",
                     "column 'bill_length_mm' (train split): String values were found"]


def stats(split_values: dict[str, int]):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    result = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = result.datasets.add()
    for column, total in split_values.items():
        feature = dataset.features.add()
        feature.path.step.append(column)
        feature.string_stats.common_stats.tot_num_values = total
    return result


def test_a_label_column_without_any_value_is_named():
    from components.schema_gate import describe_empty_labels

    lines = describe_empty_labels({"train": stats({"species": 200, "sex": 0}), "eval": stats({"species": 90,
                                                                                             "sex": 3})},
                                  ["species", "sex"])
    assert lines == ["column 'sex' (train split): label column has no value in any row"]
