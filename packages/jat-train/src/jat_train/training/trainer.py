"""The training loop: one process or many (``accelerate launch``), weighted multi-task, resumable.

    result = train(TrainConfig(plugins="mydomain", tasks="mydomain", data="data/", output_dir="runs/x"))

Per optimizer step, each rank runs ``grad_accum`` one-task batches (tasks drawn by sample weight, the same task
on every rank, each rank reading its own shard), backpropagates through ``accelerate`` (DDP across processes,
bf16 autocast where the device has it), clips the gradient, checks that the loss is finite, and steps AdamW and
its linear schedule. Every step is logged to ``OUT/log.jsonl`` and TensorBoard (:mod:`jat_train.training.runlog`); every
``save_every`` steps an atomic checkpoint is written (:mod:`jat_train.training.checkpoint`). One run at a time writes an
output folder (:mod:`jat_train.run_lock`): a second one is refused, naming the first's pid. ``resume=True``
continues from the latest complete checkpoint exactly as if the run had never stopped, bit for bit on CPU, for
local data, hub data read without streaming, and streamed hub data with ``--hub-shuffle-buffer 0`` or ``1``. With a
larger streaming shuffle buffer (the default) the rest of the epoch interrupted by the checkpoint differs, since
``datasets`` does not save the episodes waiting in the buffer; every later epoch is the same
(:class:`jat_train.data.sources.StreamEpisodes`).

The settings and the ``jat-train`` command line that fills them are :mod:`jat_train.training.train_config`, what a run is
built from (accelerator, precision, tokenizer, model, processor) is :mod:`jat_train.training.run_setup`; this module keeps
the loop and the entry point (:func:`main`, also ``python -m jat_train.training.trainer`` and ``accelerate launch -m
jat_train.training.trainer``) and re-exports their names.

The loop knows no domain, modality or column: data come from :mod:`jat_train.data` through the processor, and
the model decides what to do with them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jat_core.memory import keep_freed_memory

# re-exported (the F401 lines): names that lived here before the settings, command line, log and set-up moved out
from jat_train.data import BatchLoader, build_batches, open_sources
from jat_train.files import append_line
from jat_train.run_lock import RunLockError, run_lock
from jat_train.training import checkpoint as ckpt
from jat_train.training.input_stats import run_normalization
from jat_train.training.run_setup import (
    Amp,
    build_model,
    load_run_tokenizer,
    make_accelerator,
    make_processor,
)
from jat_train.training.runlog import EVAL_FILE, RunLog, read_log  # noqa: F401
from jat_train.training.train_config import TrainConfig, check_paths, config_from_args

logger = logging.getLogger(__name__)


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
        RunLockError: another live process is writing ``output_dir`` (a lock left by a dead one is taken over,
            with a warning).
    """
    from accelerate.utils import set_seed
    from jat_core.plugins import load_plugins

    accelerator = make_accelerator(config)
    if accelerator.device.type == "cpu" or config.num_threads:
        torch.set_num_threads(config.num_threads or max(1, min(2, (os.cpu_count() or 1) // accelerator.num_processes)))
    if accelerator.device.type == "cpu":
        keep_freed_memory()  # a step's large tensors reuse the last step's memory instead of faulting it in anew
    set_seed(config.seed)
    registry = registry if registry is not None else load_plugins(config.plugins)
    tasks = registry.select(config.tasks)
    if not tasks:
        raise ValueError("no task selected: check --plugins and --tasks")
    with _output_lock(accelerator, config.output_dir):
        return _train(config, accelerator, registry, tasks, callbacks)


@contextlib.contextmanager
def _output_lock(accelerator, out: str) -> Iterator[None]:
    """The run lock of ``out`` (:func:`jat_train.run_lock.run_lock`), held by the main process for the run.

    Raises:
        RunLockError: on every rank, when another live process is writing ``out``.
    """
    from accelerate.utils import broadcast_object_list

    with contextlib.ExitStack() as held:
        refused: list[str | None] = [None]
        if accelerator.is_main_process:
            try:
                held.enter_context(run_lock(out, prog="jat-train", field="--output-dir", warn=logger.warning))
            except RunLockError as exc:
                refused = [str(exc)]
        if accelerator.num_processes > 1:  # the other ranks stop too, instead of waiting for the main one
            refused = broadcast_object_list(refused)
        if refused[0] is not None:
            raise RunLockError(refused[0])
        yield


def _train(config: TrainConfig, accelerator, registry, tasks: list, callbacks) -> TrainResult:
    """:func:`train` once its output folder is locked."""
    from transformers import get_linear_schedule_with_warmup

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
    model = build_model(config, tokenizer, registry, run_normalization(config, tasks, resume_from))
    model.train()
    processor = make_processor(model, tokenizer)
    stream = build_batches(
        tasks,
        sources,
        processor=processor,
        batch_size=config.batch_size,
        max_position_embeddings=model.config.max_position_embeddings,
        seed=config.seed,
        batch_tokens=config.batch_tokens,
        task_batch_size=config.task_batch_size,
    )
    if accelerator.is_main_process and config.batch_tokens:
        logger.info("windows per batch (--batch-tokens %d): %s", config.batch_tokens, stream.batch_sizes)
    batches = BatchLoader(stream, num_workers=config.num_workers)
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
    logger.info("precision (--mixed-precision %s): %s", config.mixed_precision,
                "fp32" if amp.dtype is None else f"{amp.dtype} autocast, fp32 master weights")
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
        from jat_train.evaluation.evaluate import evaluate

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
            append_line(os.path.join(config.output_dir, EVAL_FILE), json.dumps({"step": step, **_jsonable(results)}))
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


if __name__ == "__main__":  # `accelerate launch -m jat_train.training.trainer ...`
    raise SystemExit(main())
