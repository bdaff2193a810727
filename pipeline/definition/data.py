"""Where the input records are: `--data` resolved into ExampleGen's settings. No TFX import."""

import dataclasses
import posixpath
import re
from pathlib import Path
from typing import Optional

from components.spec import SpecError

TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".gz")
SPAN = "{SPAN}"
SPAN_TOKEN = re.compile(r"\{SPAN(?::(?P<width>\d+))?\}")
# A folder's pattern starts with this: `*` alone matches hidden files (`._a.csv`, `.part-0.crc`) and `_` markers
# (`_SUCCESS`, as Beam and Spark jobs leave beside their output), which are no data. Beam's and TensorFlow's
# globs both read `[!._]` as "any first character but these".
NOT_HIDDEN = "[!._]"
# ExampleGen's one input split, which it hashes 2:1 into train and eval.
EXAMPLE_GEN_SPLIT = "all"


@dataclasses.dataclass(frozen=True)
class DataSource:
    """The input records: a folder (`input_base`), a file pattern inside it, and the format (csv | tfrecord)."""

    input_base: str
    pattern: str = "*"
    format: str = "csv"
    span: Optional[int] = None   # the span ExampleGen will read (the newest), when `pattern` holds {SPAN}

    @property
    def description(self) -> str:
        where = posixpath.join(self.input_base, self.pattern)   # a URI's "gs://" keeps both slashes
        return where if self.span is None else f"{where} (span {self.span})"


