"""The command line: light to start, and configuration errors stop it before any component runs."""

import subprocess
import sys

from conftest import PENGUINS_CSV, PENGUINS_HEADS, ROOT, run_cli
from pipeline import cli


def test_help_does_not_import_tensorflow():
    # `--help` must answer at once: nothing on its path may import TensorFlow or TFX.
    code = ("import sys\nfrom pipeline import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "run the pipeline locally" in result.stdout


def test_bad_heads_spec_exits_2_naming_the_field(tmp_path):
    heads = tmp_path / "heads.yaml"
    heads.write_text(PENGUINS_HEADS.read_text().replace("loss: binary_crossentropy", "loss: hinge"))
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--workdir", str(tmp_path / "w"))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "heads[1].loss.name: 'hinge' is not one of" in result.stderr
    assert not (tmp_path / "w").exists()


def test_missing_data_path_exits_2(tmp_path):
    result = run_cli("run", "--data", str(tmp_path / "nope.csv"), "--heads", str(PENGUINS_HEADS))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert "does not exist" in result.stderr
