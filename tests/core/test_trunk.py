"""JatTrunk against transformers' GPTNeoModel on random weights: same parameters, same outputs."""

from __future__ import annotations

import jat_core.trunk as trunk_module
import pytest
import torch
import torch.nn.functional as F
from jat_core.cache import KVCache
from jat_core.trunk import JatTrunk, attention, band_mask
from transformers import GPTNeoConfig, GPTNeoModel

torch.set_num_threads(1)

WINDOW = 4
ATOL = 1e-5


def make_config(**overrides) -> GPTNeoConfig:
    """Tiny GPT-Neo: 4 layers alternating global/local, window 4 (sequences in the tests are longer)."""
    kwargs = dict(
        vocab_size=64,
        max_position_embeddings=64,
        hidden_size=32,
        num_layers=4,
        num_heads=4,
        attention_types=[[["global", "local"], 2]],
        window_size=WINDOW,
        bos_token_id=None,
        eos_token_id=None,
    )
    kwargs.update(overrides)
    return GPTNeoConfig(**kwargs)


@pytest.fixture(scope="module")
def models():
    """(reference GPTNeoModel, JatTrunk with the same weights), both in eval mode."""
    torch.manual_seed(0)
    config = make_config()
    reference = GPTNeoModel(config).eval()
    # Larger-than-default weights make the attention sharp, so a wrong mask cannot hide in the noise.
    with torch.no_grad():
        for name, param in reference.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                param.normal_(0.0, 0.3)
    trunk = JatTrunk(config).eval()
    trunk.load_state_dict(reference.state_dict(), strict=True)
    return reference, trunk


@pytest.fixture(params=[4, 128], ids=["block4", "block128"])
def block(request, monkeypatch):
    """Run a model-level test with several SDPA blocks per layer (4) and with one (the default, 128)."""
    monkeypatch.setattr(trunk_module, "ATTENTION_BLOCK", request.param)
    return request.param


def assert_close_at(actual: torch.Tensor, expected: torch.Tensor, valid: torch.Tensor | None = None) -> None:
    """Compare (B, L, H) tensors to ATOL, only where ``valid`` (B, L) is true when given."""
    if valid is not None:
        valid = valid.bool()
        actual, expected = actual[valid], expected[valid]
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=ATOL)


def test_state_dict_matches_gpt_neo_model():
    config = make_config(intermediate_size=48)
    reference, trunk = GPTNeoModel(config), JatTrunk(config)
    ref_sd, our_sd = reference.state_dict(), trunk.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert {k: v.shape for k, v in our_sd.items()} == {k: v.shape for k, v in ref_sd.items()}
    assert "h.0.attn.attention.bias" not in ref_sd  # transformers 5.x: the mask buffer is not persistent
    assert trunk.load_state_dict(ref_sd, strict=True)
    assert trunk.h[1].attn.attention.attention_type == "local"
    assert trunk.h[0].mlp.c_fc.out_features == 48


def test_full_forward_matches_global_and_local_layers(models, block):
    reference, trunk = models
    ids = torch.randint(0, 64, (2, 21))  # 21 tokens >> window 4: the local layers cut
    with torch.no_grad():
        expected = reference(input_ids=ids, output_hidden_states=True)
        actual = trunk(input_ids=ids, output_hidden_states=True)
    assert_close_at(actual.last_hidden_state, expected.last_hidden_state)
    assert len(actual.hidden_states) == len(expected.hidden_states) == 5
    for ours, theirs in zip(actual.hidden_states, expected.hidden_states):
        assert_close_at(ours, theirs)
    assert actual.past_key_values is None


def test_window_changes_the_output(models):
    """Guard against a test that cannot fail: the local layers' window must matter at this length."""
    reference, trunk = models
    wide = JatTrunk(make_config(window_size=64)).eval()
    wide.load_state_dict(reference.state_dict())
    ids = torch.randint(0, 64, (1, 21))
    with torch.no_grad():
        diff = (wide(input_ids=ids).last_hidden_state - trunk(input_ids=ids).last_hidden_state).abs().max()
    assert diff > 1e-2


