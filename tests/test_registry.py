"""The registry is the one record of each loss and metric: the parser, the Keras builders and the Evaluator's
config all read it, and these tests fail where any of them disagrees with it."""

import json
import math

import pytest
import tensorflow_model_analysis as tfma
import tf_keras as keras

from components.spec import LOSSES, METRICS, SpecError, spec_from_dict, spec_metric_name
from components.spec.registry import reported_name_of_class
from components.trainer import losses
from components.trainer import metrics as custom_metrics
from components.trainer.model import build_metrics
from pipeline.definition.eval_config import CUSTOM_METRICS_MODULE, metric_config

from conftest import one_head_spec

LOSS_RECORDS = [record for by_name in LOSSES.values() for record in by_name.values()]
METRIC_RECORDS = [record for by_name in METRICS.values() for record in by_name.values()]


def test_every_loss_record_has_a_builder_and_every_builder_a_record():
    assert {r.keras_class for r in LOSS_RECORDS} == set(losses.LOSS_BUILDERS)


@pytest.mark.parametrize("record", LOSS_RECORDS, ids=lambda r: f"{r.kind}-{r.name}")
def test_the_parser_takes_each_loss_with_its_registered_defaults_and_ranges(record):
    head = one_head_spec(record.kind, loss=record.name).heads[0]
    assert head.loss.params == record.defaults()
    assert isinstance(losses.build_loss(head), getattr(losses, record.keras_class))
    for key, param in record.params.items():
        if param.per_class or param.low == -math.inf:
            continue
        data = one_head_spec(record.kind, loss=record.name).to_dict()
        data["heads"][0]["loss"][key] = param.low - 1
        with pytest.raises(SpecError, match=rf"heads\[0\]\.loss\.{key}: must be >"):
            spec_from_dict(data)


@pytest.mark.parametrize("kind", list(METRICS))
def test_the_keras_metrics_of_a_kind_are_the_registered_classes_and_names(kind):
    head = one_head_spec(kind, metrics=list(METRICS[kind])).heads[0]
    built = build_metrics(head)
    assert [m.name for m in built] == list(METRICS[kind])
    for metric, record in zip(built, METRICS[kind].values()):
        module = custom_metrics if record.custom else keras.metrics
        assert type(metric) is getattr(module, record.keras_class)


@pytest.mark.parametrize("record", METRIC_RECORDS, ids=lambda r: f"{r.kind}-{r.name}")
def test_the_eval_config_names_each_metric_by_its_registered_class_and_tfma_name(record):
    head = one_head_spec(record.kind, metrics=[record.name]).heads[0]
    config = metric_config(head, record.name)
    assert config.class_name == record.keras_class
    assert config.module == (CUSTOM_METRICS_MODULE if record.custom else "")
    if record.custom:
        assert json.loads(config.config)["name"] == record.reported_as
    # TFMA builds the metric from the config, as the Evaluator does, and reports it under the registered name.
    assert tfma.metrics.metric_specs.metric_instance(config).name == record.reported_as
    assert spec_metric_name(record.reported_as) == record.name
    assert reported_name_of_class(record.keras_class) == record.reported_as
