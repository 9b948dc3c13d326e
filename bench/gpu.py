"""Train a JAT model in bf16 on synthetic multi-task batches through the DataLoader pipeline; tokens/s and MFU.

GPU readiness: what one accelerator trains per second, and how much of its matrix peak that is (MFU, model FLOP
utilisation). Runs anywhere: on CPU (tests, ``--preset tiny``) it is a smoke run, on a CUDA GPU the measurement.

    python bench/gpu.py                                    # jat-small, bf16, CUDA if there is one
    python bench/gpu.py --batch-size 64 --steps 20         # bigger batches: higher MFU
    python bench/gpu.py --no-compile --num-workers 8 --json
    python bench/gpu.py --preset tiny --device cpu --steps 2 --warmup 1 --batch-size 1 --num-workers 0 \\
        --no-compile --peak-tflops 1 --json              # the CPU smoke run of tests/e2e/test_bench.py

Data. Synthetic tasks of each modality, the shapes of the real ones (``--tasks``, ``name`` or ``name:weight``):
``continuous`` (MuJoCo-like: 256 steps of 27 floats / 8 float actions), ``babyai`` (256 steps of 212 ints:
148 grid values + 64 mission tokens / 7 actions), ``atari`` (32 steps of 4x84x84 frames / 18 actions), ``text``
(512 GPT-2 tokens). Each batch is ONE task, drawn by weight from a seeded generator, as
``jat_train.data.MultiTaskBatches`` does, and built by ``jat_train.data.loader.BatchLoader`` (the DataLoader workers
of ``jat-train``, ``--num-workers``) as the model tensors the processor would hand over (Atari frames are random
uint8 turned into floats in ``[-1, 1]`` by the worker, as ``ImageCodec.prepare`` does; ``--frames uint8`` ships
the uint8 frames instead and converts them on the device: 4x fewer bytes to copy). On CUDA a thread pins each
batch (page-locked memory) ahead of the loop, which copies it with ``non_blocking=True``.

Step. What ``jat-train`` runs: ``JatModel(JatConfig.from_preset(preset))`` with fp32 master weights, forward
under ``torch.autocast(bf16)`` (``--precision fp32``: none), backward, gradient clipping at 1.0, AdamW
(``fused=True`` on CUDA), ``zero_grad(set_to_none=True)``. Unlike ``jat-train`` no per-step host read of the
loss or gradient norm (a stall the GPU does not need). ``--compile`` (default on CUDA, off on CPU) compiles
the trunk (``--compile-scope trunk``: ``model.transformer.compile(dynamic=False)``, one graph per sequence
length) or the whole model (``model``: the codecs' input checks read tensors on the host, so it breaks into
graphs there). Warm-up: batches from the stream until every task had ``--warmup`` of them (compilation,
autotuning, the allocator); then timed batches until every task had ``--steps``. On CUDA each step is timed by
CUDA events around it (so it includes the wait for its batch and the host-side syncs, excludes nothing the
GPU does); the overall row is the wall clock of the whole timed phase, ``torch.cuda.synchronize`` at both ends.

FLOPs (``tflops``, ``mfu``: the trunk's, as the issue asks). For a sample of ``L`` tokens (2 per RL step,
observation + action; 1 per text token)::

    F_fwd(L) = 2 * P_lin * L  +  sum over layers l of 4 * H * K_l(L)
    P_lin    = sum of in * out over the trunk's nn.Linear layers (q, k, v, out_proj: 4 H^2; c_fc, c_proj:
               2 H I, I = 4 H) = 12 H^2 per layer (biases, LayerNorm, GELU, softmax, embeddings not counted)
    K_l(L)   = sum_{i < L} min(i + 1, W_l): the (query, key) pairs layer l's causal mask lets through
               (W = window for local layers, infinite for global ones: L (L + 1) / 2); q.k and attn.v are
               2 H FLOPs each per pair
    F_step   = 3 * B * F_fwd(L)   (training = forward + backward, backward = 2 x forward)
    MFU      = (sum of F_step over the timed steps / their seconds) / peak

jat-small (H = 768, 12 layers, window 256), L = 512: 2 P_lin = 169.9 MFLOP per token; attention 8.26 MFLOP per
token on average (4.6 %); F_step = 3 * 91.2 GFLOP = 273.6 GFLOP per sample. The codecs (encoders, decoders,
CNNs) and the token head ``lm_head`` (H x 50257, on every text token and every discrete-action step) are not
in ``tflops``; ``model_tflops`` / ``model_mfu`` count the whole model: the FLOPs ``torch.utils.flop_counter``
sees in one eager forward + backward of each task's batch (every matmul and convolution; not the optimizer),
with the attention kernels replaced by the trunk's attention term above (the counter misses the fused CPU SDPA
kernels and counts masked blocks in full).

Peak (``peak_tflops``, ``peak_source``): ``--peak-tflops`` if given; else on CUDA the dense bf16 tensor-core
peak from the data sheet of the GPU named by ``torch.cuda.get_device_name`` (table ``PEAK_TFLOPS`` below:
H100 SXM / H200 / GH200 / H800 989, H100 NVL / H200 NVL 835, H100 PCIe 756, A100 / A800 312, L40S 362, L40 181,
L4 121, B200 2250; sparsity never counted); else (CPU, or a GPU not in the table) a measured peak: the best
of a few square matmuls in the run's precision. ``--measure-peak`` also measures it on a GPU of the table
(``gemm_tflops`` in the overall row: what the chip's GEMMs reach here, against which MFU can be read too).

JSON fields (``--json``: one object per task, then one ``"case": "overall"``): ``case, preset, device,
device_name, precision, compile, num_workers, batch, steps`` (timed steps), ``tokens_per_step, step_s`` (mean),
``tokens_per_s, tflops`` (trunk FLOP/s, 1e12), ``peak_tflops, peak_source, mfu`` (fraction, not %),
``model_tflops, model_mfu, data_wait_s`` (mean host wait for the next batch), ``loss`` (the last one). The
overall row adds ``wall_s, torch, cuda, attention_block`` and ``gemm_tflops`` when measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from jat_core import trunk as trunk_module
from jat_core.config import JatConfig
from jat_core.model import JatModel
from jat_train.data import Batch
from jat_train.data.loader import BatchLoader
from torch import nn

#: Dense bf16 tensor-core peaks, TFLOP/s, from the data sheets; the first name found in the device name wins.
PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
]

#: Synthetic tasks: kind, timesteps (RL) or tokens (text), default sample weight.
TASKS = {
    "continuous": dict(steps=256, weight=1.0),
    "babyai": dict(steps=256, weight=1.0),
    "atari": dict(steps=32, weight=1.0),
    "text": dict(steps=512, weight=1.0),
}
FRAME = (84, 84, 4)  # Atari frames as stored: height, width, stacked frames


def table_peak(name: str) -> float | None:
    """The data-sheet dense bf16 peak (TFLOP/s) of the GPU called ``name``, or None."""
    for key, peak in PEAK_TFLOPS:
        if key.lower() in name.lower():
            return peak
    return None


def measure_peak(device: torch.device, dtype: torch.dtype) -> float:
    """The best TFLOP/s of a few ``n x n`` matmuls in ``dtype`` (n = 8192 on CUDA, 1024 on CPU)."""
    n, repeats = (8192, 10) if device.type == "cuda" else (1024, 3)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(repeats + 1):  # the first is a warm-up
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- data ----------------------------------------------------------------------------------------------------
def frames_to_float(frames: torch.Tensor) -> torch.Tensor:
    """``(B, T, 84, 84, 4)`` uint8 -> ``(B, T, 4, 84, 84)`` float32 in ``[-1, 1]`` (``ImageCodec.prepare``)."""
    return (frames.permute(0, 1, 4, 2, 3).to(torch.float32).div(255) - 0.5) / 0.5


def make_batch(task: str, batch_size: int, vocab: int, g: torch.Generator, frames: str = "float") -> Batch:
    """A random batch of ``task`` in the model's column names, as ``jat_train.data.collate`` builds it."""
    B, T = batch_size, TASKS[task]["steps"]
    if task == "text":
        inputs = dict(input_ids=torch.randint(0, vocab, (B, T), generator=g),
                      attention_mask=torch.ones(B, T, dtype=torch.bool), loss_weight=torch.ones(B))
        return Batch(task, inputs, B * T)
    if task == "continuous":
        inputs = dict(continuous_observations=torch.randn(B, T, 27, generator=g),
                      continuous_actions=torch.rand(B, T, 8, generator=g) * 2 - 1)
    elif task == "babyai":
        grid = torch.randint(0, 12, (B, T, 148), generator=g)
        mission = torch.randint(0, vocab, (B, 1, 64), generator=g).expand(B, T, 64)
        inputs = dict(discrete_observations=torch.cat([grid, mission], dim=-1),
                      discrete_actions=torch.randint(0, 7, (B, T), generator=g))
    elif task == "atari":
        raw = torch.randint(0, 256, (B, T, *FRAME), generator=g, dtype=torch.uint8)
        inputs = dict(image_observations=raw if frames == "uint8" else frames_to_float(raw),
                      discrete_actions=torch.randint(0, 18, (B, T), generator=g))
    else:
        raise ValueError(f"unknown task {task!r}; tasks: {sorted(TASKS)}")
    inputs.update(rewards=torch.rand(B, T, generator=g), attention_mask=torch.ones(B, T, dtype=torch.bool),
                  loss_weight=torch.ones(B, T))
    return Batch(task, inputs, 2 * B * T)