def test_inputs_embeds_matches(models):
    reference, trunk = models
    embeds = torch.randn(2, 9, 32)
    with torch.no_grad():
        assert_close_at(trunk(inputs_embeds=embeds).last_hidden_state,
                        reference(inputs_embeds=embeds).last_hidden_state)


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_padding_matches_at_valid_positions(models, block, side):
    reference, trunk = models
    ids = torch.randint(0, 64, (3, 17))
    mask = torch.ones(3, 17, dtype=torch.long)
    if side in ("left", "both"):
        mask[0, :6] = 0
        mask[2, :2] = 0
    if side in ("right", "both"):
        mask[1, 11:] = 0
        mask[2, 15:] = 0
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        actual = trunk(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.isfinite(actual).all()
    assert_close_at(actual, expected, mask)


@pytest.mark.parametrize("prefix,chunks", [(7, [1] * 10), (3, [9, 1, 1, 6]), (12, [5, 1])])
def test_cached_decoding_matches_full_forward(models, block, prefix, chunks):
    """Prefix through a fresh cache, then the rest in pieces; every piece equals the full forward."""
    reference, trunk = models
    total = prefix + sum(chunks)
    ids = torch.randint(0, 64, (2, total))
    with torch.no_grad():
        expected = reference(input_ids=ids).last_hidden_state
        out = trunk(input_ids=ids[:, :prefix], use_cache=True)
        cache = out.past_key_values
        assert isinstance(cache, KVCache) and cache.get_seq_length() == prefix
        pieces, start = [out.last_hidden_state], prefix
        for n in chunks:
            out = trunk(input_ids=ids[:, start:start + n], past_key_values=cache, use_cache=True)
            assert out.past_key_values is cache
            pieces.append(out.last_hidden_state)
            start += n
    assert cache.get_seq_length() == total
    assert_close_at(torch.cat(pieces, dim=1), expected)


def test_cached_decoding_with_left_padding_matches_reference(models, block):
    """Left-padded prompt batch, then one token at a time with a growing mask, against GPTNeoModel's cache."""
    reference, trunk = models
    ids = torch.randint(0, 64, (2, 14))
    mask = torch.ones(2, 14, dtype=torch.long)
    mask[1, :5] = 0
    prompt = 8
    with torch.no_grad():
        ref_out = reference(input_ids=ids[:, :prompt], attention_mask=mask[:, :prompt], use_cache=True)
        our_out = trunk(input_ids=ids[:, :prompt], attention_mask=mask[:, :prompt], use_cache=True)
        assert_close_at(our_out.last_hidden_state, ref_out.last_hidden_state, mask[:, :prompt])
        for t in range(prompt, 14):
            ref_out = reference(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1],
                                past_key_values=ref_out.past_key_values, use_cache=True)
            our_out = trunk(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1],
                            past_key_values=our_out.past_key_values, use_cache=True)
            assert_close_at(our_out.last_hidden_state, ref_out.last_hidden_state)


