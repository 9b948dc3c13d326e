"""Results of an evaluation: per-task scores, per-domain and overall IQM with bootstrap intervals, files.

:func:`summarize` turns per-episode returns into the results dict: per task the raw mean and std (population)
of the episode returns, the expert-normalised score of the mean, the human-normalised score where the task's
spec has a human score, and the number of episodes (:func:`task_scores`); per domain and over all tasks the IQM
of the normalised scores, the paper's way (over the episodes x tasks matrix) and over per-task means, each with a
95% stratified bootstrap interval (:func:`aggregate_intervals`).
:func:`write_report_files` writes ``results.json`` and the plots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from jat_core.specs import TaskSpec

from jat_train.evaluation.policies import PolicyLike
from jat_train.evaluation.scores import DEFAULT_REPS, episode_bootstrap_iqm, stratified_bootstrap_iqm
from jat_train.files import write_files


def task_scores(task: TaskSpec, returns: Sequence[float]) -> dict[str, Any]:
    """Per-task entry of the results: raw mean/std, normalised scores, episode count and returns.

    ``normalized`` is ``None`` when the task has no reference scores; ``human_normalized`` is present only when
    its spec has a human score.
    """
    r = np.asarray(returns, dtype=np.float64)
    mean = float(r.mean())
    out: dict[str, Any] = {
        "domain": task.domain,
        "mean": mean,
        "std": float(r.std()),
        "normalized": task.scores.normalize(mean) if task.scores is not None else None,
        "episodes": int(r.size),
    }
    if task.scores is not None and task.scores.human is not None:
        out["human_normalized"] = task.scores.human_normalize(mean)
    out["episode_returns"] = r.tolist()
    return out


def aggregate_intervals(per_task: list[list[float]], reps: int, seed: int, prefix: str = "") -> dict[str, Any]:
    """Both aggregates of some tasks' per-episode normalised scores, as results keys.

    Args:
        per_task: per task, its episodes' normalised scores.
        reps: bootstrap replicates.
        seed: seed of the bootstrap.
        prefix: put before every key (``"human_"``, ``"data_normalized_"``).

    Returns:
        ``{prefix}iqm``, ``{prefix}ci_low``, ``{prefix}ci_high``: the paper's aggregate (IQM of the episodes x
        tasks matrix, :func:`jat_train.evaluation.scores.episode_bootstrap_iqm`; ``None`` when the tasks have different
        numbers of episodes or there are none), and ``{prefix}task_mean_iqm`` / ``_ci_low`` / ``_ci_high``: the
        IQM of the per-task means (:func:`jat_train.evaluation.scores.stratified_bootstrap_iqm`).
    """
    keys = ("iqm", "ci_low", "ci_high")
    out: dict[str, Any] = {f"{prefix}{k}": None for k in keys}
    out.update({f"{prefix}task_mean_{k}": None for k in keys})
    if not per_task:
        return out
    if len({len(s) for s in per_task}) == 1:
        out.update({f"{prefix}{k}": v for k, v in episode_bootstrap_iqm(per_task, reps=reps, seed=seed).as_dict().items()})
    per_task_mean = stratified_bootstrap_iqm(per_task, reps=reps, seed=seed).as_dict()
    out.update({f"{prefix}task_mean_{k}": v for k, v in per_task_mean.items()})
    return out


def summarize(
    tasks: Sequence[TaskSpec],
    returns: dict[str, Sequence[float]],
    *,
    seed: int = 0,
    reps: int = DEFAULT_REPS,
) -> dict[str, Any]:
    """Build the results dict from per-episode returns.

    Args:
        tasks: the evaluated tasks (their ``scores`` and ``domain``).
        returns: per task name, its episode returns.
        seed: seed of the bootstrap.
        reps: bootstrap replicates.

    Returns:
        ``{"tasks": {name: {...}}, "domains": {domain: {...aggregates, "num_tasks"}}, "all": {...},
        "bootstrap": {...}}`` with the aggregates of :func:`aggregate_intervals` over the expert-normalised
        scores of tasks with reference scores; where some tasks have a human score, the same keys prefixed
        ``human_`` aggregate those.
    """
    by_name = {t.name: t for t in tasks}
    results: dict[str, Any] = {"tasks": {}, "domains": {}, "all": {}}
    norm: dict[str, list[float]] = {}  # per task: per-episode expert-normalised returns
    human: dict[str, list[float]] = {}
    for name, r in returns.items():
        task = by_name[name]
        results["tasks"][name] = task_scores(task, r)
        if task.scores is not None:
            norm[name] = [task.scores.normalize(x) for x in r]
            if task.scores.human is not None:
                human[name] = [task.scores.human_normalize(x) for x in r]

    def aggregate(names: list[str]) -> dict[str, Any]:
        out = aggregate_intervals([norm[n] for n in names if n in norm], reps, seed)
        out["num_tasks"] = sum(n in norm for n in names)
        humans = [human[n] for n in names if n in human]
        if humans:
            out.update(aggregate_intervals(humans, reps, seed, prefix="human_"))
        return out

    domains: dict[str, list[str]] = {}
    for name in returns:
        domains.setdefault(by_name[name].domain, []).append(name)
    for domain, names in domains.items():
        if any(n in norm for n in names):
            results["domains"][domain] = aggregate(names)
            sources = [by_name[n].scores.source for n in names if by_name[n].scores is not None]
            if any(sources):
                results["domains"][domain]["expert_scores_source"] = next(s for s in sources if s)
    results["all"] = aggregate(list(returns))
    results["bootstrap"] = {
        "reps": reps,
        "confidence": 0.95,
        "seed": seed,
        "method": "iqm: the paper's (rliable's) IQM of the episodes x tasks matrix of normalised returns; "
        "task_mean_iqm: IQM over tasks of each task's mean normalised return; both with the percentile CI of a "
        "bootstrap that resamples each task's episodes with replacement (stratified by task)",
    }
    return results


def policy_name(policy: PolicyLike) -> str:
    """A short name for the results file: ``"random"``, ``"expert"``, or the model/factory's class name."""
    if isinstance(policy, str):
        return policy
    return getattr(policy, "name_or_path", None) or type(policy).__name__


