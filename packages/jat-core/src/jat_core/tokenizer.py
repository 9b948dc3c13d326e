"""Tokenizers: the GPT-2 BPE tokenizer JAT uses, from the hub or a local directory, or trained on the fly.

The published model uses GPT-2's byte-level BPE (50257 tokens, ``<|endoftext|>`` = 50256 as end, beginning and
padding token). Offline, :func:`build_tokenizer` trains a small tokenizer of the same kind on given texts, so
that tests and the offline demo work without the hub.
"""

from __future__ import annotations

from collections.abc import Iterable

EOS = "<|endoftext|>"


def load_tokenizer(name_or_path: str = "gpt2"):
    """Load a tokenizer with ``AutoTokenizer.from_pretrained`` and make its pad token the end token.

    Args:
        name_or_path: hub id (``"gpt2"``, ``"jat-project/jat"``) or local directory.

    Returns:
        A ``transformers.PreTrainedTokenizerFast``.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name_or_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """Train a byte-level BPE tokenizer (GPT-2 style) on ``texts``.

    Args:
        texts: training texts.
        vocab_size: size of the vocabulary, at least 257 (the 256 bytes and the end token).

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` whose end and padding token is ``<|endoftext|>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 257:
        raise ValueError(f"vocab_size must be at least 257 (256 bytes + end token), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS)
