"""Time the incremental agent against a naive agent that recomputes its whole context every step, 1 CPU thread.

For each case (continuous: obs 39 / act 4; babyai: 148 ints + a 64-token mission / 7 actions; atari: 84x84x4
frames / 18 actions) and each number of envs, one random model of the preset plays random observations:

- ours: ``model.agent(task)``; the context is first filled (``--context`` steps, untimed), then ``--steps`` calls
  of ``act`` are timed (default: one whole sliding period, ``context - keep + 1`` steps, so the re-encoding at
  each slide is amortised exactly as in a long episode), ``--repeats`` times in a row; the fastest repeat counts
  (the machine may be shared: the minimum is the least disturbed measurement of the same work);
- baseline (the naive agent, same model, same run): every step, process the raw observations, actions and
  rewards of the last ``--context`` steps and run ``model(...)`` over all of them (observation decoder and full
  vocabulary head included, as ``forward`` does), then take the last step's action; fastest of
  ``--baseline-steps`` steps.

    python bench/agent.py --preset tiny --json
    python bench/agent.py --preset small --cases continuous --envs 1 --steps 32 --baseline-steps 2

``--dtype bf16`` acts with bf16 weights and cache (``model.to(torch.bfloat16)``) and adds
``agreement_with_fp32`` (1-env rows): how often its action equals the fp32 model's on the same observations.

JSON fields (one object per case): ``case, preset, num_envs, context_steps, steps, ms_per_step, dtype,
baseline_ms_per_step, speedup`` (baseline / ours), ``env_steps_per_s``, ``throughput_vs_1_env`` (env-steps per
second relative to the same case with 1 env, when measured) and ``reference_ms_per_action`` (the reference
code's incremental API on this kind of machine, 1 env: docs/benchmarks.md, "The reference code").
Targets: speedup >= 10 for every 1-env case; 16 envs >= 8x the env-steps per second of 1 env.

Where batching can help. With ``N`` envs a step costs about ``fixed + N * per_env`` ms: the fixed part is the
per-call work (Python, input checks, one small kernel launch per op), the per-env part is compute that grows with
the batch (reading each env's KV cache in attention, the linear layers on its two new tokens, the amortised
re-encoding of its window at each slide). For rows with ``N > 1`` after a 1-env row, ``fixed_ms`` and
``per_env_ms`` are that line through the two measurements. ``N`` envs give ``N (fixed + per_env) / (fixed + N
per_env)`` times the env-steps per second of one env, so 16 envs reach 8x only when ``per_env <= fixed / 14``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from jat_core.config import JatConfig
from jat_core.memory import keep_freed_memory
from jat_core.model import JatModel
from jat_core.processor import JatProcessor
from jat_core.specs import FieldSpec, TaskSpec
from jat_core.tokenizer import build_tokenizer

CASES = {
    "continuous": TaskSpec(
        "bench-continuous", "bench", (FieldSpec("continuous_observations", "continuous", (39,), "float32"),),
        FieldSpec("continuous_actions", "continuous", (4,), "float32", low=-1.0, high=1.0),
    ),
    "babyai": TaskSpec(
        "bench-babyai", "bench",
        (FieldSpec("discrete_observations", "discrete", (148,), "int64", n=11),
         FieldSpec("text_observations", "discrete", (), "string", max_tokens=64)),
        FieldSpec("discrete_actions", "discrete", (), "int64", n=7),
    ),
    "atari": TaskSpec(
        "bench-atari", "bench", (FieldSpec("image_observations", "image", (84, 84, 4), "uint8", low=0, high=255),),
        FieldSpec("discrete_actions", "discrete", (), "int64", n=18),
    ),
}
#: the reference's ms per action, 1 env, 1 thread (docs/benchmarks.md, "The reference code")
REFERENCE_MS = {
    "small": {"continuous": 62.0, "atari": 100.0, "babyai": 92.0},
    "tiny": {"continuous": 2.7, "atari": 15.0, "babyai": 4.3},
}
WORDS = "go to the red ball pick up a blue key open door put next green box purple grey yellow".split()
POOL = 8  # distinct observation batches, cycled


def observations(task: TaskSpec, n: int, rng: np.random.Generator) -> dict:
    """One random ``(n, ...)`` observation batch of ``task``."""
    out = {}
    for f in task.observation:
        if f.dtype == "string":
            out[f.name] = [" ".join(rng.choice(WORDS, size=6)) for _ in range(n)]
        elif f.dtype == "uint8":
            out[f.name] = rng.integers(0, 256, size=(n, *f.shape), dtype=np.uint8)
        elif f.n is not None:
            out[f.name] = rng.integers(0, f.n, size=(n, *f.shape), dtype=np.int64)
        else:
            out[f.name] = rng.standard_normal((n, *f.shape)).astype(np.float32)
    return out


def time_ours(
    model, task, tokenizer, pool, n: int, context: int, steps: int | None, repeats: int = 1
) -> tuple[float, int]:
    """ms per ``act`` call of the incremental agent with a full context (fastest of ``repeats`` runs of ``steps``
    calls), and the number of timed steps per run."""
    agent = model.agent(task, tokenizer=tokenizer, context_steps=context)
    agent.reset(n)
    rewards = np.ones(n, dtype=np.float32)
    for t in range(context):  # fill the context
        agent.act(pool[t % POOL], rewards)
    steps = steps or context - agent.keep_steps + 1  # one sliding period
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for t in range(steps):
            agent.act(pool[t % POOL], rewards)
        best = min(best, 1e3 * (time.perf_counter() - start) / steps)
    return best, steps


def agreement(model, reference, task, tokenizer, pool, steps: int) -> float:
    """How often ``model`` picks ``reference``'s action, both fed the same observations for ``steps`` steps (each
    keeps its own action history); for continuous actions, the fraction of steps whose actions agree within 0.05."""
    agents = [m.agent(task, tokenizer=tokenizer, context_steps=steps) for m in (model, reference)]
    for a in agents:
        a.reset(1)
    same = []
    rewards = np.ones(1, dtype=np.float32)
    for t in range(steps):
        x, y = (a.act(pool[t % POOL], rewards) for a in agents)
        same.append(bool(np.all(x == y)) if task.action.n else bool(np.abs(x - y).max() <= 0.05))
    return round(float(np.mean(same)), 3)


def time_baseline(model, task, tokenizer, pool, n: int, context: int, steps: int) -> float:
    """ms per step of the naive agent: one full forward over the last ``context`` steps for every action."""
    processor = JatProcessor.from_model(model, tokenizer)
    window = [pool[t % POOL] for t in range(context)]
    raw = {}
    for f in task.observation:
        if f.dtype == "string":
            raw[f.name] = np.array([[w[f.name][i] for w in window] for i in range(n)], dtype=object)  # (n, T)
        else:
            raw[f.name] = np.stack([w[f.name] for w in window], axis=1)  # (n, T, ...)
    action = task.action
    actions = np.zeros((n, context, *action.shape), dtype=np.int64 if action.n else np.float32)
    rewards = np.ones((n, context), dtype=np.float32)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.no_grad():
            batch = processor.prepare_observations(task, raw)
            batch |= processor.prepare_actions(task, actions)
            batch |= processor.prepare_rewards(rewards)
            pred = model(**batch, return_loss=False).pred_actions[:, -1]
            chosen = pred[:, : action.n].argmax(-1) if action.n else pred.clamp(action.low, action.high)
        actions[:, -1] = chosen.float().numpy()
        times.append(1e3 * (time.perf_counter() - start))
    return min(times)  # as for ours: the least disturbed step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--envs", default="1,16", help="comma-separated numbers of envs")
    parser.add_argument("--context", type=int, default=256, help="steps in context")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: one sliding period)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours; the fastest counts")
    parser.add_argument("--baseline-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="leave glibc's malloc as it is (by default freed blocks are kept, as jat-eval does: jat_core.memory)")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="weights and cache of the model that acts (bf16: half the bytes to stream per step)")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if not args.no_keep_memory:
        keep_freed_memory()
    torch.manual_seed(0)
    tokenizer = build_tokenizer([" ".join(WORDS)] * 20, vocab_size=300)
    model = JatModel(JatConfig.from_preset(args.preset)).eval()
    reference = model  # fp32, for the agreement of bf16 actions
    if args.dtype == "bf16":
        model = JatModel(JatConfig.from_preset(args.preset)).eval()
        model.load_state_dict(reference.state_dict())
        model = model.to(torch.bfloat16)
    rng = np.random.default_rng(0)
    ours_1_env: dict[str, float] = {}  # case -> ms per step with 1 env
    for case in args.cases.split(","):
        task = CASES[case]
        for n in (int(e) for e in args.envs.split(",")):
            pool = [observations(task, n, rng) for _ in range(POOL)]
            ours, steps = time_ours(model, task, tokenizer, pool, n, args.context, args.steps, args.repeats)
            base = time_baseline(model, task, tokenizer, pool, n, args.context, args.baseline_steps)
            rate = 1e3 * n / ours
            if n == 1:
                ours_1_env[case] = ours
            row = {
                "case": case, "preset": args.preset, "num_envs": n, "context_steps": args.context, "steps": steps,
                "ms_per_step": round(ours, 3), "baseline_ms_per_step": round(base, 3),
                "speedup": round(base / ours, 2), "env_steps_per_s": round(rate, 1),
                "throughput_vs_1_env": round(n * ours_1_env[case] / ours, 2) if case in ours_1_env else None,
                "reference_ms_per_action": REFERENCE_MS[args.preset][case], "dtype": args.dtype,
            }
            if args.dtype != "fp32" and n == 1:
                row["agreement_with_fp32"] = agreement(model, reference, task, tokenizer, pool, args.context)
            if n > 1 and case in ours_1_env:
                per_env = (ours - ours_1_env[case]) / (n - 1)
                row |= {"fixed_ms": round(ours_1_env[case] - per_env, 3), "per_env_ms": round(per_env, 3)}
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{case:10s} envs={n:3d} ours {ours:9.2f} ms/step  naive {base:10.2f} ms/step  "
                      f"speedup {base / ours:7.1f}x  {rate:8.1f} env-steps/s  x1env {row['throughput_vs_1_env']}  "
                      + (f"fixed {row['fixed_ms']} + {row['per_env_ms']}/env ms  " if "fixed_ms" in row else "")
                      + f"(reference {row['reference_ms_per_action']} ms/action)", flush=True)


if __name__ == "__main__":
    main()
