"""Collection throughput: ``jat-collect``'s env-steps per second per core, this checkout against a baseline one.

Each side runs in fresh processes (``--worker``) whose ``PYTHONPATH`` holds the four packages of its checkout
(``packages/*/src``), so both run the same timing code around their own
:func:`jat_train.collection.recording.collect`, what ``jat-collect`` calls for a task with an env. For every
task a worker first collects one untimed episode (imports, Meta-World's goal list drawn once per process), then times ``collect(task, episodes, seed)``: wall time
(``perf_counter``) and the process's CPU time (``process_time``, one core's seconds: the per-core rate under
contention), env construction, rollouts and the ``datasets`` conversion included, writing to disk excluded. Then
it collects the same episodes again with the env's ``step``/``reset`` and the expert's calls timed (the profile
split: env, expert, the rest is recording: checks, per-step lists, encoding, arrow conversion).

The sides alternate in each of ``--rounds`` rounds (baseline first in even rounds, this checkout first in odd
ones); a ratio is this checkout's rate over the baseline's in the same round, and the table shows each ratio's
median over the rounds. ``same data`` compares a digest of everything collected (every split, column and value)
between the sides: the optimisations must not change what is collected.

    git worktree add /tmp/jat-main main                          # the baseline's code
    python bench/collect.py --baseline /tmp/jat-main --rounds 5
    python bench/collect.py --tasks babyai-go-to,metaworld-reach --episodes 2 --rounds 1 --json   # a smoke run

JSON (``--json``), one object per task then one per domain (``task`` is ``"domain:<name>"``) and one for all
(``"all"``): ``steps`` (env steps per collection), ``rate`` and ``cpu_rate`` (this checkout's median env-steps
per second, wall and CPU), ``env_share, expert_share, recording_share`` (fractions of this checkout's time), and
with a baseline ``base_rate, base_cpu_rate, speedup, cpu_speedup`` (median ratios) and ``same_data``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

BABYAI = ["babyai-go-to", "babyai-pickup-loc", "babyai-synth-seq", "babyai-open-two-doors"]
METAWORLD = ["metaworld-reach", "metaworld-push", "metaworld-door-open"]
PACKAGES = ("jat-core", "jat-codecs", "jat-envs", "jat-train")


# -- worker: one checkout's collection, timed -----------------------------------------------------------------
def digest(data) -> str:
    """sha256 of every value of a ``DatasetDict`` (splits, columns and rows in order)."""
    h = hashlib.sha256()
    for name, split in data.items():
        h.update(name.encode())
        h.update(json.dumps(split.to_dict(), sort_keys=True).encode())
    return h.hexdigest()


def timed_task(task):
    """``task`` whose env's ``step``/``reset`` and expert's calls add their seconds to the returned dict."""
    import dataclasses

    import gymnasium as gym

    spent = {"env": 0.0, "expert": 0.0}

    class Timed(gym.Wrapper):
        def step(self, action):
            start = time.perf_counter()
            try:
                return self.env.step(action)
            finally:
                spent["env"] += time.perf_counter() - start

        def reset(self, **kwargs):
            start = time.perf_counter()
            try:
                return self.env.reset(**kwargs)
            finally:
                spent["env"] += time.perf_counter() - start

    def expert(env):
        start = time.perf_counter()
        policy = task.expert(env)
        spent["expert"] += time.perf_counter() - start

        def timed(observation):
            begin = time.perf_counter()
            try:
                return policy(observation)
            finally:
                spent["expert"] += time.perf_counter() - begin

        return timed

    return dataclasses.replace(task, make_env=lambda: Timed(task.make_env()), expert=expert), spent


def worker(tasks: list[str], episodes: int, seed: int) -> None:
    """Collect each task, timed, and print one JSON line per task."""
    from jat_core.plugins import load_plugins

    try:
        from jat_train.collection.recording import collect
    except ImportError:  # a baseline checkout from before jat-train's rooms
        from jat_train.recording import collect

    registry = load_plugins(None)
    for name in tasks:
        (task,) = registry.select(name)
        collect(task, 1, seed=seed + 1, progress=False)  # untimed: first calls, Meta-World's goal list
        wall, cpu = time.perf_counter(), time.process_time()
        data = collect(task, episodes, seed=seed, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        split_task, spent = timed_task(task)
        start = time.perf_counter()
        collect(split_task, episodes, seed=seed, progress=False)
        total = time.perf_counter() - start
        steps = sum(len(r) for split in data.values() for r in split["rewards"])
        print(json.dumps({"task": name, "steps": steps, "seconds": wall, "cpu_seconds": cpu, "digest": digest(data),
                          "env_share": spent["env"] / total, "expert_share": spent["expert"] / total}), flush=True)


# -- driver ---------------------------------------------------------------------------------------------------
def run_side(root: str, args) -> dict[str, dict]:
    """One worker process on the checkout at ``root``; its rows by task."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(os.path.join(root, "packages", p, "src") for p in PACKAGES)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--tasks", ",".join(args.tasks),
           "--episodes", str(args.episodes), "--seed", str(args.seed)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return {row["task"]: row for row in map(json.loads, out.splitlines())}


