"""Evaluation: roll out a policy in vector envs, score the episodes, aggregate per domain.

:func:`evaluate` is what ``jat-eval`` (:func:`main`) and the training loop's periodic evaluation call::

    results = evaluate(model, tasks, episodes=10, num_envs=4, seed=0, out="runs/eval")

For each task it runs exactly ``episodes`` episodes in a gymnasium vector env of ``num_envs`` envs (fewer when
``episodes`` is smaller), with a batched policy (:mod:`jat_train.evaluation.policies`): a model's agent, the task's expert
or a random policy. The work is done in two rooms, whose names this module re-exports:

- :mod:`jat_train.evaluation.rollouts`: the vector envs and the stepping loop (:func:`make_vector_env`,
  :func:`run_episodes`, :func:`episode_schedule`), and their determinism: episode ``j`` of a task is always
  seeded ``seed + j``, so the random and expert policies' returns depend only on ``seed``, not on ``num_envs``;
- :mod:`jat_train.evaluation.results`: the results dict (:func:`summarize`, :func:`task_scores`: per task the raw mean and
  std of the returns and the normalised scores, per domain and over all tasks the IQM of the normalised scores
  with a 95% stratified bootstrap interval) and its files (:func:`write_report_files`: ``results.json`` and the
  plots).

This module keeps :func:`evaluate`, loading a saved model to act (:func:`load_model`) and the ``jat-eval``
command line (:func:`build_parser`, :func:`main`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from jat_core.specs import TaskSpec
from tqdm.auto import tqdm

# re-exported (the F401 lines): names that lived here before the rollouts and the results moved out
from jat_train.evaluation.policies import PolicyLike
from jat_train.evaluation.results import _task_line, policy_name, summarize, write_report_files
from jat_train.evaluation.rollouts import (  # noqa: F401
    VECTOR_KINDS,
    VIDEO_EPISODES,
    _accepts,
    episode_schedule,
    make_vector_env,
    run_episodes,
)
from jat_train.evaluation.scores import DEFAULT_REPS
from jat_train.evaluation.taskpool import map_tasks

logger = logging.getLogger(__name__)


def evaluate(
    policy: PolicyLike,
    tasks: Sequence[TaskSpec],
    episodes: int,
    num_envs: int = 1,
    seed: int = 0,
    out: str | None = None,
    video: bool = False,
    progress: bool = True,
    *,
    vector: str = "sync",
    max_steps: int | None = None,
    reps: int = DEFAULT_REPS,
    video_episodes: int = VIDEO_EPISODES,
    agent_kwargs: dict[str, Any] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate a policy on tasks and return the results dict (see :func:`summarize`).

    Args:
        policy: a model (``JatModel``), ``"random"``, ``"expert"``, or a factory
            ``f(task, envs) -> BatchPolicy``.
        tasks: tasks to evaluate; each needs ``make_env``.
        episodes: episodes per task.
        num_envs: envs run side by side per task.
        seed: seed of the episodes and of the bootstrap.
        out: directory for ``results.json``, the plots and the videos; ``None``: write nothing.
        video: record the first ``video_episodes`` episodes of each task to ``out/videos/<task>/``.
        progress: show tqdm bars and a line per task.
        vector: ``"sync"`` or ``"async"`` vector envs.
        max_steps: optional cap on episode length.
        reps: bootstrap replicates.
        video_episodes: episodes recorded per task with ``video``.
        agent_kwargs: passed to the model's agent (e.g. a tokenizer).
        workers: processes that run whole tasks side by side (:func:`jat_train.evaluation.taskpool.map_tasks`); the results
            are the same as with one.

    Returns:
        The results dict, plus ``policy``, ``seed``, ``num_envs`` and (with video) ``videos``.
    """
    if video and out is None:
        raise ValueError("evaluate: video=True needs an output directory (out)")
    if not tasks:
        raise ValueError("evaluate: no task to evaluate")
    def play(task: TaskSpec) -> dict[str, Any]:
        video_dir = os.path.join(out, "videos", task.name) if video and out is not None else None
        run = run_episodes(task, policy, episodes, num_envs, seed, vector=vector, max_steps=max_steps,
                           video_dir=video_dir, video_episodes=video_episodes,
                           progress=progress and workers <= 1, agent_kwargs=agent_kwargs)
        return {"returns": run["returns"], "lengths": run["lengths"]}

    done: dict[str, dict[str, Any]] = {}
    for task, run in map_tasks(play, list(tasks), workers):
        done[task.name] = run
        if progress:
            tqdm.write(_task_line(task, run["returns"]))
    returns = {t.name: done[t.name]["returns"] for t in tasks}  # in the tasks' order, wherever they ran
    lengths = {t.name: done[t.name]["lengths"] for t in tasks}
    results = summarize(tasks, returns, seed=seed, reps=reps)
    for name, ls in lengths.items():
        results["tasks"][name]["episode_lengths"] = ls
    results.update({"policy": policy_name(policy), "seed": seed, "num_envs": num_envs})
    if out is not None:
        write_report_files(results, out)
    return results


