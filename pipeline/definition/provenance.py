"""What is recorded beside every pushed model: the spec's hash, the project's git commit, the training settings
and the heads (the Pusher writes it into the version's push record; `runs` shows it)."""

import subprocess
from typing import Any

from components.spec import HeadsSpec
from pipeline import PROJECT_ROOT


def project_git_commit() -> str:
    """The project's git commit, `+dirty` when tracked files differ from it; `unknown` outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance(spec: HeadsSpec, **extra: Any) -> dict[str, Any]:
    """The provenance of a model trained from `spec` by this checkout, with `extra` facts (the image, say)."""
    return {"heads_spec_fingerprint": spec.fingerprint(), "git_commit": project_git_commit(),
            "training": spec.to_dict()["training"], "heads": [h.name for h in spec.heads], **extra}
