"""TFRecord input end to end: the bundled penguins written as tf.Examples train and push as the CSV does, and
tf.Examples the heads spec cannot read stop the run with exit 3, naming the column (the preflight reads only
the first record of each file, so these are found from the statistics of every example)."""

import csv
import re

import pytest

from pipeline import cli
from pipeline.definition.data import resolve_data

from conftest import PENGUINS_CSV, PENGUINS_HEADS, run_cli

pytestmark = pytest.mark.slow

# The curated schema's types, as CsvExampleGen infers them from the file.
INT_COLUMNS = {"flipper_length_mm", "body_mass_g", "year"}
FLOAT_COLUMNS = {"bill_length_mm", "bill_depth_mm"}


def penguin_examples(edit=lambda number, row: row, as_floats=()) -> list[bytes]:
    """The penguins CSV as serialized tf.Examples: an empty cell an empty value list, as CsvExampleGen writes it.

    `edit(number, {column: [value, ...] or None})` may change a row's values; None leaves the feature out.
    Columns in `as_floats` are written as floats whatever their type.
    """
    import tensorflow as tf

    def feature(column, values):
        if column in INT_COLUMNS and column not in as_floats:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
        if column in FLOAT_COLUMNS or column in as_floats:
            return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    examples = []
    with open(PENGUINS_CSV, newline="") as f:
        for number, row in enumerate(csv.DictReader(f)):
            values = edit(number, {column: [cell] if cell else [] for column, cell in row.items()})
            examples.append(tf.train.Example(features=tf.train.Features(feature={
                column: feature(column, v) for column, v in values.items() if v is not None})).SerializeToString())
    return examples


def write_shards(folder, examples, shards=2):
    """`examples` in `shards` files, the last one gzipped."""
    import tensorflow as tf

    folder.mkdir()
    for shard in range(shards):
        gzipped = shard == shards - 1
        path = folder / f"penguins-{shard}.tfrecord{'.gz' if gzipped else ''}"
        with tf.io.TFRecordWriter(str(path), options="GZIP" if gzipped else None) as writer:
            for example in examples[shard::shards]:
                writer.write(example)
    return folder


def test_penguins_as_tf_examples_train_and_push(tmp_path):
    data = write_shards(tmp_path / "data", penguin_examples())
    result = run_cli("run", "--data", str(data), "--heads", str(PENGUINS_HEADS), "--workdir", str(tmp_path / "run"))
    assert result.returncode == cli.EXIT_PUSHED, result.stdout[-2000:] + result.stderr[-3000:]
    assert "[done]   ImportExampleGen" in result.stderr
    assert "model blessed and pushed to" in result.stdout
    assert [p.name for p in (tmp_path / "run" / "serving").iterdir() if p.name.isdigit()]


def test_a_feature_with_two_types_stops_the_run_naming_it(tmp_path):
    def float_flippers(number, row):
        if number % 10 == 0 and row["flipper_length_mm"]:
            row["flipper_length_mm"] = [float(row["flipper_length_mm"][0]) + 0.5]
        return row

    examples, floats = penguin_examples(), penguin_examples(float_flippers, as_floats={"flipper_length_mm"})
    mixed = [floats[i] if i % 10 == 0 else examples[i] for i in range(len(examples))]
    data = write_shards(tmp_path / "data", mixed)
    result = run_cli("run", "--data", str(data), "--heads", str(PENGUINS_HEADS), "--workdir", str(tmp_path / "run"))
    assert result.returncode == cli.EXIT_DATA_REJECTED, result.stderr[-3000:]
    # Which type the decoder met first depends on the order it read the shards in.
    described = resolve_data(data)[0].description          # the folder and the pattern ExampleGen reads it by
    assert re.search(rf"RUN STOPPED: {re.escape(described)}: column 'flipper_length_mm' holds "
                     r"(float|int64) values in some examples and (float|int64) values in others", result.stderr), \
        result.stderr[-3000:]
    assert not (tmp_path / "run" / "serving").exists()


def test_without_a_curated_schema_an_absent_feature_and_a_list_are_named_before_transform(tmp_path):
    def break_row(number, row):
        row["year"] = None                                    # the feature in no example
        if number % 7 == 0 and row["bill_depth_mm"]:
            row["bill_depth_mm"] = row["bill_depth_mm"] * 2   # two values
        return row

    data = write_shards(tmp_path / "data", penguin_examples(break_row))
    heads = tmp_path / "heads.yaml"                           # no schema.pbtxt beside it: SchemaGen infers one
    heads.write_text(PENGUINS_HEADS.read_text())
    result = run_cli("run", "--data", str(data), "--heads", str(heads), "--workdir", str(tmp_path / "run"))
    assert result.returncode == cli.EXIT_DATA_REJECTED, result.stderr[-3000:]
    assert "does not fit the heads spec; the run stops before Transform" in result.stderr
    assert ("column 'year' (train split): a feature of the heads spec, but no example has a value for it"
            in result.stderr)
    assert ("column 'bill_depth_mm' (train split): some examples hold up to 2 values; the heads spec reads one "
            "value per example" in result.stderr)
    assert "[start]  Transform" not in result.stderr
