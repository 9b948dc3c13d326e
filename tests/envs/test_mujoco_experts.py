"""The MuJoCo experts: wiring, determinism, and a clear win over random actions on a few hundred steps."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from jat_envs.mujoco.expert import EXPERTS  # noqa: E402
from playkit import play  # noqa: E402

WITH_EXPERT = {
    "mujoco-pendulum",
    "mujoco-doublependulum",
    "mujoco-reacher",
    "mujoco-swimmer",
    "mujoco-halfcheetah",
}


def _play(spec, factory, steps, seed=1000):
    """Return and actions of one (possibly truncated) episode; ``factory=None`` plays seeded random actions."""
    total, actions, _ = play(spec, factory, steps, seed)
    return total, np.stack([np.asarray(a) for a in actions])


def test_expert_wiring(registry):
    mujoco = registry.domains()["mujoco"]
    assert {n for n in mujoco if registry.task(n).expert is not None} == WITH_EXPERT == set(EXPERTS)


@pytest.mark.parametrize(
    "task, steps, at_least, random_below",
    [
        ("mujoco-pendulum", 300, 300.0, 50.0),  # never falls (1 per step alive)
        ("mujoco-doublependulum", 300, 2700.0, 600.0),  # upright all along (about 9.36 per step)
        ("mujoco-reacher", 50, -12.0, -30.0),  # the whole 50-step episode
        ("mujoco-swimmer", 300, 30.0, 10.0),
    ],
)
def test_controller_beats_random(registry, task, steps, at_least, random_below):
    spec = registry.task(task)
    expert_return, actions = _play(spec, spec.expert, steps)
    random_return, _ = _play(spec, None, steps)
    assert len(actions) == steps
    assert expert_return >= at_least and random_return < random_below, (expert_return, random_return)
    again, same_actions = _play(spec, spec.expert, steps)
    assert again == expert_return
    np.testing.assert_array_equal(actions, same_actions)


def test_planner_beats_random_and_is_deterministic(registry):
    spec = registry.task("mujoco-halfcheetah")
    steps = 40
    expert_return, actions = _play(spec, spec.expert, steps)
    random_return, _ = _play(spec, None, steps)
    assert expert_return > random_return + 40.0, (expert_return, random_return)  # ~3 m/s within 2 s
    _, same = _play(spec, spec.expert, 5)
    np.testing.assert_array_equal(actions[:5], same)
    _, other_seed = _play(spec, spec.expert, 5, seed=1001)
    assert not np.array_equal(actions[:5], other_seed)


def test_planner_leaves_the_env_state_alone(registry):
    import mujoco
    from jat_envs.mujoco.expert import SamplingPlanner, cheetah_objective

    env = registry.task("mujoco-halfcheetah").make_env()
    try:
        env.reset(seed=0)
        data = env.unwrapped.data
        before = np.concatenate([data.qpos, data.qvel, [data.time]])
        planner = SamplingPlanner(env, cheetah_objective, horizon=5, samples=4, knots=3)
        action = planner({})
        np.testing.assert_array_equal(np.concatenate([data.qpos, data.qvel, [data.time]]), before)
        assert action.shape == (6,) and action.dtype == np.float32
        assert isinstance(planner.scratch, mujoco.MjData)
    finally:
        env.close()


def test_lqr_gain_stabilises_the_linearised_pendulum(registry):
    from jat_envs.mujoco.expert import dlqr, linearise

    env = registry.task("mujoco-pendulum").make_env()
    try:
        u = env.unwrapped
        a, b = linearise(u.model, u.frame_skip)
        k = dlqr(a, b, np.eye(4), np.eye(1))
        assert np.max(np.abs(np.linalg.eigvals(a))) > 1.0  # upright is unstable on its own
        assert np.max(np.abs(np.linalg.eigvals(a - b @ k))) < 1.0  # and stable under the gain
    finally:
        env.close()
