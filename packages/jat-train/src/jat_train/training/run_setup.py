"""What a training run is built from: the accelerator, its precision, the tokenizer, the model and the processor.

:func:`jat_train.training.trainer.train` calls these in order; each is usable on its own (tests build the model of a run
without training it). Mixed precision is the loop's own ``torch.autocast`` (:func:`autocast_dtype`, :class:`Amp`),
not accelerate's (see :func:`make_accelerator`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from jat_train.data import DataError, sample_texts
from jat_train.training.train_config import TrainConfig


def make_accelerator(config: TrainConfig):
    """An ``accelerate.Accelerator`` for the run (DDP tolerant of codecs a batch does not use).

    Mixed precision is not accelerate's: accelerate keeps it in a process-wide singleton that a second run in the
    same process cannot change (only a private reset can), so the loop applies ``torch.autocast`` itself
    (:func:`autocast_dtype`) and the accelerator always runs in full precision.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # Several processes and no GPU: accelerate goes multi-CPU (gloo) only when told to use the CPU.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(
        cpu=config.cpu or (several and not torch.cuda.is_available()),
        mixed_precision="no",
        gradient_accumulation_steps=config.grad_accum,
        # each batch comes from one task and uses only its codecs
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def _precision(config: TrainConfig) -> str:
    """``config.mixed_precision``, with ``"auto"`` resolved: bf16 on a GPU that supports it, else ``"no"``.

    A CPU stays in fp32 under ``"auto"`` even where it computes bf16 natively: there bf16 autocast makes a step
    faster, but a tiny model trains to a higher loss and a lower score than in fp32 (docs/benchmarks.md, "Recipe
    choices"); ``--mixed-precision bf16`` asks for it.
    """
    if config.mixed_precision != "auto":
        return config.mixed_precision
    if not config.cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def autocast_dtype(config: TrainConfig) -> torch.dtype | None:
    """The autocast dtype of the forward pass (``None``: full precision); master weights and the optimizer stay
    fp32 either way."""
    return {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[_precision(config)]


@dataclass
class Amp:
    """Mixed precision of a run: the autocast dtype (``None``: fp32) and, for fp16, a gradient scaler."""

    dtype: torch.dtype | None
    scaler: Any = None

    @classmethod
    def for_run(cls, config: TrainConfig, device: torch.device) -> Amp:
        """From ``config.mixed_precision`` on ``device``."""
        dtype = autocast_dtype(config)
        return cls(dtype, torch.amp.GradScaler(device.type) if dtype == torch.float16 else None)


def load_run_tokenizer(config: TrainConfig, tasks, resume_from: str | None):
    """The run's tokenizer: the checkpoint's when resuming, a trained BPE for ``bpe:N``, else a loaded one;
    ``None`` when no tokenizer was asked for and no task has a string field (nothing to tokenize: such a run
    needs neither the hub nor ``--tokenizer``)."""
    from jat_core.tokenizer import build_tokenizer, load_tokenizer

    if resume_from is not None and os.path.isfile(os.path.join(resume_from, "tokenizer.json")):
        return load_tokenizer(resume_from)
    if config.tokenizer is None and not any(f.dtype == "string" for task in tasks for f in task.fields):
        return None
    name = config.tokenizer or "gpt2"
    if name.startswith("bpe:"):
        texts = sample_texts(tasks, config.data, streaming=config.streaming) or ["<|endoftext|>"]
        return build_tokenizer(texts, vocab_size=int(name[4:]))
    try:
        return load_tokenizer(name)
    except Exception as exc:
        raise DataError(
            f"could not load tokenizer {name!r} ({type(exc).__name__}: {exc}); offline, pass a local tokenizer "
            "directory or `--tokenizer bpe:N` to train one on the training data"
        ) from exc


def build_model(config: TrainConfig, tokenizer, registry=None, input_normalization: dict | None = None):
    """A fresh ``JatModel`` from the preset (or ``init_from``), with kappa and the tokenizer's vocabulary.

    Args:
        config: the run's settings (``preset``, ``model_overrides``, ``kappa``, ``init_from``).
        tokenizer: its size sets ``vocab_size`` unless an override does.
        registry: the plugin registry that provides the codecs (default: every installed plugin).
        input_normalization: the config's ``input_normalization`` (``None``: the preset's or saved model's;
            see :func:`jat_train.training.input_stats.run_normalization`).
    """
    from jat_core.config import JatConfig
    from jat_core.model import JatModel

    overrides = dict(config.model_overrides)
    if input_normalization is not None:
        overrides.setdefault("input_normalization", input_normalization)
    if config.kappa is not None:
        overrides.update(observation_loss_coef=config.kappa, action_loss_coef=1.0 - config.kappa)
    if config.init_from:
        return JatModel.from_pretrained(config.init_from, registry=registry, **overrides)
    if tokenizer is not None:
        overrides.setdefault("vocab_size", len(tokenizer))
    return JatModel(JatConfig.from_preset(config.preset, **overrides), registry=registry)


def make_processor(model, tokenizer):
    """The processor that turns raw data-set values into the model's tensors (with the model's codecs)."""
    from jat_core.processor import JatProcessor

    return JatProcessor.from_model(model, tokenizer)
