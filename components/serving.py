"""The exported SavedModel's signatures.

- `serving_default`: serialized raw tf.Examples (no labels needed) in; per head, its output (class probabilities,
  or a value in the label's units) and, for classification heads, the predicted class as a string.
- `transform_features`: serialized raw tf.Examples in; the transformed features, labels and weights out.
  TFMA calls it (`preprocessing_function_names`) to find each head's label and weight.
"""

from typing import Mapping

import tensorflow as tf
import tf_keras as keras

from pipeline.config import HeadsSpec, predicted_class_name, transformed_name


def serving_outputs(spec: HeadsSpec, outputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The serving signature's outputs from the model's: every head's output, plus predicted class names."""
    result = {}
    for head in spec.heads:
        out = outputs[head.name]
        result[head.name] = out
        if head.kind == "multiclass":
            index = tf.argmax(out, axis=-1)
        elif head.kind == "binary":
            index = tf.cast(out[:, 0] > 0.5, tf.int64)
        else:
            continue
        result[predicted_class_name(head.name)] = tf.gather(tf.constant(head.classes), index)
    return result


def export_serving_model(model: keras.Model, tf_transform_output, spec: HeadsSpec, path: str) -> None:
    """Saves `model` with the Transform graph attached and both signatures."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k not in spec.label_columns}
    inputs = [transformed_name(f.name) for f in spec.features]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        transformed = model.tft_layer(tf.io.parse_example(examples, serving_spec))
        return serving_outputs(spec, model({name: transformed[name] for name in inputs}))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    model.save(path, save_format="tf",
               signatures={"serving_default": serve, "transform_features": transform_features})
