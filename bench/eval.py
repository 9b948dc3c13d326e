"""Evaluation throughput: ``jat-eval``'s env-steps per second on a suite of real tasks, four ways, 1 torch thread.

Every mode runs the whole suite (``--episodes`` episodes of each of ``--tasks``, seed ``--seed``) through
:func:`jat_train.evaluation.evaluate.evaluate`, what ``jat-eval`` calls, timed with ``time.perf_counter`` from the first env
built to the last closed (env construction, agent construction, stepping, scoring):

- ``reference``: ``num_envs=1``, sync: one env at a time through our agent (the reference's way of evaluating);
- ``batched``: ``num_envs=N`` (``--num-envs``), ``SyncVectorEnv``: one batched ``act`` for ``N`` envs per step;
- ``async``: ``num_envs=N``, ``vector="async"``: gymnasium's ``AsyncVectorEnv`` steps the envs in ``N`` worker
  processes while the main process runs the model;
- ``workers``: ``num_envs=N``, sync, and ``--workers W`` processes each running whole tasks (``jat-eval
  --workers``): every core works;
- ``envs_only``: the same episodes (same seeds) with the ``"random"`` policy in a sync vector env of ``N`` envs:
  no model, the cost of stepping (and building, resetting) the envs alone, the floor the others can't beat;
- ``envs_only_workers``: ``envs_only`` spread over ``W`` processes, the floor at the parallelism of ``workers``.

The model is ``--model DIR`` (``JatModel.from_pretrained``, the tokenizer beside it) or, by default, a random
``--preset`` model with a small BPE tokenizer trained on mission-like strings. A random model rarely finishes a
BabyAI or Meta-World episode, so most episodes run to their time limit: the cost of a realistic evaluation, not
its scores. ``--max-steps-per-episode`` caps episodes (smoke runs). One untimed warm-up (1 episode, 2 steps of
every task, model and random policy) pays the imports and first-call costs before the timed modes.

    python bench/eval.py                          # 10 BabyAI + 10 Meta-World tasks, 10 episodes each, N=10
    python bench/eval.py --json --model runs/jat-tiny
    python bench/eval.py --tasks babyai-go-to-local,metaworld-reach --episodes 2 --max-steps-per-episode 5 \\
        --num-envs 2 --json

JSON fields (one object per mode): ``mode, num_envs, tasks`` (how many), ``episodes`` (per task), ``env_steps``
(the steps of the counted episodes: the sum of ``episode_lengths`` over tasks), ``seconds``, ``env_steps_per_s``,
``speedup_vs_reference`` (this mode's env-steps per second over ``reference``'s) and ``env_share``: the fraction
of the mode's time that stepping its envs alone would take, ``envs_only`` seconds per env-step x ``env_steps`` /
``seconds`` (``envs_only_workers``'s for the ``workers`` mode; 1.0 for a floor itself; close to 1: the run is as
fast as its envs allow). A value is ``null`` when the mode it needs was not run (``--modes``).

Counting. With ``N`` envs, an env that has run its share of a task's episodes keeps stepping (its episodes are
ignored) until the task's last episode ends: those steps cost time but are not counted, in every batched mode
alike. The random policy's episodes may end at other steps than the model's; ``env_share`` compares costs per
step, so it holds as long as a step of an env costs about the same whatever the action. ``envs_only`` builds
``N`` envs per task as the batched modes do, the reference one: with very short episodes (smoke runs) building
envs dominates and ``reference``'s ``env_share`` can exceed 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

BABYAI = [
    "babyai-go-to-local", "babyai-pickup-loc", "babyai-go-to-red-blue-ball", "babyai-go-to-door",
    "babyai-open-red-door", "babyai-pickup-dist", "babyai-go-to-obj-door", "babyai-go-to-obj", "babyai-open-door",
    "babyai-go-to-red-ball-no-dists",
]
METAWORLD = [
    "metaworld-reach", "metaworld-reach-wall", "metaworld-door-close", "metaworld-plate-slide",
    "metaworld-faucet-open", "metaworld-drawer-open", "metaworld-button-press-topdown", "metaworld-coffee-push",
    "metaworld-push", "metaworld-door-open",
]
MODES = ("reference", "batched", "async", "workers", "envs_only", "envs_only_workers")
#: strings like BabyAI's missions, for the random model's tokenizer
MISSIONS = [
    f"{verb} {art} {color} {obj}"
    for verb in ("go to", "pick up", "open", "put next to")
    for art in ("the", "a")
    for color in ("red", "green", "blue", "purple", "yellow", "grey")
    for obj in ("ball", "box", "key", "door")
]


def random_model(preset: str):
    """A random ``preset`` model (seed 0) and the agent keyword arguments (a BPE tokenizer for missions)."""
    from jat_core.config import JatConfig
    from jat_core.model import JatModel
    from jat_core.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(MISSIONS * 4, vocab_size=300)
    model = JatModel(JatConfig.from_preset(preset)).eval()
    assert model.config.vocab_size >= len(tokenizer)
    return model, {"tokenizer": tokenizer}


def run_mode(policy, tasks, args, num_envs: int, vector: str, agent_kwargs, episodes=None, max_steps=None,
             workers: int = 1):
    """Evaluate ``policy`` on ``tasks``; returns (counted env steps, seconds)."""
    from jat_train.evaluation.evaluate import evaluate

    start = time.perf_counter()
    results = evaluate(
        policy, tasks, episodes or args.episodes, num_envs, args.seed, progress=False, vector=vector,
        max_steps=max_steps or args.max_steps_per_episode, reps=args.reps, agent_kwargs=agent_kwargs,
        workers=workers,
    )
    seconds = time.perf_counter() - start
    steps = sum(sum(r["episode_lengths"]) for r in results["tasks"].values())
    return steps, seconds


def fmt(value: float | None) -> str:
    """A ratio for the table (``-`` when not measured)."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"


