"""Hook implementations of the Atari domain: 57 games, image observations.

Scripted RAM experts (:mod:`jat_envs.atari.expert`) for Pong and Freeway; the other games have none.
"""

from __future__ import annotations

import functools

from jat_core import hookimpl
from jat_core.specs import FieldSpec, TaskSpec

from jat_envs.atari import env as atari_env
from jat_envs.atari.expert import EXPERTS
from jat_envs.atari.tasks import GAMES, env_id
from jat_envs.common import hub_dataset
from jat_envs.scores import scores_for

DOMAIN = "atari"
#: where the expert-normalising constants come from (shown beside expert-normalised scores)
SCORES_SOURCE = (
    "published JAT constants (the reference's trained agents, a random policy, human scores); local data come "
    "from rule-based experts that read the emulator (RAM or screen), some looking ahead on a copy of its state"
)
#: The reference cuts Atari episodes into windows of 32 steps (images are heavy).
CONTEXT_STEPS = 32


def task_spec(name: str) -> TaskSpec:
    """The spec of one Atari task (``name`` is a key of :data:`jat_envs.atari.tasks.GAMES`)."""
    n_actions = GAMES[name][1]
    return TaskSpec(
        name=name,
        domain=DOMAIN,
        observation=(
            FieldSpec(
                "image_observations",
                "image",
                (atari_env.FRAME_SIZE, atari_env.FRAME_SIZE, atari_env.STACK),
                "uint8",
                low=0,
                high=255,
            ),
        ),
        action=FieldSpec("discrete_actions", "discrete", (), "int64", n=n_actions),
        make_env=functools.partial(atari_env.make_env, env_id(name)),
        scores=scores_for(name, SCORES_SOURCE),
        dataset=hub_dataset(name),
        context_steps=CONTEXT_STEPS,
        expert=EXPERTS.get(name),
        metadata={"env_id": env_id(name)},
    )


@hookimpl
def jat_register_tasks(register):
    """Register the 57 Atari tasks."""
    for name in GAMES:
        register(task_spec(name))
