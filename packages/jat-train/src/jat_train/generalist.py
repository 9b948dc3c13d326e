"""``jat-generalist``: one model on many tasks of every domain, in one command: collect (cached), train, evaluate,
report.

A *recipe* (a JSON file, e.g. ``examples/generalist/default.json``) says which tasks and how much of each; this module
knows no domain, it reads domain names from the recipe:

- ``select``: per domain, which of its tasks with a local expert (or sample source) to take: a number (that
  many, spread evenly over the sorted task names), ``"all"``, a list of task names, or ``{"count": N,
  "include": [names]}`` (those, then the rest spread);
- ``collect``: ``jat-collect`` options (``episodes``, ``max_steps``, ``action_noise``, ``input_dir``) per task
  name or domain, ``default`` for the others;
- ``min_data_score``: a task whose collected episodes score below this, expert-normalised, is left out (its
  expert is not clearly better than random); the report lists it with its data's score;
- ``train``: ``jat-train`` options (a list of arguments) and ``steps`` its ``--max-steps``; ``eval``:
  ``jat-eval``'s ``episodes``, ``seed``, ``num_envs``, ``samples``.

Collected data go to a cache keyed by what produced them (:mod:`jat_train.collection.datacache`), so a second run reuses
them; the run folder's ``data/`` links to the cache. Each phase runs its console script in a child process; the
wall time of each phase and the peak memory of the whole process tree go into the report. ``--data hub`` skips
collection and trains on the published data set instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from jat_core.specs import TaskSpec

from jat_train.collection.datacache import CacheEntry, cache_entry, link_data
from jat_train.files import atomic_write
from jat_train.phases import PhaseClock
from jat_train.run_lock import LOCK_FILE, run_lock

logger = logging.getLogger(__name__)

#: jat-collect options a recipe's ``collect`` section may set, and their command-line flags
COLLECT_OPTIONS = {"episodes": "--episodes", "max_steps": "--max-steps", "action_noise": "--action-noise",
                   "input_dir": "--input-dir", "seed": "--seed"}


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The recipe at ``path``, checked (``UserError`` naming the file and the field on bad content)."""
    from jat_core.cli import UserError

    try:
        recipe = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"--recipe: cannot read {str(path)!r} as JSON ({exc})") from exc
    if not isinstance(recipe, dict):
        raise UserError(f"{str(path)!r}: expected a JSON object")
    for key, kind in (("select", dict), ("collect", dict), ("train", list), ("eval", dict)):
        if not isinstance(recipe.get(key), kind):
            raise UserError(f"{str(path)!r}: field {key!r}: expected a JSON {kind.__name__}")
    for domain, options in recipe["collect"].items():
        unknown = set(options) - set(COLLECT_OPTIONS)
        if unknown:
            raise UserError(f"{str(path)!r}: collect.{domain}: unknown options {sorted(unknown)} "
                            f"(expected some of {sorted(COLLECT_OPTIONS)})")
    return recipe


def local_candidates(tasks: Sequence[TaskSpec]) -> list[TaskSpec]:
    """The tasks whose data can be made here: an env and an expert, or no env and a local sample source."""
    return [t for t in tasks if (t.expert is not None and t.make_env is not None) or
            (t.make_env is None and t.samples is not None)]


def spread(names: Sequence[str], count: int) -> list[str]:
    """``count`` of ``names`` (sorted), evenly spaced from the first to the last; all of them if fewer."""
    names = sorted(names)
    if count >= len(names):
        return names
    if count <= 1:
        return names[:count]
    return [names[round(i * (len(names) - 1) / (count - 1))] for i in range(count)]