def build_parser() -> argparse.ArgumentParser:
    """The command line of this bench."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(BABYAI + METAWORLD), help="comma-separated task names")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task")
    parser.add_argument("--num-envs", type=int, default=10, help="N, envs side by side in the batched modes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="W, processes of the workers modes")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--model", default=None, metavar="DIR", help="a saved model (default: a random one)")
    parser.add_argument("--preset", choices=["tiny", "small"], default="tiny", help="the random model's size")
    parser.add_argument("--max-steps-per-episode", type=int, default=None, help="truncate longer episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--reps", type=int, default=100, help="bootstrap replicates of evaluate's scores")
    parser.add_argument("--json", action="store_true", help="one JSON object per mode")
    return parser


def print_rows(measured: dict[str, tuple[int, int, float]], setups: dict, args: argparse.Namespace,
               tasks: list) -> None:
    """One row per mode: env steps per second, against one env at a time and against the envs-alone floor.

    Args:
        measured: mode -> (envs side by side, env steps, seconds).
        setups: mode -> (policy, envs, vector kind, agent options, worker processes).
    """
    def rate(mode: str) -> float:
        _, steps, seconds = measured[mode]
        return steps / seconds

    if not args.json:
        print(f"{len(tasks)} tasks x {args.episodes} episodes, N={args.num_envs}, {args.threads} thread(s)")
        print(f"{'mode':10s} {'envs':>4s} {'env_steps':>9s} {'seconds':>8s} {'steps/s':>9s} {'vs ref':>7s} "
              f"{'env share':>9s}")
    for mode, (k, steps, seconds) in measured.items():
        speedup = rate(mode) / rate("reference") if "reference" in measured else None
        share = None
        floor = "envs_only_workers" if setups[mode][4] > 1 else "envs_only"  # the floor at the same parallelism
        if floor in measured:
            _, floor_steps, floor_seconds = measured[floor]
            share = floor_seconds / floor_steps * steps / seconds
        row = {
            "mode": mode, "num_envs": k, "tasks": len(tasks), "episodes": args.episodes, "env_steps": steps,
            "seconds": round(seconds, 3), "env_steps_per_s": round(rate(mode), 1),
            "speedup_vs_reference": None if speedup is None else round(speedup, 3),
            "env_share": None if share is None else round(share, 3),
        }
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{mode:10s} {k:4d} {steps:9d} {seconds:8.2f} {rate(mode):9.1f} {fmt(speedup):>7s} "
                  f"{fmt(share):>9s}")


def main(argv: list[str] | None = None) -> None:
    """Time every mode of ``--modes`` on the suite and print their env steps per second."""
    parser = build_parser()
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; modes: {', '.join(MODES)}")

    torch.set_num_threads(args.threads)
    from jat_core import load_plugins

    registry = load_plugins()
    tasks = [registry.task(name) for name in args.tasks.split(",")]
    if args.model is not None:
        from jat_train.evaluation.evaluate import load_model

        model, agent_kwargs = load_model(args.model, "cpu")
    else:
        model, agent_kwargs = random_model(args.preset)

    # untimed warm-up: imports, first env of every task, first model calls
    run_mode(model, tasks, args, 1, "sync", agent_kwargs, episodes=1, max_steps=2)
    run_mode("random", tasks, args, 1, "sync", None, episodes=1, max_steps=2)

    n = args.num_envs
    w = args.workers
    setups = {"reference": (model, 1, "sync", agent_kwargs, 1), "batched": (model, n, "sync", agent_kwargs, 1),
              "async": (model, n, "async", agent_kwargs, 1), "workers": (model, n, "sync", agent_kwargs, w),
              "envs_only": ("random", n, "sync", None, 1), "envs_only_workers": ("random", n, "sync", None, w)}
    measured: dict[str, tuple[int, int, float]] = {}  # mode -> (num_envs, env steps, seconds)
    for mode in modes:
        policy, k, vector, kwargs, workers = setups[mode]
        steps, seconds = run_mode(policy, tasks, args, k, vector, kwargs, workers=workers)
        measured[mode] = (k, steps, seconds)
        print(f"# {mode}: {steps} env steps in {seconds:.2f} s", file=sys.stderr, flush=True)
    print_rows(measured, setups, args, tasks)


if __name__ == "__main__":
    main()
