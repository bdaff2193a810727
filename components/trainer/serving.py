"""The exported SavedModel's signatures.

- `serving_default`: serialized raw tf.Examples (no labels needed) in; per head, its output (class probabilities,
  a value in the label's units, or an angle in radians in [0, 2*pi)) and, for classification heads, the
  predicted class as a string; and per row, how many of the spec's features the request left empty
  (`missing_features`: the model then answered from training means and the out-of-vocabulary bucket). The Keras
  model outputs logits; the probabilities are computed here.

  That count also keeps the outputs more than one: TFMA's predictions extractor turns a signature's one-entry
  output dict into a bare array, which its per-output metrics cannot read (a spec with a single regression or
  angle head could not be evaluated).
- `transform_features`: serialized raw tf.Examples in; the transformed features, labels and weights out.
  TFMA calls it (`preprocessing_function_names`) to find each head's label and weight.
"""

from typing import Mapping, Union

import tensorflow as tf
import tf_keras as keras

from components.spec import HeadsSpec, predicted_class_name, transformed_name
from components.spec.names import MISSING_FEATURES_OUTPUT


def serving_outputs(spec: HeadsSpec, outputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The serving signature's outputs from the model's: every head's output, plus predicted class names.

    Classification heads' logits become probabilities: softmax over classes, or the positive class's sigmoid.
    """
    result = {}
    for head in spec.heads:
        out = outputs[head.name]
        if head.kind == "multiclass":
            out = tf.nn.softmax(out, axis=-1)
            index = tf.argmax(out, axis=-1)
        elif head.kind == "binary":
            out = tf.sigmoid(out)
            index = tf.cast(out[:, 0] > 0.5, tf.int64)
        result[head.name] = out
        if not head.is_classification:
            continue
        result[predicted_class_name(head.name)] = tf.gather(tf.constant(head.classes), index)
    return result


def missing_features(parsed: Mapping[str, Union[tf.Tensor, tf.SparseTensor]], spec: HeadsSpec,
                     rows: tf.Tensor) -> tf.Tensor:
    """Per row, how many of the spec's features `parsed` (the request's parsed columns) leaves without a value; a
    number that is not finite counts as missing, as Transform counts it."""
    missing = tf.zeros([rows], tf.int32)
    for feature in spec.features:
        column = parsed[feature.name]
        if isinstance(column, tf.SparseTensor):
            values, row_of_value = column.values, tf.cast(column.indices[:, 0], tf.int32)
        else:
            values, row_of_value = tf.reshape(column, [-1]), tf.range(rows)
        valid = (tf.ones_like(values, tf.bool) if values.dtype == tf.string
                 else tf.math.is_finite(tf.cast(values, tf.float32)))
        present = tf.math.bincount(tf.boolean_mask(row_of_value, valid), minlength=rows, maxlength=rows) > 0
        missing += 1 - tf.cast(present, tf.int32)
    return missing


def serving_feature_spec(raw_feature_spec: Mapping, spec: HeadsSpec) -> dict:
    """What `serving_default` parses: every raw column but the labels, which a request does not carry."""
    return {name: feature for name, feature in raw_feature_spec.items() if name not in spec.label_columns}


def export_serving_model(model: keras.Model, tf_transform_output, spec: HeadsSpec, path: str) -> None:
    """Saves `model` with the Transform graph attached and both signatures."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = serving_feature_spec(raw_spec, spec)
    inputs = [transformed_name(f.name) for f in spec.features]

    # Both signatures are plain TensorFlow calls; autograph would convert, source line by source line, every
    # Keras layer and the Transform layer they reach (the largest part of the penguins Trainer's export).
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False)
    def serve(examples):
        parsed = tf.io.parse_example(examples, serving_spec)
        transformed = model.tft_layer(parsed)
        outputs = serving_outputs(spec, model({name: transformed[name] for name in inputs}))
        outputs[MISSING_FEATURES_OUTPUT] = missing_features(parsed, spec, tf.shape(examples)[0])
        return outputs

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False)
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    # No Keras traces of every layer's call: the signatures are what serving and TFMA load, and the Keras loader
    # rebuilds the model from its config (`MultiHeadModel.get_config`) and the registered custom objects.
    model.save(path, save_format="tf", save_traces=False,
               signatures={"serving_default": serve, "transform_features": transform_features})
