"""runqy: the control plane of a distributed task queue on the asynq Redis layout."""

__version__ = "0.1.0"
