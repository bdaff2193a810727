"""The atomic, once-only push: a reader sees every version whole, or not at all."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from components.serving_dir import (
    PUSH_RECORD,
    STAGING_PREFIX,
    push_atomically,
    read_push_record,
    serving_versions,
    version_serving,
)

from conftest import ROOT


@pytest.fixture
def model_dir(tmp_path):
    """A stand-in SavedModel folder: many files, so that a copy takes a while when slowed down."""
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph" * 1000)
    for i in range(40):
        (model / "variables" / f"shard-{i:02d}").write_bytes(os.urandom(4096))
    return model


def is_whole(version_dir, model_dir) -> bool:
    expected = {p.relative_to(model_dir) for p in model_dir.rglob("*")}
    present = {p.relative_to(version_dir) for p in version_dir.rglob("*")}
    return expected <= present and (version_dir / PUSH_RECORD).is_file()


def test_push_creates_a_whole_version_with_its_record(model_dir, tmp_path):
    base = tmp_path / "serving"
    path = push_atomically(str(model_dir), str(base), {"model_uri": "/m/1"}, clock=lambda: 1700000000)
    assert path == str(base / "1700000000")
    assert is_whole(base / "1700000000", model_dir)
    assert read_push_record(path) == {"model_uri": "/m/1", "version": 1700000000}
    assert version_serving(str(base), "/m/1") == path and version_serving(str(base), "/m/2") is None
    assert sorted(os.listdir(base)) == ["1700000000"]   # no staging folder left behind


def test_two_pushes_in_the_same_second_get_two_increasing_versions(model_dir, tmp_path):
    base = tmp_path / "serving"
    first = push_atomically(str(model_dir), str(base), {"model_uri": "a"}, clock=lambda: 1700000000)
    second = push_atomically(str(model_dir), str(base), {"model_uri": "b"}, clock=lambda: 1700000000)
    assert (os.path.basename(first), os.path.basename(second)) == ("1700000000", "1700000001")
    # A clock that goes backwards never reuses or undercuts a version either.
    third = push_atomically(str(model_dir), str(base), {"model_uri": "c"}, clock=lambda: 1600000000)
    assert os.path.basename(third) == "1700000002"


def test_concurrent_pushes_in_one_second_never_collide(model_dir, tmp_path):
    base = tmp_path / "serving"
    paths, errors = [], []

    def push(i):
        try:
            paths.append(push_atomically(str(model_dir), str(base), {"model_uri": str(i)}, clock=lambda: 1700000000))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(paths)) == 4 and serving_versions(str(base)) == [1700000000 + i for i in range(4)]
    assert {read_push_record(p)["model_uri"] for p in paths} == {"0", "1", "2", "3"}


SLOW_PUSH = """
import shutil, sys, time
from components import serving_dir
copytree = shutil.copytree
def slow_copy(src, dst, **kwargs):
    time.sleep(0.05)
    return shutil.copy2(src, dst, **kwargs)
def slow_copytree(src, dst, symlinks=False, ignore=None, copy_function=None, *args, **kwargs):
    return copytree(src, dst, symlinks, ignore, slow_copy, *args, **kwargs)
