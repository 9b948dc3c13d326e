"""The training room: ``jat-train``, its settings, checkpoints, log and input statistics."""
