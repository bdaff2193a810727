"""`--data` resolved into ExampleGen's folder, file pattern and format (spans: tests/test_retrain.py)."""

import pytest

from pipeline.config import SpecError
from pipeline.data import resolve_data


def folder(tmp_path, *names):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize("names,pattern,fmt,read", [
    (["a.csv", "b.csv"], "*.csv", "csv", ["a.csv", "b.csv"]),
    (["README.txt", "a.csv"], "*.csv", "csv", ["a.csv"]),
    (["a.tfrecord", "b.tfrecord.gz"], "*", "tfrecord", ["a.tfrecord", "b.tfrecord.gz"]),
    # The format comes from the input files, not from whichever file sorts first.
    (["README.txt", "part-0.tfrecord", "part-1.tfrecord"], "*.tfrecord", "tfrecord",
     ["part-0.tfrecord", "part-1.tfrecord"]),
    (["_SUCCESS", ".crc", "part-0.gz"], "*", "tfrecord", ["part-0.gz"]),
])
def test_a_folder_is_read_by_its_input_files(tmp_path, names, pattern, fmt, read):
    data, files = resolve_data(folder(tmp_path, *names))
    assert (data.pattern, data.format, [f.name for f in files]) == (pattern, fmt, read)


def test_files_without_a_suffix_are_read_in_the_format_given(tmp_path):
    data, files = resolve_data(folder(tmp_path, "part-0", "part-1"), "tfrecord")
    assert (data.pattern, data.format, len(files)) == ("*", "tfrecord", 2)


@pytest.mark.parametrize("names,words", [
    (["a.csv", "b.tfrecord"], "holds both CSV and TFRecord files (a.csv, b.tfrecord); pass --format"),
    (["a.tfrecord", "b.gz", "notes.txt"], "ending in .gz and .tfrecord beside other files (notes.txt)"),
    (["_SUCCESS"], "holds no files"),
])
def test_a_folder_that_cannot_be_read_by_one_pattern_is_refused(tmp_path, names, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        resolve_data(folder(tmp_path, *names))
