"""How the Trainer uses its devices: the distribution strategy and the mixed-precision policy.

MirroredStrategy replicates the model on every visible GPU and splits each batch between them; with one GPU or
none, TensorFlow's default strategy does the same work without the replication machinery. Mixed precision
(Keras `mixed_float16`) computes in float16 and keeps variables in float32; a head's output must stay float32,
or a regression head in its label's units (a body mass in grams) loses most of its digits and a loss computed
from float16 logits underflows.
"""

import contextlib
from typing import Iterator, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

MIXED_POLICY = "mixed_float16"


def visible_gpus() -> list[str]:
    """The names of the GPUs TensorFlow sees in this process (after CUDA_VISIBLE_DEVICES)."""
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def training_strategy(devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
    """MirroredStrategy over `devices` when there are two or more, else the default strategy.

    Args:
      devices: device names to train on; None: the visible GPUs.
    """
    devices = visible_gpus() if devices is None else list(devices)
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def precision_policy(mixed_precision: bool) -> Iterator[None]:
    """Builds layers under `mixed_float16` inside the block when `mixed_precision`; restores the policy after."""
    if not mixed_precision:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(MIXED_POLICY)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def non_float32_outputs(model: keras.Model) -> dict[str, str]:
    """The model's outputs whose dtype is not float32, by output name (empty when every output is float32)."""
    outputs = model.output if isinstance(model.output, dict) else dict(zip(model.output_names, model.outputs))
    return {name: tensor.dtype.name for name, tensor in outputs.items() if tensor.dtype != tf.float32}


def check_float32_outputs(model: keras.Model) -> None:
    """Raises TypeError naming each head whose output is not float32 (its last layer needs dtype="float32")."""
    wrong = non_float32_outputs(model)
    if wrong:
        raise TypeError(f"mixed precision: head output(s) {wrong} are not float32; build each head's last layer "
                        f"with dtype='float32' (components/trainer/model.py)")
