"""Meta-World envs built from a task's goal list drawn once give exactly the episodes of metaworld's own
``gymnasium.make("Meta-World/MT1", ...)``, and a second env of a task does not draw the goals again."""

import numpy as np
import pytest

pytest.importorskip("metaworld")

from jat_envs.metaworld import env as mw  # noqa: E402


def _play(env, seed: int, steps: int = 100):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, outcomes = [obs["continuous_observations"]], []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        observations.append(obs["continuous_observations"])
        outcomes.append((reward, terminated, truncated, info.get("success")))
        if terminated or truncated:
            break
    return np.stack(observations), outcomes


@pytest.mark.parametrize("name", ["reach-v3", "door-close-v3"])
def test_cached_goals_give_metaworlds_own_episodes(name):
    reference = mw.continuous_dict_observations(
        mw._seeded_goal_wrapper()(mw._make_with_gymnasium(name, seed=0, max_episode_steps=mw.MAX_EPISODE_STEPS)))
    first, second = mw.make_env(name, seed=0), mw.make_env(name, seed=0)
    for seed in (1000, 1001, 3):
        want_obs, want = _play(reference, seed)
        for env in (first, second):
            got_obs, got = _play(env, seed)
            assert np.array_equal(got_obs, want_obs) and got == want
        assert len(want) == mw.MAX_EPISODE_STEPS  # truncated at 100 steps, never terminated on success
    for env in (first, second):  # the spec gymnasium.make records (the scripted expert reads the name from it)
        assert env.unwrapped.spec.kwargs["env_name"] == name
        assert env.unwrapped.spec.kwargs == reference.unwrapped.spec.kwargs


def test_a_second_env_of_a_task_does_not_draw_its_goals_again():
    mw._benchmark.cache_clear()
    mw.make_env("reach-v3", seed=5)
    mw.make_env("reach-v3", seed=5)
    mw.make_env("reach-v3", seed=6)
    assert mw._benchmark.cache_info().hits == 1 and mw._benchmark.cache_info().misses == 2
