"""Where the input records are: `--data` resolved into ExampleGen's settings. No TFX import."""

import dataclasses
from pathlib import Path
from typing import Optional

from pipeline.config import SpecError

TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".gz")


@dataclasses.dataclass(frozen=True)
class DataSource:
    """The input records: a folder (`input_base`), a file pattern inside it, and the format (csv | tfrecord)."""

    input_base: str
    pattern: str = "*"
    format: str = "csv"

    @property
    def description(self) -> str:
        return str(Path(self.input_base) / self.pattern)


def resolve_data(path: Path, data_format: Optional[str] = None) -> tuple[DataSource, list[Path]]:
    """Turns a file or folder into a DataSource and the files it matches.

    Raises:
      SpecError: if the path does not exist or holds no input file.
    """
    if not path.exists():
        raise SpecError(f"--data: {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise SpecError(f"--data: folder {path} holds no files")
        fmt = data_format or ("tfrecord" if files[0].name.endswith(TFRECORD_SUFFIXES) else "csv")
        csvs = [p for p in files if p.suffix == ".csv"]
        if fmt == "csv" and csvs:
            return DataSource(input_base=str(path.resolve()), pattern="*.csv", format=fmt), csvs
        return DataSource(input_base=str(path.resolve()), pattern="*", format=fmt), files
    fmt = data_format or ("tfrecord" if path.name.endswith(TFRECORD_SUFFIXES) else "csv")
    return DataSource(input_base=str(path.resolve().parent), pattern=path.name, format=fmt), [path]
