"""gelu_tanh: transformers' gelu_new, same values and the same gradients as F.gelu(approximate="tanh")."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from jat_core.activations import GeluTanh, gelu_tanh
from transformers.activations import ACT2FN


def test_values_match_gelu_new_over_a_wide_range():
    x = torch.cat((torch.linspace(-12, 12, 5001), torch.randn(4000) * 3))
    expected = F.gelu(x.double(), approximate="tanh")
    torch.testing.assert_close(gelu_tanh(x).double(), expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(GeluTanh()(x), ACT2FN["gelu_new"](x), atol=1e-6, rtol=1e-6)
    assert torch.isfinite(gelu_tanh(torch.tensor([-1e4, 1e4, -100.0, 100.0]))).all()


def test_gradients_are_those_of_torch_gelu():
    x = torch.randn(7, 33, requires_grad=True)
    weights = torch.randn(7, 33)
    (gelu_tanh(x) * weights).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (F.gelu(x, approximate="tanh") * weights).sum().backward()
    torch.testing.assert_close(ours, x.grad, atol=0, rtol=0)


def test_does_not_modify_its_input_and_works_without_grad():
    x = torch.randn(5, 8)
    before = x.clone()
    with torch.inference_mode():
        y = gelu_tanh(x)
    assert torch.equal(x, before)
    torch.testing.assert_close(y, F.gelu(x, approximate="tanh"), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_other_dtypes_use_torch_gelu(dtype):
    x = torch.randn(16, dtype=dtype)
    assert torch.equal(gelu_tanh(x), F.gelu(x, approximate="tanh"))
