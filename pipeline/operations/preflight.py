"""Checks of the input files that need no TensorFlow, run before any component.

TFDV (StatisticsGen + ExampleValidator + SchemaGate) judges values against the curated schema; what it cannot
judge is a file CsvExampleGen cannot even read as the spec needs: empty, not text, rows of the wrong length, or a
column the spec names that the header lacks. Those stop here, naming the file, line or column. A TFRecord file
(ImportExampleGen) is checked as far as its first record's framing: a CSV file given as one, gzipped or not,
stops here instead of failing inside Beam.
"""

import codecs
import csv
import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Sequence

from components.spec import HeadsSpec, SpecError, check_columns

_SNIFF_BYTES = 1 << 16


class DataError(ValueError):
    """An input file cannot be used; the message names the file and the line or column."""


def check_csv_file(path: Path, spec: HeadsSpec) -> int:
    """Checks one CSV file; returns its number of data rows.

    Raises:
      DataError: the file is empty, not UTF-8 text, has no data rows, a row with a different number of fields
        than the header, or lacks a column the spec names.
    """
    check_readable_file(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected a header row and data rows)")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise DataError(f"{path}: not a CSV file (it holds binary data; if it is TFRecord data, pass --format "
                        f"tfrecord)")
    if head.startswith(codecs.BOM_UTF8):
        # CsvExampleGen would read the mark as part of the first column's name.
        raise DataError(f"{path}: the file starts with a UTF-8 byte-order mark (as some spreadsheet programs "
                        f"write \"CSV UTF-8\"); save it as UTF-8 without one")
    rows = 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, [])
            if not header:
                raise DataError(f"{path}: no header row")
            try:
                check_columns(spec, header, f"the header of {path}")
            except SpecError as e:
                raise DataError(str(e)) from None
            for row in reader:
                if not row:
                    continue   # a blank line
                rows += 1
                if len(row) != len(header):
                    raise DataError(f"{path}, line {reader.line_num}: {len(row)} fields, but the header has "
                                    f"{len(header)}")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not a CSV text file (not UTF-8 after line {reader.line_num}: {e.reason})"
                            ) from None
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: not valid CSV: {e}") from None
    if rows == 0:
        raise DataError(f"{path}: a header but no data rows")
    return rows


def check_csv_files(files: Sequence[Path], spec: HeadsSpec) -> int:
    """Checks every CSV file of the input, and that they share one header; returns the total number of data rows.

    Raises:
      DataError: as `check_csv_file`, or two files' headers differ (CsvExampleGen reads the files of a split as
        one table, and refuses that without naming the files).
    """
    rows = sum(check_csv_file(Path(f), spec) for f in files)
    headers = {Path(f): header_fields(Path(f)) for f in files}
    first = Path(files[0]) if files else None
    for path, header in headers.items():
        if header != headers[first]:
            raise DataError(f"{path}: its header differs from that of {first}, which is read with it as one table "
                            f"(every file must have the same columns in the same order): {header} against "
                            f"{headers[first]}")
    return rows


def header_fields(path: Path) -> list[str]:
    """The header as CsvExampleGen compares files' headers: the first line, stripped, split at commas."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.readline().strip().split(",")


def check_readable_file(path: Path) -> None:
    """Raises DataError for a link to nothing or something other than a file (ExampleGen's glob matches both)."""
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: a link to {os.readlink(path)}, which does not exist; ExampleGen would fail on it: "
                        f"remove the link or restore its target")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; ExampleGen would try to read it as data: move it out")


# TFRecord framing: a little-endian uint64 length and a 4-byte CRC of it, the record, a 4-byte CRC of the record.
_LENGTH_BYTES, _CRC_BYTES = 8, 4
_MAX_RECORD_BYTES = 1 << 30


def has_tfrecord_record(path: Path) -> bool:
    """Whether `path` (gzipped when its name ends in .gz, as ImportExampleGen reads it) starts with a whole
    TFRecord record; False for a file without records (a Beam shard may be empty).

    Raises:
      DataError: not gzip data although named .gz, or data that does not start with a TFRecord record; when it
        starts with text, the message says so (a CSV file needs --format csv, and uncompressed).
    """
    check_readable_file(path)
    if path.stat().st_size == 0:
        return False
    gzipped = path.name.endswith(".gz")
    try:
        with (gzip.open if gzipped else open)(path, "rb") as f:
            head = f.read(_LENGTH_BYTES + _CRC_BYTES)
            length = struct.unpack("<Q", head[:_LENGTH_BYTES])[0] if len(head) == _LENGTH_BYTES + _CRC_BYTES else -1
            # A record may be empty: a tf.Example whose every feature is missing serializes to no bytes.
            framed = 0 <= length <= _MAX_RECORD_BYTES and len(f.read(length + _CRC_BYTES)) == length + _CRC_BYTES
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: named .gz but not whole gzip data ({e})") from None
    if not head:
        return False
    if not framed:
        raise DataError(f"{path}: not a TFRecord file of tf.Examples{_text_hint(head)}")
    return True


def _text_hint(head: bytes) -> str:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return (f" (it starts with text, {text!r}...: a CSV file is read with --format csv, and only uncompressed; "
            f"gunzip a .csv.gz first)") if text.isprintable() else ""


def check_tfrecord_files(files: Sequence[Path]) -> None:
    """Checks every TFRecord file of the input (`has_tfrecord_record`); at least one must hold a record."""
    with_records = [f for f in files if has_tfrecord_record(Path(f))]
    if not with_records:
        raise DataError(f"{', '.join(str(f) for f in files)}: no TFRecord record in any file (expected tf.Examples)")


def read_statistics(path: Path):
    """TFDV statistics (a DatasetFeatureStatisticsList) from a file in any of the forms TFDV writes: a TFRecord
    file of one record (`tfdv.generate_statistics_from_csv(..., output_path=...)`), text
    (`tfdv.write_stats_text`) or a binary proto (`SerializeToString()`).

    Raises:
      SpecError: naming the file, when it is none of those or holds no feature's statistics.
    """
    from google.protobuf import message, text_format  # noqa: PLC0415
    from tensorflow_metadata.proto.v0 import statistics_pb2  # noqa: PLC0415

    data = path.read_bytes()
    header = _LENGTH_BYTES + _CRC_BYTES
    length = struct.unpack("<Q", data[:_LENGTH_BYTES])[0] if len(data) >= header else -1
    attempts = [lambda: text_format.Parse(data.decode("utf-8"), statistics_pb2.DatasetFeatureStatisticsList()),
                lambda: statistics_pb2.DatasetFeatureStatisticsList.FromString(data)]
    if 0 <= length and len(data) == header + length + _CRC_BYTES:   # one framed record
        attempts.insert(0, lambda: statistics_pb2.DatasetFeatureStatisticsList.FromString(
            data[header:header + length]))
    for attempt in attempts:
        try:
            statistics = attempt()
        except (message.DecodeError, text_format.ParseError, UnicodeDecodeError):
            continue
        if any(dataset.features for dataset in statistics.datasets):
            return statistics
    raise SpecError(f"--serving-stats: {path} is not TFDV statistics with features (a DatasetFeatureStatisticsList "
                    f"as a one-record TFRecord file, as tfdv.generate_statistics_from_csv writes it with output_path, "
                    f"as text, tfdv.write_stats_text, or as a binary proto)")
