"""Fingerprints of a small seeded collect, train and evaluate run, to compare two trees of jat-train bit for bit.

Run it once per tree, with that tree's packages first on ``PYTHONPATH``, and compare the printed lines::

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    PYTHONPATH=$(ls -d /work/main/packages/*/src | paste -sd:) python bench/house_parity.py > main.txt
    PYTHONPATH=$(ls -d $PWD/packages/*/src | paste -sd:) python bench/house_parity.py > branch.txt
    diff main.txt branch.txt

In a temporary folder it runs, through the console-script targets that the tree's own
``packages/jat-train/pyproject.toml`` names (so a moved entry point is what runs, whatever the installed scripts say):

1. ``jat-collect`` of a BabyAI task, a Meta-World task (with DART action noise) and text-local, seeded;
2. ``jat-train`` with the demo recipe's arguments (``make demo``: tiny preset, the discrete codec's settings, a BPE
   tokenizer, warm-up, seed 0, one torch thread) for ``--steps`` steps on that data;
3. ``jat-eval`` of the final checkpoint (env tasks and the text task's held-out scores).

It prints the sha256 of every collected data file, the loss fields of every record of the train log, the sha256 of
every file of the final checkpoint (the weights' ``model.safetensors``, optimizer, data position) and of each
weight tensor, and the sha256 of ``results.json`` with every timing field removed (plus the remaining JSON
itself). The run folder's path is written ``RUN`` in the JSON files that record it. Nothing else here depends on
the run, so two identical trees print identical lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

TASKS = "babyai-go-to-red-ball-no-dists,metaworld-reach,text-local"
# the demo's discrete codec settings, in float32 so that the result does not depend on the CPU's bf16 support
DEMO_MODEL = 'codec_settings={"discrete":{"reduced_size":16,"project_hidden":256,"project_dtype":"float32"}}'
# keys of results.json that measure time, not behaviour
TIMING_WORDS = ("time", "date", "second", "elapsed", "wall", "duration")


def sha256(path: Path, run: Path | None = None) -> str:
    """The hex sha256 of the file at ``path``; of a JSON file, with the run folder ``run`` written ``RUN`` (the
    settings a checkpoint records name it, and it is a new temporary folder each time)."""
    if run is not None and path.suffix == ".json":
        return hashlib.sha256(path.read_text().replace(str(run), "RUN").encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def console_scripts() -> dict[str, str]:
    """``{script name: "module:function"}`` of the jat-train whose code is imported (its own pyproject.toml)."""
    import jat_train

    pyproject = Path(jat_train.__file__).resolve().parents[2] / "pyproject.toml"
    with open(pyproject, "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def run_script(scripts: dict[str, str], name: str, *args: str) -> None:
    """Run console script ``name`` with ``args`` in a fresh interpreter (its entry point's target); fail loudly."""
    module, function = scripts[name].split(":")
    code = f"import sys; sys.argv[0] = {name!r}; from {module} import {function} as f; sys.exit(f())"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def without_timings(value):
    """``value`` (parsed JSON) with every dict key that names a time measure removed, recursively."""
    if isinstance(value, dict):
        return {
            k: without_timings(v) for k, v in value.items() if not any(w in k.lower() for w in TIMING_WORDS)
        }
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def tensor_hashes(path: Path) -> dict[str, str]:
    """``{tensor name: sha256 of its raw bytes}`` of a safetensors file."""
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    return {name: hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest() for name, t in sorted(tensors.items())}


def main() -> None:
    """Run collect, train and eval in a temporary folder and print their fingerprints on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (the final checkpoint's)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes collected per env task")
    parser.add_argument("--samples", type=int, default=200, help="samples collected for text-local")
    parser.add_argument("--batch-size", type=int, default=64, help="the demo's batch size")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--keep", default=None, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    scripts = console_scripts()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        data = out / "data"
        for task, extra in [
            ("babyai-go-to-red-ball-no-dists", ["--episodes", str(args.episodes)]),
            ("metaworld-reach", ["--episodes", str(args.episodes), "--action-noise", "0.1"]),
            ("text-local", ["--episodes", str(args.samples)]),
        ]:
            run_script(scripts, "jat-collect", "--out", str(data), "--seed", "0", "--no-progress", "--tasks", task, *extra)
        for path in sorted(p for p in data.rglob("*") if p.is_file()):
            print("data", path.relative_to(data), sha256(path))
        run_script(
            scripts, "jat-train", "--tasks", TASKS, "--data", str(data), "--preset", "tiny", "--model-config", DEMO_MODEL,
            "--tokenizer", "bpe:2048", "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--batch-tokens", "3200", "--learning-rate", "1e-3", "--warmup-steps", "100", "--seed", "0",
            "--output-dir", str(out / "train"), "--save-every", str(args.steps), "--save-total-limit", "2",
            "--log-every", "20", "--num-threads", "1", "--no-progress",
        )  # fmt: skip
        for line in (out / "train" / "log.jsonl").read_text().splitlines():
            record = json.loads(line)
            print("log", json.dumps({k: v for k, v in record.items() if "loss" in k or k in ("step", "task")}))
        checkpoint = out / "train" / f"checkpoint-{args.steps}"
        for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
            print("checkpoint", path.relative_to(checkpoint), sha256(path, run=out))
        for name, digest in tensor_hashes(checkpoint / "model.safetensors").items():
            print("tensor", name, digest)
        run_script(
            scripts, "jat-eval", "--model", str(checkpoint), "--tasks", TASKS, "--episodes", str(args.eval_episodes),
            "--num-envs", str(args.eval_episodes), "--seed", "1000", "--data", str(data), "--samples", "10",
            "--out", str(out / "eval"), "--no-progress",
        )  # fmt: skip
        results = without_timings(json.loads((out / "eval" / "results.json").read_text()))
        text = json.dumps(results, sort_keys=True).replace(str(out), "RUN")
        print("results.json (timings removed)", hashlib.sha256(text.encode()).hexdigest())
        print("results", text)


if __name__ == "__main__":
    main()
