"""The multi-head TFX pipeline: heads spec, pipeline factory, runners and command line.

Importing this package is cheap: TensorFlow and TFX are imported only by the modules that need them.
"""

import os

# tf_keras everywhere (see components/__init__.py); must precede the first TensorFlow import in the process.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
