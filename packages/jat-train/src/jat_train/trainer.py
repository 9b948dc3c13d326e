"""The training loop: one process or many (``accelerate launch``), weighted multi-task, resumable.

    result = train(TrainConfig(plugins="mydomain", tasks="mydomain", data="data/", output_dir="runs/x"))

Per optimizer step, each rank runs ``grad_accum`` one-task batches (tasks drawn by sample weight, the same task
on every rank, each rank reading its own shard), backpropagates through ``accelerate`` (DDP across processes,
bf16 autocast where the device has it), clips the gradient, checks that the loss is finite, and steps AdamW and
its linear schedule. Every step is logged to ``OUT/log.jsonl`` and TensorBoard; every ``save_every`` steps an
atomic checkpoint is written (:mod:`jat_train.checkpoint`). ``resume=True`` continues from the latest complete
checkpoint exactly as if the run had never stopped (bit for bit on CPU).

The loop knows no domain, modality or column: data come from :mod:`jat_train.data` through the processor, and
the model decides what to do with them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from jat_train import checkpoint as ckpt
from jat_train.data import SHUFFLE_BUFFER, DataError, build_batches, open_sources, sample_texts
from jat_train.loader import BatchLoader

logger = logging.getLogger(__name__)

LOG_FILE = "log.jsonl"
EVAL_FILE = "eval.jsonl"


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
        shuffle_buffer: streamed hub data: episodes in each task's shuffle buffer (0: none; resuming is exact only
            from the next epoch with a buffer, see ``jat_train.data.StreamEpisodes``).
        preset: model preset (``"tiny"``, ``"small"``).
        model_overrides: ``JatConfig`` fields overriding the preset (e.g. ``{"num_layers": 1}``).
        init_from: start from a saved model (``save_pretrained`` directory) instead of a fresh one.
        tokenizer: hub id or local path of a tokenizer, or ``"bpe:N"`` to train an N-token byte-level BPE on
            the training data's strings (offline runs); ``None``: GPT-2's.
        max_steps: optimizer steps (the schedule decays to 0 at this step).
        output_dir: where checkpoints and logs go.
        resume: continue from the latest complete checkpoint in ``output_dir``.
        save_every: checkpoint every this many steps (and at the end).
        save_total_limit: keep only the newest checkpoints (``None``: all).
        seed: seed of the initialisation, the data order and the task draws.
        batch_size: windows per batch on each process.
        grad_accum: batches per optimizer step on each process.
        learning_rate, warmup_steps, weight_decay, adam_betas, adam_eps: AdamW and its linear schedule.
        max_grad_norm: gradient clipping (``None`` or 0: none).
        kappa: observation-loss weight; the action loss gets ``1 - kappa`` (``None``: the config's).
        mixed_precision: ``"auto"`` (bf16 where the device supports it, else fp32), ``"no"``, ``"bf16"``,
            ``"fp16"``.
        cpu: force the CPU even where an accelerator exists.
        num_threads: torch CPU threads per process (``None``: at most 2).
        num_workers: DataLoader worker processes building batches ahead of the model (decoding, windowing,
            collation; :class:`jat_train.loader.BatchLoader`); 0 builds them in the training process. Either way
            the batches and the resumed position are the same.
        log_every: write a log record every this many steps.
        eval_every, eval_episodes, eval_envs: periodic evaluation with ``jat_train.evaluate.evaluate`` on the
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
    tokenizer: str | None = None
    max_steps: int = 1000
    output_dir: str = "runs/jat"
    resume: bool = False
    save_every: int = 500
    save_total_limit: int | None = 3
    seed: int = 0
    batch_size: int = 8
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


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        step: the last completed step.
        output_dir: the run's directory.
        checkpoint: the last checkpoint written or resumed from (``None`` if none).
        records: the log records of the steps this call ran.
    """

    step: int
    output_dir: str
    checkpoint: str | None
    records: list[dict] = field(default_factory=list)


