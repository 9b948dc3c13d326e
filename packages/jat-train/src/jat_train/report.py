"""``jat-report``: a Markdown report of a training run and its evaluation.

Reads ``OUT/log.jsonl`` (written by ``jat-train``, read by :func:`jat_train.runlog.read_log`) and
``results.json`` (written by ``jat-eval``), draws the learning curve, and writes ``report.md`` with the score
table and the plots beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from jat_train.files import write_files
from jat_train.runlog import LOG_FILE, read_log


def read_results(path: str | os.PathLike) -> dict:
    """A ``results.json`` written by ``jat-eval``.

    Raises:
        UserError: the file is missing, not JSON, or lacks the ``tasks`` / ``domains`` / ``all`` entries.
    """
    from jat_core.cli import UserError

    if not os.path.isfile(path):
        raise UserError(f"--eval: no results file {str(path)!r} (jat-eval writes OUT/results.json)")
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{str(path)!r}: not valid JSON ({exc})") from exc
    if not isinstance(results, dict) or not all(isinstance(results.get(k), dict) for k in ("tasks", "domains", "all")):
        raise UserError(f"{str(path)!r}: expected a JSON object with 'tasks', 'domains' and 'all' objects")
    return results


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


def plot_task_curves(records: list[dict], out: str | os.PathLike, smooth: int = 10) -> str:
    """Plot each task's action loss against the step (moving average over the records of that task alone);
    returns the PNG path. Records of several tasks at once (gradient accumulation) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_task: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if r.get("action_loss") is not None and "," not in str(r.get("task", ",")):
            by_task.setdefault(r["task"], []).append((r["step"], r["action_loss"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    for task, points in sorted(by_task.items()):
        steps, y = np.array(points, dtype=float).T
        k = max(1, min(smooth, len(y)))
        ax.plot(steps[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid"), label=task)
    ax.set_yscale("log")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("action loss (moving average)")
    ax.set_title("Learning curve per task")
    ax.grid(alpha=0.3)
    if by_task:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return str(out)


def score_table(results: dict) -> str:
    """A Markdown table of per-task and per-domain scores from a ``results.json`` dict (with the data's return
    and the data-normalised score when ``jat-eval --data`` added them)."""
    data = any("data_normalized" in r for r in results["tasks"].values())
    head = "| task | episodes | mean return | std | expert-normalised |" + (
        " data return | data-normalised |" if data else "")
    lines = [head, "|---|---:|---:|---:|---:|" + ("---:|---:|" if data else "")]
    for name, r in results["tasks"].items():
        row = f"| {name} | {r['episodes']} | {r['mean']:.3f} | {r['std']:.3f} | {_fmt(r.get('normalized'))} |"
        if data:
            row += f" {_fmt(r.get('data_mean'))} | {_fmt(r.get('data_normalized'))} |"
        lines.append(row)
    lines += ["", "| domain | IQM | 95% CI |" + (" data-normalised IQM |" if data else ""),
              "|---|---:|---|" + ("---:|" if data else "")]
    for name, d in list(results["domains"].items()) + [("**all**", results["all"])]:
        row = f"| {name} | {_fmt(d.get('iqm'))} | [{_fmt(d.get('ci_low'))}, {_fmt(d.get('ci_high'))}] |"
        lines.append(row + (f" {_fmt(d.get('data_normalized_iqm'))} |" if data else ""))
    return "\n".join(lines)


def text_table(results: dict) -> str:
    """Markdown tables of the tasks without an env (``results["text_tasks"]``, written by ``jat-eval --data``):
    held-out perplexity against the unigram baseline, and for captioning tasks caption accuracy against chance.
    Empty when there are none."""
    tasks = results.get("text_tasks") or {}
    if not tasks:
        return ""
    lines = ["| task | held-out samples | tokens | perplexity | unigram perplexity | ratio |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in tasks.items():
        lines.append(f"| {name} | {r['samples']} | {r['tokens']} | {r['perplexity']:.2f} | "
                     f"{r['unigram_perplexity']:.2f} | {r['perplexity'] / r['unigram_perplexity']:.3f} |")
    examples = [(name, e) for name, r in tasks.items() for e in r.get("completions", [])]
    if examples:
        lines += ["", "Completions of held-out documents (`model.complete()`; prompt -> greedy with no repeated 3-gram "
                  "and a repetition penalty of 1.2 / sampled at temperature 0.7, top-k 20 / the document's own "
                  "continuation):", ""]
        lines += [f"- {name}: {e['prompt']!r} -> {e['completion']!r} / {e.get('sampled', '')!r} / {e['reference']!r}"
                  for name, e in examples]
    written = {name: r["completion_words"] for name, r in tasks.items() if r.get("completion_words")}
    if written:
        lines += ["", "How the completions' words compare with the training split's (from each prompt's last word on; "
                  "the unigram baseline's tokens and each held-out sample's own continuation after the same "
                  "prompts bracket them):", "",
                  "| task | prompts | written by | words | known words | known word pairs |",
                  "|---|---:|---|---:|---:|---:|"]
        for name, w in written.items():
            for kind, label in (("greedy", "model, greedy"), ("sampled", "model, sampled"),
                                ("unigram", "unigram baseline"), ("reference", "held-out continuation")):
                s = w[kind]
                lines.append(f"| {name} | {w['prompts']} | {label} | {s['words']} | {_fmt(s['known_words'])} | "
                             f"{_fmt(s['known_pairs'])} |")
    captions = {name: r["caption"] for name, r in tasks.items() if r.get("caption")}
    if captions:
        lines += ["", "| task | held-out images | exact captions | chance | most frequent caption | word accuracy | "
                  "most frequent words |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, c in captions.items():
            lines.append(f"| {name} | {c['samples']} | {c['exact']:.3f} | {c['chance']:.3f} | "
                         f"{c['majority_exact']:.3f} | {_fmt(c.get('word_accuracy'))} | "
                         f"{_fmt(c.get('majority_word_accuracy'))} |")
        lines.append("")
        lines.append("Examples (reference -> `model.caption()`):")
        lines.append("")
        for name, c in captions.items():
            for e in c.get("examples", [])[:3]:
                lines.append(f"- {name}: {e['reference']!r} -> {e['caption']!r}")
    return "\n".join(lines)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_report(run_dir: str | os.PathLike, eval_dir: str | os.PathLike, out: str | os.PathLike, extra: str = "") -> Path:
    """Write ``out/report.md`` (+ ``learning_curve.png``, the evaluation plots, ``results.json``).

    Every input is read and checked before anything is written, and the files are written to temporary names
    and renamed once all are written (:func:`jat_train.files.write_files`), so a bad input or a full disk leaves
    ``out`` as it was.

    Args:
        run_dir: the training output directory (holds ``log.jsonl``).
        eval_dir: the evaluation output directory (holds ``results.json`` and its PNG plots).
        out: where the report goes.
        extra: Markdown appended after the tables (e.g. what the run was).

    Returns:
        The path of ``report.md``.

    Raises:
        UserError: a missing or malformed input (naming the file), or ``out`` is a file.
        OSError: a file could not be written (a full disk): naming it and the cause.
    """
    from jat_core.cli import UserError, check_output_dir

    check_output_dir(str(out), "--out")
    records = read_log(Path(run_dir) / LOG_FILE)
    results_file = Path(eval_dir) / "results.json"
    results = read_results(results_file)
    first, last = records[0], records[-1]
    overall = results["all"]
    try:
        table = score_table(results)
        texts = text_table(results)
        summary = (
            f"Overall expert-normalised IQM: **{_fmt(overall.get('iqm'))}** "
            f"(95% CI [{_fmt(overall.get('ci_low'))}, {_fmt(overall.get('ci_high'))}])."
        )
        actions = results.get("actions")
        if actions:  # how the model chose among its actions (jat-eval --actions)
            sampled = actions["choice"] == "sample"
            how = f"drawn from its softmax (temperature {actions['temperature']:g})" if sampled else "the most likely"
            summary += f" The model's choices among actions: {how}."
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{str(results_file)!r}: malformed results ({type(exc).__name__}: {exc})") from exc
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writes = {
        out / "learning_curve.png": lambda tmp: plot_learning_curve(records, tmp),
        out / "task_curves.png": lambda tmp: plot_task_curves(records, tmp),
    }
    if Path(eval_dir).resolve() != out.resolve():
        writes[out / "results.json"] = lambda tmp: shutil.copyfile(results_file, tmp)
        for png in _plots(Path(eval_dir)):
            writes[out / png.name] = lambda tmp, png=png: shutil.copyfile(png, tmp)
    names = {p.name for p in _plots(out)} | {p.name for p in writes if p.suffix == ".png"}
    plots = sorted(names - {"learning_curve.png", "task_curves.png"})
    text = [
        "# JAT run report",
        "",
        f"Training: {last['step']} steps; loss {first['loss']:.4f} -> {last['loss']:.4f}.",
        summary,
        "",
        "## Scores",
        "",
        table,
        "",
        *(["## Text and captions (held-out data)", "", texts, ""] if texts else []),
        "## Learning curve",
        "",
        "![learning curve](learning_curve.png)",
        "",
        "![learning curve per task](task_curves.png)",
        "",
        "## Plots",
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
        extra,
    ]
    path = out / "report.md"
    writes[path] = lambda tmp: Path(tmp).write_text("\n".join(text).rstrip() + "\n")
    write_files(writes, note=f"the files in {str(out)!r} are as they were")  # all or none
    return path


def _plots(folder: Path) -> list[Path]:
    """The PNG files of a folder, without hidden ones (the temporary files of a write that was killed)."""
    return [p for p in folder.glob("*.png") if not p.name.startswith(".")]


def _main(argv: list[str] | None) -> int:
    from jat_core.cli import UserError, add_debug_flag

    parser = argparse.ArgumentParser(prog="jat-report", description=__doc__)
    parser.add_argument("--run", required=True, help="training output directory (log.jsonl)")
    parser.add_argument("--eval", required=True, help="evaluation output directory (results.json)")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--extra", default="", help="Markdown file to append")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    extra = ""
    if args.extra:
        try:
            extra = Path(args.extra).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--extra: cannot read {args.extra!r} ({exc})") from exc
    path = write_report(args.run, args.eval, args.out, extra)
    print(f"report written to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jat-report`` (exit 2 on bad input; see :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-report", _main, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