# -- jat-eval ------------------------------------------------------------------------------------------------


def build_parser():
    """The ``jat-eval`` argument parser."""
    import argparse

    from jat_core.cli import add_debug_flag

    p = argparse.ArgumentParser(
        prog="jat-eval",
        description="Evaluate a JAT model (or a random / expert policy) on tasks: scores, IQM with 95% "
        "bootstrap CIs per domain, plots and optional videos in OUT/.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--model", metavar="DIR", help="model directory (JatModel.save_pretrained, tokenizer beside)"
    )
    who.add_argument("--policy", choices=["random", "expert"], help="evaluate a reference policy instead")
    p.add_argument(
        "--tasks", default=None, help="comma-separated task and/or domain names (default: all with an env)"
    )
    p.add_argument("--episodes", type=int, default=10, help="episodes per task (default 10)")
    p.add_argument("--num-envs", type=int, default=10,
                   help="envs run side by side per task, one batched model call per step (default %(default)s)")
    p.add_argument("--out", required=True, help="output directory (results.json, PNG plots, videos/)")
    p.add_argument("--seed", type=int, default=0, help="episode j of a task is seeded SEED + j (default 0)")
    p.add_argument(
        "--plugins", default=None, help="comma-separated plugin names (default: all, or $JAT_PLUGINS)"
    )
    p.add_argument("--video", action="store_true", help="record the first episodes of each task as GIFs")
    p.add_argument("--video-episodes", type=int, default=VIDEO_EPISODES, help="episodes recorded per task")
    p.add_argument("--max-steps-per-episode", type=int, default=None, help="truncate longer episodes")
    p.add_argument("--vector", choices=VECTOR_KINDS, default="sync", help="vector env kind (default sync)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that each run whole tasks, side by side (one torch thread each; the scores "
                   "are the same as with one; default: one per CPU core, or 1 for a model on a GPU)")
    p.add_argument("--reps", type=int, default=DEFAULT_REPS, help="bootstrap replicates (default 2000)")
    p.add_argument("--device", default=None, help="torch device of the model (default: cuda if available)")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32",
                   help="weights of the model that acts (bf16: faster per action on CPU; default fp32)")
    p.add_argument("--actions", choices=["sample", "argmax"], default="sample",
                   help="how a model chooses an action it scores as a choice among n (the action codec's choose): a "
                   "draw from the softmax, seeded by --seed (the reference JAT's get_next_action default: a policy "
                   "imitated from an expert that saw more than the agent does not get stuck repeating its most likely "
                   "action), or the most likely one; predicted action values are used as they are either way "
                   "(default sample)")
    p.add_argument("--temperature", type=float, default=1.0, help="divides the logits before a draw (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the local data the model was trained on (jat-collect's --out): adds each task's data "
                   "return and data-normalised score, (R - random) / (data - random); with --model, also scores the "
                   "tasks without an env (language modelling, captioning) on its held-out test split: perplexity "
                   "against the unigram baseline, caption accuracy against chance")
    p.add_argument("--samples", type=int, default=200, metavar="N",
                   help="held-out samples scored per task without an env (default: %(default)s)")
    add_debug_flag(p)
    return p


