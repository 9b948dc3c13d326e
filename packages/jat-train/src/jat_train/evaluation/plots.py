"""Plots of evaluation results (matplotlib, Agg backend: no display needed).

- :func:`plot_domains`: per-domain IQM of the expert-normalised scores with its 95% confidence interval, plus
  the IQM over all tasks, as horizontal bars with whiskers (the paper's aggregate figure).
- :func:`plot_tasks`: per-task normalised scores as sorted horizontal bars coloured by domain, with lines at 0
  (random) and 1 (expert) (the paper's per-task figures); also used for the human-normalised scores.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ALL = "all tasks"
#: Per-task bars are drawn within this range (%); scores outside it are clipped and written as text.
TASK_RANGE = (-100.0, 300.0)


def _domain_colors(domains: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {d: cmap(i % 10) for i, d in enumerate(sorted(domains))}


def _save(fig: Any, path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


#: per aggregate prefix: the 100% line's label, and what the scores are normalised by
_REFERENCES = {
    "": ("expert", "expert-normalised (published JAT constants)"),
    "human_": ("human", "human-normalised (published constants)"),
    "data_normalized_": ("expert data", "data-normalised (against the local expert episodes)"),
}


def plot_domains(results: dict[str, Any], path: str, key: str = "") -> str:
    """Bar chart of the per-domain IQM (and over all tasks) with confidence-interval whiskers.

    Args:
        results: the results dict of :func:`jat_train.evaluation.evaluate.summarize`.
        path: the PNG to write.
        key: ``""`` for the expert-normalised aggregates, ``"human_"`` for the human-normalised ones,
            ``"data_normalized_"`` for the data-normalised ones.

    Returns:
        ``path``.
    """
    reference, what = _REFERENCES[key]
    rows = [(d, a) for d, a in results["domains"].items() if a.get(f"{key}iqm") is not None]
    if results["all"].get(f"{key}iqm") is not None and len(rows) != 1:
        rows.append((ALL, results["all"]))
    if not rows:
        raise ValueError(f"plot_domains: no {key or 'expert-'}normalised aggregate to plot")
    names = [r[0] for r in rows]
    iqm = np.array([r[1][f"{key}iqm"] for r in rows]) * 100
    low = np.array([r[1][f"{key}ci_low"] for r in rows]) * 100
    high = np.array([r[1][f"{key}ci_high"] for r in rows]) * 100
    colors = _domain_colors([n for n in names if n != ALL])
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.6 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, iqm, color=[colors.get(n, "0.35") for n in names], alpha=0.85)
    ax.errorbar(iqm, y, xerr=[iqm - low, high - iqm], fmt="none", ecolor="black", capsize=4, lw=1.2)
    for yi, v, h in zip(y, iqm, high):
        ax.text(max(h, v) + 2, yi, f"{v:.1f}%", va="center", fontsize=9)
    labels = [f"{n} ({r[1].get('num_tasks', '?')})" if n != ALL else n for n, r in zip(names, rows)]
    ax.set_yticks(y, labels)
    ax.axvline(100, color="green", ls="--", lw=1, label=reference)
    ax.axvline(0, color="gray", lw=1, label="random")
    ax.set_xlim(min(0, low.min() - 5), max(110, high.max() + 15))
    ax.set_xlabel(f"IQM of episodes x tasks, {what} (%), 95% CI")
    title = f"Aggregate scores ({results.get('policy', 'policy')})"
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_tasks(results: dict[str, Any], path: str, key: str = "normalized") -> str:
    """Sorted horizontal bars of each task's normalised score, coloured by domain.

    Args:
        results: the results dict of :func:`jat_train.evaluation.evaluate.summarize`.
        path: the PNG to write.
        key: ``"normalized"`` (expert) or ``"human_normalized"``.

    Returns:
        ``path``.
    """
    items = [(n, r) for n, r in results["tasks"].items() if r.get(key) is not None]
    if not items:
        raise ValueError(f"plot_tasks: no task has a {key!r} score")
    items.sort(key=lambda item: item[1][key])
    names = [n for n, _ in items]
    values = np.array([r[key] for _, r in items]) * 100
    domains = [r.get("domain", "?") for _, r in items]
    colors = _domain_colors(sorted(set(domains)))
    height = 1.5 + 0.22 * len(items)
    fig, ax = plt.subplots(figsize=(8, height))
    y = np.arange(len(items))
    lo, hi = (
        float(max(min(values.min(), 0), TASK_RANGE[0])),
        float(min(max(values.max(), 100), TASK_RANGE[1])),
    )
    shown = np.clip(values, lo, hi)
    ax.barh(y, shown, color=[colors[d] for d in domains], height=0.8)
    for yi, v, s in zip(y, values, shown):
        if v != s:  # clipped: say the real value
            ax.text(
                s, yi, f" {v:.0f}% ", va="center", ha="right" if s > 0 else "left", fontsize=7, color="white"
            )
    ax.set_yticks(y, names, fontsize=8 if len(items) < 60 else 6)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ref = "expert" if key == "normalized" else "human"
    ax.axvline(100, color="green", ls="--", lw=1, label=f"{ref} (100%)")
    ax.axvline(0, color="gray", lw=1, label="random (0%)")
    ax.set_xlabel(f"{ref}-normalised score of the mean return (%)")
    ax.set_title(f"Per-task {ref}-normalised scores ({results.get('policy', 'policy')}, {len(items)} tasks)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[d]) for d in sorted(colors)]
    lines, line_labels = ax.get_legend_handles_labels()
    ax.legend(handles + lines, sorted(colors) + line_labels, loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    return _save(fig, path)
