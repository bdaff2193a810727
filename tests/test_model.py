"""The model builders `run_fn` uses, on tiny hand-made tensors."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from components.spec import transformed_name
from components.trainer.inputs import with_known_batch_count
from components.trainer.losses import (
    BinaryCrossentropyFromLogits,
    SparseCategoricalCrossentropyFromLogits,
    StandardizedRegressionLoss,
    build_loss,
)
from components.trainer.model import LabelStats, build_model, label_stats
from components.trainer.serving import serving_outputs

from conftest import one_head_spec

VOCAB_SIZES = {"island": 4}
STATS = {"body_mass_g": LabelStats(mean=4200.0, std=800.0)}


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    features = {transformed_name(f): tf.constant(rng.normal(size=n), tf.float32)
                for f in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "year")}
    features[transformed_name("island")] = tf.constant(rng.integers(0, 4, size=n), tf.int64)
    labels = {"species": tf.constant(rng.integers(0, 3, size=n), tf.int64),
              "sex": tf.constant(rng.integers(0, 2, size=n), tf.float32),
              "body_mass_g": tf.constant(rng.normal(4200, 800, size=n), tf.float32)}
    weights = {h: tf.ones([n]) for h in labels}
    return features, labels, weights


@pytest.fixture
def model(penguins_spec):
    return build_model(penguins_spec, VOCAB_SIZES, STATS)


def test_model_runs_on_tf_keras(model):
    # tf_keras everywhere: TFT's layer and TFMA 0.47 are tf_keras; so must tf.keras be in this process.
    assert isinstance(model, tf_keras.Model)
    assert tf.keras.Model is tf_keras.Model


def test_one_named_output_per_head(model, penguins_spec):
    outputs = model(batch()[0])
    assert set(outputs) == {h.name for h in penguins_spec.heads}
    # The Keras model gives logits; the serving signature's outputs are probabilities and class names.
    assert outputs["species"].shape == (8, 3) and outputs["sex"].shape == (8, 1)
    served = serving_outputs(penguins_spec, outputs)
    np.testing.assert_allclose(tf.reduce_sum(served["species"], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(served["species"], tf.nn.softmax(outputs["species"]), rtol=1e-6)
    np.testing.assert_allclose(served["sex"], tf.sigmoid(outputs["sex"]), rtol=1e-6)
    np.testing.assert_array_equal(served["sex__class"].numpy() == b"male", outputs["sex"].numpy()[:, 0] > 0)
    np.testing.assert_array_equal(served["species__class"].numpy(),
                                  np.array([b"Adelie", b"Chinstrap", b"Gentoo"])[np.argmax(outputs["species"], 1)])
    # A fresh regression head predicts near its label's mean, in the label's units.
    assert np.abs(outputs["body_mass_g"].numpy() - 4200).max() < 4 * 800
    assert served["body_mass_g"] is outputs["body_mass_g"]


def test_each_head_gets_the_loss_the_spec_names(model, penguins_spec):
    assert isinstance(model.loss["species"], SparseCategoricalCrossentropyFromLogits)
    assert isinstance(model.loss["sex"], BinaryCrossentropyFromLogits)
    mass_loss = model.loss["body_mass_g"]
    assert isinstance(mass_loss, StandardizedRegressionLoss)
    assert (mass_loss.kind, mass_loss.delta, mass_loss.scale) == ("huber", 1.0, 800.0)


def head_losses_and_gradients(model, features, labels, weights):
    with tf.GradientTape() as tape:
        outputs = model(features, training=True)
        # As Keras's compiled loss does: a rank-1 label meets a [batch, 1] output as [batch, 1].
        shaped = {h: tf.reshape(y, [-1, 1]) if outputs[h].shape[-1] == 1 else y for h, y in labels.items()}
        losses = {h: model.loss[h](shaped[h], outputs[h], sample_weight=weights[h]) for h in labels}
        total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    grads = dict(zip([v.name for v in variables], tape.gradient(total, variables)))
    return {h: float(v) for h, v in losses.items()}, grads


def test_rows_without_a_label_add_no_loss_and_no_gradient_to_that_head(model):
    features, labels, weights = batch()
    weights["sex"] = tf.zeros([8])   # no row of this batch has a sex label
    losses, grads = head_losses_and_gradients(model, features, labels, weights)
    assert losses["sex"] == 0.0
    assert np.all(grads["sex/kernel:0"].numpy() == 0) and np.all(grads["sex/bias:0"].numpy() == 0)
    # ... while the same rows still train the trunk and the other heads.
    assert np.abs(grads["species/kernel:0"].numpy()).sum() > 0
    assert np.abs(grads["body_mass_g_standardized/kernel:0"].numpy()).sum() > 0
    assert np.abs(grads["trunk_0/kernel:0"].numpy()).sum() > 0

    # Whatever the masked labels hold, nothing changes.
    flipped = dict(labels, sex=1.0 - labels["sex"])
    assert head_losses_and_gradients(model, features, flipped, weights)[0] == losses


def test_fit_leaves_a_fully_masked_head_untouched_and_trains_the_rest(model):
    features, labels, weights = batch(n=32)
    weights["sex"] = tf.zeros([32])
    before = {v.name: v.numpy().copy() for v in model.trainable_variables}
    model.fit(tf.data.Dataset.from_tensors((features, labels, weights)), epochs=3, verbose=0)
    after = {v.name: v.numpy() for v in model.trainable_variables}
    np.testing.assert_array_equal(before["sex/kernel:0"], after["sex/kernel:0"])
    assert not np.array_equal(before["species/kernel:0"], after["species/kernel:0"])
    assert not np.array_equal(before["trunk_0/kernel:0"], after["trunk_0/kernel:0"])


def test_fit_traces_the_train_function_once(model):
    # Optimizer slots made by build_model, not in the first train step: tf.function traces that step once.
    features, labels, weights = batch(n=32)
    model.fit(tf.data.Dataset.from_tensors((features, labels, weights)), epochs=2, verbose=0)
    assert model.train_function.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("weighting", ["uncertainty", "dwa"])
def test_several_steps_per_execution_train_exactly_as_one(penguins_spec, weighting):
    # 7 batches, of unknown count as the Trainer's are until declared, run as executions of 3, 3 and 1 steps:
    # the last, partial one must run too.
    training = dataclasses.replace(penguins_spec.training, loss_weighting=weighting, epochs=3)
    unknown = tf.data.Dataset.from_tensor_slices(batch(n=7 * 16 - 5, seed=1)).batch(16).filter(lambda *_: True)
    assert unknown.cardinality() == tf.data.UNKNOWN_CARDINALITY
    batches = with_known_batch_count(unknown, rows=7 * 16 - 5, batch_size=16)
    trained = {}
    for steps in (1, 3):
        spec = dataclasses.replace(penguins_spec, training=dataclasses.replace(training, steps_per_execution=steps))
        model = build_model(spec, VOCAB_SIZES, STATS)
        history = model.fit(batches, validation_data=batches, epochs=training.epochs, verbose=0).history
        trained[steps] = history, [v.numpy() for v in model.weights]
    (history_1, weights_1), (history_3, weights_3) = trained[1], trained[3]
    assert history_3.keys() == history_1.keys() and "val_loss" in history_1
    for key in history_1:
        np.testing.assert_allclose(history_3[key], history_1[key], rtol=1e-5, err_msg=key)
    for one, three in zip(weights_1, weights_3):   # DWA's batch count and epoch means included
        np.testing.assert_allclose(three, one, rtol=1e-5, atol=1e-7)


def test_train_and_test_steps_are_traced_without_autograph(model, autograph_conversions):
    # Converting the steps would convert every layer, loss, metric and optimizer method they call, source line
    # by source line (about 15 s of the penguins Trainer); only Keras's thin step wrappers may be converted.
    batches = tf.data.Dataset.from_tensors(batch(n=32))
    model.fit(batches, validation_data=batches, epochs=1, verbose=0)
    converted = autograph_conversions
    assert any(name.endswith("train_function") for name in converted)  # the probe sees conversions at all
    assert [name for name in converted if name.endswith(("_step", "call", "__call__", "update_state", "minimize",
                                                         "apply_gradients"))] == []


def test_partly_masked_rows_count_for_nothing(model):
    features, labels, weights = batch()
    weights["body_mass_g"] = tf.constant([1, 1, 1, 1, 0, 0, 0, 0], tf.float32)
    losses, _ = head_losses_and_gradients(model, features, labels, weights)
    garbage = dict(labels, body_mass_g=tf.concat([labels["body_mass_g"][:4], tf.fill([4], 1e6)], 0))
    assert head_losses_and_gradients(model, features, garbage, weights)[0]["body_mass_g"] == pytest.approx(
        losses["body_mass_g"])


def test_conditional_dense_uses_the_weights_of_the_predicted_class():
    from components.trainer.model import ClassConditionalDense

    layer = ClassConditionalDense(2)
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32)
    gate = np.array([[5.0, 0.0, 1.0], [0.0, 0.1, 9.0], [0.0, 2.0, 1.0]], np.float32)   # predicts 0, 2, 1
    layer([x, gate])
    kernel = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2) - 5
    bias = np.array([[0.0, 1.0], [10.0, 20.0], [-1.0, -2.0]], np.float32)
    layer.set_weights([kernel, bias])
    expected = np.stack([x[i] @ kernel[k] + bias[k] for i, k in enumerate([0, 2, 1])])
    np.testing.assert_allclose(layer([x, gate]).numpy(), expected, rtol=1e-6)


def test_conditional_dense_on_a_binary_gate_takes_a_positive_logit_as_class_1():
    from components.trainer.model import ClassConditionalDense

    layer = ClassConditionalDense(1)
    x = np.array([[1.0], [1.0], [1.0]], np.float32)
    gate = np.array([[-3.0], [0.5], [0.0]], np.float32)
    layer([x, gate])
    layer.set_weights([np.array([[[2.0]], [[7.0]]], np.float32), np.zeros((2, 1), np.float32)])
    np.testing.assert_allclose(layer([x, gate]).numpy(), [[2.0], [7.0], [2.0]])


def test_conditioned_head_passes_no_gradient_to_the_head_it_is_conditioned_on(penguins_spec):
    assert penguins_spec.head("sex").conditioned_on == "species"
    model = build_model(penguins_spec, VOCAB_SIZES, STATS)
    features, _, _ = batch()
    with tf.GradientTape() as tape:
        sex = model(features, training=True)["sex"]
    species_kernel = model.get_layer("species").kernel
    assert tape.gradient(sex, species_kernel) is None
    # The sex logit of each row is the trunk times the kernel of the species it is predicted to be.
    trunk = tf_keras.Model(model.inputs, model.get_layer("trunk_1").output)(features).numpy()
    predicted = model(features)["species"].numpy().argmax(axis=1)
    layer = model.get_layer("sex")
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    expected = np.stack([trunk[i] @ kernel[k] + bias[k] for i, k in enumerate(predicted)])
    np.testing.assert_allclose(model(features)["sex"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_conditional_dense_round_trips_through_keras_serialization_with_its_l2():
    from components.trainer.model import ClassConditionalDense

    layer = ClassConditionalDense(3, kernel_regularizer=tf_keras.regularizers.L2(0.01), name="segment")
    again = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
    assert isinstance(again, ClassConditionalDense)
    assert (again.units, again.name, float(again.kernel_regularizer.l2)) == (3, "segment", pytest.approx(0.01))
    again([np.ones((2, 4), np.float32), np.ones((2, 2), np.float32)])
    assert len(again.losses) == 1 and float(again.losses[0]) > 0


@pytest.mark.parametrize("kind,reference", [
    ("mse", lambda e: e ** 2),
    ("mae", np.abs),
    ("huber", lambda e: np.where(np.abs(e) <= 1.0, 0.5 * e ** 2, np.abs(e) - 0.5)),
    ("log_cosh", lambda e: np.log(np.cosh(e))),
])
def test_standardized_regression_loss_against_numpy(kind, reference):
    y_true = np.array([100.0, 200.0, 300.0, 400.0], np.float32)
    y_pred = np.array([110.0, 150.0, 300.0, 700.0], np.float32)
    loss = StandardizedRegressionLoss(kind=kind, scale=50.0)
    expected = reference((y_pred - y_true) / 50.0).mean()
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_build_loss_round_trips_through_keras_serialization(penguins_spec):
    loss = build_loss(penguins_spec.head("body_mass_g"), label_scale=800.0)
    again = tf_keras.losses.deserialize(tf_keras.losses.serialize(loss))
    assert isinstance(again, StandardizedRegressionLoss)
    assert (again.kind, again.scale, again.delta) == ("huber", 800.0, 1.0)


def test_label_stats_ignore_masked_rows():
    stats = label_stats(np.array([1.0, 3.0, 1000.0]), np.array([1.0, 1.0, 0.0]))
    assert stats == LabelStats(mean=2.0, std=1.0)
    with pytest.raises(ValueError, match="no training row"):
        label_stats(np.array([1.0]), np.array([0.0]))


def test_subset_accuracy_counts_only_rows_of_the_subset():
    from components.trainer.metrics import SubsetAccuracy

    metric = SubsetAccuracy([1, 2])
    y_true = np.array([0, 1, 2, 2, 1])
    logits = np.array([[9, 0, 0], [0, 9, 0], [9, 0, 0], [0, 0, 9], [0, 9, 0]], np.float32)
    metric.update_state(y_true, logits, sample_weight=np.array([1, 1, 1, 1, 0], np.float32))
    # Subset rows 1, 2, 3 (row 4 is masked): right, wrong, right. Row 0 is outside the subset.
    assert float(metric.result()) == pytest.approx(2 / 3)
    # Probabilities give the same answer as logits (the serving signature gives TFMA probabilities).
    again = SubsetAccuracy([1, 2])
    again.update_state(y_true, tf.nn.softmax(logits), sample_weight=np.array([1, 1, 1, 1, 0], np.float32))
    assert float(again.result()) == pytest.approx(2 / 3)


def test_mean_angular_error_is_in_degrees_the_short_way_round():
    from components.trainer.metrics import MeanAngularErrorDegrees

    metric = MeanAngularErrorDegrees()
    y_true = np.array([0.1, np.pi, 1.0, 3.0], np.float32)
    y_pred = np.array([[2 * np.pi - 0.1], [0.0], [1.0], [0.0]], np.float32)
    metric.update_state(y_true, y_pred, sample_weight=np.array([1, 1, 1, 0], np.float32))
    assert float(metric.result()) == pytest.approx((np.degrees(0.2) + 180 + 0) / 3, rel=1e-4)


def test_metrics_over_no_labelled_rows_are_nan_not_a_perfect_or_zero_score():
    from components.trainer.metrics import MeanAngularErrorDegrees, SubsetAccuracy

    angle, subset = MeanAngularErrorDegrees(), SubsetAccuracy([1])
    angle.update_state(np.array([1.0], np.float32), np.array([[0.0]], np.float32), sample_weight=np.zeros(1))
    subset.update_state(np.array([1, 0]), np.eye(2, dtype=np.float32), sample_weight=np.array([0.0, 1.0]))
    assert np.isnan(float(angle.result())) and np.isnan(float(subset.result()))
    assert np.isnan(float(MeanAngularErrorDegrees().result()))      # nothing seen at all


@pytest.fixture(scope="module")
def quality_report(penguins_spec):
    """The quality report's 5-fold cross-validation on penguins (about 2 minutes on 2 cores)."""
    import pandas as pd

    from benchmarks.quality_report import cross_validate, read_schema

    from conftest import PENGUINS_CSV, PENGUINS_HEADS

    frame = pd.read_csv(PENGUINS_CSV, keep_default_na=False, na_values=[""])
    return cross_validate(penguins_spec, frame, read_schema(PENGUINS_HEADS.parent / "schema.pbtxt"),
                          log=lambda message: None)


