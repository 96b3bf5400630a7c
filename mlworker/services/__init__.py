"""Writes of the mlworker app: worker heartbeats, training runs and the model registry,
prediction runs."""
