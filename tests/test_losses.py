"""The loss library on hand-made tensors: values against NumPy, gradient direction, masking, serialization."""

import copy
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from components.spec import LOSSES, spec_from_dict
from components.trainer.losses import (
    AngularLoss,
    BinaryCrossentropyFromLogits,
    BinaryFocalLossFromLogits,
    SparseCategoricalCrossentropyFromLogits,
    StandardizedRegressionLoss,
    build_loss,
)

from conftest import one_head_spec


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


Y_REG = np.array([100.0, 200.0, 300.0, 400.0], np.float32)
P_REG = np.array([110.0, 150.0, 300.0, 700.0], np.float32)
Y_BIN = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
P_BIN = np.array([[2.0], [-1.0], [-0.5], [3.0]], np.float32)
Y_CLS = np.array([0, 2, 1, 2], np.int64)
P_CLS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -2.0, 0.5], [-1.0, 0.0, 4.0]], np.float32)
Y_ANG = np.array([0.1, 3.0, 6.0, 1.0], np.float32)
P_ANG = np.array([2 * math.pi - 0.1, 2.5, 0.2, 1.0], np.float32)


def huber(e, delta):
    return np.where(np.abs(e) <= delta, 0.5 * e ** 2, delta * (np.abs(e) - 0.5 * delta))


def smoothed_ce(y, z, smoothing, weights=None):
    y = np.asarray(y).astype(int)
    target = np.eye(z.shape[1])[y] * (1 - smoothing) + smoothing / z.shape[1]
    loss = -(target * log_softmax(z)).sum(axis=1)
    return loss * (np.asarray(weights)[y] if weights is not None else 1.0)


def focal(y, z, gamma, alpha):
    p = sigmoid(z)
    ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    return (y * alpha + (1 - y) * (1 - alpha)) * (1 - p_t) ** gamma * ce


