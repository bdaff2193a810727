"""The Trainer's module code: `module.run_fn`, and the pure builders it calls (model, losses, metrics, input,
serving export, devices). Its fingerprint is this folder and the spec's (pipeline/definition/factory.py)."""
