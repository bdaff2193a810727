"""Entry point for TFX Transform (passed by import path: `components.transform_module.preprocessing_fn`)."""

from typing import Any, Mapping

from components.features import build_transformed_features
from pipeline.config import HeadsSpec


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict:
    """Called by Transform; `custom_config['heads_spec']` is the validated heads spec as a dict."""
    return build_transformed_features(inputs, HeadsSpec.from_dict(custom_config["heads_spec"], partial=True))
