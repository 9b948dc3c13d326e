"""Slow: make, reset and step every one of the 157 RL tasks (about a minute on 2 cores)."""

import warnings

import numpy as np
import pytest
from jat_core.testing import check_field_value
from jat_envs.scores import load_scores

RL_TASKS = list(load_scores())  # the 157 RL tasks (test_tasks checks they are exactly the registered ones)
STEPS = 3


@pytest.mark.slow
@pytest.mark.parametrize("name", RL_TASKS)
def test_make_reset_step(registry, name):
    spec = registry.task(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Meta-World's spaces trip gymnasium's passive checker
        env = spec.make_env()
        try:
            obs, _ = env.reset(seed=0)
            for _ in range(STEPS):
                for f in spec.observation:
                    check_field_value(f, obs[f.name], task=name)
                action = env.action_space.sample()
                check_field_value(spec.action, np.asarray(action), task=name)
                obs, reward, terminated, truncated, _ = env.step(action)
                assert np.isfinite(reward)
                if terminated or truncated:
                    obs, _ = env.reset()
            if spec.domain == "atari":
                # the action count of the spec is the game's minimal action set; FIRE resets press action 1
                assert env.action_space.n == spec.action.n
                meanings = env.unwrapped.get_action_meanings()
                assert "FIRE" not in meanings or meanings[1] == "FIRE"
            else:
                assert env.action_space.shape == spec.action.shape
        finally:
            env.close()
