"""Settings of a training run (:class:`TrainConfig`) and the ``jat-train`` command line that fills them.

:func:`config_from_args` parses ``jat-train`` arguments (:func:`build_parser`) into a :class:`TrainConfig`, and
:func:`check_paths` refuses paths that cannot work before anything is built. The entry point that runs them,
``jat_train.training.trainer.main``, stays with the loop (``python -m jat_train.training.trainer``, ``accelerate launch -m
jat_train.training.trainer``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from jat_train.data import SHUFFLE_BUFFER


@dataclass
class TrainConfig:
    """Settings of a training run (the ``jat-train`` options).

    Attributes:
        plugins: plugins to load (comma-separated entry-point names; ``None``: all installed / ``JAT_PLUGINS``).
        tasks: task and/or domain names (comma-separated; ``None``: every task of the loaded plugins).
        data: ``"hub"`` (each task's hub repo, ``jat-project/jat-dataset``), ``"hub:<repo id or directory>"``
            (the same ``datasets.load_dataset`` call on a mirror repo or on a local copy of the hub repo: a
            ``README.md`` declaring the configs and ``<config>/<split>-*.parquet`` shards, e.g. made with
            ``hf download jat-project/jat-dataset --repo-type dataset --include README.md --include 'CONFIG/*'
            --local-dir DIR``), or a local directory written by ``jat-collect``.
        streaming: hub data (``hub``, ``hub:...``): stream the episodes (``True``) or download each task's split
            into the ``datasets`` cache first and read it like local data (``False``: random access, windows
            shuffled across the whole split, exact resume).
        shuffle_buffer: streamed hub data: episodes in each task's shuffle buffer (0: none). Resuming is exact
            with 0 or 1; with more, the rest of the epoch interrupted by the checkpoint differs (``datasets`` does
            not save the buffer's episodes) and every later epoch is exact (see
            ``jat_train.data.sources.StreamEpisodes``).
        preset: model preset (``"tiny"``, ``"small"``).
        model_overrides: ``JatConfig`` fields overriding the preset (e.g. ``{"num_layers": 1}``).
        init_from: start from a saved model (``save_pretrained`` directory) instead of a fresh one.
        normalize_inputs: standardise each RL task's real-valued observation fields and rewards with its training
            data's mean and standard deviation, stored in the model's config (:mod:`jat_train.training.input_stats`);
            ignored with ``init_from`` (the model keeps its own statistics).
        tokenizer: hub id or local path of a tokenizer, or ``"bpe:N"`` to train an N-token byte-level BPE on
            the training data's strings (offline runs); ``None``: GPT-2's.
        max_steps: optimizer steps (the schedule decays to 0 at this step).
        output_dir: where checkpoints and logs go.
        resume: continue from the latest complete checkpoint in ``output_dir``, as if the run had never stopped:
            bit for bit on CPU for local data, hub data read without streaming, and streamed hub data with
            ``shuffle_buffer`` 0 or 1; with a larger streaming shuffle buffer the rest of the interrupted epoch
            differs (``datasets`` does not save the buffer), later epochs are the same.
        save_every: checkpoint every this many steps (and at the end).
        save_total_limit: keep only the newest checkpoints (``None``: all).
        seed: seed of the initialisation, the data order and the task draws.
        batch_size: windows per batch on each process.
        task_batch_size: the most windows per batch of some tasks, by task or domain name (a task's own name wins):
            tasks whose windows cost more than their tokens say (image frames through a convolutional encoder).
        batch_tokens: if set, a token budget per batch: a task whose ``batch_size`` windows would hold more gets
            fewer windows per batch (long windows of text or long episodes; :func:`jat_train.data.batches.windows_per_batch`).
        grad_accum: batches per optimizer step on each process.
        learning_rate, warmup_steps, weight_decay, adam_betas, adam_eps: AdamW and its linear schedule.
        max_grad_norm: gradient clipping (``None`` or 0: none).
        kappa: observation-loss weight; the action loss gets ``1 - kappa`` (``None``: the config's).
        mixed_precision: ``"auto"`` (bf16 on a GPU that supports it, else fp32), ``"no"``, ``"bf16"``,
            ``"fp16"``.
        cpu: force the CPU even where an accelerator exists.
        num_threads: torch CPU threads per process (``None``: at most 2).
        num_workers: DataLoader worker processes building batches ahead of the model (decoding, windowing,
            collation; :class:`jat_train.data.loader.BatchLoader`); 0 builds them in the training process. Either way
            the batches and the resumed position are the same.
        log_every: write a log record every this many steps.
        eval_every, eval_episodes, eval_envs: periodic evaluation with ``jat_train.evaluation.evaluate.evaluate`` on the
            tasks that have an environment (``eval_every=0``: none).
        progress: show a tqdm bar.
    """

    plugins: str | None = None
    tasks: str | None = None
    data: str = "hub"
    streaming: bool = True
    shuffle_buffer: int = SHUFFLE_BUFFER
    preset: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    normalize_inputs: bool = True
    tokenizer: str | None = None
    max_steps: int = 1000
    output_dir: str = "runs/jat"
    resume: bool = False
    save_every: int = 500
    save_total_limit: int | None = 3
    seed: int = 0
    batch_size: int = 8
    batch_tokens: int | None = None
    task_batch_size: dict[str, int] = field(default_factory=dict)
    grad_accum: int = 1
    learning_rate: float = 5e-5
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    kappa: float | None = None
    mixed_precision: str = "auto"
    cpu: bool = False
    num_threads: int | None = None
    num_workers: int = 1
    log_every: int = 1
    eval_every: int = 0
    eval_episodes: int = 4
    eval_envs: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "save_every", "batch_size", "grad_accum", "log_every"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.batch_tokens is not None and int(self.batch_tokens) <= 0:
            raise ValueError(f"batch_tokens must be positive, got {self.batch_tokens!r}")
        for name, size in self.task_batch_size.items():
            if not isinstance(size, int) or size <= 0:
                raise ValueError(f"task_batch_size of {name!r} must be a positive int, got {size!r}")
        if int(self.num_workers) < 0:
            raise ValueError(f"num_workers must be 0 or more, got {self.num_workers!r}")
        if int(self.shuffle_buffer) < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {self.shuffle_buffer!r}")
        if self.kappa is not None and not 0.0 <= self.kappa <= 1.0:
            raise ValueError(f"kappa must be in [0, 1], got {self.kappa!r}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be auto, no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.save_total_limit is not None and self.save_total_limit <= 0:
            raise ValueError(f"save_total_limit must be positive or None, got {self.save_total_limit!r}")


def build_parser():
    """The ``jat-train`` argument parser."""
    import argparse

    from jat_core.cli import add_debug_flag

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="jat-train",
        description="Train a JAT model on the tasks of the installed plugins. Runs in one process or, with "
        "`accelerate launch --multi_gpu --num_processes N -m jat_train.training.trainer ...` (GPUs, or N CPU processes "
        "where there is no GPU) or `torchrun --standalone --nproc_per_node N -m jat_train.training.trainer ...`, on N "
        "processes (DDP).",
    )
    p.add_argument("--plugins", help="comma-separated plugin names (default: all installed, or $JAT_PLUGINS)")
    p.add_argument("--tasks", help="comma-separated task and/or domain names (default: every loaded task)")
    p.add_argument("--data", default=d.data, help="'hub' (each task's hub data set, jat-project/jat-dataset), "
                   "'hub:REPO' or 'hub:DIR' (the same load_dataset call on a mirror repo id, or on a local copy of "
                   "the hub repo: README.md with its configs and <config>/<split>-*.parquet, e.g. from `hf download "
                   "jat-project/jat-dataset --repo-type dataset --include README.md --include 'CONFIG/*' "
                   "--local-dir DIR`), or a directory written by jat-collect (default: %(default)s)")
    p.add_argument("--hub-streaming", dest="streaming", action=argparse.BooleanOptionalAction,
                   default=d.streaming, help="hub data: stream the episodes, or (--no-hub-streaming) download "
                   "each task's split into the datasets cache first and read it like local data (default: stream)")
    p.add_argument("--hub-shuffle-buffer", dest="shuffle_buffer", type=int, default=d.shuffle_buffer,
                   metavar="N", help="streamed hub data: episodes in each task's shuffle buffer; 0: none, for an "
                   "exact --resume mid-epoch (default: %(default)s)")
    p.add_argument("--preset", default=d.preset, help="model preset: tiny or small (default: %(default)s)")
    p.add_argument("--model-config", action="append", default=[], metavar="KEY=VALUE",
                   help="override a JatConfig field (JSON value), e.g. --model-config num_layers=1; repeatable")
    p.add_argument("--init-from", help="start from a saved model directory instead of a fresh model")
    p.add_argument("--normalize-inputs", action=argparse.BooleanOptionalAction, default=d.normalize_inputs,
                   help="standardise each task's real-valued observations and rewards with its training data's "
                   "mean and std, saved in the model's config (default: on; ignored with --init-from, whose model "
                   "keeps its own)")
    p.add_argument("--tokenizer", help="tokenizer hub id or directory, or bpe:N to train an N-token BPE on the "
                   "training data's strings (offline); default: gpt2")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="optimizer steps (default: %(default)s)")
    p.add_argument("--output-dir", required=True, help="checkpoints and logs go here")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output-dir")
    p.add_argument("--save-every", type=int, default=d.save_every, help="default: %(default)s")
    p.add_argument("--save-total-limit", type=int, default=d.save_total_limit,
                   help="keep the newest N checkpoints; 0: all (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per batch per process")
    p.add_argument("--batch-tokens", type=int, default=d.batch_tokens, metavar="N",
                   help="at most about N tokens per batch: a task whose --batch-size windows would hold more (long "
                   "documents, long episodes) gets fewer windows (default: no budget)")
    p.add_argument("--task-batch-size", action="append", default=[], metavar="NAME=N",
                   help="at most N windows per batch for the task or the domain NAME (repeatable; a task's own "
                   "setting wins over its domain's): for tasks whose windows cost more than their tokens say")
    p.add_argument("--grad-accum", "--gradient-accumulation-steps", dest="grad_accum", type=int,
                   default=d.grad_accum, help="batches per optimizer step per process (default: %(default)s)")
    p.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=d.learning_rate)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="0: no clipping")
    p.add_argument("--kappa", type=float, help="observation-loss weight; actions get 1 - kappa (default: the "
                   "model config's, 0.005)")
    p.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default=d.mixed_precision,
                   help="auto: bf16 on a GPU that supports it, else fp32 (default: %(default)s)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    p.add_argument("--num-threads", type=int, help="torch CPU threads per process (default: at most 2)")
    p.add_argument("--num-workers", type=int, default=d.num_workers,
                   help="DataLoader worker processes preparing batches ahead (0: in the training process; "
                   "default: %(default)s)")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="evaluate every K steps (0: never)")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes)
    p.add_argument("--eval-envs", type=int, default=d.eval_envs)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    add_debug_flag(p)
    return p


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse ``jat-train`` arguments into a :class:`TrainConfig`.

    Raises:
        UserError: a malformed ``--model-config``, or a setting :class:`TrainConfig` refuses.
    """
    from jat_core.cli import UserError

    args = vars(build_parser().parse_args(argv))
    args.pop("debug", None)
    overrides = {}
    for item in args.pop("model_config"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--model-config: expected KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    sizes = {}
    for item in args.pop("task_batch_size"):
        name, sep, value = item.partition("=")
        if not sep or not name or not value.isdigit() or int(value) <= 0:
            raise UserError(f"--task-batch-size: expected NAME=N with a positive integer N, got {item!r}")
        sizes[name] = int(value)
    args["task_batch_size"] = sizes
    args["save_total_limit"] = args["save_total_limit"] or None
    args["max_grad_norm"] = args["max_grad_norm"] or None
    return TrainConfig(model_overrides=overrides, **args)


def check_paths(config: TrainConfig) -> None:
    """Refuse paths that cannot work before anything is built: an ``--output-dir`` that is a file, a local
    ``--init-from`` or ``--tokenizer`` that does not exist (see :func:`jat_core.cli.looks_like_local_path`: such a
    path is never looked up on the hub), a ``--tokenizer bpe:N`` without a positive N, a ``--data`` that is a file.

    Raises:
        UserError: naming the option and the path.
    """
    from jat_core.cli import UserError, check_output_dir, check_source

    check_output_dir(config.output_dir, "--output-dir")
    if config.init_from:
        config.init_from = check_source(config.init_from, "--init-from")
    if config.tokenizer and not config.tokenizer.startswith("bpe:"):
        config.tokenizer = check_source(config.tokenizer, "--tokenizer", kind="path")
    if config.tokenizer and config.tokenizer.startswith("bpe:"):
        size = config.tokenizer[4:]
        if not size.isdigit() or int(size) <= 0:
            raise UserError(f"--tokenizer: expected bpe:N with a positive integer N, got {config.tokenizer!r}")
    if config.data != "hub" and os.path.exists(config.data) and not os.path.isdir(config.data):
        raise UserError(f"--data: expected 'hub' or a directory, {config.data!r} is a file")
