"""The Trainer's distribution strategy (from the visible devices) and mixed precision (float32 head outputs)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.trainer.strategy import (
    check_float32_outputs,
    non_float32_outputs,
    precision_policy,
    training_strategy,
    visible_gpus,
)

from conftest import ROOT


@pytest.mark.parametrize("devices", [[], ["/gpu:0"]])
def test_one_device_or_none_gets_the_default_strategy(devices):
    strategy = training_strategy(devices)
    assert strategy is tf.distribute.get_strategy()
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1


def test_no_visible_gpu_here_gets_the_default_strategy():
    if visible_gpus():
        pytest.skip("this machine has GPUs; the CPU-only case is the one checked here")
    assert training_strategy() is tf.distribute.get_strategy()


# Two logical devices must be configured before TensorFlow starts, hence a fresh process. Two CPU devices
# stand in for two GPUs: MirroredStrategy replicates and all-reduces the same way over either.
_TWO_DEVICES = """
import components  # the Keras choice
import numpy as np, tensorflow as tf, tf_keras as keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from components.trainer.strategy import training_strategy
strategy = training_strategy([d.name for d in tf.config.list_logical_devices("CPU")])
with strategy.scope():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
model.fit(np.ones((8, 3)), np.ones((8, 1)), batch_size=4, epochs=1, verbose=0)
print(type(strategy).__name__, strategy.num_replicas_in_sync, type(model.layers[0].kernel).__name__)
"""


def test_two_devices_get_mirrored_strategy_and_mirrored_variables():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", _TWO_DEVICES], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["MirroredStrategy", "2", "MirroredVariable"]


def _tiny_multihead(float32_heads: bool) -> keras.Model:
    inputs = keras.Input((4,), name="x")
    trunk = keras.layers.Dense(8, activation="relu", name="trunk")(inputs)
    dtype = "float32" if float32_heads else None
    outputs = {"species": keras.layers.Dense(3, name="species", dtype=dtype)(trunk),
               "body_mass_g": keras.layers.Dense(1, name="body_mass_g", dtype=dtype)(trunk)}
    return keras.Model(inputs, outputs)


def test_mixed_precision_model_keeps_float32_head_outputs():
    with precision_policy(True):
        model = _tiny_multihead(float32_heads=True)
    assert model.get_layer("trunk").compute_dtype == "float16"
    assert model.get_layer("trunk").kernel.dtype == tf.float32     # variables stay float32
    check_float32_outputs(model)
    predictions = model(np.ones((2, 4), np.float32))
    assert {name: p.dtype for name, p in predictions.items()} == {"species": tf.float32, "body_mass_g": tf.float32}
    assert keras.mixed_precision.global_policy().name == "float32"   # restored after the block


def test_float16_head_outputs_are_refused_naming_the_heads():
    with precision_policy(True):
        model = _tiny_multihead(float32_heads=False)
    assert non_float32_outputs(model) == {"species": "float16", "body_mass_g": "float16"}
    with pytest.raises(TypeError, match=r"'species': 'float16'.*components/trainer/model.py"):
        check_float32_outputs(model)


def test_without_mixed_precision_the_policy_is_untouched():
    with precision_policy(False):
        assert keras.mixed_precision.global_policy().name == "float32"
        model = _tiny_multihead(float32_heads=False)
    assert model.get_layer("trunk").compute_dtype == "float32"


def test_project_model_trains_under_mixed_precision_with_float32_heads(penguins_spec):
    from test_model import STATS, VOCAB_SIZES, batch

    from components.trainer.model import build_model

    with precision_policy(True):
        model = build_model(penguins_spec, VOCAB_SIZES, STATS)
    assert non_float32_outputs(model) == {}
    model.fit(tf.data.Dataset.from_tensors(batch(n=16)), epochs=1, verbose=0)
