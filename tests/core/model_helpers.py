"""A tiny random JatModel and batches for the model tests."""

import torch
from filekit import snapshot  # noqa: F401  (re-exported for the error tests)
from jat_core.config import JatConfig
from jat_core.model import JatModel

VOCAB = 300


def tiny_config(**overrides) -> JatConfig:
    """H=128, 2 layers, a 300-token vocabulary, a short context with a small local window."""
    fields = dict(vocab_size=VOCAB, max_position_embeddings=256, window_size=8)
    fields.update(overrides)
    return JatConfig.from_preset("tiny", **fields)


def tiny_model(seed: int = 0, **overrides) -> JatModel:
    torch.manual_seed(seed)
    return JatModel(tiny_config(**overrides)).eval()


def continuous_batch(B=2, T=5, obs=7, act=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        continuous_observations=torch.randn(B, T, obs, generator=g),
        continuous_actions=torch.rand(B, T, act, generator=g) * 2 - 1,
        rewards=torch.randn(B, T, generator=g),
    )


def discrete_batch(B=2, T=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        discrete_observations=torch.randint(0, VOCAB, (B, T, 212), generator=g),
        discrete_actions=torch.randint(0, 7, (B, T), generator=g),
        rewards=torch.rand(B, T, generator=g),
    )


def image_batch(B=2, T=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        image_observations=torch.rand(B, T, 4, 84, 84, generator=g) * 2 - 1,
        discrete_actions=torch.randint(0, 18, (B, T), generator=g),
        rewards=torch.randn(B, T, generator=g),
    )
