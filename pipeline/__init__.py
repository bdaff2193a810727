"""The multi-head TFX pipeline, in layers that import downward only (pyproject.toml's import-linter contracts):

- `cli`: the command line: arguments in, messages and exit codes out;
- `operations`: what the commands do (a run and its outcome, retraining on spans, serving versions);
- `runners` (local Beam, Kubeflow) and `read` (runs, lineage, the report from ML Metadata);
- `definition`: the one pipeline factory, its eval config, resolvers and data sources;
- below them all, `components/`: the spec and the code that runs inside components.

Importing this package is cheap: TensorFlow and TFX are imported only by the modules that need them.
"""

from pathlib import Path

import components  # noqa: F401 - the Keras choice, made before anything here imports TensorFlow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
