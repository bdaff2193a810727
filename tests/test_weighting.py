"""Loss weighting across heads: fixed, learned uncertainty (Kendall et al.) and dynamic weight average (Liu et al.)."""

import copy
import glob

import numpy as np
import pytest
import tensorflow as tf
from test_model import STATS, VOCAB_SIZES, batch

from components.spec import spec_from_dict
from components.trainer.model import LabelStats, LossWeighting, build_model, dwa_factors

HEADS = ["a", "b", "c"]
LOSSES = tf.constant([0.5, 2.0, 1.0])
LABELLED = tf.constant([1.0, 0.5, 0.0])


def test_fixed_weighting_is_the_weighted_sum():
    weighting = LossWeighting(HEADS, "fixed", [1.0, 2.0, 0.5])
    total, weights = weighting(LOSSES, LABELLED, training=True)
    assert float(total) == pytest.approx(0.5 + 4.0 + 0.5)
    np.testing.assert_allclose(weights, [1.0, 2.0, 0.5])
    assert not weighting.trainable_weights


def test_uncertainty_weighting_scales_by_exp_minus_log_variance_and_adds_it():
    weighting = LossWeighting(HEADS, "uncertainty", [1.0, 1.0, 2.0])
    assert weighting.trainable_weights == [weighting.log_variances]
    weighting.log_variances.assign([0.0, np.log(4.0), -1.0])
    total, weights = weighting(LOSSES, LABELLED)
    np.testing.assert_allclose(weights, [1.0, 0.25, 2.0 * np.e], rtol=1e-6)
    # The log-variance term counts only the labelled share of the batch: head c has no label here.
    expected = 0.5 + 0.25 * 2.0 + 2.0 * np.e * 1.0 + (0.0 + np.log(4.0) * 0.5 + -1.0 * 0.0)
    assert float(total) == pytest.approx(expected, rel=1e-6)


def test_dwa_factors_favour_the_head_whose_loss_falls_slowest():
    np.testing.assert_allclose(dwa_factors([1.0, 2.0], [2.0, 4.0], 2.0), [1.0, 1.0])
    factors = dwa_factors([0.9, 0.5, 1.0], [1.0, 1.0, 1.0], temperature=2.0)
    ratios = np.array([0.9, 0.5, 1.0])
    np.testing.assert_allclose(factors, 3 * np.exp(ratios / 2) / np.exp(ratios / 2).sum(), rtol=1e-6)
    assert factors.sum() == pytest.approx(3.0) and factors.argmax() == 2 and factors.argmin() == 1
    # A head without labels in the epoch before has no ratio: it counts as unchanged.
    assert np.all(np.isfinite(dwa_factors([0.0, 1.0], [0.0, 1.0], 2.0)))


def test_dwa_keeps_weights_at_one_for_two_epochs_then_moves_them():
    weighting = LossWeighting(HEADS, "dwa", [1.0, 1.0, 1.0], temperature=1.0)
    for epoch_losses in ([1.0, 1.0, 1.0], [0.5, 1.0, 0.9]):
        weighting(tf.constant(epoch_losses), LABELLED, training=True)
        weighting(tf.constant(epoch_losses), LABELLED, training=False)   # evaluation does not count
        np.testing.assert_allclose(weighting.effective_weights(), [1.0, 1.0, 1.0])
        weighting.end_epoch()
    np.testing.assert_allclose(weighting.effective_weights(), dwa_factors([0.5, 1.0, 0.9], [1, 1, 1], 1.0),
                               rtol=1e-6)


def spec_with(penguins_spec, **training):
    data = copy.deepcopy(penguins_spec.to_dict())
    data["training"].update(training)
    return spec_from_dict(data)


def epoch_scalars(log_dir) -> dict[str, list[float]]:
    """The epoch-level scalars TensorBoard wrote for training, by tag."""
    values: dict[str, list[float]] = {}
    for path in sorted(glob.glob(f"{log_dir}/train/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


def fit_logged(model, log_dir, epochs=4):
    features, labels, weights = batch(n=64, seed=3)
    data = tf.data.Dataset.from_tensor_slices((features, labels, weights)).batch(16)
    model.fit(data, epochs=epochs, verbose=0, callbacks=[tf.keras.callbacks.TensorBoard(log_dir=str(log_dir))])
    return epoch_scalars(log_dir)


def test_uncertainty_log_variances_train_with_the_model_and_weights_are_logged(penguins_spec, tmp_path):
    model = build_model(spec_with(penguins_spec, loss_weighting="uncertainty", learning_rate=0.05),
                        VOCAB_SIZES, STATS)
    weighting = model.loss_weighting
    assert any(v is weighting.log_variances for v in model.trainable_variables)
    before = weighting.log_variances.numpy().copy()
    scalars = fit_logged(model, tmp_path)
    after = weighting.log_variances.numpy()
    assert np.all(np.abs(after - before) > 1e-3), (before, after)
    for head in ("species", "sex", "body_mass_g"):
        assert len(scalars[f"epoch_{head}_loss"]) == 4 and len(scalars[f"epoch_{head}_weight"]) == 4
    # The logged weight of the last epoch is the mean over its steps of exp(-s): near the final exp(-s), in order.
    logged = [scalars[f"epoch_{h}_weight"][-1] for h in ("species", "sex", "body_mass_g")]
    np.testing.assert_allclose(logged, np.exp(-after), rtol=0.25)
    np.testing.assert_array_equal(np.argsort(logged), np.argsort(np.exp(-after)))
    assert scalars["epoch_species_weight"][0] != scalars["epoch_species_weight"][-1]


def test_dwa_weights_are_logged_and_move_after_two_epochs(penguins_spec, tmp_path):
    model = build_model(spec_with(penguins_spec, loss_weighting="dwa"), VOCAB_SIZES, STATS)
    scalars = fit_logged(model, tmp_path)
    weights = np.array([scalars[f"epoch_{h}_weight"] for h in ("species", "sex", "body_mass_g")])
    np.testing.assert_allclose(weights[:, :2], 1.0)
    assert not np.allclose(weights[:, 2:], 1.0)
    np.testing.assert_allclose(weights.sum(axis=0), 3.0, rtol=1e-5)
    # The epoch-3 weights follow from the epoch-1 and epoch-2 head losses, as logged.
    losses = np.array([scalars[f"epoch_{h}_loss"] for h in ("species", "sex", "body_mass_g")])
    np.testing.assert_allclose(weights[:, 2], dwa_factors(losses[:, 1], losses[:, 0], 2.0), rtol=1e-4)


def test_fixed_weighting_logs_the_spec_weights(penguins_spec, tmp_path):
    data = copy.deepcopy(penguins_spec.to_dict())
    data["heads"][1]["loss_weight"] = 2.5
    model = build_model(spec_from_dict(data), VOCAB_SIZES, {"body_mass_g": LabelStats(4200.0, 800.0)})
    scalars = fit_logged(model, tmp_path, epochs=2)
    assert scalars["epoch_sex_weight"] == [2.5, 2.5] and scalars["epoch_species_weight"] == [1.0, 1.0]
    # The logged total is the weighted sum of the logged head losses (the same steps, so the same means).
    total = sum(w * np.array(scalars[f"epoch_{h}_loss"]) for h, w in (("species", 1), ("sex", 2.5),
                                                                       ("body_mass_g", 1)))
    np.testing.assert_allclose(scalars["epoch_loss"], total, rtol=1e-5)