def example_gen_fingerprint(files: list[Path]) -> str:
    """The input fingerprint TFX's ExampleGen records on the Examples it writes (`input_fingerprint`): the files'
    count, bytes, and modification times to the second, of its one split. Equal exactly when ExampleGen would take
    the files for the ones it read before."""
    try:
        stats = [f.stat() for f in files]
    except OSError as e:   # a broken link: changed, for the preflight to name
        return f"unreadable: {e}"
    mtimes = [s.st_mtime_ns // 10**9 for s in stats]
    xor = 0
    for mtime in mtimes:
        xor ^= mtime
    return (f"split:{EXAMPLE_GEN_SPLIT},num_files:{len(files)},total_bytes:{sum(s.st_size for s in stats)},"
            f"xor_checksum:{xor},sum_checksum:{sum(mtimes)}")


def span_token(pattern: str) -> Optional[re.Match]:
    """The pattern's `{SPAN}` or `{SPAN:width}` (numbers zero-padded to `width` digits), as ExampleGen reads them."""
    return SPAN_TOKEN.search(pattern)


def _glob_regex(part: str) -> str:
    """A regex of a glob holding `*` alone, each `*` within one path segment, as TFX's glob-to-regex reads it."""
    return "[^/]*".join(re.escape(piece) for piece in part.split("*"))


def spans_on_disk(input_base: Path, pattern: str) -> dict[int, list[Path]]:
    """`{span: files}` of a `{SPAN}` pattern relative to `input_base` (the span is the number in its place).

    ExampleGen reads the newest span by default; this finds the same one before TFX is imported, so that the
    command can check its files and tell whether it is new. Every match but a folder counts, a broken link
    included: ExampleGen's glob matches those too, and the preflight names them.
    """
    token = span_token(pattern)
    digits = r"\d{%s}" % token.group("width") if token.group("width") else r"\d+"
    regex = re.compile("^" + _glob_regex(pattern[:token.start()]) + f"(?P<span>{digits})"
                       + _glob_regex(pattern[token.end():]) + "$")
    spans: dict[int, list[Path]] = {}
    for path in sorted(input_base.glob(pattern[:token.start()] + "*" + pattern[token.end():])):
        match = regex.match(path.relative_to(input_base).as_posix())
        if match and not path.is_dir():
            spans.setdefault(int(match.group("span")), []).append(path)
    return spans


def padded_span(input_base: Path, pattern: str, files: list[Path]) -> Optional[str]:
    """The span number as written, when a plain `{SPAN}` matched it with leading zeros (`span-013`): ExampleGen
    would then look for the number unpadded (`span-13`)."""
    token = span_token(pattern)
    if token.group("width"):
        return None
    for path in files:
        written = re.match(_glob_regex(pattern[:token.start()]) + r"(\d+)", path.relative_to(input_base).as_posix())
        if written and len(written.group(1)) > 1 and written.group(1).startswith("0"):
            return written.group(1)
    return None


def hidden_files(pattern: str, files: list[Path]) -> list[Path]:
    """Files with content whose name starts with `.` or `_` that a span pattern's wildcard matched (a `*` matches
    them, unlike a shell's): a macOS `._` file, a hidden copy. A name the pattern itself starts with `.` or `_` is
    the user's choice; an empty `_SUCCESS` marker holds no records (the format's own check judges it)."""
    last = pattern.rsplit("/", 1)[-1]
    return [f for f in files if f.name.startswith((".", "_")) and not last.startswith(f.name[0])
            and f.exists() and f.stat().st_size > 0]


def resolve_spans(path: Path, data_format: Optional[str]) -> tuple[DataSource, list[Path]]:
    """A `{SPAN}` path (`DIR/span-{SPAN}/*.csv`, `DIR/data-{SPAN:3}.csv`) as a DataSource of its newest span."""
    parts = path.parts
    first = next(i for i, part in enumerate(parts) if span_token(part) or "*" in part)
    input_base, pattern = Path(*parts[:first]), "/".join(parts[first:])
    if len(SPAN_TOKEN.findall(pattern)) != 1:
        raise SpecError(f"--data: {path}: the pattern must hold {SPAN} (or {{SPAN:width}}) exactly once")
    if re.search(r"\{(VERSION|YYYY|MM|DD)\b", pattern):
        raise SpecError(f"--data: {path}: only {SPAN} is supported in the pattern, not {{VERSION}} or dates")
    if re.search(r"[?\[\]]", pattern):
        # TFX turns the pattern into a regex to find spans, and reads `[`, `]` and `?` in its own way.
        raise SpecError(f"--data: {path}: a span pattern may hold `*` and {SPAN} only, not `?` or `[...]`")
    if not input_base.is_dir():
        raise SpecError(f"--data: {input_base} (the folder before {SPAN}) does not exist")
    spans = spans_on_disk(input_base, pattern)
    if not spans:
        raise SpecError(f"--data: no file in {input_base} matches {pattern} (a number in place of "
                        f"{span_token(pattern).group(0)})")
    span = max(spans)
    files = spans[span]
    written = padded_span(input_base, pattern, files)
    if written is not None:
        raise SpecError(f"--data: {path}: span {span} is written {written}, with leading zeros, which {SPAN} does "
                        f"not read back (ExampleGen would look for {span}); write {{SPAN:{len(written)}}} for numbers "
                        f"zero-padded to {len(written)} digits")
    fmt = data_format or ("tfrecord" if files[0].name.endswith(TFRECORD_SUFFIXES) else "csv")
    return DataSource(input_base=str(input_base.resolve()), pattern=pattern, format=fmt, span=span), files


def resolve_data(path: Path, data_format: Optional[str] = None) -> tuple[DataSource, list[Path]]:
    """Turns a file or folder into a DataSource and the files it matches.

    A path holding `{SPAN}` names spans (`DIR/span-{SPAN}/*.csv`): ExampleGen reads the newest one.

    Raises:
      SpecError: if the path does not exist or holds no input file.
    """
    if span_token(str(path)):
        return resolve_spans(path, data_format)
    if not path.exists():
        raise SpecError(f"--data: {path} does not exist")
    if path.is_dir():
        # Hidden files and `_` markers (`_SUCCESS`, as Beam and Spark jobs leave beside their output) are no data.
        # A broken link counts: ExampleGen's glob matches it, and the preflight names it.
        files = sorted(p for p in path.iterdir() if not p.is_dir() and not p.name.startswith((".", "_")))
        if not files:
            raise SpecError(f"--data: folder {path} holds no files")
        return folder_source(path, files, data_format)
    fmt = data_format or ("tfrecord" if path.name.endswith(TFRECORD_SUFFIXES) else "csv")
    return DataSource(input_base=str(path.resolve().parent), pattern=path.name, format=fmt), [path]


def folder_source(folder: Path, files: list[Path], data_format: Optional[str]) -> tuple[DataSource, list[Path]]:
    """A folder's input files and the one file pattern ExampleGen reads them by; the format, unless given, from
    the files' suffixes. Files of another format beside them (a README) are left out, as long as one pattern can
    leave them out.

    Raises:
      SpecError: the folder mixes CSV and TFRecord files, or no one pattern tells the input from the rest.
    """
    names = ", ".join(p.name for p in files[:5]) + (", ..." if len(files) > 5 else "")
    csvs = [p for p in files if p.suffix == ".csv"]
    records = [p for p in files if p.name.endswith(TFRECORD_SUFFIXES)]
    fmt = data_format
    if fmt is None:
        if csvs and records:
            raise SpecError(f"--data: folder {folder} holds both CSV and TFRecord files ({names}); pass --format "
                            f"csv or --format tfrecord, or keep one format per folder")
        fmt = "tfrecord" if records else "csv"
    base, any_name = str(folder.resolve()), NOT_HIDDEN + "*"
    if fmt == "csv":
        return (DataSource(base, any_name + ".csv", fmt), csvs) if csvs else (DataSource(base, any_name, fmt), files)
    if not records or len(records) == len(files):
        return DataSource(base, any_name, fmt), files
    suffixes = sorted({"." + p.name.rsplit(".", 1)[-1] for p in records})
    if len(suffixes) > 1:
        others = ", ".join(p.name for p in files if p not in records)
        raise SpecError(f"--data: folder {folder} holds TFRecord files ending in {' and '.join(suffixes)} beside "
                        f"other files ({others}); ExampleGen reads a folder by one file pattern: move the other "
                        f"files out, or give the TFRecord files one suffix")
    return DataSource(base, any_name + suffixes[0], fmt), records
