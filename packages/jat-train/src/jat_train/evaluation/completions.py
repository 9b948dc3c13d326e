"""Completions of held-out text, and how much they read like the task's text (``jat-eval --data DIR``).

A perplexity says how well the model predicts held-out tokens, not whether what it writes reads as text. So up
to ``prompts`` held-out texts each give a prompt (their first ``prompt_words`` words) and ``model.complete()``
writes ``new_tokens`` tokens after it, greedy (no 3-gram twice and a repetition penalty of 1.2: without them a
small model's greedy text soon loops on a character or on blank lines) and sampled (temperature 0.7, top-k 20, a
generator seeded 0: the same text each time). The words written are compared with the training split's:

- ``known_words``: the share of the words written that occur in the training split (spelling);
- ``known_pairs``: the share of pairs of consecutive words that occur side by side in the training split (word
  order, local sense).

Both count from the prompt's last word on: a completion that starts inside a word glues onto it (``"clear"`` +
``"izels"``), and the pair of the prompt's last word and the first new one tests that it continues the prompt.
Two references bracket them, scored the same way after the same prompts: ``unigram``, ``new_tokens`` tokens drawn
one by one from the unigram baseline (each token by its training frequency, seeded: what knowing token
frequencies alone writes), and ``reference``, the held-out text's own next ``new_tokens`` tokens (real text of the
task that training did not see).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

_WORD = re.compile(r"\w+")

#: What each kind of completion passes to ``model.complete()`` (the sampled one also gets a seeded generator).
GREEDY = {"no_repeat_ngram_size": 3, "repetition_penalty": 1.2}
SAMPLED = {"do_sample": True, "temperature": 0.7, "top_k": 20}


def words(text: str) -> list[str]:
    """The lower-cased words of a text (punctuation dropped)."""
    return _WORD.findall(text.lower())


def vocabulary(texts: Sequence[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """The words of ``texts`` and their pairs of consecutive words."""
    known: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for text in texts:
        w = words(text)
        known.update(w)
        pairs.update(zip(w, w[1:]))
    return known, pairs


def word_shares(prompts: Sequence[str], continuations: Sequence[str], known: tuple[set, set]) -> dict[str, Any]:
    """``{"words", "known_words", "known_pairs"}`` of ``continuations`` written after ``prompts`` (see the module
    docstring: from each prompt's last word on), against ``known`` from :func:`vocabulary`; a share is None when
    nothing was written."""
    known_words, known_pairs = known
    written: list[str] = []
    pairs: list[tuple[str, str]] = []
    for prompt, continuation in zip(prompts, continuations, strict=True):
        w = words(prompt + continuation)[max(0, len(words(prompt)) - 1) :]
        written += w
        pairs += list(zip(w, w[1:]))
    return {
        "words": len(written),
        "known_words": sum(x in known_words for x in written) / len(written) if written else None,
        "known_pairs": sum(p in known_pairs for p in pairs) / len(pairs) if pairs else None,
    }


def _prompt(text: str, prompt_words: int) -> tuple[str, str] | None:
    """``(prompt, rest)``: the first ``prompt_words`` words of a text and what follows them (whitespace made
    single spaces), or None for a text too short to continue."""
    split = text.split()
    if len(split) <= prompt_words:
        return None
    return " ".join(split[:prompt_words]), " " + " ".join(split[prompt_words:])


def _first_tokens(tokenizer: Any, text: str, count: int) -> str:
    """The text of the first ``count`` tokens of ``text``."""
    return tokenizer.decode(tokenizer.encode(text)[:count])


def unigram_continuations(tokenizer: Any, unigram: np.ndarray, count: int, new_tokens: int, seed: int = 0) -> list[str]:
    """``count`` texts of ``new_tokens`` tokens, each drawn on its own from ``exp(unigram)`` (``(V,)`` log-probs
    from :func:`jat_train.evaluation.textscore.unigram_log_probs`), seeded; the tokenizer's special tokens are never drawn."""
    p = np.exp(unigram - unigram.max())
    p[[i for i in tokenizer.all_special_ids if i < len(p)]] = 0.0
    p[len(tokenizer) :] = 0.0  # rows of the model's table past the tokenizer's vocabulary
    rng = np.random.default_rng(seed)
    ids = rng.choice(len(p), size=(count, new_tokens), p=p / p.sum())
    return [tokenizer.decode(row.tolist()) for row in ids]


@torch.no_grad()
def completion_scores(model: Any, tokenizer: Any, texts: Sequence[str], train_texts: Sequence[str],
                      unigram: np.ndarray, *, prompts: int = 20, prompt_words: int = 8, new_tokens: int = 24,
                      examples: int = 3) -> dict[str, Any]:
    """Greedy and sampled completions of held-out texts and their word shares (see the module docstring).

    Args:
        model: a ``JatModel`` (eval mode) with ``complete()``.
        tokenizer: the run's tokenizer.
        texts: held-out texts; the first ``prompts`` with more than ``prompt_words`` words are used.
        train_texts: the training split's texts (the known words and pairs).
        unigram: ``(V,)`` unigram log-probabilities of the training split.
        prompts, prompt_words, new_tokens: how many prompts, how long, and how many tokens written after each.
        examples: how many of them are returned whole.

    Returns:
        ``{"prompts", "new_tokens", "greedy", "sampled", "unigram", "reference", "examples"}``: the four word
        shares (:func:`word_shares`) and ``examples``, ``[{"prompt", "completion", "sampled", "reference"}]``.
    """
    cut = [c for c in (_prompt(t, prompt_words) for t in texts) if c is not None][:prompts]
    heads = [head for head, _ in cut]
    greedy = [model.complete(head, max_new_tokens=new_tokens, tokenizer=tokenizer, **GREEDY) for head in heads]
    sampled = [model.complete(head, max_new_tokens=new_tokens, tokenizer=tokenizer,
                              generator=torch.Generator().manual_seed(0), **SAMPLED) for head in heads]
    reference = [_first_tokens(tokenizer, rest, new_tokens) for _, rest in cut]
    known = vocabulary(train_texts)
    return {
        "prompts": len(cut),
        "new_tokens": new_tokens,
        "greedy": word_shares(heads, greedy, known),
        "sampled": word_shares(heads, sampled, known),
        "unigram": word_shares(heads, unigram_continuations(tokenizer, unigram, len(cut), new_tokens), known),
        "reference": word_shares(heads, reference, known),
        "examples": [{"prompt": h, "completion": g, "sampled": s, "reference": r}
                     for h, g, s, r in list(zip(heads, greedy, sampled, reference))[:examples]],
    }
