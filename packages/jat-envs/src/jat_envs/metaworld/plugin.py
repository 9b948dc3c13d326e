"""Hook implementations of the Meta-World domain: 50 MT50 tasks, 39-float observations, scripted experts."""

from __future__ import annotations

import functools

from jat_core import hookimpl
from jat_core.specs import FieldSpec, TaskSpec

from jat_envs.common import hub_dataset
from jat_envs.metaworld import env as mw_env
from jat_envs.metaworld.expert import expert
from jat_envs.metaworld.tasks import ENV_NAMES
from jat_envs.scores import scores_for

DOMAIN = "metaworld"
#: where the expert-normalising constants come from (shown beside expert-normalised scores)
SCORES_SOURCE = (
    "published JAT constants (the reference's PPO experts on Meta-World v2); local data come from Meta-World v3's "
    "scripted policies, so expert-normalised scores set the model beside another teacher on another env version"
)
#: the reference weighs every Meta-World task's loss by 50 (actions need precision)
LOSS_WEIGHT = 50.0


def task_spec(name: str) -> TaskSpec:
    """The spec of one Meta-World task (``name`` is a key of :data:`jat_envs.metaworld.tasks.ENV_NAMES`)."""
    return TaskSpec(
        name=name,
        domain=DOMAIN,
        observation=(FieldSpec("continuous_observations", "continuous", (mw_env.OBS_SIZE,), "float32"),),
        action=FieldSpec(
            "continuous_actions", "continuous", (mw_env.ACTION_SIZE,), "float32", low=-1.0, high=1.0
        ),
        make_env=functools.partial(mw_env.make_env, ENV_NAMES[name]),
        scores=scores_for(name, SCORES_SOURCE),
        dataset=hub_dataset(name),
        loss_weight=LOSS_WEIGHT,
        max_episode_steps=mw_env.MAX_EPISODE_STEPS,
        expert=expert,
        metadata={
            "env_id": "Meta-World/MT1",
            "env_name": ENV_NAMES[name],
            "reference_env": ENV_NAMES[name][:-1] + "2",
        },
    )


@hookimpl
def jat_register_tasks(register):
    """Register the 50 Meta-World tasks."""
    for name in ENV_NAMES:
        register(task_spec(name))
