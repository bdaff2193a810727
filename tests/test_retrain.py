"""Spans on disk, the one-run-per-workdir lock and the `retrain` command's checks (no pipeline run here; the
end-to-end retraining scenario is tests/test_retrain_e2e.py)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.config import SpecError
from pipeline.data import resolve_data, spans_on_disk
from pipeline.retrain import PipelineBusyError, finished_span_runs, workdir_busy, workdir_lock

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


@pytest.mark.parametrize("pattern, words", [
    ("span-{SPAN}/*.csv", "no file in"),
    ("span-{SPAN}-{SPAN}.csv", "exactly once"),
    ("span-{SPAN}/v{VERSION}.csv", "only {SPAN} is supported"),
])
def test_span_patterns_that_cannot_be_read_name_the_problem(tmp_path, pattern, words):
    touch(tmp_path, "unrelated.txt")
    with pytest.raises(SpecError, match="--data: .*" + words.replace("{", r"\{").replace("}", r"\}")):
        resolve_data(tmp_path / pattern)


def test_a_second_holder_of_the_workdir_lock_fails_at_once_naming_the_first(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from pipeline.retrain import workdir_lock\n"
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