def test_explicit_positions_put_sequences_of_a_batch_at_their_own_positions(models, block):
    """Left-padded rows with positions counted from their first real token equal each sequence run alone,
    in one shot and through the cache (the agent's path)."""
    _, trunk = models
    lengths = [15, 9]
    seqs = [torch.randint(0, 64, (1, n)) for n in lengths]
    width = max(lengths)
    ids = torch.zeros(2, width, dtype=torch.long)
    mask = torch.zeros(2, width, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - seq.shape[1]:] = seq[0]
        mask[row, width - seq.shape[1]:] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L)
    with torch.no_grad():
        alone = [trunk(input_ids=seq).last_hidden_state[0] for seq in seqs]
        batched = trunk(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        for row, seq in enumerate(seqs):
            torch.testing.assert_close(batched[row, width - seq.shape[1]:], alone[row], atol=ATOL, rtol=ATOL)
        # Same through the cache: the first 10 slots, then the rest one slot at a time.
        out = trunk(input_ids=ids[:, :10], attention_mask=mask[:, :10], position_ids=positions[:, :10],
                    use_cache=True)
        pieces = [out.last_hidden_state]
        for t in range(10, width):
            out = trunk(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1],
                        position_ids=positions[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
            pieces.append(out.last_hidden_state)
    assert_close_at(torch.cat(pieces, dim=1), batched, mask)


def test_fully_padded_rows_give_no_nan_in_values_or_gradients():
    torch.manual_seed(1)
    trunk = JatTrunk(make_config())
    ids = torch.randint(0, 64, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[0] = 0  # a row with no real token at all
    mask[1, :7] = 0  # left padding longer than the window
    mask[2, 3:5] = 0  # a hole in the middle
    out = trunk(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.isfinite(out).all()
    (out * mask[..., None]).square().mean().backward()
    for name, param in trunk.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_gradients_flow_and_match_reference(block):
    torch.manual_seed(2)
    config = make_config()
    reference = GPTNeoModel(config).train()
    trunk = JatTrunk(config).train()
    trunk.load_state_dict(reference.state_dict())
    ids = torch.randint(0, 64, (2, 19))
    reference(input_ids=ids).last_hidden_state.square().mean().backward()
    trunk(input_ids=ids).last_hidden_state.square().mean().backward()
    ref_grads = dict(reference.named_parameters())
    for name, param in trunk.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        torch.testing.assert_close(param.grad, ref_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "q_len,k_len,window,block,padded",
    [
        (20, 20, None, 6, False),  # global, several blocks
        (20, 20, 4, 6, True),  # local, padded
        (9, 16, 4, 2, True),  # after a cache
        (7, 40, 5, 4, False),
        (33, 33, 8, 8, True),
        (1, 30, 4, 128, False),  # one decoded token
        (1, 30, None, 128, True),
        (12, 12, 16, 5, False),  # window longer than the sequence
    ],
)
def test_blockwise_attention_equals_dense_masked_attention(q_len, k_len, window, block, padded):
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, n, 8) for n in (q_len, k_len, k_len))
    key_valid = None
    if padded:
        key_valid = torch.ones(2, k_len, dtype=torch.bool)
        key_valid[0, :5] = False
        key_valid[1, k_len // 2:k_len // 2 + 2] = False
    expected = F.scaled_dot_product_attention(
        q, k, v, attn_mask=band_mask(q_len, k_len, window, key_valid, q.device), scale=1.0
    )
    actual = attention(q, k, v, key_valid, window, block=block)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_attention_on_cpu_is_computed_in_fp32(dtype):
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 3, 20, 8) for _ in range(3))
    exact = attention(q, k, v, None, 6, block=8)  # (B, nh, Lq, d) fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: autocast on, half inputs
        half = attention(q.to(dtype), k.to(dtype), v.to(dtype), None, 6, block=8)
    assert half.dtype == dtype
    # fp32 attention of the rounded inputs, then one rounding of the output
    expected = attention(*(t.to(dtype).float() for t in (q, k, v)), None, 6, block=8).to(dtype)
    torch.testing.assert_close(half, expected, atol=0, rtol=0)
    torch.testing.assert_close(half.float(), exact, atol=0.1, rtol=0.05)


def test_cache_only_fills_the_same_cache_and_computes_nothing_after(models):
    """cache_only=True leaves the cache a full forward leaves, and the next token sees the same context."""
    _, trunk = models
    ids = torch.randint(0, 64, (2, 11))
    with torch.no_grad():
        full, only = KVCache(), KVCache()
        expected = trunk(input_ids=ids[:, :10], past_key_values=full)
        out = trunk(input_ids=ids[:, :10], past_key_values=only, cache_only=True)
        assert out.last_hidden_state is None and out.past_key_values is only
        assert len(full) == len(only) == 4
        for a, b in zip(full.keys + full.values, only.keys + only.values):
            torch.testing.assert_close(b, a)
        next_full = trunk(input_ids=ids[:, 10:], past_key_values=full).last_hidden_state
        next_only = trunk(input_ids=ids[:, 10:], past_key_values=only).last_hidden_state
    assert expected.last_hidden_state.shape == (2, 10, 32)
    torch.testing.assert_close(next_only, next_full)
    with pytest.raises(ValueError, match="cache_only"):
        trunk(input_ids=ids, cache_only=True)


def test_band_mask_is_gpt_neo_window():
    """Query i sees key j iff i - window < j <= i, as transformers' bias ^ tril(bias, -window)."""
    bias = torch.tril(torch.ones(10, 10, dtype=torch.bool))
    expected = torch.bitwise_xor(bias, torch.tril(bias, -WINDOW))
    assert torch.equal(band_mask(10, 10, WINDOW, None, torch.device("cpu"))[0, 0], expected)
    assert torch.equal(band_mask(3, 10, WINDOW, None, torch.device("cpu"))[0, 0], expected[7:])


def test_bad_inputs_raise_clear_errors(models):
    _, trunk = models
    ids = torch.randint(0, 64, (2, 5))
    with pytest.raises(ValueError, match="exactly one"):
        trunk(input_ids=ids, inputs_embeds=torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match="attention_mask"):
        trunk(input_ids=ids, attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="inputs_embeds"):
        trunk(inputs_embeds=torch.randn(2, 5, 31))
    with pytest.raises(ValueError, match="position_ids"):
        trunk(input_ids=ids, position_ids=torch.tensor([[0, 1, 2, 3, 64]] * 2))
    with pytest.raises(ValueError, match="position_ids"):
        trunk(input_ids=torch.randint(0, 64, (1, 65)))
    with pytest.raises(ValueError, match="attention_layers"):
        JatTrunk(make_config(attention_types=[[["global", "sparse"], 2]]))


def test_gradient_checkpointing_gives_the_same_gradients():
    """The trunk's own gradient_checkpointing flag recomputes blocks in the backward pass, same gradients."""
    torch.manual_seed(4)
    trunk = JatTrunk(make_config()).train()
    ids = torch.randint(0, 64, (2, 13))
    trunk(input_ids=ids).last_hidden_state.square().mean().backward()
    plain = {name: p.grad.clone() for name, p in trunk.named_parameters()}
    trunk.zero_grad()
    trunk.gradient_checkpointing = True
    trunk(input_ids=ids).last_hidden_state.square().mean().backward()
    for name, param in trunk.named_parameters():
        torch.testing.assert_close(param.grad, plain[name], atol=1e-6, rtol=1e-5, msg=name)
