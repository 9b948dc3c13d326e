"""``jat-report``: a Markdown report of a training run and its evaluation.

Reads ``OUT/log.jsonl`` (written by ``jat-train``) and ``results.json`` (written by ``jat-eval``), draws the
learning curve, and writes ``report.md`` with the score table and the plots beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a ``log.jsonl`` file, in order."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_learning_curve(records: list[dict], out: str | os.PathLike, smooth: int = 20) -> str:
    """Plot loss and action loss against the step (raw and moving average); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.array([r["step"] for r in records])
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, color in (("loss", "tab:blue"), ("action_loss", "tab:orange")):
        y = np.array([r.get(key, np.nan) for r in records], dtype=float)
        ax.plot(steps, y, color=color, alpha=0.25, linewidth=0.8)
        k = max(1, min(smooth, len(y)))
        avg = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], avg, color=color, label=f"{key} (moving average of {k})")
    ax.set_yscale("log")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("training loss")
    ax.set_title("Learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return str(out)


def score_table(results: dict) -> str:
    """A Markdown table of per-task and per-domain scores from a ``results.json`` dict."""
    lines = [
        "| task | episodes | mean return | std | expert-normalised |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results["tasks"].items():
        lines.append(
            f"| {name} | {r['episodes']} | {r['mean']:.3f} | {r['std']:.3f} | {_fmt(r.get('normalized'))} |"
        )
    lines += ["", "| domain | IQM | 95% CI |", "|---|---:|---|"]
    for name, d in list(results["domains"].items()) + [("**all**", results["all"])]:
        lines.append(f"| {name} | {d['iqm']:.3f} | [{d['ci_low']:.3f}, {d['ci_high']:.3f}] |")
    return "\n".join(lines)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_report(run_dir: str | os.PathLike, eval_dir: str | os.PathLike, out: str | os.PathLike, extra: str = "") -> Path:
    """Write ``out/report.md`` (+ ``learning_curve.png``, the evaluation plots, ``results.json``).

    Args:
        run_dir: the training output directory (holds ``log.jsonl``).
        eval_dir: the evaluation output directory (holds ``results.json`` and its PNG plots).
        out: where the report goes.
        extra: Markdown appended after the tables (e.g. what the run was).

    Returns:
        The path of ``report.md``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = read_log(Path(run_dir) / "log.jsonl")
    plot_learning_curve(records, out / "learning_curve.png")
    results = json.loads((Path(eval_dir) / "results.json").read_text())
    if Path(eval_dir).resolve() != out.resolve():
        shutil.copy(Path(eval_dir) / "results.json", out / "results.json")
        for png in Path(eval_dir).glob("*.png"):
            shutil.copy(png, out / png.name)
    plots = sorted(p.name for p in out.glob("*.png") if p.name != "learning_curve.png")
    first, last = records[0], records[-1]
    text = [
        "# JAT run report",
        "",
        f"Training: {last['step']} steps; loss {first['loss']:.4f} -> {last['loss']:.4f}.",
        f"Overall expert-normalised IQM: **{results['all']['iqm']:.3f}** "
        f"(95% CI [{results['all']['ci_low']:.3f}, {results['all']['ci_high']:.3f}]).",
        "",
        "## Scores",
        "",
        score_table(results),
        "",
        "## Learning curve",
        "",
        "![learning curve](learning_curve.png)",
        "",
        "## Plots",
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
        extra,
    ]
    path = out / "report.md"
    path.write_text("\n".join(text).rstrip() + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jat-report``."""
    parser = argparse.ArgumentParser(prog="jat-report", description=__doc__)
    parser.add_argument("--run", required=True, help="training output directory (log.jsonl)")
    parser.add_argument("--eval", required=True, help="evaluation output directory (results.json)")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--extra", default="", help="Markdown file to append")
    args = parser.parse_args(argv)
    extra = Path(args.extra).read_text() if args.extra else ""
    path = write_report(args.run, args.eval, args.out, extra)
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