class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient) became NaN or infinite; the run stopped before updating the weights."""


# -- set-up -------------------------------------------------------------------------------------------------


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
    if config.mixed_precision != "auto":
        return config.mixed_precision
    if not config.cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def autocast_dtype(config: TrainConfig) -> torch.dtype | None:
    """The autocast dtype of the forward pass (``None``: full precision); master weights and the optimizer stay
    fp32 either way."""
    return {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[_precision(config)]


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


def build_model(config: TrainConfig, tokenizer, registry=None):
    """A fresh ``JatModel`` from the preset (or ``init_from``), with kappa and the tokenizer's vocabulary.

    Args:
        config: the run's settings (``preset``, ``model_overrides``, ``kappa``, ``init_from``).
        tokenizer: its size sets ``vocab_size`` unless an override does.
        registry: the plugin registry that provides the codecs (default: every installed plugin).
    """
    from jat_core.config import JatConfig
    from jat_core.model import JatModel

    overrides = dict(config.model_overrides)
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


# -- logging ------------------------------------------------------------------------------------------------


class RunLog:
    """``OUT/log.jsonl`` (one JSON object per logged step), TensorBoard events and a tqdm bar (main process)."""

    def __init__(self, output_dir: str, *, start: int, total: int, enabled: bool, progress: bool):
        self.enabled = enabled
        self.path = os.path.join(output_dir, LOG_FILE)
        self.writer = self.bar = None
        if not enabled:
            return
        _truncate_log(self.path, start)
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.file = open(self.path, "a")
        self.writer = SummaryWriter(os.path.join(output_dir, "tensorboard"), purge_step=start + 1)
        self.bar = tqdm(total=total, initial=start, disable=not progress, desc="jat-train", dynamic_ncols=True)

    def step(self, record: dict, write: bool) -> None:
        """Advance the bar; with ``write``, append ``record`` to the log and TensorBoard."""
        if not self.enabled:
            return
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", task=record["task"], refresh=False)
        if write:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def scalar(self, name: str, value: float, step: int) -> None:
        """One TensorBoard scalar (main process)."""
        if self.enabled:
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        """Flush and close."""
        if self.enabled:
            self.bar.close()
            self.writer.close()
            self.file.close()


def _truncate_log(path: str, last_step: int) -> None:
    """Drop records after ``last_step`` (steps a killed run logged after its last checkpoint)."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    keep = [line for line in lines if json.loads(line).get("step", 0) <= last_step]
    if len(keep) != len(lines):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(keep)
        os.replace(tmp, path)


def read_log(output_dir: str) -> list[dict]:
    """The records of ``OUT/log.jsonl``."""
    with open(os.path.join(output_dir, LOG_FILE)) as f:
        return [json.loads(line) for line in f if line.strip()]


