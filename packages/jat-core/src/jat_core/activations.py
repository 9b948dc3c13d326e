"""GPT-Neo's ``gelu_new`` (GELU, tanh approximation) with a faster forward pass.

``0.5 x (1 + tanh(u))`` with ``u = sqrt(2/pi) (x + 0.044715 x^3)`` equals ``x * sigmoid(2u)``, because
``tanh(u) = 2 sigmoid(2u) - 1``. PyTorch's CPU ``tanh`` kernel (and the fused ``F.gelu(approximate="tanh")``) is
several times slower than its ``sigmoid``, so the sigmoid form is the faster forward pass on one CPU thread, with
the same error against a float64 reference (docs/benchmarks.md, "Design measurements").
The backward pass is PyTorch's own ``gelu_backward`` (faster than a sigmoid form), so gradients are exactly those of
``F.gelu(approximate="tanh")`` and only the input is saved, as ``F.gelu`` does.

On other devices (fused kernels, no such gap) and for other dtypes ``F.gelu`` itself is used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_C = 2.0 * math.sqrt(2.0 / math.pi)  # 2u = _C * (x + _A * x^3)
_A = 0.044715


def _gelu_tanh_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(2u)``, computed in place in one temporary (no autograd)."""
    y = x * x
    y.mul_(_A * _C).add_(_C).mul_(x)  # 2u = C x (1 + A x^2)
    return y.sigmoid_().mul_(x)


class _GeluTanh(torch.autograd.Function):
    """Forward in the sigmoid form, backward by ``aten.gelu_backward(approximate="tanh")``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return _gelu_tanh_sigmoid(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.gelu_backward(grad, x, approximate="tanh")


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation (transformers' ``gelu_new``), elementwise, any shape.

    Args:
        x: a tensor.

    Returns:
        ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, same shape and dtype.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return F.gelu(x, approximate="tanh")
    if torch.is_grad_enabled() and x.requires_grad:
        return _GeluTanh.apply(x)
    return _gelu_tanh_sigmoid(x)


class GeluTanh(nn.Module):
    """Module form of :func:`gelu_tanh` (what the trunk uses for ``activation_function="gelu_new"``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(...)`` -> ``(...)``."""
        return gelu_tanh(x)
