"""A third-party JAT domain: walk right along a corridor to reach the goal."""

import numpy as np
from jat_core import FieldSpec, Scores, TaskSpec, hookimpl

LENGTH = 8


def make_env(**kwargs):
    """A gymnasium env whose observations are dicts keyed by the task's observation field names."""
    import gymnasium as gym

    class Corridor(gym.Env):
        observation_space = gym.spaces.Dict(
            {"continuous_observations": gym.spaces.Box(0.0, 1.0, (2,), np.float32)}
        )
        action_space = gym.spaces.Discrete(2)  # 0: left, 1: right

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.pos, self.t = 0, 0
            return self._obs(), {}

        def step(self, action):
            self.pos = int(np.clip(self.pos + (1 if action == 1 else -1), 0, LENGTH - 1))
            self.t += 1
            done = self.pos == LENGTH - 1
            return self._obs(), float(done), done, self.t >= 4 * LENGTH, {}

        def _obs(self):
            return {"continuous_observations": np.array([self.pos / (LENGTH - 1), 1.0], np.float32)}

    return gym.wrappers.PassiveEnvChecker(Corridor()) if kwargs.get("check") else Corridor()


def expert(env):
    """The expert always walks right."""
    return lambda observation: 1


@hookimpl
def jat_register_tasks(register):
    """Register the corridor task."""
    register(
        TaskSpec(
            name="corridor-walk",
            domain="corridor",
            observation=(FieldSpec("continuous_observations", codec="continuous", shape=(2,), low=0.0, high=1.0),),
            action=FieldSpec("discrete_actions", codec="discrete", shape=(), dtype="int64", n=2),
            make_env=make_env,
            expert=expert,
            scores=Scores(random=0.3, expert=1.0),
            max_episode_steps=4 * LENGTH,
        )
    )