def select_tasks(registry, selection: dict[str, Any], *, everything: bool, local: bool) -> list[TaskSpec]:
    """The recipe's tasks, domain by domain in the recipe's order.

    Args:
        registry: the loaded plugins' registry (:func:`jat_core.plugins.load_plugins`).
        selection: the recipe's ``select`` section.
        everything: take every candidate of each domain the selection names (``GENERALIST_TASKS=all``).
        local: candidates must be collectable here (:func:`local_candidates`); ``False`` for hub data.
    """

    chosen: list[TaskSpec] = []
    for domain, how in selection.items():
        pool = registry.select(domain)
        pool = local_candidates(pool) if local else pool
        by_name = {t.name: t for t in pool}
        if everything or how == "all":
            names = sorted(by_name)
        else:
            names = _chosen_names(domain, how, by_name)
        chosen += [by_name[n] for n in names]
    return chosen


def _chosen_names(domain: str, how: Any, by_name: dict[str, TaskSpec]) -> list[str]:
    """The names one ``select`` entry picks: a count (spread evenly), a list of names, or ``{"count": N,
    "include": [names]}`` (those names, then the rest of the count spread over the others)."""
    from jat_core.cli import UserError

    if isinstance(how, int) and how > 0:
        how = {"count": how, "include": []}
    elif isinstance(how, list):
        how = {"count": len(how), "include": how}
    if not (isinstance(how, dict) and isinstance(how.get("count"), int) and how["count"] > 0
            and isinstance(how.get("include", []), list)):
        raise UserError(f"recipe select.{domain}: expected a positive number, 'all', a list of task names or "
                        f"{{'count': N, 'include': [names]}}, got {how!r}")
    include = list(how.get("include", []))
    missing = [n for n in include if n not in by_name]
    if missing:
        raise UserError(f"recipe select.{domain}: {missing} are not {domain} tasks that can be collected here")
    rest = spread([n for n in by_name if n not in include], max(0, how["count"] - len(include)))
    return include + rest


def collect_all(tasks: Sequence[TaskSpec], recipe: dict, cache: Path, jobs: int, clock: PhaseClock) -> dict[str, Path]:
    """Collect every task missing from the cache, ``jobs`` ``jat-collect`` processes side by side.

    Returns:
        Per task name, its data folder in the cache.
    """
    entries = {t.name: cache_entry(cache, t.name, _collect_options(t, recipe)) for t in tasks}
    missing = [e for e in entries.values() if not e.ready()]
    print(f"jat-generalist: {len(entries) - len(missing)} of {len(entries)} tasks' data in the cache "
          f"{str(cache)!r}; collecting {len(missing)}", flush=True)
    with clock.phase("collect"), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for done in as_completed([pool.submit(_collect_one, e) for e in missing]):
            print(f"jat-generalist: collected {done.result()}", flush=True)
    return {name: e.data_dir for name, e in entries.items()}


def _collect_options(task: TaskSpec, recipe: dict) -> dict[str, Any]:
    """The recipe's collection options for ``task``: its own (keyed by task name), else its domain's, else
    ``default``'s; ``seed`` 0 unless given."""
    section = recipe["collect"]
    options = dict(section.get(task.name, section.get(task.domain, section.get("default", {}))))
    options.setdefault("episodes", 100)
    return {"seed": 0, "policy": "expert", **options}


def _collect_one(entry: CacheEntry) -> str:
    """Run ``jat-collect`` for one cache entry into a private folder, then publish it (see :mod:`datacache`)."""
    with entry.writing() as out:
        options = entry.options
        cmd = [_script("jat-collect"), "--tasks", entry.task, "--out", str(out), "--no-progress"]
        for key, flag in COLLECT_OPTIONS.items():
            if options.get(key) is not None:
                cmd += [flag, str(options[key])]
        _run(cmd)
    return entry.task


def judge_data(tasks: Sequence[TaskSpec], data: Path, min_score: float) -> tuple[list[TaskSpec], dict[str, str]]:
    """Keep the tasks whose collected episodes clearly beat random.

    Returns:
        The kept tasks, and per left-out task why (its data's mean return and expert-normalised score).
    """
    from jat_train.evaluation.datascore import data_return

    kept, left_out = [], {}
    for task in tasks:
        if task.scores is None:
            kept.append(task)
            continue
        mean = data_return(task, str(data))
        score = None if mean is None else task.scores.normalize(mean)
        if score is None or score < min_score:
            left_out[task.name] = (f"its expert's episodes return {mean if mean is None else round(mean, 3)}, "
                                   f"expert-normalised {score if score is None else round(score, 3)} < {min_score}")
        else:
            kept.append(task)
    return kept, left_out


