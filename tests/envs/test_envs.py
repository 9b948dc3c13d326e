"""The envs: wrappers, observation formats, determinism, and the experts' guards."""

import time
import warnings

import numpy as np
import pytest
from jat_core.testing import check_field_value


def _check_obs(spec, obs):
    assert list(obs) == [f.name for f in spec.observation]
    for f in spec.observation:
        check_field_value(f, obs[f.name], task=spec.name)


def test_atari_frames_stack_channels_last(registry):
    spec = registry.task("atari-pong")
    env = spec.make_env()
    try:
        obs, _ = env.reset(seed=0)
        _check_obs(spec, obs)
        frames = [obs["image_observations"]]
        for _ in range(3):
            obs, *_ = env.step(0)
            frames.append(obs["image_observations"])
        # each step shifts the stack by one frame: the newest frame is last (channels-last stack of 4)
        np.testing.assert_array_equal(frames[-1][..., :3], frames[-2][..., 1:])
        assert env.action_space.n == spec.action.n
    finally:
        env.close()


def test_atari_reset_is_seeded(registry):
    spec = registry.task("atari-breakout")
    a, b = spec.make_env(), spec.make_env()
    try:
        for seed in (0, 1):
            np.testing.assert_array_equal(
                a.reset(seed=seed)[0]["image_observations"], b.reset(seed=seed)[0]["image_observations"]
            )
    finally:
        a.close()
        b.close()


def test_babyai_observation_layout(registry):
    spec = registry.task("babyai-go-to-red-ball")
    env = spec.make_env()
    obs, _ = env.reset(seed=3)
    _check_obs(spec, obs)
    raw = env.unwrapped.gen_obs()
    assert obs["discrete_observations"][0] == raw["direction"]
    np.testing.assert_array_equal(obs["discrete_observations"][1:], raw["image"].reshape(-1))
    assert obs["text_observations"] == raw["mission"] == "go to the red ball"
    _, reward, *_ = env.step(2)
    assert isinstance(reward, float)


def test_babyai_bot_solves_an_episode(registry):
    spec = registry.task("babyai-go-to-red-ball")
    env = spec.make_env()
    obs, _ = env.reset(seed=0)
    policy = spec.expert(env)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total, done = total + reward, terminated or truncated
    assert terminated and total > 0.5


def _play(env, policy, obs):
    """Run a policy until the episode ends (returns True) or the policy gives up (returns False)."""
    while True:
        action = policy(obs)
        if action is None:
            return False
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            return True


def test_babyai_bot_guards():
    from jat_envs.babyai.env import make_env
    from jat_envs.babyai.expert import expert

    env = make_env("BabyAI-GoTo-v0")  # a maze: the bot must push exploration subgoals
    obs, _ = env.reset(seed=0)
    with pytest.warns(UserWarning, match="failed.*PlanningLoop.*more than 0 subgoals"):
        assert not _play(env, expert(env, max_subgoals=0), obs)
    for guard in ({"max_seconds": 0.0}, {"max_steps": 0}):
        obs, _ = env.reset(seed=0)
        with pytest.warns(UserWarning, match="out of steps or time"):
            assert expert(env, **guard)(obs) is None
    obs, _ = env.reset(seed=0)
    assert _play(env, expert(env), obs)


def test_babyai_bot_endless_planning_is_cut_short():
    """UnlockToUnlock makes the bot push subgoals for ever on some levels: the guard ends them fast."""
    from jat_envs.babyai.env import make_env
    from jat_envs.babyai.expert import expert

    env = make_env("BabyAI-UnlockToUnlock-v0")
    gave_up = 0
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(12):
            obs, _ = env.reset(seed=seed)
            gave_up += not _play(env, expert(env), obs)
    assert gave_up >= 1  # seeds 4, 7 and 9 loop in minigrid 3.2
    assert time.monotonic() - start < 20


def test_metaworld_is_deterministic_and_limited_to_100_steps(registry):
    spec = registry.task("metaworld-reach")
    runs = []
    for _ in range(2):
        env = spec.make_env()
        obs, _ = env.reset(seed=5)
        policy = spec.expert(env)
        observations, steps, done = [obs["continuous_observations"]], 0, False
        while not done:
            action = policy(obs)
            check_field_value(spec.action, action, task=spec.name)
            obs, _, terminated, truncated, info = env.step(action)
            observations.append(obs["continuous_observations"])
            steps, done = steps + 1, terminated or truncated
        env.close()
        runs.append(np.stack(observations))
        assert steps == 100 and truncated and info["success"] == 1.0
    np.testing.assert_array_equal(runs[0], runs[1])


def test_mujoco_v4_observations_are_float32(registry):
    spec = registry.task("mujoco-ant")
    env = spec.make_env()
    obs, _ = env.reset(seed=0)
    _check_obs(spec, obs)
    assert obs["continuous_observations"].dtype == np.float32
    assert env.unwrapped.spec.id == "Ant-v4"