class SyntheticBatches:
    """A ``MultiTaskBatches``-like stream for :class:`BatchLoader`: batch ``k``'s task is drawn by weight from a
    seeded generator and its tensors come from a generator seeded with ``(seed, k)``, so the stream is
    deterministic and :meth:`skip` costs nothing."""

    def __init__(self, tasks: dict[str, float], batch_size: int, vocab: int, *, seed: int = 0, frames: str = "float"):
        self.names = list(tasks)
        weights = np.array([tasks[n] for n in self.names], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.batch_size, self.vocab, self.seed, self.frames = batch_size, vocab, seed, frames
        self.rng = np.random.default_rng(seed)
        self.index = 0

    def _draw(self) -> tuple[str, int]:
        task = self.names[int(self.rng.choice(len(self.names), p=self.probabilities))]
        self.index += 1
        return task, self.index - 1

    def __iter__(self) -> SyntheticBatches:
        return self

    def __next__(self) -> Batch:
        task, k = self._draw()
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
        return make_batch(task, self.batch_size, self.vocab, g, self.frames)

    def skip(self) -> None:
        self._draw()

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.index = int(state["index"])


class Pinned:
    """Batches of ``loader`` in page-locked memory, pinned by a thread ``depth`` batches ahead (CUDA only)."""

    def __init__(self, loader: BatchLoader, depth: int = 2):
        self.loader, self.queue, self.stop = loader, queue.Queue(maxsize=depth), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                b = next(self.loader)
                item = Batch(b.task, {k: v.pin_memory() for k, v in b.inputs.items()}, b.num_tokens)
                while not self.stop.is_set():
                    try:
                        self.queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as exc:  # noqa: BLE001 - raised in the training loop
            self.queue.put(exc)

    def __next__(self) -> Batch:
        item = self.queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.loader.close()


# -- FLOPs ---------------------------------------------------------------------------------------------------
def trunk_flops_per_sample(model: JatModel, tokens: int) -> tuple[float, float]:
    """Training FLOPs of the trunk for one sample of ``tokens`` tokens, ``3 * F_fwd`` (module docstring), split
    into ``(linear layers, attention)``."""
    linear = sum(m.in_features * m.out_features for m in model.transformer.h.modules() if isinstance(m, nn.Linear))
    attention = 0
    for block in model.transformer.h:
        attn = block.attn.attention
        window = attn.window_size if attn.attention_type == "local" else tokens
        pairs = sum(min(i + 1, window) for i in range(tokens))
        attention += 4 * attn.embed_dim * pairs
    return 3.0 * 2 * linear * tokens, 3.0 * attention


def tokens_per_sample(task: str) -> int:
    return TASKS[task]["steps"] * (1 if task == "text" else 2)


def count_model_flops(model: JatModel, batch: Batch, device: torch.device, bf16: bool) -> float:
    """FLOPs of one eager forward + backward of ``batch`` as ``torch.utils.flop_counter`` counts them, attention
    kernels left out (they are counted analytically, as the mask lets them through: the counter misses CPU SDPA
    kernels and counts masked blocks in full)."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = to_device(batch, device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    counts = counter.get_flop_counts().get("Global", {})
    return float(sum(flops for op, flops in counts.items() if "attention" not in str(op)))


# -- the step ------------------------------------------------------------------------------------------------
def to_device(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    inputs = {k: v.to(device, non_blocking=True) for k, v in batch.inputs.items()}
    frames = inputs.get("image_observations")
    if frames is not None and frames.dtype == torch.uint8:
        inputs["image_observations"] = frames_to_float(frames)
    return inputs


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, params: list, inputs: dict, device: torch.device,
               bf16: bool) -> torch.Tensor:
    """Forward (autocast), backward, clip at 1.0, AdamW step, zero_grad; the loss stays on the device."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = model(**inputs).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


@dataclass
class Tally:
    """Timed steps of one task."""

    seconds: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    tokens: int = 0
    loss: torch.Tensor | None = None


def parse_tasks(text: str) -> dict[str, float]:
    tasks = {}
    for item in text.split(","):
        name, _, weight = item.strip().partition(":")
        if name not in TASKS:
            raise SystemExit(f"--tasks: unknown task {name!r}; tasks: {sorted(TASKS)}")
        tasks[name] = float(weight) if weight else TASKS[name]["weight"]
        if not tasks[name] > 0:
            raise SystemExit(f"--tasks: the weight of {name} must be positive, got {weight}")
    return tasks


def build_parser() -> argparse.ArgumentParser:
    """The command line of this bench."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["tiny", "small"], default="small")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per step (default: 32 CUDA, 2 CPU)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per task (at least)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per task (at least) before timing")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="DataLoader worker processes (default: min(8, CPUs / 2) on CUDA, 0 on CPU)")
    parser.add_argument("--tasks", default="continuous,babyai,atari,text", help="name or name:weight, comma-separated")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile (default: on for CUDA, off for CPU)")
    parser.add_argument("--compile-scope", choices=["trunk", "model"], default="trunk")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (e.g. max-autotune-no-cudagraphs)")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--frames", choices=["float", "uint8"], default="float",
                        help="Atari frames from the workers as floats (the jat-train processor) or uint8")
    parser.add_argument("--attention-block", type=int, default=None,
                        help="queries per SDPA call in the trunk (default: jat_core.trunk.ATTENTION_BLOCK, CPU-tuned)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak to compute MFU against")
    parser.add_argument("--measure-peak", action="store_true", help="also time a square GEMM on the device")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (CPU device only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per task, then the overall one")
    return parser


def resolve_peak(args: argparse.Namespace, device: torch.device, device_name: str, bf16: bool
                 ) -> tuple[float, str, float | None]:
    """The peak TFLOP/s to compute MFU against: ``(peak, where it comes from, the GEMM timed or None)``."""
    cuda = device.type == "cuda"
    gemm = measure_peak(device, torch.bfloat16 if bf16 else torch.float32) if args.measure_peak else None
    if args.peak_tflops:
        return args.peak_tflops, "flag", gemm
    if cuda and table_peak(device_name):
        return table_peak(device_name), "table", gemm
    return gemm or measure_peak(device, torch.bfloat16 if bf16 else torch.float32), "measured", gemm


def timed_steps(model: nn.Module, optimizer: torch.optim.Optimizer, params: list, batches, tasks: dict,
                args: argparse.Namespace, device: torch.device, bf16: bool) -> tuple[dict[str, Tally], float]:
    """Warm up until every task had ``--warmup`` steps, then time steps until each had ``--steps``.

    Returns:
        Per task its :class:`Tally`, and the wall time of the timed steps (s).
    """
    cuda = device.type == "cuda"
    seen = dict.fromkeys(tasks, 0)
    while min(seen.values()) < args.warmup:
        batch = next(batches)
        train_step(model, optimizer, params, to_device(batch, device), device, bf16)
        seen[batch.task] += 1
    sync(device)

    tallies = {t: Tally() for t in tasks}
    records = []  # (task, start event, end event) on CUDA
    start_wall = time.perf_counter()
    while min(len(t.waits) for t in tallies.values()) < max(1, args.steps):
        t0 = time.perf_counter()
        if cuda:
            begin = torch.cuda.Event(enable_timing=True)
            begin.record()
        batch = next(batches)
        wait = time.perf_counter() - t0
        loss = train_step(model, optimizer, params, to_device(batch, device), device, bf16)
        tally = tallies[batch.task]
        if cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            records.append((batch.task, begin, end))
        else:
            tally.seconds.append(time.perf_counter() - t0)
        tally.waits.append(wait)
        tally.tokens += batch.num_tokens
        tally.loss = loss
    sync(device)
    wall = time.perf_counter() - start_wall
    for task, begin, end in records:
        tallies[task].seconds.append(begin.elapsed_time(end) / 1e3)
    return tallies, wall


def result_rows(tallies: dict[str, Tally], wall: float, common: dict, trunk_flops: dict, model_flops: dict,
                extra: dict) -> list[dict]:
    """One row per task and an ``overall`` row (``extra`` added to it): steps, tokens/s, TFLOP/s, data wait, loss."""
    rows = []
    for task, tally in tallies.items():
        seconds, n = sum(tally.seconds), len(tally.seconds)
        rows.append(dict(case=task, **common, steps=n, tokens_per_step=tally.tokens // n, step_s=seconds / n,
                         tokens_per_s=tally.tokens / seconds, tflops=n * trunk_flops[task] / seconds / 1e12,
                         model_tflops=n * model_flops[task] / seconds / 1e12,
                         data_wait_s=sum(tally.waits) / n, loss=float(tally.loss)))
    steps = sum(r["steps"] for r in rows)
    tokens = sum(t.tokens for t in tallies.values())
    rows.append(dict(case="overall", **common, steps=steps, tokens_per_step=tokens // steps, step_s=wall / steps,
                     tokens_per_s=tokens / wall,
                     tflops=sum(r["steps"] * trunk_flops[r["case"]] for r in rows) / wall / 1e12,
                     model_tflops=sum(r["steps"] * model_flops[r["case"]] for r in rows) / wall / 1e12,
                     data_wait_s=sum(sum(t.waits) for t in tallies.values()) / steps,
                     loss=sum(r["loss"] for r in rows) / len(rows), wall_s=wall, **extra))
    return rows


def print_row(row: dict, as_json: bool) -> None:
    """One result row, as JSON or as a line of text."""
    if as_json:
        print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    else:
        print(f"{row['case']:10s} {row['steps']:4d} steps  {row['tokens_per_step']:7d} tok/step  "
              f"{row['step_s'] * 1e3:9.2f} ms/step  {row['tokens_per_s']:11.0f} tok/s  trunk "
              f"{row['tflops']:8.3f} TFLOP/s  MFU {100 * row['mfu']:6.2f} %  (model {row['model_tflops']:8.3f} "
              f"TFLOP/s, {100 * row['model_mfu']:6.2f} %)  wait {row['data_wait_s'] * 1e3:7.2f} ms  "
              f"loss {row['loss']:.4f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Train jat-small (or tiny) on synthetic batches of each modality and print tokens/s, TFLOP/s and MFU."""
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    if not cuda:
        torch.set_num_threads(args.threads)
    bf16 = args.precision == "bf16"
    batch_size = args.batch_size or (32 if cuda else 2)
    workers = args.num_workers if args.num_workers is not None else (min(8, (os.cpu_count() or 2) // 2) if cuda else 0)
    compile_on = args.compile if args.compile is not None else cuda
    if args.attention_block:
        trunk_module.ATTENTION_BLOCK = args.attention_block
    tasks = parse_tasks(args.tasks)
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak, peak_source, gemm = resolve_peak(args, device, device_name, bf16)

    torch.manual_seed(args.seed)
    model = JatModel(JatConfig.from_preset(args.preset)).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **({"fused": True} if cuda else {}))
    vocab = model.config.vocab_size

    # FLOPs per batch of each task: the trunk's (analytic) and the whole model's (counted, eager)
    split = {t: trunk_flops_per_sample(model, tokens_per_sample(t)) for t in tasks}
    trunk_flops = {t: batch_size * sum(split[t]) for t in tasks}
    g = torch.Generator().manual_seed(args.seed)
    model_flops = {t: count_model_flops(model, make_batch(t, batch_size, vocab, g, args.frames), device, bf16)
                   + batch_size * split[t][1] for t in tasks}

    compiled = "off"
    if compile_on:
        target = model.transformer if args.compile_scope == "trunk" else model
        target.compile(dynamic=False, **({"mode": args.compile_mode} if args.compile_mode else {}))
        compiled = args.compile_scope + (f":{args.compile_mode}" if args.compile_mode else "")

    if not args.json:
        print(f"torch {torch.__version__}  cuda {torch.version.cuda}  device {device} ({device_name})  "
              f"preset {args.preset}  {args.precision}  batch {batch_size}  workers {workers}  compile {compiled}  "
              f"peak {peak:.1f} TFLOP/s ({peak_source})" + (f"  GEMM {gemm:.1f} TFLOP/s" if gemm else ""), flush=True)

    loader = BatchLoader(SyntheticBatches(tasks, batch_size, vocab, seed=args.seed, frames=args.frames),
                         num_workers=workers)
    batches = Pinned(loader) if cuda else loader
    try:
        tallies, wall = timed_steps(model, optimizer, params, batches, tasks, args, device, bf16)
    finally:
        if cuda:
            batches.close()
        else:
            loader.close()

    common = dict(preset=args.preset, device=device.type, device_name=device_name, precision=args.precision,
                  compile=compiled, num_workers=workers, batch=batch_size)
    extra = dict(torch=torch.__version__, cuda=torch.version.cuda, attention_block=trunk_module.ATTENTION_BLOCK,
                 **({"gemm_tflops": gemm} if gemm else {}))
    for row in result_rows(tallies, wall, common, trunk_flops, model_flops, extra):
        row.update(peak_tflops=peak, peak_source=peak_source, mfu=row["tflops"] / peak,
                   model_mfu=row["model_tflops"] / peak)
        print_row(row, args.json)


if __name__ == "__main__":
    main()
