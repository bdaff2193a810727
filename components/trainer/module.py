"""Entry point for the TFX Trainer (passed by import path: `components.trainer.module.run_fn`)."""

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

from components.spec import OOV_BUCKETS, spec_from_dict, vocabulary_name
from components.trainer.inputs import count_rows, scan_split, split_features_labels_weights, with_known_batch_count
from components.trainer.model import build_model
from components.trainer.serving import export_serving_model
from components.trainer.strategy import check_float32_outputs, precision_policy, training_strategy

# Batches of the passes before training (row counts, label statistics): large, since nothing trains on them.
_STATS_BATCH_SIZE = 4096


def _dataset(fn_args, files, tf_transform_output, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    options = tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1, shuffle=shuffle,
                                             shuffle_seed=seed)
    return fn_args.data_accessor.tf_dataset_factory(files, options, tf_transform_output.transformed_metadata.schema)


def run_fn(fn_args) -> None:
    """Called by the Trainer; `fn_args.custom_config['heads_spec']` is the validated heads spec as a dict."""
    spec = spec_from_dict(fn_args.custom_config["heads_spec"], partial=True)
    training = spec.training
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

    vocab_sizes = {f.name: tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name)) + OOV_BUCKETS
                   for f in spec.features if f.kind == "categorical"}

    def scan_batches(files):
        return _dataset(fn_args, files, tf_transform_output, _STATS_BATCH_SIZE, False, training.seed)

    train = scan_split(scan_batches(fn_args.train_files), spec)
    # The model's variables live where the strategy puts them (mirrored over 2+ GPUs), so it is built in scope.
    strategy = training_strategy()
    with precision_policy(training.mixed_precision), strategy.scope():
        model = build_model(spec, vocab_sizes, train.label_stats)
    if training.mixed_precision:
        check_float32_outputs(model)
    print(f"training with {type(strategy).__name__} on {strategy.num_replicas_in_sync} replica(s), "
          f"{'mixed_float16' if training.mixed_precision else 'float32'}", flush=True)

    def keras_batches(files, rows, shuffle):
        batches = (_dataset(fn_args, files, tf_transform_output, training.batch_size, shuffle, training.seed)
                   .map(lambda batch: split_features_labels_weights(batch, spec)))
        return with_known_batch_count(batches, rows, training.batch_size).prefetch(tf.data.AUTOTUNE)

    callbacks = [keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)]
    validation = None
    if training.early_stopping_patience is not None:
        # Counted only: the eval split's labels need not give every regression head statistics.
        validation = keras_batches(fn_args.eval_files, count_rows(scan_batches(fn_args.eval_files)), shuffle=False)
        callbacks.append(keras.callbacks.EarlyStopping(patience=training.early_stopping_patience,
                                                       restore_best_weights=True))
    model.fit(keras_batches(fn_args.train_files, train.rows, shuffle=True), epochs=training.epochs,
              validation_data=validation, callbacks=callbacks, verbose=2)
    export_serving_model(model, tf_transform_output, spec, fn_args.serving_model_dir)
