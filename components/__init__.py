"""TFX module code: Transform's `preprocessing_fn`, the Trainer's `run_fn`, and the pure builders they call.

Every process that runs this code must use tf_keras (Keras 2): TF Transform's layer and TFMA 0.47 are tf_keras,
and TFX's own penguin example fails under Keras 3 on this stack. `TF_USE_LEGACY_KERAS` only takes effect if it
is set before TensorFlow is first imported, so it is set here too, for processes that import this package first.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
