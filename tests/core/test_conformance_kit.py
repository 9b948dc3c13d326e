"""The domain conformance kit (``jat_core.testing.DomainConformance``) catches a plugin author's mistakes: an
action field offering more actions than the env takes, and an expert that does not play."""

import dataclasses
import types

import gymnasium as gym
import numpy as np
import pytest
from jat_core import FieldSpec, TaskSpec, hookimpl
from jat_core.testing import DomainConformance

N_ACTIONS = 3


class Corridor(gym.Env):
    """Three actions, two float observations, three steps an episode."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(N_ACTIONS)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"continuous_observations": np.full(2, self.t / 3, dtype=np.float32)}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"corridor: action {action!r} is not in {self.action_space}")
        self.t += 1
        return self._obs(), float(action == 1), self.t >= 3, False, {}


def walk_right(env):
    return lambda observation: 1


def out_of_range(env):
    return lambda observation: N_ACTIONS + 4


def needs_another_field(env):
    return lambda observation: int(observation["discrete_observations"][0])


GOOD = TaskSpec(
    "corridor-walk",
    "corridor",
    (FieldSpec("continuous_observations", "continuous", (2,), low=-1.0, high=1.0),),
    FieldSpec("discrete_actions", "discrete", (), "int64", n=N_ACTIONS),
    make_env=Corridor,
    expert=walk_right,
)


def kit(task: TaskSpec) -> DomainConformance:
    """The kit as a plugin's test module subclasses it, for a plugin registering ``task``."""

    @hookimpl
    def jat_register_tasks(register):
        register(task)

    class Kit(DomainConformance):
        plugin = types.SimpleNamespace(jat_register_tasks=jat_register_tasks)

    return Kit()


def run_all(suite: DomainConformance) -> None:
    for name in dir(suite):
        if name.startswith("test_"):
            getattr(suite, name)()


def test_a_well_formed_domain_passes_every_check():
    run_all(kit(GOOD))


def test_an_action_field_with_more_actions_than_the_env_takes_is_caught():
    too_many = dataclasses.replace(GOOD, action=dataclasses.replace(GOOD.action, n=N_ACTIONS + 2))
    suite = kit(too_many)
    suite.test_env_observations_match_spec()  # the sampled actions fit the field: this check cannot see it
    with pytest.raises(AssertionError, match=r"corridor-walk: action field 'discrete_actions' has n=5, the env's action space takes 3"):
        suite.test_action_field_fits_the_env()


@pytest.mark.parametrize(
    "expert, error, pattern",
    [
        (out_of_range, ValueError, r"field 'discrete_actions': expected values in \[0, 3\), got range \[7, 7\]"),
        (needs_another_field, KeyError, "discrete_observations"),
    ],
)
def test_an_expert_that_does_not_play_is_caught(expert, error, pattern):
    suite = kit(dataclasses.replace(GOOD, expert=expert))
    suite.test_env_observations_match_spec()  # the env and the spec are fine
    with pytest.raises(error, match=pattern):
        suite.test_expert_plays()


def test_an_expert_task_without_an_env_is_caught():
    no_env = dataclasses.replace(GOOD, make_env=None)
    suite = kit(no_env)
    suite.expert_tasks = ["corridor-walk"]
    with pytest.raises(AssertionError, match="corridor-walk: no expert, or no env to play in"):
        suite.test_expert_plays()
