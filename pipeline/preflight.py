"""Checks of the input files that need no TensorFlow, run before any component.

TFDV (StatisticsGen + ExampleValidator + SchemaGate) judges values against the curated schema; what it cannot
judge is a file CsvExampleGen cannot even read as the spec needs: empty, not text, rows of the wrong length, or a
column the spec names that the header lacks. Those stop here, naming the file, line or column.
"""

import csv
from pathlib import Path
from typing import Sequence

from pipeline.config import HeadsSpec, SpecError, check_columns

_SNIFF_BYTES = 1 << 16


class DataError(ValueError):
    """An input file cannot be used; the message names the file and the line or column."""


def check_csv_file(path: Path, spec: HeadsSpec) -> int:
    """Checks one CSV file; returns its number of data rows.

    Raises:
      DataError: the file is empty, not UTF-8 text, has no data rows, a row with a different number of fields
        than the header, or lacks a column the spec names.
    """
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected a header row and data rows)")
    with open(path, "rb") as f:
        if b"\x00" in f.read(_SNIFF_BYTES):
            raise DataError(f"{path}: not a CSV file (it holds binary data)")
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
    """Checks every CSV file of the input; returns the total number of data rows."""
    return sum(check_csv_file(Path(f), spec) for f in files)
