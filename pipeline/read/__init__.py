"""The read side: past runs read back from ML Metadata and the artifacts it points to (results, lineage, the
report)."""
