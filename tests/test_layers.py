"""The layer contracts (pyproject.toml, run by `make lint` in CI) fail the build on a wrong-way import: shown here
on a temporary copy of the project with one planted."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def copy_of_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    for folder in ("pipeline", "components"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project)
    return project


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    # lint-imports puts the working directory first on the path, so it reads the copy, not the installed project.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=project, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def clean_project(tmp_path_factory):
    return copy_of_project(tmp_path_factory.mktemp("layers"))


def test_the_project_keeps_every_contract(clean_project):
    result = lint_imports(clean_project)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module,planted,contract", [
    ("components/spec/names.py", "from pipeline.cli import main", "pipeline/ in layers, above components/"),
    ("components/trainer/losses.py", "from components.pusher import AtomicPusher",
     "components/ in layers, the spec at the bottom"),
    ("pipeline/definition/eval_config.py", "from pipeline.read import results", "pipeline/ in layers, above"),
    ("components/spec/registry.py", "import tensorflow", "The spec imports no TensorFlow"),
])
def test_a_wrong_way_import_breaks_its_contract(tmp_path, module, planted, contract):
    project = copy_of_project(tmp_path)
    path = project / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = lint_imports(project)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout, result.stdout[-3000:]
    assert module.replace("/", ".").removesuffix(".py") in result.stdout
