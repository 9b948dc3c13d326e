"""jat-train: training (accelerate), local expert data collection and evaluation for JAT."""

__version__ = "0.1.0"
