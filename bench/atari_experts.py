"""The Atari experts' scores and cost: each plays episodes seeded 0..N-1 on its task's env, as ``jat-collect`` runs it.

For each task: the mean and std of the returns, the expert-normalised score of the mean,
``(mean - random) / (expert - random)`` with the reference table's constants (``TaskSpec.scores``), the episode
lengths, and the milliseconds per step spent in the policy (the expert's own cost: RAM and screen reads, its
look-ahead on the emulator) and in the env's ``step``, timed with ``time.perf_counter``.

    python bench/atari_experts.py                                  # every Atari task with an expert, 10 episodes
    python bench/atari_experts.py --tasks atari-boxing,atari-skiing --episodes 3 --json

``jat-eval --policy expert --tasks ... --out DIR`` gives the same returns (episode ``j`` seeded ``j`` with
``--seed 0``) with the bootstrap intervals of an evaluation, without the timings.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def play(spec, seed: int) -> dict:
    """One episode of ``spec``'s expert from ``reset(seed=seed)``: return, steps, policy and env seconds."""
    env = spec.make_env()
    try:
        obs, _ = env.reset(seed=seed)
        policy = spec.expert(env)
        total, steps, policy_s, env_s = 0.0, 0, 0.0, 0.0
        while True:
            t0 = time.perf_counter()
            action = policy(obs)
            t1 = time.perf_counter()
            obs, reward, terminated, truncated, _ = env.step(action)
            env_s += time.perf_counter() - t1
            policy_s += t1 - t0
            total, steps = total + float(reward), steps + 1
            if terminated or truncated:
                return {"return": total, "steps": steps, "policy_s": policy_s, "env_s": env_s}
    finally:
        env.close()


def measure(spec, episodes: int) -> dict:
    """``episodes`` episodes (seeds 0..episodes-1) of one task's expert, summarised."""
    runs = [play(spec, seed) for seed in range(episodes)]
    returns = np.array([r["return"] for r in runs])
    steps = sum(r["steps"] for r in runs)
    mean = float(returns.mean())
    return {
        "task": spec.name,
        "episodes": episodes,
        "returns": returns.tolist(),
        "return_mean": mean,
        "return_std": float(returns.std()),
        "normalised": spec.scores.normalize(mean) if spec.scores is not None else None,
        "steps_mean": steps / episodes,
        "policy_ms_per_step": 1000 * sum(r["policy_s"] for r in runs) / steps,
        "env_ms_per_step": 1000 * sum(r["env_s"] for r in runs) / steps,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure the experts; print one line per task (or JSON lines with ``--json``). Returns the exit status."""
    from jat_core.plugins import load_plugins

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: every Atari task with an expert)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per task, seeded 0..N-1 (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per task")
    args = p.parse_args(argv)
    registry = load_plugins()
    if args.episodes <= 0:
        p.error(f"--episodes must be positive, got {args.episodes}")
    if args.tasks:
        try:
            specs = [registry.task(name) for name in args.tasks.split(",")]
        except KeyError as exc:
            p.error(f"--tasks: {exc.args[0]}")
    else:
        specs = [registry.task(n) for n in registry.domains()["atari"] if registry.task(n).expert is not None]
    missing = [s.name for s in specs if s.expert is None]
    if missing:
        p.error(f"--tasks: no expert for {', '.join(missing)}")
    for spec in specs:
        row = measure(spec, args.episodes)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        norm = "n/a" if row["normalised"] is None else f"{row['normalised']:.3f}"
        print(
            f"{row['task']:<16} return {row['return_mean']:9.1f} +- {row['return_std']:7.1f}  normalised {norm}  "
            f"steps/episode {row['steps_mean']:7.0f}  policy {row['policy_ms_per_step']:.2f} ms/step  "
            f"env {row['env_ms_per_step']:.2f} ms/step",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