def summarize(name: str, groups: list[list[str]], ours: list[dict], base: list[dict]) -> dict:
    """Median rates and ratios of the tasks in ``groups`` (summed per round) over the rounds."""
    tasks = [t for g in groups for t in g]

    def total(side: dict, key: str) -> float:
        return sum(side[t][key] for t in tasks)

    steps = total(ours[0], "steps")
    row = {"task": name, "steps": steps,
           "rate": statistics.median(steps / total(r, "seconds") for r in ours),
           "cpu_rate": statistics.median(steps / total(r, "cpu_seconds") for r in ours)}
    seconds = total(ours[0], "seconds")
    row["env_share"] = sum(ours[0][t]["env_share"] * ours[0][t]["seconds"] for t in tasks) / seconds
    row["expert_share"] = sum(ours[0][t]["expert_share"] * ours[0][t]["seconds"] for t in tasks) / seconds
    row["recording_share"] = 1.0 - row["env_share"] - row["expert_share"]
    if base:
        base_steps = total(base[0], "steps")
        row["base_rate"] = statistics.median(base_steps / total(r, "seconds") for r in base)
        row["base_cpu_rate"] = statistics.median(base_steps / total(r, "cpu_seconds") for r in base)
        row["speedup"] = statistics.median(
            (steps / total(o, "seconds")) / (base_steps / total(b, "seconds")) for o, b in zip(ours, base))
        row["cpu_speedup"] = statistics.median(
            (steps / total(o, "cpu_seconds")) / (base_steps / total(b, "cpu_seconds")) for o, b in zip(ours, base))
        row["same_data"] = all(o[t]["digest"] == b[t]["digest"] for o, b in zip(ours, base) for t in tasks)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(BABYAI + METAWORLD), help="comma-separated task names")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and collection")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--baseline", default=None, metavar="DIR", help="a checkout of the code to compare with")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    if args.worker:
        warnings.simplefilter("ignore")  # the scripted policies warn about their constants on every episode
        return worker(args.tasks, args.episodes, args.seed)
    if args.baseline is not None and not os.path.isdir(os.path.join(args.baseline, "packages", "jat-train")):
        sys.exit(f"--baseline: expected a checkout of this project, {args.baseline!r} has no packages/jat-train")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ours, base = [], []
    for r in range(args.rounds):
        sides = [(here, ours)] + ([(args.baseline, base)] if args.baseline else [])
        for root, rows in (sides if r % 2 else sides[::-1]):
            rows.append(run_side(root, args))
    groups = {}
    for t in args.tasks:
        groups.setdefault(t.split("-")[0], []).append(t)
    rows = [summarize(t, [[t]], ours, base) for t in args.tasks]
    rows += [summarize(f"domain:{d}", [g], ours, base) for d, g in groups.items()]
    rows.append(summarize("all", list(groups.values()), ours, base))
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            ratio = f"  x{row['speedup']:.2f} wall  x{row['cpu_speedup']:.2f} cpu  same data {row['same_data']}" \
                if base else ""
            print(f"{row['task']:26s} {row['steps']:6d} steps  {row['rate']:7.0f} /s  {row['cpu_rate']:7.0f} /cpu-s"
                  f"  env {row['env_share']:.2f} expert {row['expert_share']:.2f} rec {row['recording_share']:.2f}"
                  f"{ratio}")


if __name__ == "__main__":
    main()
