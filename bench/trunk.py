"""Time JatTrunk against transformers' eager GPTNeoModel on the same weights, 1 CPU thread.

For every size and token count, both models are built from one GPTNeoConfig with identical weights
(``load_state_dict``), their outputs are checked to agree, and then forward (no grad) and forward+backward
are timed, interleaved (eager, ours, eager, ours, ...) after one warm-up; the median over repeats is kept.
The clock is the process's CPU time by default (``--clock cpu``): with one thread it equals wall time on an
idle machine, and it is far less disturbed by other jobs on a shared one; ``--clock wall`` uses wall time.

    python bench/trunk.py                              # table, tiny and small, 512 and 1024 tokens
    python bench/trunk.py --sizes tiny --tokens 512 --repeats 2
    python bench/trunk.py --json                       # one JSON object per case

JSON fields: ``size, tokens, batch, eager_s, ours_s, speedup`` for forward+backward (the numbers the targets
apply to), plus ``fwd_eager_s, fwd_ours_s, fwd_speedup`` for the forward alone and ``max_abs_diff``.
Targets (small size, forward+backward): >= 1.3x at 512 tokens, >= 1.5x at 1024 tokens.

The ceiling. ``floor_s`` is the forward+backward time of the trunk's linear layers alone (q, k, v, out, c_fc,
c_proj of every block, each on its own ``(batch, tokens, in)`` input: ``x W^T`` forward, ``dx``, ``dW``, ``db``
backward), timed in the same interleaved loop. Any implementation that computes the same function in fp32 does at
least this work, so ``bound = eager_s / floor_s`` is the highest speed-up one could measure in that run; where it
is below a target, no exact fp32 trunk can meet the target on that machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from jat_core.trunk import JatTrunk
from transformers import GPTNeoConfig, GPTNeoModel

SIZES = {
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=4),
    "small": dict(hidden_size=768, num_layers=12, num_heads=12),
}
TARGETS = {("small", 512): 1.3, ("small", 1024): 1.5}
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def make_config(size: str, tokens: int) -> GPTNeoConfig:
    """GPT-Neo config of a bench size, alternating global/local layers, window 256, room for ``tokens``."""
    dims = SIZES[size]
    return GPTNeoConfig(
        vocab_size=50257,
        max_position_embeddings=max(512, tokens),
        attention_types=[[["global", "local"], dims["num_layers"] // 2]],
        window_size=256,
        **dims,
    )


def time_forward(model: torch.nn.Module, ids: torch.Tensor) -> float:
    """Seconds for one forward pass without gradients."""
    start = clock()
    with torch.no_grad():
        model(input_ids=ids)
    return clock() - start


def time_forward_backward(model: torch.nn.Module, ids: torch.Tensor) -> float:
    """Seconds for one forward pass, a mean-square loss and its backward pass (gradients then dropped)."""
    start = clock()
    model(input_ids=ids).last_hidden_state.square().mean().backward()
    elapsed = clock() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def time_linear_floor(model: torch.nn.Module, batch: int, tokens: int) -> float:
    """Seconds for forward+backward of every ``nn.Linear`` of ``model.h`` alone, on random inputs and gradients."""
    total = 0.0
    for layer in (m for m in model.h.modules() if isinstance(m, torch.nn.Linear)):
        x = torch.randn(batch, tokens, layer.in_features, requires_grad=True)
        grad = torch.randn(batch, tokens, layer.out_features)
        start = clock()
        layer(x).backward(grad)
        total += clock() - start
    model.zero_grad(set_to_none=True)
    return total


def run_case(size: str, tokens: int, batch: int, repeats: int) -> dict:
    """Build both models with one set of weights, check they agree, time them interleaved; return the case."""
    torch.manual_seed(0)
    config = make_config(size, tokens)
    eager = GPTNeoModel(config).train()  # dropouts are 0: train mode only keeps autograd bookkeeping real
    ours = JatTrunk(config).train()
    ours.load_state_dict(eager.state_dict(), strict=True)
    ids = torch.randint(0, config.vocab_size, (batch, tokens))
    with torch.no_grad():
        diff = (eager(input_ids=ids).last_hidden_state - ours(input_ids=ids).last_hidden_state).abs().max()

    times = {key: [] for key in ("fwd_eager", "fwd_ours", "eager", "ours", "floor")}
    for rep in range(repeats + 1):  # rep 0 is the warm-up
        pairs = [("eager", eager), ("ours", ours)]
        if rep % 2:  # alternate who goes first
            pairs.reverse()
        sample = {}
        for name, model in pairs:
            sample[f"fwd_{name}"] = time_forward(model, ids)
        for name, model in pairs:
            sample[name] = time_forward_backward(model, ids)
        sample["floor"] = time_linear_floor(ours, batch, tokens)
        if rep:
            for key, value in sample.items():
                times[key].append(value)
    med = {key: statistics.median(values) for key, values in times.items()}
    return {
        "size": size,
        "tokens": tokens,
        "batch": batch,
        "eager_s": round(med["eager"], 4),
        "ours_s": round(med["ours"], 4),
        "speedup": round(med["eager"] / med["ours"], 3),
        "fwd_eager_s": round(med["fwd_eager"], 4),
        "fwd_ours_s": round(med["fwd_ours"], 4),
        "fwd_speedup": round(med["fwd_eager"] / med["fwd_ours"], 3),
        "floor_s": round(med["floor"], 4),
        "bound": round(med["eager"] / med["floor"], 3),
        "max_abs_diff": float(diff),
    }


def main(argv: list[str] | None = None) -> None:
    """Parse options, run every (size, tokens) case, print a table or JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--tokens", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    if args.repeats < 1:
        parser.error(f"--repeats: expected >= 1, got {args.repeats}")
    torch.set_num_threads(args.threads)

    if not args.json:
        print(f"{'size':>6} {'tokens':>6} | {'fwd eager':>9} {'fwd ours':>9} {'x':>6} | "
              f"{'f+b eager':>9} {'f+b ours':>9} {'x':>6} {'target':>6} | {'floor':>6} {'bound':>6} | {'max diff':>8}")
    for size in args.sizes:
        for tokens in args.tokens:
            case = run_case(size, tokens, args.batch, args.repeats)
            if args.json:
                print(json.dumps(case), flush=True)
                continue
            target = TARGETS.get((size, tokens))
            target_s = f"{target:.1f}x" if target else "-"
            print(f"{size:>6} {tokens:>6} | {case['fwd_eager_s']:9.3f} {case['fwd_ours_s']:9.3f} "
                  f"{case['fwd_speedup']:5.2f}x | {case['eager_s']:9.3f} {case['ours_s']:9.3f} "
                  f"{case['speedup']:5.2f}x {target_s:>6} | {case['floor_s']:6.3f} {case['bound']:5.2f}x | "
                  f"{case['max_abs_diff']:8.1e}", flush=True)


if __name__ == "__main__":
    main()
