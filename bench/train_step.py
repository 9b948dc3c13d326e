"""Time one training step (forward + backward) of a JAT model in fp32 and in bf16 autocast, per modality.

The batches are the reference's measurement (docs/benchmarks.md, "The reference code"): batch 2 of continuous
(256 steps, obs 27 / act 8), BabyAI (256 steps of 148 ints + a 64-token mission / 7 actions), Atari (32 steps
of 84x84x4 frames / 18 actions) and text (512 tokens). Both precisions run in the same process on the same
weights, alternating (fp32, bf16, fp32, ...), ``--repeats`` times after a warm-up each; the fastest repeat
counts (the machine may be shared: the minimum is the least disturbed measurement of the same work). bf16 is
``torch.autocast`` with fp32 master weights, what ``jat-train --mixed-precision bf16`` runs.

    python bench/train_step.py --preset small --json
    python bench/train_step.py --preset tiny --cases continuous,text --repeats 2

JSON fields (one object per case): ``case, preset, batch, fp32_s, bf16_s, speedup`` (fp32 / bf16),
``loss_fp32, loss_bf16`` (the same batch's loss in both precisions) and ``reference_s`` (the reference code's
fp32 step on this kind of machine, docs/benchmarks.md, where measured).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from jat_core.config import JatConfig
from jat_core.memory import keep_freed_memory
from jat_core.model import JatModel

#: the reference's fp32 training step, batch 2, 1 thread, jat-small (docs/benchmarks.md, "The reference code")
REFERENCE_S = {"small": {"continuous": 9.1, "babyai": 11.4, "atari": 1.5, "text": None}}


def batch(case: str, vocab: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """A random batch of 2 in the model's column names."""
    B = 2
    if case == "continuous":
        T = 256
        return dict(continuous_observations=torch.randn(B, T, 27, generator=g),
                    continuous_actions=torch.rand(B, T, 8, generator=g) * 2 - 1, rewards=torch.randn(B, T, generator=g))
    if case == "babyai":
        T = 256
        return dict(discrete_observations=torch.randint(0, 212, (B, T, 212), generator=g),
                    discrete_actions=torch.randint(0, 7, (B, T), generator=g), rewards=torch.rand(B, T, generator=g))
    if case == "atari":
        T = 32
        return dict(image_observations=torch.rand(B, T, 4, 84, 84, generator=g) * 2 - 1,
                    discrete_actions=torch.randint(0, 18, (B, T), generator=g), rewards=torch.rand(B, T, generator=g))
    if case == "text":
        return dict(input_ids=torch.randint(0, vocab, (B, 512), generator=g))
    raise ValueError(f"unknown case {case!r}")


def step(model: JatModel, inputs: dict, bf16: bool) -> tuple[float, float]:
    """One forward + backward; returns (seconds, loss)."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**inputs).loss
    loss.backward()
    return time.perf_counter() - start, float(loss.detach())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["tiny", "small"], default="small")
    parser.add_argument("--cases", default="continuous,babyai,atari,text")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per precision; the fastest counts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="leave glibc's malloc as it is (by default freed blocks are kept, as jat-train does: jat_core.memory)")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if not args.no_keep_memory:
        keep_freed_memory()
    torch.manual_seed(0)
    model = JatModel(JatConfig.from_preset(args.preset)).train()
    g = torch.Generator().manual_seed(0)
    for case in args.cases.split(","):
        inputs = batch(case, model.config.vocab_size, g)
        times: dict[bool, list[float]] = {False: [], True: []}
        losses: dict[bool, float] = {}
        for bf16 in (False, True):  # warm-up
            step(model, inputs, bf16)
        for _ in range(args.repeats):
            for bf16 in (False, True):
                seconds, losses[bf16] = step(model, inputs, bf16)
                times[bf16].append(seconds)
        fp32, bf16 = min(times[False]), min(times[True])
        row = {"case": case, "preset": args.preset, "batch": 2, "fp32_s": round(fp32, 3), "bf16_s": round(bf16, 3),
               "speedup": round(fp32 / bf16, 2), "loss_fp32": round(losses[False], 5),
               "loss_bf16": round(losses[True], 5), "reference_s": REFERENCE_S.get(args.preset, {}).get(case)}
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{case:10s} fp32 {fp32:7.3f} s  bf16 {bf16:7.3f} s  speedup {fp32 / bf16:5.2f}x  "
                  f"loss {losses[False]:.4f} / {losses[True]:.4f}  (reference fp32 {row['reference_s']} s)", flush=True)


if __name__ == "__main__":
    main()
