"""Names and facts that Transform writes and the Trainer, the serving signature and the Evaluator read back:
every transformed name in the pipeline comes from here."""

# Categorical values outside the training vocabulary, and missing ones, share this many extra buckets.
OOV_BUCKETS = 1


def transformed_name(feature: str) -> str:
    """Name of a transformed model input feature."""
    return f"{feature}_xf"


def label_name(head: str) -> str:
    """Name of a head's transformed label. Never equal to a raw column, so TFMA cannot confuse the two."""
    return f"{head}__label"


def weight_name(head: str) -> str:
    """Name of a head's per-row weight: 0 where the head's label is missing, 1 otherwise."""
    return f"{head}__weight"


def predicted_class_name(head: str) -> str:
    """Name of the serving output that holds a classification head's predicted class as a string."""
    return f"{head}__class"


def vocabulary_name(feature: str) -> str:
    """Name of the TF Transform vocabulary file of a categorical feature."""
    return f"{feature}_vocab"


# The serving signature's per-row count of input features the request left empty (or gave a number that is not
# finite); no head may take this name.
MISSING_FEATURES_OUTPUT = "missing_features"