# -- the loop -----------------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    *,
    registry=None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
) -> TrainResult:
    """Train (or resume training) a JAT model.

    Args:
        config: the run's settings.
        registry: a ``jat_core.Registry`` to take tasks from (default: ``load_plugins(config.plugins)``).
        callbacks: each called as ``callback(step, record)`` on every process after every optimizer step.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DataError: missing or malformed data (the message names the task, episode and field).
        NonFiniteLossError: the loss or gradient became NaN/inf; the weights of that step were not applied and
            the last checkpoint is intact.
    """
    from accelerate.utils import set_seed
    from jat_core.plugins import load_plugins
    from transformers import get_linear_schedule_with_warmup

    accelerator = make_accelerator(config)
    if accelerator.device.type == "cpu" or config.num_threads:
        torch.set_num_threads(config.num_threads or max(1, min(2, (os.cpu_count() or 1) // accelerator.num_processes)))
    set_seed(config.seed)
    registry = registry if registry is not None else load_plugins(config.plugins)
    tasks = registry.select(config.tasks)
    if not tasks:
        raise ValueError("no task selected: check --plugins and --tasks")
    out = config.output_dir
    if accelerator.is_main_process:
        os.makedirs(out, exist_ok=True)
        ckpt.remove_partial(out)
    accelerator.wait_for_everyone()
    resume_from = None
    if config.resume:  # the newest undamaged checkpoint; damaged ones are named (and skipped, or stop the run)
        resume_from = ckpt.resume_checkpoint(out, warn=logger.warning if accelerator.is_main_process else None)
        if resume_from is None:
            logger.warning("--resume: no checkpoint in %s, starting from scratch", out)

    sources = open_sources(  # first: missing data is reported before anything is built
        tasks, config.data, rank=accelerator.process_index, world_size=accelerator.num_processes, seed=config.seed,
        streaming=config.streaming, shuffle_buffer=config.shuffle_buffer,
    )
    tokenizer = load_run_tokenizer(config, tasks, resume_from)
    model = build_model(config, tokenizer, registry)
    model.train()
    processor = make_processor(model, tokenizer)
    batches = BatchLoader(
        build_batches(
            tasks,
            sources,
            processor=processor,
            batch_size=config.batch_size,
            max_position_embeddings=model.config.max_position_embeddings,
            seed=config.seed,
        ),
        num_workers=config.num_workers,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        betas=tuple(config.adam_betas),
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
    # stepped by hand once per optimizer step (accelerate would step it once per process)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)

    step = 0
    if resume_from is not None:
        state, data_state = ckpt.load_checkpoint(
            resume_from, accelerator=accelerator, model=model, optimizer=optimizer, scheduler=scheduler
        )
        step = int(state["step"])
        if data_state is not None:
            batches.load_state_dict(data_state)
        else:
            logger.warning("checkpoint written by %s processes: the data restart from the beginning",
                           state.get("world_size"))
        logger.info("resumed from %s (step %d)", resume_from, step)

    amp = Amp.for_run(config, accelerator.device)
    run_state = {"config": _jsonable(config), "tasks": [t.name for t in tasks]}
    log = RunLog(out, start=step, total=config.max_steps, enabled=accelerator.is_main_process,
                 progress=config.progress)
    last_checkpoint, records = resume_from, []
    try:
        while step < config.max_steps:
            record = _optimizer_step(config, accelerator, model, optimizer, scheduler, batches, step + 1, amp)
            step += 1
            if step % config.log_every == 0 or step == config.max_steps:
                records.append(record)
            log.step(record, write=step % config.log_every == 0 or step == config.max_steps)
            for callback in callbacks:
                callback(step, record)
            if step % config.save_every == 0 or step == config.max_steps:
                last_checkpoint = ckpt.save_checkpoint(
                    out, step, accelerator=accelerator, model=model, optimizer=optimizer, scheduler=scheduler,
                    data_state=batches.state_dict(), trainer_state=run_state, tokenizer=tokenizer,
                    keep=config.save_total_limit,
                )
            if config.eval_every and step % config.eval_every == 0:
                _evaluate(config, accelerator, model, tasks, tokenizer, step, log)
    except NonFiniteLossError as exc:
        raise NonFiniteLossError(
            f"{exc}; the run stopped without applying this update; last good checkpoint: "
            f"{last_checkpoint or 'none'} (continue from it with --resume)"
        ) from None
    finally:
        log.close()
        batches.close()
    accelerator.wait_for_everyone()
    return TrainResult(step=step, output_dir=out, checkpoint=last_checkpoint, records=records)


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


def _optimizer_step(config, accelerator, model, optimizer, scheduler, batches, step: int, amp: Amp) -> dict:
    """Run ``grad_accum`` batches and one optimizer update; return the step's log record."""
    start = time.perf_counter()
    # sums over this rank's batches: loss, action loss, batches with one, observation loss, batches with one,
    # tokens
    stats = torch.zeros(6, dtype=torch.float64, device=accelerator.device)
    tasks = []
    lr = scheduler.get_last_lr()[0]
    grad_norm = None
    for _ in range(config.grad_accum):
        batch = next(batches).to(accelerator.device)
        tasks.append(batch.task)
        with accelerator.accumulate(model):
            with torch.autocast(accelerator.device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
                output = model(**batch.inputs)
            loss = output.loss
            accelerator.backward(loss if amp.scaler is None else amp.scaler.scale(loss))
            stats[0] += loss.detach().double()
            for i, part in ((1, output.action_loss), (3, output.observation_loss)):
                if part is not None:
                    stats[i] += part.detach().double()
                    stats[i + 1] += 1
            stats[5] += batch.num_tokens
            if accelerator.sync_gradients:
                stats = accelerator.reduce(stats, reduction="sum")
                if not torch.isfinite(stats[:5]).all():
                    raise NonFiniteLossError(
                        f"step {step} (task {', '.join(dict.fromkeys(tasks))}): the loss is not finite "
                        f"(loss {stats[0].item()}, action loss {stats[1].item()}, "
                        f"observation loss {stats[3].item()})"
                    )
                if amp.scaler is not None:
                    amp.scaler.unscale_(optimizer)
                if config.max_grad_norm:
                    grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm))
                    if not math.isfinite(grad_norm) and amp.scaler is None:  # fp16: the scaler skips the step
                        raise NonFiniteLossError(
                            f"step {step} (task {', '.join(dict.fromkeys(tasks))}): the gradient norm is {grad_norm}"
                        )
                if amp.scaler is not None:
                    amp.scaler.step(optimizer)
                    amp.scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    batches_total = config.grad_accum * accelerator.num_processes
    values = stats.tolist()
    record = {
        "step": step,
        "loss": values[0] / batches_total,
        "action_loss": values[1] / values[2] if values[2] else None,
        "observation_loss": values[3] / values[4] if values[4] else None,
        "task": ",".join(dict.fromkeys(tasks)),
        "lr": lr,
        "tokens_per_s": values[5] / seconds,
        "seconds": seconds,
    }
    if grad_norm is not None:
        record["grad_norm"] = grad_norm
    return record


def _evaluate(config, accelerator, model, tasks, tokenizer, step: int, log: RunLog) -> None:
    """Periodic evaluation on the main process (the others wait); results in ``OUT/eval.jsonl``."""
    if accelerator.is_main_process:
        from jat_train.evaluate import evaluate

        env_tasks = [t for t in tasks if t.make_env is not None]
        if env_tasks:
            unwrapped = accelerator.unwrap_model(model)
            unwrapped.eval()
            with torch.no_grad():
                results = evaluate(
                    unwrapped, env_tasks, episodes=config.eval_episodes, num_envs=config.eval_envs,
                    seed=config.seed, out=os.path.join(config.output_dir, "eval", f"step-{step}"),
                    progress=False, agent_kwargs={"tokenizer": tokenizer},
                )
            unwrapped.train()
            with open(os.path.join(config.output_dir, EVAL_FILE), "a") as f:
                f.write(json.dumps({"step": step, **_jsonable(results)}) + "\n")
            for name, scores in results["tasks"].items():
                log.scalar(f"eval/{name}/return", scores["mean"], step)
            if results["all"].get("iqm") is not None:
                log.scalar("eval/iqm", results["all"]["iqm"], step)
    accelerator.wait_for_everyone()


def _jsonable(value: Any) -> Any:
    """A JSON-serialisable copy (dataclasses as dicts, tuples as lists, other objects as strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


# -- command line -------------------------------------------------------------------------------------------


def build_parser():
    """The ``jat-train`` argument parser."""
    import argparse

    from jat_core.cli import add_debug_flag

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="jat-train",
        description="Train a JAT model on the tasks of the installed plugins. Runs on one CPU or, with "
        "`accelerate launch --num_processes N jat-train ...`, on N processes (DDP).",
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
    p.add_argument("--grad-accum", "--gradient-accumulation-steps", dest="grad_accum", type=int,
                   default=d.grad_accum, help="batches per optimizer step per process (default: %(default)s)")
    p.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=d.learning_rate)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="0: no clipping")
    p.add_argument("--kappa", type=float, help="observation-loss weight; actions get 1 - kappa (default: the "
                   "model config's, 0.005)")
    p.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default=d.mixed_precision,
                   help="auto: bf16 where the device supports it (default: %(default)s)")
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


def _main(argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = config_from_args(argv)
    check_paths(config)
    result = train(config)
    print(f"jat-train: {result.step} steps; checkpoint {result.checkpoint}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jat-train``; returns the exit code (2: bad input, data or checkpoint, 1: non-finite loss;
    see :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-train", _main, argv, exit_codes={NonFiniteLossError: 1})


if __name__ == "__main__":  # `accelerate launch -m jat_train.trainer ...`
    raise SystemExit(main())
