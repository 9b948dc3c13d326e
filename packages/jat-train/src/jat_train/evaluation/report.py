"""``jat-report``: a Markdown report of a training run and its evaluation.

Reads ``OUT/log.jsonl`` (written by ``jat-train``, read by :func:`jat_train.training.runlog.read_log`) and
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
from jat_train.training.runlog import LOG_FILE, read_log


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


def task_action_losses(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Per task, its ``(step, action loss)`` records; records of several tasks at once (gradient accumulation)
    and records without an action loss are left out."""
    by_task: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if r.get("action_loss") is not None and "," not in str(r.get("task", ",")):
            by_task.setdefault(r["task"], []).append((r["step"], r["action_loss"]))
    return by_task


def moving_average(points: list[tuple[int, float]], smooth: int):
    """``(steps, values)``: the moving average over ``smooth`` points (fewer when there are fewer), at the step
    of each window's last point."""
    import numpy as np

    steps, y = np.array(points, dtype=float).T
    k = max(1, min(smooth, len(y)))
    return steps[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid")


def plot_task_curves(records: list[dict], out: str | os.PathLike, smooth: int = 10) -> str:
    """Plot each task's action loss against the step (moving average over the records of that task alone);
    returns the PNG path. Records of several tasks at once (gradient accumulation) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_task = task_action_losses(records)
    fig, ax = plt.subplots(figsize=(7, 4))
    for task, points in sorted(by_task.items()):
        ax.plot(*moving_average(points, smooth), label=task)
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


def task_domains(results: dict) -> dict[str, str]:
    """Task name -> domain, from a results dict (tasks without an env are their own group)."""
    out = {name: r.get("domain", name) for name, r in results.get("tasks", {}).items()}
    out.update({name: r.get("domain", name) for name, r in (results.get("text_tasks") or {}).items()})
    return out


def plot_domain_curves(records: list[dict], domains: dict[str, str], out: str | os.PathLike, smooth: int = 10) -> str:
    """One panel per domain: each of its tasks' action loss against the step (moving average over that task's
    records); returns the PNG path. Tasks missing from ``domains`` form their own panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_domain: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for task, points in task_action_losses(records).items():
        by_domain.setdefault(domains.get(task, task), {})[task] = points
    n = max(1, len(by_domain))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (domain, tasks) in zip(axes.flat, sorted(by_domain.items())):
        for points in tasks.values():
            ax.plot(*moving_average(points, smooth), linewidth=0.8, alpha=0.7)
        ax.set_yscale("log")
        ax.set_title(f"{domain} ({len(tasks)} tasks)", fontsize=9)
        ax.set_xlabel("optimisation step", fontsize=8)
        ax.set_ylabel("action loss", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(by_domain):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)


def score_table(results: dict) -> str:
    """Markdown tables of per-task and per-domain scores from a ``results.json`` dict (with the data's return
    and the data-normalised scores when ``jat-eval --data`` added them, which then lead).

    Every column names its normalisation: *data-normalised* against the mean return of the local episodes the
    model imitated, *expert-normalised* against the published JAT reference returns (random and expert); the
    aggregates are the paper's IQM (over the episodes x tasks matrix) and, labelled, the IQM of per-task means.
    """
    data = any("data_normalized" in r for r in results["tasks"].values())
    head = "| task | episodes | mean return | std |" + (" data return | data-normalised |" if data else "")
    lines = [head + " expert-normalised |", "|---|---:|---:|---:|" + ("---:|---:|" if data else "") + "---:|"]
    for name, r in results["tasks"].items():
        row = f"| {name} | {r['episodes']} | {r['mean']:.3f} | {r['std']:.3f} |"
        if data:
            row += f" {_fmt(r.get('data_mean'))} | {_fmt(r.get('data_normalized'))} |"
        lines.append(row + f" {_fmt(r.get('normalized'))} |")
    kinds = (["data_normalized_"] if data else []) + [""]
    label = {"data_normalized_": "data-normalised", "": "expert-normalised"}
    head = "| domain | tasks |" + "".join(f" {label[k]} IQM [95% CI] | {label[k]}, IQM of task means |" for k in kinds)
    lines += ["", head, "|---|---:|" + "---:|---:|" * len(kinds)]
    for name, d in list(results["domains"].items()) + [("**all**", results["all"])]:
        row = f"| {name} | {d.get('num_tasks', '')} |"
        for k in kinds:
            row += f" {_interval(d, k)} | {_interval(d, k + 'task_mean_')} |"
        lines.append(row)
    return "\n".join(lines)


def _interval(agg: dict, prefix: str) -> str:
    """``"0.812 [0.790, 0.833]"`` from ``agg``'s ``{prefix}iqm``, ``{prefix}ci_low``, ``{prefix}ci_high``."""
    point = agg.get(f"{prefix}iqm")
    if point is None:
        return "n/a"
    return f"{point:.3f} [{_fmt(agg.get(f'{prefix}ci_low'))}, {_fmt(agg.get(f'{prefix}ci_high'))}]"


def score_sources(results: dict) -> str:
    """Markdown notes on where each domain's expert-normalising constants come from and how the local experts
    differ (``results["domains"][d]["expert_scores_source"]``, from the task plugins); empty when none says."""
    notes = [(d, a["expert_scores_source"]) for d, a in results["domains"].items() if a.get("expert_scores_source")]
    return "\n".join(f"- {d}: {note}" for d, note in notes)


def headline(results: dict) -> str:
    """One sentence with the overall aggregate: data-normalised first where ``jat-eval --data`` added it (it says
    whether the model learnt its data), then the expert-normalised one (published constants)."""
    overall = results["all"]
    parts = []
    if overall.get("data_normalized_iqm") is not None:
        parts.append(f"Overall data-normalised IQM: **{_interval(overall, 'data_normalized_')}**")
    parts.append(f"expert-normalised IQM (published JAT constants): **{_interval(overall, '')}**")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + " (the paper's IQM over the episodes x tasks matrix, 95% CI)."


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
    try:
        table = score_table(results)
        texts = text_table(results)
        summary = headline(results)
        sources = score_sources(results)
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
        out / "domain_curves.png": lambda tmp: plot_domain_curves(records, task_domains(results), tmp),
    }
    if Path(eval_dir).resolve() != out.resolve():
        writes[out / "results.json"] = lambda tmp: shutil.copyfile(results_file, tmp)
        for png in _plots(Path(eval_dir)):
            writes[out / png.name] = lambda tmp, png=png: shutil.copyfile(png, tmp)
    names = {p.name for p in _plots(out)} | {p.name for p in writes if p.suffix == ".png"}
    plots = sorted(names - {"learning_curve.png", "task_curves.png", "domain_curves.png"})
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
        *(["Where the expert-normalising constants come from:", "", sources, ""] if sources else []),
        *(["## Text and captions (held-out data)", "", texts, ""] if texts else []),
        "## Learning curve",
        "",
        "![learning curve](learning_curve.png)",
        "",
        "![learning curve per task](task_curves.png)",
        "",
        "![learning curves per domain](domain_curves.png)",
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