def _script(name: str) -> str:
    """The path of a console script installed beside this Python (so a venv's own scripts are used)."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def _run(cmd: list[str]) -> None:
    """Run a child command; a failure stops the run naming the command (``UserError``, exit 2)."""
    from jat_core.cli import UserError

    print("jat-generalist: $ " + " ".join(cmd), flush=True)
    code = subprocess.run(cmd).returncode
    if code != 0:
        raise UserError(f"{Path(cmd[0]).name} exited with code {code} (command: {' '.join(cmd)})")


def train_eval_report(tasks: Sequence[TaskSpec], recipe: dict, args: argparse.Namespace, clock: PhaseClock,
                      notes: list[str]) -> Path:
    """Train one model on ``tasks``, evaluate every task, write the report; returns the report's path."""
    out = Path(args.out)
    names = ",".join(t.name for t in tasks)
    hub = args.data != "local"
    data = args.data if hub else str(out / "data")
    steps = args.max_steps or int(recipe.get("steps", 1000))
    checkpoint = out / "train" / f"checkpoint-{steps}"
    if not checkpoint.is_dir():
        with clock.phase("train"):
            resume = ["--resume"] if (out / "train").is_dir() and any((out / "train").glob("checkpoint-*")) else []
            _run([_script("jat-train"), "--tasks", names, "--data", data, "--output-dir", str(out / "train"),
                  *[str(a) for a in recipe["train"]], *shlex.split(args.train_args), "--max-steps", str(steps),
                  *resume])
    ev = recipe["eval"]
    if not (args.resume and (out / "eval" / "results.json").is_file()):  # --resume keeps a finished evaluation
        with clock.phase("evaluate"):
            _run([_script("jat-eval"), "--model", str(checkpoint), "--tasks", names, "--out", str(out / "eval"),
                  "--episodes", str(ev.get("episodes", 20)), "--seed", str(ev.get("seed", 1000)),
                  "--num-envs", str(ev.get("num_envs", 1)), "--samples", str(ev.get("samples", 200)),
                  "--no-progress", *([] if hub else ["--data", data])])
    with clock.phase("report"):
        extra = out / "run.md"
        results = json.loads((out / "eval" / "results.json").read_text(encoding="utf-8"))
        sharing = baseline_section(results, recipe.get("baseline"), steps)
        text = clock.markdown(notes) + ("\n" + sharing if sharing else "")
        atomic_write(extra, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        _run([_script("jat-report"), "--run", str(out / "train"), "--eval", str(out / "eval"), "--out", str(out),
              "--extra", str(extra)])
    # the report's own phase and the final peak memory, added once it is done
    report = out / "report.md"
    text = report.read_text(encoding="utf-8") + "\n" + clock.table() + "\n"
    atomic_write(report, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return report


def empty_folder(folder: Path) -> None:
    """Remove everything in ``folder`` except its run lock (a fresh run in a folder this process holds)."""
    import shutil

    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def baseline_section(results: dict, baseline: dict | None, steps: int) -> str:
    """A Markdown section setting this run's data-normalised task scores beside a baseline's (the cost of sharing
    one model among many tasks); empty without a baseline or without shared tasks.

    Args:
        results: this run's ``results.json`` dict (with data-normalised scores).
        baseline: the recipe's ``baseline``: ``{"name", "source", "steps_per_task", "data_normalized": {task:
            score}}``.
        steps: this run's training steps.
    """
    if not baseline:
        return ""
    shared = [t for t in baseline.get("data_normalized", {}) if t in results["tasks"]]
    if not shared:
        return ""
    lines = [f"## Beside {baseline.get('name', 'the baseline')} (data-normalised)", "",
             f"Baseline: {baseline.get('source', 'the recipe')}. This run trained {len(results['tasks'])} env tasks "
             f"and {len(results.get('text_tasks') or {})} other tasks in {steps} steps (about "
             f"{steps / max(1, len(results['tasks']) + len(results.get('text_tasks') or {})):.0f} steps per task; "
             f"the baseline: {baseline.get('steps_per_task', 'n/a')}).", "",
             "| task | baseline | this run | difference |", "|---|---:|---:|---:|"]
    for task in shared:
        ref, got = baseline["data_normalized"][task], results["tasks"][task].get("data_normalized")
        diff = "n/a" if got is None else f"{got - ref:+.3f}"
        lines.append(f"| {task} | {ref:.3f} | {'n/a' if got is None else f'{got:.3f}'} | {diff} |")
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``jat-generalist`` argument parser."""
    from jat_core.cli import add_debug_flag

    parser = argparse.ArgumentParser(prog="jat-generalist", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="the recipe (JSON): tasks, collection, training, evaluation")
    parser.add_argument("--out", required=True, help="run folder: data/ (links), train/, eval/, report.md")
    parser.add_argument("--cache", default=None, help="collected data cache (default: OUT/../cache)")
    parser.add_argument("--tasks", default=None,
                        help="'all': every task with a local expert or sample source in the recipe's domains; or a "
                        "comma list of task names replacing the recipe's selection (default: the recipe's)")
    parser.add_argument("--data", default="local",
                        help="'local' (collect with the experts, cached), 'hub' (the published data set) or "
                        "'hub:REPO' / 'hub:DIR' (a mirror or a local copy of it; see jat-train --data)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="collection processes side by side")
    parser.add_argument("--max-steps", type=int, default=None, help="training steps (default: the recipe's)")
    parser.add_argument("--train-args", default="",
                        help="more jat-train arguments, appended to the recipe's (one shell-quoted string)")
    parser.add_argument("--plugins", default=None, help="comma-separated plugins to load (default: all)")
    parser.add_argument("--fresh", action="store_true",
                        help="empty OUT first (once this run holds it: a folder another live run is writing is "
                        "refused, never emptied)")
    parser.add_argument("--resume", action="store_true",
                        help="keep what OUT holds: training resumes from its newest checkpoint (it always does when "
                        "OUT/train has checkpoints), a finished evaluation is kept")
    add_debug_flag(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    from jat_core.cli import UserError, check_output_dir
    from jat_core.plugins import load_plugins

    from jat_train.phases import run_notes

    args = build_parser().parse_args(argv)
    if args.data != "local" and not (args.data == "hub" or args.data.startswith("hub:")):
        raise UserError(f"--data: expected 'local', 'hub', 'hub:REPO' or 'hub:DIR', got {args.data!r}")
    recipe = read_recipe(args.recipe)
    check_output_dir(args.out, "--out")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    registry = load_plugins(args.plugins)
    local = args.data == "local"
    if args.tasks and args.tasks != "all":
        tasks = registry.select(args.tasks)
    else:
        tasks = select_tasks(registry, recipe["select"], everything=args.tasks == "all", local=local)
    clock = PhaseClock()
    notes = run_notes(argv if argv is not None else sys.argv[1:], recipe)
    with run_lock(out, prog="jat-generalist", field="--out", warn=logger.warning), clock:
        if args.fresh:
            empty_folder(out)
        if local:
            cache = Path(args.cache) if args.cache else out.parent / "cache"
            folders = collect_all(tasks, recipe, cache, args.jobs, clock)
            link_data(folders, out / "data")
            tasks, left_out = judge_data(tasks, out / "data", float(recipe.get("min_data_score", 0.1)))
            notes += [f"- left out: {name}: {why}" for name, why in sorted(left_out.items())]
            for name, why in sorted(left_out.items()):
                print(f"jat-generalist: left out {name}: {why}", flush=True)
        notes.append(f"- {len(tasks)} tasks trained and evaluated: {', '.join(t.name for t in tasks)}")
        path = train_eval_report(tasks, recipe, args, clock, notes)
    print(f"jat-generalist: report in {path}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jat-generalist`` (exit 2 on bad input; see :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-generalist", _main, argv)