shutil.copytree = slow_copytree
serving_dir.push_atomically(sys.argv[1], sys.argv[2], {"model_uri": "new"})
"""


def test_a_push_killed_mid_copy_leaves_the_old_versions_whole_and_nothing_half_written(model_dir, tmp_path):
    base = tmp_path / "serving"
    old = push_atomically(str(model_dir), str(base), {"model_uri": "old"}, clock=lambda: 1700000000)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PUSH, str(model_dir), str(base)], cwd=ROOT,
                            env=os.environ)
    seen_versions = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # A reader polling like TensorFlow Serving: every numeric folder it sees must be whole.
        for version in serving_versions(str(base)):
            assert is_whole(base / str(version), model_dir)
            seen_versions.add(version)
        staging = [n for n in os.listdir(base) if n.startswith(STAGING_PREFIX)]
        if staging and len(list((base / staging[0]).rglob("shard-*"))) >= 10:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the push never got under way")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert serving_versions(str(base)) == [1700000000] == sorted(seen_versions)
    assert is_whole(base / "1700000000", model_dir)

    # The next push clears what the killed one abandoned, and lands whole.
    new = push_atomically(str(model_dir), str(base), {"model_uri": "newer"})
    assert sorted(os.listdir(base)) == sorted([os.path.basename(old), os.path.basename(new)])
    assert is_whole(base / os.path.basename(new), model_dir)


def test_only_this_hosts_abandoned_staging_folders_are_removed(model_dir, tmp_path):
    import socket

    base = tmp_path / "serving"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = dead.stdout.strip()                       # a process that has ended
    here, elsewhere = socket.gethostname(), "another-host.example"
    for name in (f"{dead_pid}@{here}-abc1", f"{dead_pid}-abc2",            # this host's, and an older name
                 f"{dead_pid}@{elsewhere}-abc3",                           # maybe under way on another host
                 f"{os.getpid()}@{here}-abc4"):                            # a live process of this host
        (base / f"{STAGING_PREFIX}{name}").mkdir(parents=True)
    pushed = push_atomically(str(model_dir), str(base), {"model_uri": "/m/1"})
    assert sorted(os.listdir(base)) == sorted([os.path.basename(pushed), f"{STAGING_PREFIX}{dead_pid}@{elsewhere}-abc3",
                                               f"{STAGING_PREFIX}{os.getpid()}@{here}-abc4"])


def test_a_model_pushed_before_is_found_serving_or_rolled_back(model_dir, tmp_path):
    from components.serving_dir import ROLLED_BACK_DIR, earlier_push

    base = tmp_path / "serving"
    first = push_atomically(str(model_dir), str(base), {"model_uri": "/m/1"}, clock=lambda: 1700000000)
    second = push_atomically(str(model_dir), str(base), {"model_uri": "/m/2"}, clock=lambda: 1700000000)
    assert earlier_push(str(base), "/m/1") == ("serving", first)
    assert earlier_push(str(base), "/m/3") is None
    # As `rollback` does: the newest version moves aside; pushing that model again would undo the rollback.
    (base / ROLLED_BACK_DIR).mkdir()
    os.rename(second, base / ROLLED_BACK_DIR / "1700000001")
    assert earlier_push(str(base), "/m/2") == ("rolled back", str(base / ROLLED_BACK_DIR / "1700000001"))


def test_a_copy_that_fails_says_so_once_naming_the_serving_directory(model_dir, tmp_path, monkeypatch):
    import shutil

    from components import serving_dir

    base = tmp_path / "serving"
    old = push_atomically(str(model_dir), str(base), {"model_uri": "old"}, clock=lambda: 1700000000)

    def full_disk(src, dst, **kwargs):   # as shutil.copytree reports a full disk: every file that failed
        raise shutil.Error([(f"{src}/saved_model.pb", f"{dst}/saved_model.pb",
                             f"[Errno 28] No space left on device: '{src}/saved_model.pb' -> '{dst}/saved_model.pb'"),
                            (f"{src}/variables/v", f"{dst}/variables/v",
                             f"[Errno 28] No space left on device: '{src}/variables/v' -> '{dst}/variables/v'")])

    monkeypatch.setattr(serving_dir.shutil, "copytree", full_disk)
    with pytest.raises(serving_dir.PushError) as raised:
        push_atomically(str(model_dir), str(base), {"model_uri": "new"})
    assert str(raised.value) == (f"could not copy the model into the serving directory {base}: [Errno 28] No space "
                                 f"left on device (2 files); nothing was pushed, and its versions are as they were")
    assert sorted(os.listdir(base)) == [os.path.basename(old)]     # no staging folder left, the old version whole
