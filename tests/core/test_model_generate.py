"""generate(): text completion and image captioning, with and without the KV cache."""

import pytest
import torch
from model_helpers import VOCAB, tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=3)


def greedy(model, ids, steps, pixel_values=None):
    """Reference decoding: the full sequence through forward at every step, no cache."""
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=ids, pixel_values=pixel_values, return_loss=False).logits
        ids = torch.cat((ids, logits[:, -1:].argmax(-1)), dim=1)
    return ids


def test_text_generation_with_cache_equals_without(model):
    prompt = torch.randint(0, VOCAB, (2, 4), generator=torch.Generator().manual_seed(0))
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=0)
    cached = model.generate(input_ids=prompt, use_cache=True, **kwargs)
    uncached = model.generate(input_ids=prompt, use_cache=False, **kwargs)
    assert cached.shape == (2, 16)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, greedy(model, prompt, 12))


def test_caption_generation_puts_patches_first(model):
    g = torch.Generator().manual_seed(1)
    prompt, pixels = torch.randint(0, VOCAB, (1, 2), generator=g), torch.randn(1, 3, 224, 224, generator=g)
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    cached = model.generate(input_ids=prompt, pixel_values=pixels, use_cache=True, **kwargs)
    uncached = model.generate(input_ids=prompt, pixel_values=pixels, use_cache=False, **kwargs)
    assert cached.shape == (1, 8)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, greedy(model, prompt, 6, pixel_values=pixels))
    # the image matters
    other = model.generate(input_ids=prompt, pixel_values=-pixels, use_cache=True, **kwargs)
    assert not torch.equal(other, cached)


def test_incremental_forward_with_cache_matches_full_forward(model):
    ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(input_ids=ids, return_loss=False).logits
        first = model(input_ids=ids[:, :5], use_cache=True, return_loss=False)
        rest = model(input_ids=ids[:, 5:], past_key_values=first.past_key_values, use_cache=True, return_loss=False)
    torch.testing.assert_close(torch.cat((first.logits, rest.logits), 1), full, rtol=1e-5, atol=1e-5)


def test_output_reads_by_name_and_cache_is_an_alias(model):
    ids = torch.randint(0, VOCAB, (1, 5), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        again = model(input_ids=ids[:, :1], cache=out.cache, use_cache=True, return_loss=False)
    assert out["loss"] is out.loss and "logits" in out and out.cache is out.past_key_values
    assert out.to_tuple()[0] is out.loss and model(input_ids=ids, return_dict=False)[1].shape == (1, 5, VOCAB)
    assert again.past_key_values.get_seq_length() == 6
    with pytest.raises(ValueError, match="got both"):
        model(input_ids=ids, cache=out.cache, past_key_values=out.cache)


def test_sampling_is_seeded_and_stops_at_eos(model):
    prompt = torch.randint(0, VOCAB, (2, 3), generator=torch.Generator().manual_seed(6))

    def run(seed, **kw):
        return model.generate(prompt, max_new_tokens=8, do_sample=True, temperature=1.5, top_k=50, top_p=0.9,
                              generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))
    greedy_ids = model.generate(prompt, max_new_tokens=8)
    eos = int(greedy_ids[0, 4])  # row 0's second new token
    stopped = model.generate(prompt, max_new_tokens=8, eos_token_id=eos, pad_token_id=0)
    assert stopped[0, 4] == eos and (stopped[0, 5:] == 0).all()
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, do_sample=True, top_p=1.5)


def test_transformers_gradient_checkpointing_enable_reaches_the_trunk(model):
    """transformers' public switch sets the trunk's own flag (it sets every module's ``gradient_checkpointing``)."""
    import transformers

    fresh = type(model)(model.config)
    fresh.gradient_checkpointing_enable()
    assert fresh.transformer.gradient_checkpointing, (
        f"transformers {transformers.__version__}: gradient_checkpointing_enable() no longer sets the trunk's "
        "gradient_checkpointing attribute; set model.transformer.gradient_checkpointing = True instead"
    )


def test_repetition_controls_change_greedy_decoding_as_transformers_defines_them(model):
    prompt = torch.randint(0, VOCAB, (2, 3), generator=torch.Generator().manual_seed(7))
    ids = model.generate(prompt, max_new_tokens=16, no_repeat_ngram_size=2)
    for row in ids.tolist():
        bigrams = list(zip(row, row[1:]))
        assert len(bigrams) == len(set(bigrams)), row
    penalised = model.generate(prompt, max_new_tokens=10, repetition_penalty=1.5)
    expected = prompt  # reference loop: CTRL's penalty on every token already in the row, then the argmax
    for _ in range(10):
        with torch.no_grad():
            logits = model(input_ids=expected, return_loss=False).logits[:, -1].clone()
        seen = torch.gather(logits, 1, expected)
        logits.scatter_(1, expected, torch.where(seen < 0, seen * 1.5, seen / 1.5))
        expected = torch.cat((expected, logits.argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(penalised, expected)
    assert torch.equal(model.generate(prompt, max_new_tokens=10, repetition_penalty=1.0),
                       model.generate(prompt, max_new_tokens=10))
    for bad in (dict(repetition_penalty=0.0), dict(no_repeat_ngram_size=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            model.generate(prompt, **bad)
