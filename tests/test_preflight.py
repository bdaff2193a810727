"""The command's checks of TFRecord input before any component runs (CSV input: tests/test_bad_data_e2e.py)."""

import gzip

import pytest
import tensorflow as tf

from pipeline.operations.preflight import DataError, check_tfrecord_files, has_tfrecord_record

CSV_TEXT = "temp,humidity,region\n14.2,0.5,north\n"


def write_examples(path, examples, compression=None):
    with tf.io.TFRecordWriter(str(path), options=compression) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return path


def example(**floats):
    return tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in floats.items()}))


def test_tfrecord_files_of_examples_pass_plain_and_gzipped(tmp_path):
    assert has_tfrecord_record(write_examples(tmp_path / "a.tfrecord", [example(temp=14.2), example(temp=9.0)]))
    assert has_tfrecord_record(write_examples(tmp_path / "b.tfrecord.gz", [example(temp=14.2)], "GZIP"))
    # A row whose every feature is missing serializes to an empty record, which is still a record.
    assert has_tfrecord_record(write_examples(tmp_path / "c.tfrecord", [tf.train.Example()]))


def test_a_csv_file_given_as_tfrecord_names_the_file_and_says_it_is_text(tmp_path):
    path = tmp_path / "weather.csv"
    path.write_text(CSV_TEXT)
    with pytest.raises(DataError, match="weather.csv: not a TFRecord file of tf.Examples \\(it starts with text, "
                                        "'temp,humidit'...: a CSV file is read with --format csv"):
        has_tfrecord_record(path)


def test_a_gzipped_csv_file_is_told_to_be_gunzipped(tmp_path):
    path = tmp_path / "weather.csv.gz"
    path.write_bytes(gzip.compress(CSV_TEXT.encode()))
    with pytest.raises(DataError, match="weather.csv.gz: not a TFRecord file .* gunzip a .csv.gz first"):
        has_tfrecord_record(path)


def test_a_file_named_gz_that_is_not_gzip_data_is_named(tmp_path):
    path = write_examples(tmp_path / "plain.tfrecord.gz", [example(temp=1.0)])   # not compressed
    with pytest.raises(DataError, match="plain.tfrecord.gz: named .gz but not whole gzip data"):
        has_tfrecord_record(path)


def test_binary_data_that_is_not_a_record_is_named_without_a_text_hint(tmp_path):
    path = tmp_path / "noise.tfrecord"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(DataError, match=r"noise.tfrecord: not a TFRecord file of tf.Examples$"):
        has_tfrecord_record(path)


def test_empty_shards_are_allowed_but_not_an_input_without_any_record(tmp_path):
    full = write_examples(tmp_path / "part-0.tfrecord.gz", [example(temp=1.0)], "GZIP")
    empty = write_examples(tmp_path / "part-1.tfrecord.gz", [], "GZIP")   # what Beam writes for an empty shard
    (tmp_path / "part-2.tfrecord").write_bytes(b"")
    assert not has_tfrecord_record(empty)
    check_tfrecord_files([full, empty, tmp_path / "part-2.tfrecord"])
    with pytest.raises(DataError, match="no TFRecord record in any file"):
        check_tfrecord_files([empty, tmp_path / "part-2.tfrecord"])


def serving_statistics():
    import pandas as pd
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(pd.DataFrame({"island": ["Dream", "Biscoe", "Dream"]}))


@pytest.mark.parametrize("form", ["tfrecord", "text", "binary"])
def test_serving_statistics_are_read_in_every_form_tfdv_writes(tmp_path, form):
    from google.protobuf import text_format

    from pipeline.operations.preflight import read_statistics

    statistics, path = serving_statistics(), tmp_path / "stats"
    if form == "tfrecord":     # what tfdv.generate_statistics_from_csv(..., output_path=...) writes
        with tf.io.TFRecordWriter(str(path)) as writer:
            writer.write(statistics.SerializeToString())
    elif form == "text":       # tfdv.write_stats_text
        path.write_text(text_format.MessageToString(statistics))
    else:                      # statistics.SerializeToString()
        path.write_bytes(statistics.SerializeToString())
    assert read_statistics(path) == statistics


def test_a_file_that_is_not_statistics_is_named_with_the_forms_expected(tmp_path):
    from components.spec import SpecError
    from pipeline.operations.preflight import read_statistics

    path = tmp_path / "serving.csv"
    path.write_text("island,year\nDream,2008\n")
    with pytest.raises(SpecError, match=f"--serving-stats: {path} is not TFDV statistics with features"):
        read_statistics(path)
