"""Shared test set-up: one torch thread (this machine has 2 shared cores), offline hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("JAT_PLUGINS", None)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
