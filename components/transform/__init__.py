"""Transform's module code: `module.preprocessing_fn` and the pure builders it calls. Its fingerprint is this
folder and the spec's (pipeline/definition/factory.py)."""
