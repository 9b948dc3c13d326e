"""Text generation with a :class:`jat_core.model.JatModel`: ``generate`` (token ids), ``complete`` (text) and
``caption`` (an image's patches, then text).

A small decoding loop of our own (greedy, or sampling with temperature / top-k / top-p) over the model's public
``forward`` and its KV cache (:mod:`jat_core.cache`). transformers' ``GenerationMixin`` reaches the model through
hooks whose names and arguments change between minor releases (5.24 renamed the cache argument), so JAT does not
depend on it; the repetition controls are transformers' public logits processors
(``RepetitionPenaltyLogitsProcessor``, ``NoRepeatNGramLogitsProcessor``), applied to each step's logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jat_core.codec import SEQUENCE, sequence_codec


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k: expected a positive int or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p: expected a number in (0, 1] or None, got {top_p!r}")


def sample_next(
    logits: torch.Tensor,
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The next token of each row from ``(B, V)`` logits: the argmax, or a draw after temperature, top-k and top-p
    (nucleus) filtering. Returns ``(B,)`` int64."""
    if not do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / temperature  # (B, V)
    if top_k is not None and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]  # (B, 1)
        scores = scores.masked_fill(scores < kth, -torch.inf)
    if top_p is not None and top_p < 1:
        ordered, order = torch.sort(scores, descending=True, dim=-1)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= top_p  # keep the smallest set reaching top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -torch.inf)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(
    model: Any,
    input_ids: torch.Tensor | None = None,
    *,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    attention_mask: torch.Tensor | None = None,
    repetition_penalty: float | None = None,
    no_repeat_ngram_size: int | None = None,
    **columns: Any,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to each row of ``input_ids``.

    Args:
        model: a :class:`jat_core.model.JatModel` with a text codec.
        input_ids: ``(B, L)`` prompt token ids (``L`` may be 0 when ``columns`` hold an image).
        max_new_tokens: tokens to add.
        do_sample, temperature, top_k, top_p, generator: greedy (default) or sampled decoding, see
            :func:`sample_next`.
        eos_token_id: a row that produced it gets ``pad_token_id`` (default: ``eos_token_id``) afterwards; the
            loop stops when every row has.
        use_cache: feed only the new token at each step (default), or recompute the whole sequence.
        attention_mask: ``(B, L)`` mask of the prompt tokens (1 = real); new tokens are always real.
        repetition_penalty: divides the (positive) logits of tokens already in the row, prompt included, as in
            transformers (CTRL's penalty; 1.0 or ``None``: none). A small model's greedy text otherwise falls
            into a loop (a repeated character, blank lines).
        no_repeat_ngram_size: no n-gram of this size appears twice in a row's ids (``None``: no limit).
        **columns: other sequence columns given once before the text, e.g. ``pixel_values (B, 3, 224, 224)``.

    Returns:
        ``(B, L + k)`` int64 ids, ``k <= max_new_tokens``.
    """
    if input_ids is None:
        raise ValueError("input_ids: expected (B, L) token ids, got None")
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids: expected shape (B, L), got {tuple(input_ids.shape)}")
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected a non-negative int, got {max_new_tokens!r}")
    _check_sampling(temperature, top_k, top_p)
    repetition = _repetition_processors(repetition_penalty, no_repeat_ngram_size)
    choose = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    column = model.codecs[sequence_codec(model.codecs, predicted=True)].columns[SEQUENCE]  # the token ids' column
    device = model.device
    ids = input_ids.to(device)
    columns = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in columns.items() if v is not None}
    mask = None if attention_mask is None else torch.as_tensor(attention_mask).to(device)
    pad = pad_token_id if pad_token_id is not None else eos_token_id
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
    cache, fed = None, ids  # fed: what the next forward call gets
    for _ in range(int(max_new_tokens)):
        if use_cache:
            out = model(**{column: fed}, attention_mask=mask, past_key_values=cache, use_cache=True,
                        return_loss=False, **(columns if cache is None else {}))
            cache = out.past_key_values
        else:
            out = model(**{column: ids}, attention_mask=mask, return_loss=False, **columns)
        logits = out.logits[:, -1]  # (B, V)
        if repetition:
            logits = repetition(ids, logits.float())
        token = sample_next(logits, **choose)  # (B,)
        if eos_token_id is not None:
            token = torch.where(done, pad, token)
            done = done | (token == eos_token_id)
        ids = torch.cat((ids, token[:, None]), dim=1)
        fed = token[:, None]
        if mask is not None:
            mask = torch.cat((mask, mask.new_ones(mask.shape[0], 1)), dim=1)
        if bool(done.all()):
            break
    return ids


def _repetition_processors(penalty: float | None, ngram: int | None) -> Any:
    """transformers' logits processors for the repetition controls of :func:`generate` (empty: none asked)."""
    from transformers import (
        LogitsProcessorList,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
    )

    processors = LogitsProcessorList()
    if penalty is not None and penalty != 1.0:
        if not penalty > 0:
            raise ValueError(f"repetition_penalty: expected a positive number, got {penalty!r}")
        processors.append(RepetitionPenaltyLogitsProcessor(float(penalty)))
    if ngram is not None:
        if not isinstance(ngram, (int, np.integer)) or ngram < 1:
            raise ValueError(f"no_repeat_ngram_size: expected a positive int or None, got {ngram!r}")
        processors.append(NoRepeatNGramLogitsProcessor(int(ngram)))
    return processors


def _tokenizer(model: Any, tokenizer: Any) -> Any:
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("tokenizer: the model carries none (model.tokenizer); pass tokenizer=...")
    return tokenizer


def _new_text(model: Any, tokenizer: Any, ids: torch.Tensor, max_new_tokens: int, **kwargs: Any) -> str:
    """Generate after ``ids (1, L)`` (stopping at the tokenizer's end token) and decode the new tokens."""
    kwargs.setdefault("eos_token_id", tokenizer.eos_token_id)
    out = generate(model, ids, max_new_tokens=max_new_tokens, **kwargs)  # (1, L + k)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def complete(
    model: Any, prompt: str | list[str], *, max_new_tokens: int = 32, tokenizer: Any = None, **generate_kwargs: Any
) -> str | list[str]:
    """Continue text (greedy unless ``do_sample=True`` is passed).

    Args:
        model: a :class:`jat_core.model.JatModel`.
        prompt: a non-empty string, or a list of them (each generated on its own: the trunk's positions follow
            the cache, so prompts are not left-padded into one batch).
        max_new_tokens: tokens to add.
        tokenizer: the tokenizer (default: ``model.tokenizer``).
        generate_kwargs: passed to :func:`generate`.

    Returns:
        The continuation (new text only), or a list of them.
    """
    tokenizer = _tokenizer(model, tokenizer)
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError(f"prompt: expected a non-empty str or a list of them, got {prompt!r:.80}")
    from jat_core.processor import JatProcessor

    processor = JatProcessor.from_model(model, tokenizer)
    outs = []
    for text in prompts:
        (ids,) = [v for k, v in processor.prepare_text(text).items() if k != "attention_mask"]  # (1, L)
        outs.append(_new_text(model, tokenizer, ids, max_new_tokens, **generate_kwargs))
    return outs[0] if isinstance(prompt, str) else outs


