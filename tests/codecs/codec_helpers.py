"""Small configs and shared parts for the codec tests."""

import torch
from jat_core.codec import SharedParts
from jat_core.config import JatConfig
from torch import nn

VOCAB = 300
B, T = 2, 3


def tiny_config(**overrides) -> JatConfig:
    """A tiny model config (H=128) with a 300-token vocabulary."""
    return JatConfig.from_preset("tiny", vocab_size=VOCAB, **overrides)


def shared_parts(config: JatConfig, seed: int = 0) -> SharedParts:
    """A token table and head as the core would own them."""
    torch.manual_seed(seed)
    return SharedParts(
        wte=nn.Embedding(config.vocab_size, config.hidden_size),
        head=nn.Linear(config.hidden_size, config.vocab_size, bias=False),
    )
