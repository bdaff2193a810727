"""Entry point for TFX Transform (passed by import path: `components.transform.module.preprocessing_fn`)."""

from typing import Any, Mapping

from components.spec import spec_from_dict
from components.transform.features import build_transformed_features


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict:
    """Called by Transform; `custom_config['heads_spec']` is the validated heads spec as a dict."""
    return build_transformed_features(inputs, spec_from_dict(custom_config["heads_spec"], partial=True))
