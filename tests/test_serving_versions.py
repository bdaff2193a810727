"""Rollback and versions kept, on a serving directory filled by the Pusher's own atomic push."""

import os

import pytest

from components.serving_dir import earlier_push, push_atomically, read_push_record, served_model_uris, serving_versions
from pipeline import cli
from pipeline.operations.serving_versions import ROLLED_BACK_DIR, prune_versions, rollback, served_version


def _model(tmp_path, name: str) -> str:
    folder = tmp_path / "models" / name
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_text(name)
    (folder / "variables" / "variables.index").write_text(name)
    return str(folder)


def _push(tmp_path, base: str, name: str, at: int) -> str:
    return push_atomically(_model(tmp_path, name), base, {"model_uri": f"gs://root/Trainer/{name}"},
                           clock=lambda: at)


def test_rollback_after_two_pushes_serves_the_earlier_and_keeps_the_later(tmp_path):
    base = str(tmp_path / "serving")
    _push(tmp_path, base, "first", 100)
    _push(tmp_path, base, "second", 200)
    assert served_version(base) == 200

    assert cli.main(["rollback", "--serving-dir", base]) == 0
    assert serving_versions(base) == [100] and served_version(base) == 100
    kept = os.path.join(base, ROLLED_BACK_DIR, "200")
    with open(os.path.join(kept, "saved_model.pb")) as f:
        assert f.read() == "second"                       # kept whole, not deleted
    assert read_push_record(kept)["version"] == 200
    # The Pusher will not push it again, and the baseline resolver no longer sees it in the serving directory.
    assert earlier_push(base, "gs://root/Trainer/second") == ("rolled back", kept)
    assert served_model_uris(base) == {"gs://root/Trainer/first"}
    with open(os.path.join(base, "100", "saved_model.pb")) as f:
        assert f.read() == "first"


def test_rollback_with_one_version_refuses_and_changes_nothing(tmp_path, capsys):
    base = str(tmp_path / "serving")
    _push(tmp_path, base, "only", 100)
    assert cli.main(["rollback", "--serving-dir", base]) == cli.EXIT_BAD_CONFIG
    assert "nothing to roll back to" in capsys.readouterr().err
    assert serving_versions(base) == [100] and not os.path.exists(os.path.join(base, ROLLED_BACK_DIR))


def test_a_version_number_rolled_back_twice_keeps_both(tmp_path):
    base = str(tmp_path / "serving")
    _push(tmp_path, base, "a", 100)
    _push(tmp_path, base, "b", 200)
    rollback(base)
    _push(tmp_path, base, "c", 200)       # the clock gives the rolled-back number again
    done = rollback(base)
    assert done.served == 100 and done.set_aside.endswith(os.path.join(ROLLED_BACK_DIR, "200.1"))
    assert earlier_push(base, "gs://root/Trainer/b")[0] == earlier_push(base, "gs://root/Trainer/c")[0] == "rolled back"
    assert served_model_uris(base) == {"gs://root/Trainer/a"}


def test_prune_keeps_the_newest_versions(tmp_path):
    base = str(tmp_path / "serving")
    for i, at in enumerate((100, 200, 300, 400)):
        _push(tmp_path, base, f"m{i}", at)
    assert prune_versions(base, keep=2) == [100, 200]
    assert serving_versions(base) == [300, 400]
    assert prune_versions(base, keep=5) == []
    with pytest.raises(ValueError, match="keep must be >= 1"):
        prune_versions(base, keep=0)


def test_versions_command_lists_marks_and_prunes(tmp_path, capsys):
    base = str(tmp_path / "serving")
    for i, at in enumerate((100, 200, 300)):
        _push(tmp_path, base, f"m{i}", at)
    rollback(base)
    assert cli.main(["versions", "--serving-dir", base, "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert "deleted version 100" in out
    assert "200  (served)  gs://root/Trainer/m1" in out
    assert f"300  (rolled back, in {ROLLED_BACK_DIR}/)" in out
    assert cli.main(["versions", "--serving-dir", base, "--keep", "0"]) == cli.EXIT_BAD_CONFIG


def test_versions_of_an_empty_serving_directory_says_so(tmp_path, capsys):
    assert cli.main(["versions", "--serving-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no versions in {tmp_path} (nothing pushed yet)\n"
