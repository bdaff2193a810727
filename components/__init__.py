"""The code that runs inside the pipeline's components, in layers (pyproject.toml's import-linter contracts):

- `spec`: the heads spec and its registry of losses and metrics (no TensorFlow; imports nothing else here);
- `records`, `serving_dir`: what the components write (ML Metadata keys, the serving directory's layout);
- `transform`, `trainer`: the module code of Transform and the Trainer; `schema_gate`, `pusher`: the custom
  components.

The Keras choice is made here, once, for every process of the project: TF Transform's layer and TFMA 0.47 are
tf_keras (Keras 2), and TFX's own penguin example fails under Keras 3 on this stack. `TF_USE_LEGACY_KERAS` takes
effect only if set before TensorFlow is first imported, and every project module imports this package first
(a component's module function by its import path, the command line through `pipeline`).
"""

import os

KERAS_CHOICE = {"TF_USE_LEGACY_KERAS": "1"}
os.environ.update(KERAS_CHOICE)