def default_workers(policy: Any) -> int:
    """``jat-eval``'s default ``--workers``: one per CPU core, or 1 for a model on a GPU (a forked process cannot
    use CUDA that its parent started)."""
    device = getattr(policy, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return 1
    return os.cpu_count() or 1


#: ``--dtype`` choices: the weights (and so the agent's cache) of the model that acts
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def load_model(path: str, device: str | None = None, dtype: str = "fp32") -> tuple[Any, dict[str, Any]]:
    """Load a saved model for evaluation, and the keyword arguments its agent needs.

    ``dtype="bf16"`` acts with bf16 weights: half the bytes streamed per step (about twice as fast per action at
    jat-small on one CPU thread); ``bench/agent.py --dtype bf16`` reports how often its actions equal fp32's.

    The tokenizer saved beside the model (if any) is passed to the agent as ``tokenizer`` (string fields such
    as a mission are tokenized with it).

    Returns:
        ``(model, agent_kwargs)``.

    Raises:
        UserError: a local-looking ``path`` that does not exist, or a model or tokenizer that does not load
            (missing, damaged or unexpected files: the message keeps what ``from_pretrained`` said).
    """
    import torch
    from jat_core.cli import UserError, check_source
    from jat_core.model import JatModel

    path = check_source(path, "--model")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = JatModel.from_pretrained(path)
    except Exception as exc:  # strict loading: missing/unexpected weights, damaged files, unknown config fields
        raise UserError(f"--model {path!r}: cannot load the model ({type(exc).__name__}: {exc})") from exc
    model = model.to(device=device, dtype=getattr(torch, DTYPES[dtype])).eval()
    agent_kwargs: dict[str, Any] = {}
    has_tokenizer = any(
        os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer_config.json")
    )
    from jat_core.agent import JatAgent

    if has_tokenizer and _accepts(getattr(model, "agent", JatAgent), "tokenizer"):
        from jat_core.tokenizer import load_tokenizer

        try:
            agent_kwargs["tokenizer"] = load_tokenizer(path)
        except Exception as exc:
            raise UserError(f"--model {path!r}: cannot load its tokenizer ({type(exc).__name__}: {exc})") from exc
    return model, agent_kwargs


def _main(argv: list[str] | None) -> int:
    from jat_core.cli import UserError, check_output_dir, check_source
    from jat_core.memory import keep_freed_memory
    from jat_core.plugins import load_plugins

    from jat_train.data import local_path

    args = build_parser().parse_args(argv)
    for name in ("episodes", "num_envs", "video_episodes", "reps", "samples", "workers"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not args.temperature > 0:
        raise UserError(f"--temperature must be positive, got {args.temperature}")
    if args.max_steps_per_episode is not None and args.max_steps_per_episode <= 0:
        raise UserError(f"--max-steps-per-episode must be positive, got {args.max_steps_per_episode}")
    check_output_dir(args.out, "--out")
    if args.model is not None:
        args.model = check_source(args.model, "--model")
    keep_freed_memory()  # large tensors (a bf16 copy of a token table) reuse freed memory, no page faults
    registry = load_plugins(args.plugins)
    selected = registry.select(args.tasks)
    tasks = [t for t in selected if t.make_env is not None]
    # tasks without an env (text, captions) are scored on their held-out data: they need a model and --data
    text_tasks = [t for t in selected if t.make_env is None and not t.is_rl] if args.model and args.data else []
    no_data = [t.name for t in text_tasks if not os.path.isdir(local_path(t, args.data))]
    if no_data:
        logger.warning("skipping %d task(s) without local data under %s: %s", len(no_data), args.data,
                       ", ".join(no_data))
        text_tasks = [t for t in text_tasks if t.name not in no_data]
    skipped = [t.name for t in selected if t.make_env is None and t.name not in {x.name for x in text_tasks}
               and t.name not in no_data]
    if skipped:
        logger.warning("skipping %d task(s) without an environment (scored with --model and --data): %s",
                       len(skipped), ", ".join(skipped))
    if args.policy == "expert":
        no_expert = [t.name for t in tasks if t.expert is None]
        if no_expert:
            logger.warning("skipping %d task(s) without an expert: %s", len(no_expert), ", ".join(no_expert))
        tasks = [t for t in tasks if t.expert is not None]
    if not tasks and not text_tasks:
        raise UserError(f"no task to evaluate among {args.tasks or 'all tasks'}")

    if args.model is not None:
        policy, agent_kwargs = load_model(args.model, args.device, args.dtype)
        agent_kwargs.update(deterministic=args.actions == "argmax", temperature=args.temperature, seed=args.seed)
    else:
        policy, agent_kwargs = args.policy, {}
    if tasks:
        results = evaluate(
            policy,
            tasks,
            args.episodes,
            args.num_envs,
            args.seed,
            out=args.out,
            video=args.video,
            progress=not args.no_progress,
            vector=args.vector,
            max_steps=args.max_steps_per_episode,
            reps=args.reps,
            video_episodes=args.video_episodes,
            agent_kwargs=agent_kwargs,
            workers=default_workers(policy) if args.workers is None else args.workers,
        )
    else:
        results = summarize([], {}, seed=args.seed, reps=args.reps)
        results.update({"policy": policy_name(policy), "seed": args.seed, "num_envs": args.num_envs})
    if text_tasks:
        results["text_tasks"] = _text_scores(policy, args.model, text_tasks, args.data, args.samples)
    if args.data is not None:
        from jat_train.evaluation.datascore import add_data_scores

        add_data_scores(results, tasks, args.data)
    if args.model is not None:
        results["policy"] = args.model
        results["actions"] = {"choice": args.actions, "temperature": args.temperature}
    if args.model is not None or args.data is not None:
        write_report_files(results, args.out)
    for name, agg in [*results["domains"].items(), ("all", results["all"])]:
        if agg.get("iqm") is not None:
            data = agg.get("data_normalized_iqm")
            print(
                f"{name}: IQM {agg['iqm']:.3f} [{agg['ci_low']:.3f}, {agg['ci_high']:.3f}] ({agg['num_tasks']} tasks)"
                + ("" if data is None else f"; data-normalised IQM {data:.3f}")
            )
    for name, scores in results.get("text_tasks", {}).items():
        print(text_line(name, scores))
    print(f"results in {os.path.join(args.out, 'results.json')}")
    return 0


def _text_scores(model: Any, path: str, tasks: list[TaskSpec], data: str, samples: int) -> dict[str, Any]:
    """:func:`jat_train.evaluation.textscore.text_task_scores` with the tokenizer saved beside the model.

    Raises:
        UserError: the model directory holds no tokenizer that loads.
    """
    from jat_core.cli import UserError
    from jat_core.tokenizer import load_tokenizer

    from jat_train.evaluation.textscore import text_task_scores

    try:
        tokenizer = load_tokenizer(path)
    except Exception as exc:
        raise UserError(f"--model {path!r}: tasks without an env need the tokenizer saved beside the model, which "
                        f"does not load ({type(exc).__name__}: {exc})") from exc
    return text_task_scores(model, tokenizer, tasks, data, samples=samples)


def text_line(name: str, scores: dict[str, Any]) -> str:
    """One line for a text task's scores: perplexity against the unigram baseline, caption accuracy vs chance."""
    line = (f"{name}: held-out perplexity {scores['perplexity']:.2f} (unigram baseline "
            f"{scores['unigram_perplexity']:.2f}) over {scores['tokens']} tokens")
    caption = scores.get("caption")
    if caption:
        line += (f"; captions exactly right {caption['exact']:.3f} (chance {caption['chance']:.3f}, most frequent "
                 f"caption {caption['majority_exact']:.3f}) on {caption['samples']} held-out images")
    return line


def main(argv: list[str] | None = None) -> int:
    """``jat-eval``: parse ``argv``, evaluate, write ``OUT/``, print the aggregates. Returns the exit code (2: bad
    input, or a model that does not load; see :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-eval", _main, argv)