def _task_line(task: TaskSpec, returns: Sequence[float]) -> str:
    """The line printed after a task's episodes: its return, and its normalised scores where it has them."""
    s = task_scores(task, returns)
    line = f"{task.name}: return {s['mean']:.3f} ± {s['std']:.3f} over {s['episodes']} episodes"
    if s["normalized"] is not None:
        line += f", normalised {s['normalized']:.3f}"
    if s.get("human_normalized") is not None:
        line += f", human-normalised {s['human_normalized']:.3f}"
    return line


def write_report_files(results: dict[str, Any], out: str) -> list[str]:
    """Write ``out/results.json`` and the plots (``domains.png``, ``tasks.png``; ``human.png`` and
    ``domains_data.png`` (data-normalised) when the results have those scores), all or none
    (:func:`jat_train.files.write_files`).

    Returns:
        The paths written.

    Raises:
        OSError: a file could not be written (a full disk): naming it and the cause; ``out`` is as it was.
    """
    from jat_train.evaluation.plots import plot_domains, plot_tasks

    os.makedirs(out, exist_ok=True)

    def write_json(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)

    writes = {os.path.join(out, "results.json"): write_json}
    if any(r.get("normalized") is not None for r in results["tasks"].values()):
        writes[os.path.join(out, "domains.png")] = lambda tmp: plot_domains(results, tmp)
        writes[os.path.join(out, "tasks.png")] = lambda tmp: plot_tasks(results, tmp)
    if any(r.get("human_normalized") is not None for r in results["tasks"].values()):
        writes[os.path.join(out, "human.png")] = lambda tmp: plot_tasks(results, tmp, key="human_normalized")
    if results["all"].get("data_normalized_iqm") is not None:
        writes[os.path.join(out, "domains_data.png")] = lambda tmp: plot_domains(results, tmp, key="data_normalized_")
    return write_files(writes, note=f"the files in {out!r} are as they were")
