"""The run's input normalisation: per-task statistics of real-valued observation fields and rewards.

``jat-train`` standardises every floating-point observation field and the rewards of each RL task with the mean
and standard deviation of its training data (:mod:`jat_core.normalization`), taken over the first
:data:`EPISODES` episodes each task's source gives, and stores them in the model's ``config.json``
(``input_normalization``), so that the agent sees the same inputs in play. ``--no-normalize-inputs`` trains on
raw values (as the reference did); a model started from ``--init-from`` keeps its own statistics (none for the
published checkpoint), and a resumed run keeps the checkpoint's.
"""

from __future__ import annotations

import os

from jat_core.normalization import REWARDS, Moments, normalizable
from jat_core.specs import TaskSpec

from jat_train.data import REWARDS as REWARDS_COLUMN
from jat_train.data import check_episode, first_episodes
from jat_train.training.train_config import TrainConfig

#: Episodes read per task for its statistics (a Meta-World task: 20,000 steps).
EPISODES = 200


def sample_stats(tasks: list[TaskSpec], data: str, *, episodes: int = EPISODES, streaming: bool = True) -> dict:
    """Mean and standard deviation of each RL task's floating-point observation fields and shifted rewards.

    Args:
        tasks: task specs; tasks without an action (text, captions) and without floating-point fields are skipped.
        data: ``"hub"``, ``"hub:<repo id or directory>"`` or a local root directory (see
            :func:`jat_train.data.episodes.first_episodes`).
        episodes: episodes read per task (fewer when its data set holds fewer).
        streaming: hub data only: stream them or read the downloaded split.

    Returns:
        ``{task: {field or "rewards": {"mean": [...], "std": [...]}}}`` (``JatConfig.input_normalization``).

    Raises:
        DataError: an episode that does not match its task's spec, ragged steps included (see
            :func:`jat_train.data.windows.check_episode`).
    """
    out: dict = {}
    for spec in tasks:
        fields = [f for f in spec.observation if normalizable(f.dtype)]
        if spec.action is None or not fields:
            continue
        moments = {f.name: Moments(int(f.size)) for f in fields}
        moments[REWARDS] = Moments(1)
        for index, row in first_episodes(spec, data, episodes=episodes, streaming=streaming):
            steps = check_episode(spec, index, row)  # the checks training makes: bad data named here, first
            if not steps:
                continue
            for f in fields:
                moments[f.name].add(steps[f.name])
            moments[REWARDS].add(steps[REWARDS_COLUMN])
        out[spec.name] = {name: m.stats() for name, m in moments.items()}
    return out


def run_normalization(config: TrainConfig, tasks: list[TaskSpec], resume_from: str | None) -> dict | None:
    """The ``input_normalization`` of a run's fresh model: the resumed checkpoint's, none with ``--init-from``
    (the model keeps its own) or ``--no-normalize-inputs``, else :func:`sample_stats` of the training data.

    Returns:
        The statistics, or ``None`` to leave the model's config as it is.
    """
    from jat_core.config import JatConfig

    if resume_from is not None and os.path.isfile(os.path.join(resume_from, "config.json")):
        return JatConfig.from_pretrained(resume_from).input_normalization
    if config.init_from or not config.normalize_inputs:
        return None
    return sample_stats(tasks, config.data, streaming=config.streaming)
