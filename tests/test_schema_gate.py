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


# The data against the heads spec, on TFDV's statistics of tiny in-memory tables and the schema it infers (as
# SchemaGen does when no curated schema is given).

def inferred(**columns):
    import tensorflow_data_validation as tfdv

    statistics = table_stats(**columns)
    return tfdv.infer_schema(statistics), statistics


def test_text_in_a_column_the_spec_reads_as_numbers_is_named_with_the_text():
    from components.schema_gate import describe_text_in_numeric_columns

    schema, statistics = inferred(humidity=["0.5", "NA", "0.7", "NA"], temp=[14.0, 15.5, 9.0, 11.0],
                                  region=["north", "south", "north", "east"])
    assert describe_text_in_numeric_columns(schema, statistics, ["humidity", "temp"]) == [
        "column 'humidity': the heads spec reads it as numbers, but it holds text such as 'NA' (leave missing "
        "values empty, or declare the column categorical)"]
    assert describe_text_in_numeric_columns(schema, statistics, ["region"])[0].startswith(
        "column 'region': the heads spec reads it as numbers, but it holds text such as 'north', ")


def test_an_empty_numeric_column_is_not_said_to_hold_text():
    from components.schema_gate import describe_text_in_numeric_columns

    schema, statistics = inferred(humidity=[None, None, None], temp=[14.0, 15.5, 9.0])
    assert describe_text_in_numeric_columns(schema, statistics, ["humidity", "temp"]) == []


def test_a_label_column_that_can_hold_none_of_its_heads_classes_is_named():
    from components.schema_gate import describe_labels_without_a_class

    schema, statistics = inferred(rain=["no", "yes", "no"], weather=["sunny", "rain", "sunny"], code=[0, 1, 1],
                                  score=[0.0, 1.0, 1.0])
    lines = describe_labels_without_a_class(schema, statistics, {
        "rain": ["No", "Yes"],                     # spelt differently from the data
        "weather": ["sunny", "rain", "snow"],      # fine: a class never seen is allowed
        "code": ["0", "1"],                        # fine: whole numbers
        "score": ["0", "1"],                       # decimal numbers never read as a class
    })
    assert lines == [
        "label column 'rain': none of its values is one of its head's classes ['No', 'Yes']; its values include "
        "'no', 'yes'",
        "label column 'score': holds decimal numbers; a class is text or a whole number (its head's classes: "
        "['0', '1'])"]
    assert describe_labels_without_a_class(schema, statistics, {"code": ["low", "high"]}) == [
        "label column 'code': holds numbers, but none of its head's classes ['low', 'high'] is a whole number"]


def test_a_class_spelt_unlike_the_data_is_named_with_the_datas_spelling():
    from components.schema_gate import describe_misspelt_classes

    statistics = table_stats(frost=["no", "yes", "no", "no"], sky=["clear", "fog", "rain", "cloudy"],
                             code=["a", "b", "n/a", "a"])
    lines = describe_misspelt_classes(statistics, {
        "frost": ["no", "yess"],                           # a typo: every 'yes' row would be masked
        "sky": ["clear", "cloudy", "rain", "Fog", "hail"],   # 'Fog' for 'fog'; 'hail' merely absent
        "code": ["a", "b", "c"],                           # 'c' absent, and 'n/a' looks nothing like it
    })
    assert lines == [
        "label column 'frost': class 'yess' of its head never occurs in the train split, which holds 'yes' (not a "
        "class: its rows would be masked); is the class misspelt in the heads spec?",
        "label column 'sky': class 'Fog' of its head never occurs in the train split, which holds 'fog' (not a "
        "class: its rows would be masked); is the class misspelt in the heads spec?"]


def test_angle_labels_beyond_one_turn_are_named_as_likely_degrees():
    import math

    from components.schema_gate import describe_angles_beyond_a_turn

    statistics = table_stats(wind_deg=[10.0, 359.1, 180.0], wind_rad=[0.1, 2 * math.pi, 3.0],
                             signed=[-math.pi, math.pi, 0.0])
    lines = describe_angles_beyond_a_turn(statistics, ["wind_deg", "wind_rad", "signed"])
    assert lines == ["label column 'wind_deg': an angle head reads radians, but its values reach 359.1; degrees? "
                     "(radians = degrees * pi / 180, in the data; an angle of more than one turn, wrap it into "
                     "[0, 2*pi))"]


# Drift and skew: TFDV's comparators with the spec's bounds, on statistics of tiny in-memory tables.

def table_stats(**columns):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(pd.DataFrame(columns))