@pytest.mark.slow
def test_multihead_model_is_as_good_as_the_best_single_task_baseline(quality_report):
    from benchmarks.quality_report import check

    # Every head at least the best baseline's mean minus one standard deviation; species and body mass targets.
    assert check(quality_report, {"species": 0.98, "body_mass_g": 285.0}) == []
    assert {m for (h, m) in quality_report.scores if h == "sex"} == {"multi-head", "logistic regression",
                                                                      "gradient boosting"}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="sex 5-fold accuracy is 0.865 on the report's split, with sex conditioned on "
                                       "species (0.886 over fold seeds 1-5 x 3 model seeds); given the TRUE species, "
                                       "a per-species logistic regression reaches only 0.877 on this split "
                                       "(benchmarks/conditional_ceiling.py), so 0.88 is past what these features "
                                       "allow here")
def test_sex_accuracy_target(quality_report):
    from benchmarks.quality_report import check

    assert check(quality_report, {"sex": 0.88}) == []


def test_quality_report_without_a_workdir_removes_the_folds_transform_output(penguins_spec, tmp_path, monkeypatch):
    # The folds' scoring is replaced: this is about where their TF Transform output goes, and that it goes away.
    import pandas as pd

    from benchmarks import quality_report

    monkeypatch.setattr(quality_report.tempfile, "tempdir", str(tmp_path))
    written = []

    def transform(spec, schema, train, evaluate, workdir):
        Path(workdir, "transform").mkdir(parents=True)
        written.append(workdir)
        return train, evaluate, None

    monkeypatch.setattr(quality_report, "transform_in_memory", transform)
    monkeypatch.setattr(quality_report, "raw_rows", lambda frame, schema: [])
    monkeypatch.setattr(quality_report, "train_model", lambda spec, rows, output: None)
    monkeypatch.setattr(quality_report, "multihead_scores", lambda spec, model, rows: {"sex": 1.0})
    monkeypatch.setattr(quality_report, "baseline_scores", lambda spec, train, test, seed: {})
    frame = pd.DataFrame({"x": range(10)})

    report = quality_report.cross_validate(penguins_spec, frame, schema=None, folds=2, log=lambda message: None)
    assert report.scores == {("sex", "multi-head"): [1.0, 1.0]}
    assert len(written) == 2 and all(Path(w).parent.parent == tmp_path for w in written)
    assert list(tmp_path.iterdir()) == []

    kept = tmp_path / "kept"
    quality_report.cross_validate(penguins_spec, frame, schema=None, folds=2, workdir=str(kept), log=lambda m: None)
    assert sorted(p.name for p in kept.iterdir()) == ["fold0", "fold1"]


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass", "angle"])
def test_every_metric_the_spec_accepts_has_a_keras_metric_of_its_name(kind):
    # A metric added to config.METRICS without a Keras maker in build_metrics fails here.
    from components.spec import METRICS
    from components.trainer.model import build_metrics

    spec = one_head_spec(kind, metrics=list(METRICS[kind]))
    assert [m.name for m in build_metrics(spec.heads[0])] == list(METRICS[kind])
