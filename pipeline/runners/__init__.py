"""Runners: the pipeline on this machine (BeamDagRunner, SQLite ML Metadata) or compiled for Kubeflow Pipelines,
and the kfp client that sends it to a server."""
