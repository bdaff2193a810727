"""Small readers of ML Metadata records that need nothing but the records (no TensorFlow, no TFMA), so the
light paths (`retrain` with nothing to do) and the heavy ones (results, resolvers) share them."""

from typing import Optional


def node_id(store, execution) -> str:
    """The pipeline node (component id) an execution belongs to."""
    for context in store.get_contexts_by_execution(execution.id):
        if context.type == "node":
            return context.name.split(".", 1)[-1]
    return str(execution.id)


def examples_span(artifact) -> Optional[int]:
    """The span of an Examples artifact (an ML Metadata record), None when it has none.

    TFX 1.16's ExampleGen records the span as a custom property, not as the type's `span` property.
    """
    value = artifact.custom_properties.get("span") or artifact.properties.get("span")
    return value.int_value if value is not None else None
