"""Spans on disk, the one-run-per-workdir lock and the `retrain` command's checks (no pipeline run here; the
end-to-end retraining scenario is tests/test_retrain_e2e.py)."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.spec import SpecError
from pipeline import cli
from pipeline.definition.data import example_gen_fingerprint, hidden_files, resolve_data, spans_on_disk
from pipeline.operations import run as run_use_case
from pipeline.operations.retrain import (
    PipelineBusyError,
    SpanRun,
    finished_span_runs,
    unread_spans,
    workdir_busy,
    workdir_lock,
)

from conftest import PENGUINS_HEADS, run_cli


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x\n")


def test_spans_are_the_numbers_in_place_of_span_and_the_newest_is_read(tmp_path):
    touch(tmp_path, "span-1/a.csv", "span-2/a.csv", "span-2/b.csv", "span-10/a.csv", "span-x/a.csv", "other.csv")
    assert sorted(spans_on_disk(tmp_path, "span-{SPAN}/*.csv")) == [1, 2, 10]
    data, files = resolve_data(tmp_path / "span-{SPAN}" / "*.csv")
    assert (data.span, data.pattern, data.input_base) == (10, "span-{SPAN}/*.csv", str(tmp_path.resolve()))
    assert files == [tmp_path / "span-10" / "a.csv"]
    assert data.description.endswith("span-{SPAN}/*.csv (span 10)")


def test_a_span_file_pattern_without_a_folder_per_span(tmp_path):
    touch(tmp_path, "day-3.csv", "day-4.csv")
    data, files = resolve_data(tmp_path / "day-{SPAN}.csv")
    assert data.span == 4 and files == [tmp_path / "day-4.csv"]


def tfx_reads(data) -> tuple[int, list[str]]:
    """The span CsvExampleGen's driver picks for `data`'s pattern, and the files it then reads."""
    from tfx.components.example_gen import utils  # noqa: PLC0415
    from tfx.proto import example_gen_pb2  # noqa: PLC0415

    split = example_gen_pb2.Input.Split(name="single_split", pattern=data.pattern)
    _, span, _ = utils.calculate_splits_fingerprint_span_and_version(data.input_base, [split])
    # The driver fills the span into the split's pattern, which the executor then reads.
    return span, sorted(str(p) for p in Path(data.input_base).glob(split.pattern))


@pytest.mark.parametrize("pattern, names, span, files", [
    ("span-{SPAN}/*.csv", ["span-9/a.csv", "span-10/a.csv"], 10, ["span-10/a.csv"]),
    # Zero-padded numbers: TFX's width syntax; ExampleGen pads the span back to read its files.
    ("span-{SPAN:3}/*.csv", ["span-009/a.csv", "span-013/a.csv", "span-013/b.csv"], 13,
     ["span-013/a.csv", "span-013/b.csv"]),
    ("day-{SPAN:2}.csv", ["day-07.csv", "day-08.csv"], 8, ["day-08.csv"]),
])
def test_the_span_read_is_the_one_example_gen_reads(tmp_path, pattern, names, span, files):
    touch(tmp_path, *names)
    data, found = resolve_data(tmp_path / pattern)
    expected = [str(tmp_path / f) for f in files]
    assert (data.span, sorted(map(str, found))) == (span, expected)
    assert tfx_reads(data) == (span, expected)


def test_the_fingerprint_of_a_spans_files_is_example_gens_own_and_changes_with_them(tmp_path):
    import os  # noqa: PLC0415

    from tfx.utils import io_utils  # noqa: PLC0415

    touch(tmp_path, "span-1/a.csv", "span-1/b.csv")
    files = [tmp_path / "span-1" / "a.csv", tmp_path / "span-1" / "b.csv"]
    os.utime(files[1], (1_700_000_000, 1_700_000_000))
    fingerprint = example_gen_fingerprint(files)
    assert fingerprint == io_utils.generate_fingerprint("all", str(tmp_path / "span-1" / "*.csv"))
    files[0].write_text("x\n")   # the same size, written again: a later modification time
    os.utime(files[0], (1_700_000_100, 1_700_000_100))
    assert example_gen_fingerprint(files) != fingerprint


def test_spans_passed_over_are_those_after_the_first_read_and_before_the_newest():
    read = [SpanRun("r1", 2, 0.0), SpanRun("r2", 4, 1.0), SpanRun("r3", 7, 2.0)]
    # 1 came before retraining began; 3 and 5 were passed over (late, or stopped); 8 is the newest, being read.
    assert unread_spans(read, [1, 2, 3, 4, 5, 7, 8], newest=8) == [3, 5]
    assert unread_spans([], [1, 2, 3], newest=3) == []


@pytest.mark.parametrize("pattern, path", [
    ("span-{SPAN}/*.csv", "span-3"),               # `run` reads a folder's CSV files; it takes no wildcard
    ("span-{SPAN}/penguins.csv", "span-3/penguins.csv"),
    ("day-{SPAN:2}.csv", "day-03.csv"),
    ("*/span-{SPAN}.csv", None),                   # no one path holds span 3 alone
])
def test_the_run_command_for_one_span_passed_over_reads_that_span_alone(tmp_path, pattern, path):
    from pipeline.definition.data import DataSource  # noqa: PLC0415

    found = run_use_case.one_span_path(DataSource(str(tmp_path), pattern, span=4), 3)
    assert found == (tmp_path / path if path else None)


def test_a_broken_link_makes_a_span_read_again_for_the_preflight_to_name(tmp_path):
    (tmp_path / "late.csv").symlink_to(tmp_path / "gone.csv")
    assert example_gen_fingerprint([tmp_path / "late.csv"]).startswith("unreadable: ")


def test_a_zero_padded_span_under_a_plain_span_token_is_told_the_width(tmp_path):
    touch(tmp_path, "span-012/a.csv", "span-013/a.csv")
    with pytest.raises(SpecError, match=r"span 13 is written 013, with leading zeros, .*ExampleGen would look for "
                                        r"13\); write \{SPAN:3\}"):
        resolve_data(tmp_path / "span-{SPAN}" / "*.csv")


def test_hidden_files_a_span_pattern_matches_are_found_but_empty_markers_and_named_ones_are_not(tmp_path):
    touch(tmp_path, "span-1/a.csv", "span-1/._a.csv", "span-1/.backup.csv", "span-1/_part.csv")
    (tmp_path / "span-1" / "_SUCCESS.csv").write_text("")
    data, files = resolve_data(tmp_path / "span-{SPAN}" / "*.csv")
    assert [f.name for f in hidden_files(data.pattern, files)] == ["._a.csv", ".backup.csv", "_part.csv"]
    data, files = resolve_data(tmp_path / "span-{SPAN}" / "_*.csv")
    assert hidden_files(data.pattern, files) == []


@pytest.mark.parametrize("pattern, words", [
    ("span-{SPAN}/*.csv", "no file in"),
    ("span-{SPAN}-{SPAN}.csv", "exactly once"),
    ("span-{SPAN}/v{VERSION}.csv", "only {SPAN} is supported"),
    ("span-{SPAN}/[!._]*.csv", "may hold `*` and {SPAN} only"),
])
def test_span_patterns_that_cannot_be_read_name_the_problem(tmp_path, pattern, words):
    touch(tmp_path, "unrelated.txt")
    with pytest.raises(SpecError, match="--data: .*" + re.escape(words)):
        resolve_data(tmp_path / pattern)


def test_a_second_holder_of_the_workdir_lock_fails_at_once_naming_the_first(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path\n"
                               "from pipeline.operations.retrain import workdir_lock\n"
                               f"with workdir_lock(Path({str(tmp_path)!r})):\n"
                               "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(PipelineBusyError, match=f"pid {holder.pid}, started"):
            with workdir_lock(tmp_path):
                pass
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()
    with workdir_lock(tmp_path):   # the kernel released the dead holder's lock
        pass


def test_workdir_busy_tells_whether_a_run_holds_the_lock_and_never_keeps_it(tmp_path):
    assert not workdir_busy(tmp_path)          # no run yet: no lock file
    with workdir_lock(tmp_path):
        assert workdir_busy(tmp_path)
    assert not workdir_busy(tmp_path)
    with workdir_lock(tmp_path):               # asking did not leave the lock held
        pass


def test_an_empty_workdir_has_no_finished_span():
    assert finished_span_runs(Path("/nonexistent/metadata.sqlite")) == []


def test_retrain_needs_a_span_pattern(tmp_path):
    result = run_cli("retrain", "--data", "data/penguins/penguins.csv", "--heads", str(PENGUINS_HEADS),
                     "--workdir", str(tmp_path))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "retrain reads spans; name them with {SPAN}" in result.stderr


def test_keep_versions_must_keep_the_served_one(tmp_path):
    result = run_cli("run", "--data", "data/penguins/penguins.csv", "--heads", str(PENGUINS_HEADS),
                     "--workdir", str(tmp_path), "--keep-versions", "0")
    assert result.returncode == cli.EXIT_BAD_CONFIG and "--keep-versions: must be at least 1" in result.stderr
