"""Hook implementations of the BabyAI domain: 39 levels, grid + mission observations, the BabyAI bot as expert."""

from __future__ import annotations

import functools

from jat_core import hookimpl
from jat_core.specs import FieldSpec, TaskSpec

from jat_envs.babyai import env as babyai_env
from jat_envs.babyai.expert import expert
from jat_envs.babyai.tasks import ENV_IDS
from jat_envs.common import hub_dataset
from jat_envs.scores import scores_for

DOMAIN = "babyai"
#: where the expert-normalising constants come from (shown beside expert-normalised scores)
SCORES_SOURCE = (
    "published JAT constants (random policy; expert = the BabyAI bot that made the reference data); the local "
    "expert is minigrid's BabyAI bot too, so both normalisations measure against the same kind of teacher"
)
#: the mission is tokenized to exactly this many ids and joins the 148 grid ints (148 + 64 = 212)
MISSION_TOKENS = 64


def task_spec(name: str) -> TaskSpec:
    """The spec of one BabyAI task (``name`` is a key of :data:`jat_envs.babyai.tasks.ENV_IDS`).

    Field order matters: both observation fields use the discrete codec, which concatenates them in spec order,
    grid first, then the mission tokens, as the reference builds its 212 integers.
    """
    return TaskSpec(
        name=name,
        domain=DOMAIN,
        observation=(
            FieldSpec(
                "discrete_observations", "discrete", (babyai_env.N_GRID,), "int64", n=babyai_env.N_VALUES
            ),
            FieldSpec("text_observations", "discrete", (), "string", max_tokens=MISSION_TOKENS),
        ),
        action=FieldSpec("discrete_actions", "discrete", (), "int64", n=babyai_env.N_ACTIONS),
        make_env=functools.partial(babyai_env.make_env, ENV_IDS[name]),
        scores=scores_for(name, SCORES_SOURCE),
        dataset=hub_dataset(name),
        expert=expert,
        metadata={"env_id": ENV_IDS[name]},
    )


@hookimpl
def jat_register_tasks(register):
    """Register the 39 BabyAI tasks."""
    for name in ENV_IDS:
        register(task_spec(name))