def island_schema():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    island = schema.feature.add(name="island", type=schema_pb2.BYTES)
    island.domain = "island"
    schema.string_domain.add(name="island", value=["Biscoe", "Dream", "Torgersen"])
    schema.feature.add(name="bill_length_mm", type=schema_pb2.FLOAT)
    return schema


def test_island_shares_moving_past_the_drift_bound_are_named_with_the_distance():
    from components.schema_gate import describe_distribution_shift

    previous = table_stats(island=["Biscoe", "Dream", "Torgersen", "Dream"], bill_length_mm=[40.0, 41.0, 39.0, 45.0])
    current = table_stats(island=["Biscoe"] * 4, bill_length_mm=[40.0, 41.0, 39.0, 45.0])
    lines = describe_distribution_shift(current, island_schema(), drift={"island": 0.25}, skew={},
                                        previous_statistics=previous)
    assert len(lines) == 1 and lines[0].startswith("column 'island': ")
    assert "0.75" in lines[0] and "0.25" in lines[0], lines   # Biscoe's share went from 1/4 to 1


def test_a_shift_within_the_bound_passes_and_no_previous_span_checks_nothing():
    from components.schema_gate import describe_distribution_shift

    previous = table_stats(island=["Biscoe", "Dream", "Torgersen", "Dream"], bill_length_mm=[40.0, 41.0, 39.0, 45.0])
    current = table_stats(island=["Biscoe", "Dream", "Torgersen", "Biscoe"], bill_length_mm=[40.0, 41.0, 39.0, 45.0])
    assert describe_distribution_shift(current, island_schema(), drift={"island": 0.3}, skew={},
                                       previous_statistics=previous) == []
    shifted = table_stats(island=["Biscoe"] * 4, bill_length_mm=[40.0] * 4)
    assert describe_distribution_shift(shifted, island_schema(), drift={"island": 0.01}, skew={}) == []


def test_numeric_columns_are_compared_by_jensen_shannon_divergence_for_skew():
    from components.schema_gate import describe_distribution_shift, schema_with_comparators

    schema = schema_with_comparators(island_schema(), drift={"island": 0.2}, skew={"bill_length_mm": 0.1})
    features = {f.name: f for f in schema.feature}
    assert features["island"].drift_comparator.infinity_norm.threshold == 0.2
    assert features["bill_length_mm"].skew_comparator.jensen_shannon_divergence.threshold == 0.1
    training = table_stats(island=["Biscoe"] * 50, bill_length_mm=[float(v) for v in range(30, 80)])
    serving = table_stats(island=["Biscoe"] * 50, bill_length_mm=[float(v) for v in range(130, 180)])
    lines = describe_distribution_shift(training, island_schema(), drift={}, skew={"bill_length_mm": 0.1},
                                        serving_statistics=serving)
    assert len(lines) == 1 and lines[0].startswith("column 'bill_length_mm': ") and "Jensen" in lines[0], lines


def example_statistics(**columns):
    """TFDV's statistics of tf.Example-like rows: each column a list of value lists, None where absent."""
    import pyarrow as pa
    from tensorflow_data_validation.statistics.stats_impl import generate_statistics_in_memory

    batch = pa.RecordBatch.from_arrays([pa.array(values) for values in columns.values()], list(columns))
    return generate_statistics_in_memory(batch)


def test_a_feature_no_example_has_and_a_column_with_several_values_are_named():
    from components.schema_gate import describe_columns_the_spec_cannot_read

    train = example_statistics(f1=[[0.5], [1.5, 2.5], None], color=[[b"red"], None, [b"blue"]],
                               kind=[[b"fish"], [b"bird"], [b"fish", b"bird"]], depth=[[], [], []])
    evaluation = example_statistics(f1=[[0.5]], color=[[b"red"]], kind=[[b"fish"]])
    lines = describe_columns_the_spec_cannot_read({"train": train, "eval": evaluation},
                                                  ["f1", "color", "count", "depth"], ["kind"])
    assert lines == [
        "column 'count' (train split): a feature of the heads spec, but no example has a value for it: the data "
        "has no column of that name (check the spelling)",
        "column 'depth' (train split): a feature of the heads spec, but no example has a value for it: its column "
        "is empty in every row",
        "column 'f1' (train split): some examples hold up to 2 values; the heads spec reads one value per example",
        "column 'kind' (train split): some examples hold up to 2 values; the heads spec reads one value per "
        "example"]
    assert describe_columns_the_spec_cannot_read({"train": evaluation, "eval": evaluation},
                                                 ["f1", "color"], ["kind"]) == []