# (name, loss, y_true, y_pred, NumPy per-row reference)
CASES = [
    ("mse", StandardizedRegressionLoss("mse", scale=50.0), Y_REG, P_REG, lambda y, p: ((p - y) / 50) ** 2),
    ("mae", StandardizedRegressionLoss("mae", scale=50.0), Y_REG, P_REG, lambda y, p: np.abs(p - y) / 50),
    ("huber", StandardizedRegressionLoss("huber", scale=50.0, delta=0.5), Y_REG, P_REG,
     lambda y, p: huber((p - y) / 50, 0.5)),
    ("log_cosh", StandardizedRegressionLoss("log_cosh", scale=50.0), Y_REG, P_REG,
     lambda y, p: np.log(np.cosh((p - y) / 50))),
    ("mse+pull", StandardizedRegressionLoss("mse", scale=50.0, pull_weight=0.3, pull_target=250.0), Y_REG, P_REG,
     lambda y, p: ((p - y) / 50) ** 2 + 0.3 * np.abs(p - 250.0) / 50),
    ("angle", AngularLoss(), Y_ANG, P_ANG, lambda y, p: 1 - np.cos(y - p)),
    ("bce", BinaryCrossentropyFromLogits(), Y_BIN, P_BIN,
     lambda y, z: -(y * np.log(sigmoid(z[:, 0])) + (1 - y) * np.log(1 - sigmoid(z[:, 0])))),
    ("bce pos_weight", BinaryCrossentropyFromLogits(pos_weight=3.0), Y_BIN, P_BIN,
     lambda y, z: -(3.0 * y * np.log(sigmoid(z[:, 0])) + (1 - y) * np.log(1 - sigmoid(z[:, 0])))),
    ("focal", BinaryFocalLossFromLogits(gamma=2.0, alpha=0.25), Y_BIN, P_BIN,
     lambda y, z: focal(y, z[:, 0], 2.0, 0.25)),
    ("sparse ce", SparseCategoricalCrossentropyFromLogits(), Y_CLS, P_CLS, lambda y, z: smoothed_ce(y, z, 0.0)),
    ("sparse ce smoothing", SparseCategoricalCrossentropyFromLogits(label_smoothing=0.1), Y_CLS, P_CLS,
     lambda y, z: smoothed_ce(y, z, 0.1)),
    ("sparse ce class weights", SparseCategoricalCrossentropyFromLogits(class_weights=[1.0, 4.0, 0.5]), Y_CLS, P_CLS,
     lambda y, z: smoothed_ce(y, z, 0.0, [1.0, 4.0, 0.5])),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,loss,y_true,y_pred,reference", CASES, ids=IDS)
def test_value_matches_numpy(name, loss, y_true, y_pred, reference):
    expected = reference(y_true.astype(np.float64), y_pred.astype(np.float64))
    assert float(loss(y_true, y_pred)) == pytest.approx(expected.mean(), rel=1e-5)


def gradient(loss, y_true, y_pred, sample_weight=None):
    y_pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = loss(y_true, y_pred, sample_weight=sample_weight)
    return value, tape.gradient(value, y_pred).numpy()


@pytest.mark.parametrize("name,loss,y_true,y_pred,reference", CASES, ids=IDS)
def test_gradient_is_finite_and_points_toward_the_label(name, loss, y_true, y_pred, reference):
    _, grad = gradient(loss, y_true, y_pred)
    assert np.all(np.isfinite(grad))
    # Gradient descent moves each prediction toward its label: check the sign of -grad row by row.
    if name.startswith(("mse", "mae", "huber", "log_cosh")):
        wrong = y_pred != y_true
        assert np.all(np.sign(grad[wrong]) == np.sign((y_pred - y_true)[wrong])), grad
        assert name == "mse+pull" or np.all(grad[~wrong] == 0)
    elif name == "angle":
        # Row 0: the label 0.1 is 0.2 rad *above* 2*pi - 0.1 going through 0, so the prediction must increase.
        shortest = np.mod(y_true - y_pred + math.pi, 2 * math.pi) - math.pi
        moving = np.abs(shortest) > 1e-6
        assert np.all(np.sign(-grad[moving]) == np.sign(shortest[moving])), grad
        assert -grad[0] > 0
    elif name.startswith(("bce", "focal")):
        # Logits rise for positive rows, fall for negative ones.
        np.testing.assert_array_equal(np.sign(-grad[:, 0]), np.where(y_true == 1, 1.0, -1.0))
    else:
        # Each logit moves its probability toward the (smoothed) target: up for the true class, down for the
        # others, unless smoothing's target is already passed (an over-confident row is pulled back).
        target = np.eye(3)[y_true] * (1 - loss.label_smoothing) + loss.label_smoothing / 3
        np.testing.assert_array_equal(np.sign(-grad), np.sign(target - np.exp(log_softmax(y_pred))))
        if not loss.label_smoothing:
            assert np.all(-grad[np.eye(3, dtype=bool)[y_true]] > 0)


@pytest.mark.parametrize("name,loss,y_true,y_pred,reference", CASES, ids=IDS)
def test_rows_of_weight_zero_contribute_nothing(name, loss, y_true, y_pred, reference):
    weights = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    value, grad = gradient(loss, y_true, y_pred, sample_weight=weights)
    # Keras divides by the batch size, masked rows included: the masked rows add 0 to the sum.
    expected = (reference(y_true.astype(np.float64), y_pred.astype(np.float64)) * weights).sum() / len(weights)
    assert float(value) == pytest.approx(expected, rel=1e-5)
    assert np.all(grad[weights == 0] == 0)
    # Whatever garbage the masked rows hold (a placeholder label, an extreme prediction), nothing changes.
    garbage_pred = y_pred.copy()
    garbage_pred[weights == 0] = 1e4
    garbage_true = y_true.copy()
    garbage_true[weights == 0] = 0
    again, _ = gradient(loss, garbage_true, garbage_pred, sample_weight=weights)
    assert float(again) == pytest.approx(float(value), rel=1e-6)


def test_angle_loss_treats_angles_across_zero_as_close():
    loss = AngularLoss()
    near = float(loss(np.array([0.1], np.float32), np.array([2 * math.pi - 0.1], np.float32)))
    assert near == pytest.approx(1 - math.cos(0.2), rel=1e-4)
    # ... the same as two angles 0.2 apart anywhere else, and far less than naive subtraction suggests.
    assert near == pytest.approx(float(loss(np.array([3.0], np.float32), np.array([3.2], np.float32))), rel=1e-3)
    assert float(loss(np.array([0.0], np.float32), np.array([math.pi], np.float32))) == pytest.approx(2.0)


def test_focal_loss_with_gamma_zero_is_weighted_cross_entropy():
    bce = BinaryCrossentropyFromLogits()
    focal_loss = BinaryFocalLossFromLogits(gamma=0.0, alpha=0.5)
    assert float(focal_loss(Y_BIN, P_BIN)) == pytest.approx(0.5 * float(bce(Y_BIN, P_BIN)), rel=1e-5)


def test_focal_loss_discounts_easy_rows():
    easy, hard = np.array([[4.0]], np.float32), np.array([[-1.0]], np.float32)
    focal, cross_entropy = BinaryFocalLossFromLogits(), BinaryCrossentropyFromLogits()
    ratio_focal = float(focal(np.ones(1), easy)) / float(focal(np.ones(1), hard))
    ratio_ce = float(cross_entropy(np.ones(1), easy)) / float(cross_entropy(np.ones(1), hard))
    assert ratio_focal < ratio_ce / 10


@pytest.mark.parametrize("name,loss,y_true,y_pred,reference", CASES, ids=IDS)
def test_every_loss_round_trips_through_keras_serialization(name, loss, y_true, y_pred, reference):
    again = tf_keras.losses.deserialize(tf_keras.losses.serialize(loss))
    assert type(again) is type(loss)
    assert again.get_config() == loss.get_config()
    assert float(again(y_true, y_pred)) == pytest.approx(float(loss(y_true, y_pred)), rel=1e-6)


def spec_with_species_loss(penguins_spec, loss, class_subset=None):
    data = copy.deepcopy(penguins_spec.to_dict())
    data["heads"][0]["loss"] = loss
    if class_subset:
        data["heads"][0]["class_subset"] = class_subset
    return spec_from_dict(data)


def test_spec_class_weights_become_a_per_class_vector(penguins_spec):
    spec = spec_with_species_loss(penguins_spec, {"name": "sparse_categorical_crossentropy",
                                                  "class_weights": {"Chinstrap": 3.0}, "label_smoothing": 0.05})
    loss = build_loss(spec.head("species"))
    assert isinstance(loss, SparseCategoricalCrossentropyFromLogits)
    assert loss.class_weights == [1.0, 3.0, 1.0] and loss.label_smoothing == 0.05


def test_subset_loss_weighs_the_named_classes_more(penguins_spec):
    spec = spec_with_species_loss(penguins_spec, {"name": "subset_crossentropy", "subset_weight": 5.0},
                                  class_subset=["Adelie", "Gentoo"])
    loss = build_loss(spec.head("species"))
    assert loss.class_weights == [5.0, 1.0, 5.0]
    # The same mistake costs 5 times more on a subset row than on a row of another class.
    logits = np.array([[0.0, 0.0, 0.0]], np.float32)
    assert float(loss(np.array([0]), logits)) == pytest.approx(5 * float(loss(np.array([1]), logits)))


def test_spec_picks_binary_losses_and_their_parameters(penguins_spec):
    data = copy.deepcopy(penguins_spec.to_dict())
    data["heads"][1]["loss"] = {"name": "focal", "gamma": 1.5, "alpha": 0.4}
    loss = build_loss(spec_from_dict(data).head("sex"))
    assert isinstance(loss, BinaryFocalLossFromLogits) and (loss.gamma, loss.alpha) == (1.5, 0.4)
    data["heads"][1]["loss"] = {"name": "binary_crossentropy", "pos_weight": 2.0}
    assert build_loss(spec_from_dict(data).head("sex")).pos_weight == 2.0


def test_spec_pull_parameters_reach_the_regression_loss(penguins_spec):
    data = copy.deepcopy(penguins_spec.to_dict())
    data["heads"][2]["loss"] = {"name": "mae", "pull_weight": 0.1, "pull_target": -3.0}
    loss = build_loss(spec_from_dict(data).head("body_mass_g"), label_scale=800.0)
    assert (loss.kind, loss.pull_weight, loss.pull_target, loss.scale) == ("mae", 0.1, -3.0, 800.0)


# Every loss the spec accepts has a Keras loss of its own: a name added to config.LOSSES without one fails here,
# rather than training silently as another loss.
@pytest.mark.parametrize("kind,loss", [(kind, loss) for kind, losses in LOSSES.items() for loss in losses])
def test_every_loss_the_spec_accepts_builds_and_gives_a_finite_loss(kind, loss):
    head = one_head_spec(kind, loss=loss).heads[0]
    built = build_loss(head, label_scale=2.0)
    y_true, y_pred = {"regression": (Y_REG, P_REG), "angle": (Y_ANG, P_ANG), "binary": (Y_BIN, P_BIN),
                      "multiclass": (Y_CLS, P_CLS)}[kind]
    assert np.isfinite(float(built(tf.constant(y_true), tf.constant(y_pred))))