def caption(
    model: Any,
    image: Any,
    *,
    prompt: str | None = None,
    max_new_tokens: int = 32,
    tokenizer: Any = None,
    **generate_kwargs: Any,
) -> str:
    """Describe an image: its patches first, then text generated after them.

    Args:
        model: a :class:`jat_core.model.JatModel` with an image-patch codec.
        image: ``(H, W, 3)`` uint8 array / tensor or a PIL image (resized by the processor as in training).
        prompt: text after the image (e.g. ``"Q: what is this? A:"``); ``None``: the caption's first token is
            predicted from the image alone (the last patch), as in training.
        max_new_tokens: tokens to generate.
        tokenizer: the tokenizer (default: ``model.tokenizer``).
        generate_kwargs: passed to :func:`generate`.

    Returns:
        The generated text (after the prompt, if any).
    """
    tokenizer = _tokenizer(model, tokenizer)
    from jat_core.processor import JatProcessor

    processor = JatProcessor.from_model(model, tokenizer)
    if isinstance(image, torch.Tensor):
        image = image.cpu().numpy()
    images = processor.prepare_images([image])  # the codec checks the image  # e.g. pixel_values (1, 3, 224, 224)
    if prompt is not None:
        (ids,) = [v for k, v in processor.prepare_text(prompt).items() if k != "attention_mask"]  # (1, L)
    else:
        ids = torch.zeros(1, 0, dtype=torch.long)
    return _new_text(model, tokenizer, ids, max_new_tokens, **images, **generate_kwargs)
