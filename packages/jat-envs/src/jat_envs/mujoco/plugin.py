"""Hook implementations of the MuJoCo domain: 11 envs, continuous observations and actions.

Experts (:mod:`jat_envs.mujoco.expert`) for pendulum, doublependulum, reacher, swimmer and halfcheetah; the other
tasks have none.
"""

from __future__ import annotations

import functools

from jat_core import hookimpl
from jat_core.specs import FieldSpec, TaskSpec

from jat_envs.common import hub_dataset
from jat_envs.mujoco import env as mujoco_env
from jat_envs.mujoco.expert import EXPERTS
from jat_envs.mujoco.tasks import DEFAULT_LOSS_WEIGHT, ENVS, LOSS_WEIGHTS
from jat_envs.scores import scores_for

DOMAIN = "mujoco"
#: where the expert-normalising constants come from (shown beside expert-normalised scores)
SCORES_SOURCE = (
    "published JAT constants (the reference's trained agents); local data come from analytic controllers and a "
    "simulator planner that beat some of them, so an expert-normalised score above 1 means our teacher beat theirs"
)


def task_spec(name: str) -> TaskSpec:
    """The spec of one MuJoCo task (``name`` is a key of :data:`jat_envs.mujoco.tasks.ENVS`)."""
    env_id, obs_size, act_size, bound = ENVS[name]
    return TaskSpec(
        name=name,
        domain=DOMAIN,
        observation=(FieldSpec("continuous_observations", "continuous", (obs_size,), "float32"),),
        action=FieldSpec("continuous_actions", "continuous", (act_size,), "float32", low=-bound, high=bound),
        make_env=functools.partial(mujoco_env.make_env, env_id),
        scores=scores_for(name, SCORES_SOURCE),
        dataset=hub_dataset(name),
        loss_weight=LOSS_WEIGHTS.get(name, DEFAULT_LOSS_WEIGHT),
        expert=EXPERTS.get(name),
        metadata={"env_id": env_id},
    )


@hookimpl
def jat_register_tasks(register):
    """Register the 11 MuJoCo tasks."""
    for name in ENVS:
        register(task_spec(name))
