"""`--data` resolved into ExampleGen's folder, file pattern and format (spans: tests/test_retrain.py)."""

import os

import pytest

from components.spec import SpecError
from pipeline.definition.data import resolve_data


def folder(tmp_path, *names):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def beam_reads(data) -> list[str]:
    """The files ExampleGen's Beam job reads: those its pattern matches in its folder."""
    from apache_beam.io.filesystems import FileSystems

    (matched,) = FileSystems.match([os.path.join(data.input_base, data.pattern)])
    return sorted(os.path.basename(m.path) for m in matched.metadata_list)


@pytest.mark.parametrize("names,pattern,fmt,read", [
    (["a.csv", "b.csv"], "[!._]*.csv", "csv", ["a.csv", "b.csv"]),
    (["README.txt", "a.csv"], "[!._]*.csv", "csv", ["a.csv"]),
    (["a.tfrecord", "b.tfrecord.gz"], "[!._]*", "tfrecord", ["a.tfrecord", "b.tfrecord.gz"]),
    # The format comes from the input files, not from whichever file sorts first.
    (["README.txt", "part-0.tfrecord", "part-1.tfrecord"], "[!._]*.tfrecord", "tfrecord",
     ["part-0.tfrecord", "part-1.tfrecord"]),
    # Hidden files and `_` markers are never read: macOS's `._a.csv`, a checksum file, `_SUCCESS`.
    (["_SUCCESS", ".part-0.gz.crc", "part-0.gz"], "[!._]*", "tfrecord", ["part-0.gz"]),
    (["._a.csv", "a.csv", "_SUCCESS"], "[!._]*.csv", "csv", ["a.csv"]),
])
def test_a_folder_is_read_by_its_input_files(tmp_path, names, pattern, fmt, read):
    data, files = resolve_data(folder(tmp_path, *names))
    assert (data.pattern, data.format, [f.name for f in files]) == (pattern, fmt, read)
    assert beam_reads(data) == read


def test_files_without_a_suffix_are_read_in_the_format_given(tmp_path):
    data, files = resolve_data(folder(tmp_path, "part-0", "part-1", "_SUCCESS"), "tfrecord")
    assert (data.pattern, data.format, len(files)) == ("[!._]*", "tfrecord", 2)
    assert beam_reads(data) == ["part-0", "part-1"]


@pytest.mark.parametrize("names,words", [
    (["a.csv", "b.tfrecord"], "holds both CSV and TFRecord files (a.csv, b.tfrecord); pass --format"),
    (["a.tfrecord", "b.gz", "notes.txt"], "ending in .gz and .tfrecord beside other files (notes.txt)"),
    (["_SUCCESS"], "holds no files"),
])
def test_a_folder_that_cannot_be_read_by_one_pattern_is_refused(tmp_path, names, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        resolve_data(folder(tmp_path, *names))
